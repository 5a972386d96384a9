"""SpiffWorkflow on the peer workload, persisted to PostgreSQL, in its own virtualenv.

    PEER_DB_NAME=gndp_peer_spiff var/peers/spiff/bin/python bench/peers/run_spiff.py --instances 200

The journey is bench/peers/loan12.bpmn, parsed once with SpiffBpmnParser. Following
Spiff's serialization guide, the spec is stored once (table `spiff_spec`) and kept in memory,
and each instance's state is its own row (`spiff_workflow.serialization`, jsonb) without the
spec. Every start and every completion is one transaction: lock and read the row,
deserialize, set the task's data and run it, `do_engine_steps()` (the script tasks and
gateways), serialize and write the row back. Timed: those calls. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from importlib.metadata import version
from pathlib import Path
from uuid import UUID

import psycopg
from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine, TaskDataEnvironment
from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.serializer.default.workflow import BpmnWorkflowConverter, WorkflowConverter
from SpiffWorkflow.spiff.parser import SpiffBpmnParser
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG
from SpiffWorkflow.util.task import TaskState

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from workload import STEPS, TASKS_PER_INSTANCE, credit_score, expected_arm, result_for, summary  # noqa: E402

PROCESS_ID = "loan12"
SPECS: dict[str, object] = {}  # spec name -> parsed spec, shared by every instance


class SpecRef:
    """Stands for a stored spec inside an instance's serialization."""

    def __init__(self, name: str):
        self.name = name


class InstanceConverter(BpmnWorkflowConverter):
    """The default workflow conversion, with the spec replaced by a reference to the stored
    one (the separation of specs from instance data that Spiff's serialization guide shows)."""

    def to_dict(self, workflow):
        dct = WorkflowConverter.to_dict(self, workflow)
        dct["spec"] = self.registry.convert(SpecRef(workflow.spec.name))
        dct["subprocess_specs"] = {}
        dct["subprocesses"] = self.mapping_to_dict(workflow.subprocesses)
        dct["bpmn_events"] = self.registry.convert(workflow.bpmn_events)
        return dct


def make_serializer() -> BpmnWorkflowSerializer:
    config = dict(SPIFF_CONFIG)
    config[BpmnWorkflow] = InstanceConverter
    registry = BpmnWorkflowSerializer.configure(config)
    registry.register(SpecRef, lambda ref: {"name": ref.name}, lambda dct: SPECS[dct["name"]])
    return BpmnWorkflowSerializer(registry)


SCHEMA = """
CREATE TABLE IF NOT EXISTS spiff_spec (
    name text PRIMARY KEY,
    serialization jsonb NOT NULL
);
CREATE TABLE IF NOT EXISTS spiff_workflow (
    id bigserial PRIMARY KEY,
    spec_name text NOT NULL REFERENCES spiff_spec (name),
    completed boolean NOT NULL DEFAULT false,
    serialization jsonb NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
"""


class Engine:
    def __init__(self, conn: psycopg.Connection):
        self.conn = conn
        self.serializer = make_serializer()
        self.script_engine = PythonScriptEngine(environment=TaskDataEnvironment({"credit_bureau": credit_score}))

    def install(self) -> None:
        parser = SpiffBpmnParser()
        parser.add_bpmn_file(str(HERE / "loan12.bpmn"))
        spec = parser.get_spec(PROCESS_ID)
        SPECS[spec.name] = spec
        with self.conn.transaction():
            self.conn.execute(SCHEMA)
            self.conn.execute(
                "INSERT INTO spiff_spec (name, serialization) VALUES (%s, %s::jsonb) "
                "ON CONFLICT (name) DO UPDATE SET serialization = EXCLUDED.serialization",
                (spec.name, json.dumps(self.serializer.to_dict(spec))),
            )

    def _dump(self, workflow: BpmnWorkflow) -> str:
        return self.serializer.serialize_json(workflow)

    def _load(self, dct: dict) -> BpmnWorkflow:
        self.serializer.migrate(dct)
        workflow = self.serializer.from_dict(dct)
        workflow.script_engine = self.script_engine
        return workflow

    @staticmethod
    def ready(workflow: BpmnWorkflow) -> list[tuple[str, str]]:
        return [(str(task.id), task.task_spec.name) for task in workflow.get_tasks(state=TaskState.READY, manual=True)]

    def start(self) -> tuple[int, list[tuple[str, str]]]:
        workflow = BpmnWorkflow(SPECS[PROCESS_ID], {}, script_engine=self.script_engine)
        workflow.do_engine_steps()
        with self.conn.transaction():
            row = self.conn.execute(
                "INSERT INTO spiff_workflow (spec_name, completed, serialization) VALUES (%s, %s, %s::jsonb) RETURNING id",
                (PROCESS_ID, workflow.completed, self._dump(workflow)),
            ).fetchone()
        return row[0], self.ready(workflow)

    def complete(self, workflow_id: int, task_id: str, result: dict) -> list[tuple[str, str]]:
        with self.conn.transaction():
            (dct,) = self.conn.execute(
                "SELECT serialization FROM spiff_workflow WHERE id = %s FOR UPDATE", (workflow_id,)
            ).fetchone()
            workflow = self._load(dct)
            task = workflow.get_task_from_id(UUID(task_id))
            if task.state != TaskState.READY or not task.task_spec.manual:
                raise RuntimeError(f"task {task_id} is not a ready human task")
            task.set_data(**result)
            task.run()
            workflow.do_engine_steps()
            self.conn.execute(
                "UPDATE spiff_workflow SET serialization = %s::jsonb, completed = %s, updated_at = now() WHERE id = %s",
                (self._dump(workflow), workflow.completed, workflow_id),
            )
        return self.ready(workflow)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=int(os.environ.get("PEER_INSTANCES", "200")))
    args = parser.parse_args()

    conninfo = "host={} port={} user={} dbname={}".format(
        os.environ.get("PEER_DB_HOST", "127.0.0.1"), os.environ.get("PEER_DB_PORT", "5432"),
        os.environ.get("PEER_DB_USER", "postgres"), os.environ.get("PEER_DB_NAME", "gndp_peer_spiff"),
    )
    with psycopg.connect(conninfo, autocommit=True) as conn:
        engine = Engine(conn)
        engine.install()

        latencies: list[float] = []
        workflow_ids: list[int] = []
        began, cpu_began = time.perf_counter(), time.thread_time()
        for n in range(args.instances):
            t0 = time.perf_counter()
            workflow_id, ready = engine.start()
            latencies.append((time.perf_counter() - t0) * 1000)
            workflow_ids.append(workflow_id)
            while ready:
                # The tasks that were ready after the last completion, parallel ones included.
                pending, ready = ready, []
                for task_id, step in pending:
                    t0 = time.perf_counter()
                    now_ready = engine.complete(workflow_id, task_id, result_for(step, n))
                    latencies.append((time.perf_counter() - t0) * 1000)
                ready = now_ready
        seconds = time.perf_counter() - began
        cpu = time.thread_time() - cpu_began

        unfinished = conn.execute(
            "SELECT count(*) FROM spiff_workflow WHERE id = ANY(%s) AND NOT completed", (workflow_ids,)
        ).fetchone()[0]
        counted = {step for step, _, _, _ in STEPS}
        steps_done, arms = 0, {"auto_clear": 0, "manual_review": 0}
        size = 0
        for (dct,) in conn.execute("SELECT serialization FROM spiff_workflow WHERE id = ANY(%s)", (workflow_ids,)):
            size += len(json.dumps(dct))
            workflow = engine._load(dct)
            for task in workflow.get_tasks(state=TaskState.COMPLETED):
                name = task.task_spec.name
                steps_done += name in counted
                if name in arms:
                    arms[name] += 1
    expected = {arm: sum(1 for n in range(args.instances) if expected_arm(n) == arm) for arm in arms}
    if unfinished or steps_done != args.instances * TASKS_PER_INSTANCE or arms != expected:
        raise SystemExit(f"spiff: wrong outcome: {unfinished} unfinished, {steps_done} steps done, arms {arms}")

    print(json.dumps(summary(
        engine="spiff", instances=args.instances, seconds=seconds, wall_seconds=seconds, cpu_seconds=cpu,
        latencies_ms=latencies,
        arms=arms, version=version("SpiffWorkflow"), state_bytes_per_instance=size // max(1, args.instances),
    )))


if __name__ == "__main__":
    main()
