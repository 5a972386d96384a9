"""Re-encrypting stored sensitive values with the first of GNDP_FIELD_KEYS.

Values already under that key are left alone, so a second run changes nothing. Each process
is rewritten in its own short transaction under its row lock, the lock every step takes
first, so a step running meanwhile never loses its write to the rotation or the other way
round. The event log holds no sensitive values (and is never rewritten).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction

from steps.changes import change_tasks
from tasks.models import TaskInstance

from . import sensitive
from .models import IdempotencyRecord, ProcessInstance


@dataclass
class Rotation:
    values: int = 0
    processes: int = 0
    tasks: int = 0
    responses: int = 0


def rotate_stored_values(*, batch_size: int = 200) -> Rotation:
    report = Rotation()
    last = 0
    while True:
        batch = list(ProcessInstance.objects.filter(pk__gt=last).order_by("pk")
                     .values_list("pk", "version_id", "journey_id")[:batch_size])
        if not batch:
            break
        for process_id, version_id, journey_id in batch:
            paths = sensitive.paths_of_version(version_id, journey_id)
            if paths:
                _rotate_process(process_id, paths, report)
        last = batch[-1][0]
    last = 0
    while True:
        records = list(IdempotencyRecord.objects.filter(pk__gt=last, response__has_key=sensitive.SEALED_BODY)
                       .order_by("pk").only("pk", "response")[:batch_size])
        if not records:
            break
        for record in records:
            body, count = sensitive.rotate_body(record.response)
            if count:
                IdempotencyRecord.objects.filter(pk=record.pk).update(response=body)  # written once, never changed
                report.responses += 1
                report.values += count
        last = records[-1].pk
    return report


def _rotate_process(process_id: int, paths: tuple[str, ...], report: Rotation) -> None:
    with transaction.atomic():
        process = ProcessInstance.objects.select_for_update().only("pk", "context").filter(pk=process_id).first()
        if process is None:
            return
        context, count = sensitive.rotate(paths, process.context)
        if count:
            ProcessInstance.objects.filter(pk=process_id).update(context=context)
            report.processes += 1
            report.values += count
        for task_id, result in TaskInstance.objects.filter(process_id=process_id, result__isnull=False).values_list("pk", "result"):
            result, count = sensitive.rotate(paths, result)
            if count:
                change_tasks(TaskInstance.objects.filter(pk=task_id), result=result)
                report.tasks += 1
                report.values += count
