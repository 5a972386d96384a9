"""Each trick of `steps.tricks` is held to the plain way: the same work, through the API and
the services, leaves the same rows and gives the same answers with every trick on and with
every trick set aside."""

from __future__ import annotations

import re

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from processes import sensitive
from processes.models import ProcessEvent, ProcessInstance
from processes.services import abort_process, start_processes
from steps import tricks
from tasks.models import TaskInstance
from tests.factories import START_ANY_JOURNEY, ProcessFactory, UserFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]

IDS = re.compile(r'"(id|task_id|process_id|process_instance_id|task|process)": \d+')


def api(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
    return client


def work(people) -> list:
    """Start processes (one, then two in bulk), work every person's task through the API to
    the end of one of them, escalate in another, abort the third; the answers, normalised."""
    clerk, checker, boss = people["clerk"], people["checker"], people["boss"]
    answers = []
    first = ProcessFactory(user=clerk, context={"applicant": "ann"})
    second, third = start_processes(workflow_id="journey-small", contexts=[{}, {"applicant": "bob"}], user=clerk)
    for turn in range(8):
        for person in (clerk, checker):
            inbox = api(person).get("/api/tasks/inbox")
            answers.append(inbox.json())
            for task in inbox.json():
                if task["process_instance_id"] != first.pk:
                    continue
                if task["assigned_to"] is None:  # a queued task: claimed first
                    answers.append(api(person).post(f"/api/tasks/{task['id']}/start").json())
                done = api(person).post(f"/api/tasks/{task['id']}/complete", {"result": {"amount": 5, "score": 700}},
                                        format="json", HTTP_IDEMPOTENCY_KEY=f"k-{person.pk}-{turn}-{task['id']}")
                answers.append(done.json())
    escalated = TaskInstance.objects.get(process=second, atom_id="atom-apply")
    answers.append(api(clerk).post(f"/api/tasks/{escalated.pk}/escalate").json())
    abort_process(third.pk, user=boss, reason="withdrawn")
    return [normalised(answer) for answer in answers]


def normalised(value):
    """Ids and moments differ from one run to the next; what they say must not."""
    text = IDS.sub(r'"\1": 0', repr(value).replace("'", '"'))
    return re.sub(r"\d{4}-\d\d-\d\dT[\d:.]+(Z|[+-]\d\d:\d\d)?", "<moment>", text)


def rows_since(process_marker: int) -> dict:
    processes = list(ProcessInstance.objects.filter(pk__gt=process_marker).order_by("pk"))
    index = {p.pk: i for i, p in enumerate(processes)}
    tasks = list(TaskInstance.objects.filter(process__in=processes).select_related("assigned_to").order_by("pk"))
    task_index = {t.pk: i for i, t in enumerate(tasks)}
    events = ProcessEvent.objects.filter(process__in=processes).order_by("pk")
    return {
        "processes": [(p.workflow_id, p.status, p.atom_states, p.fired_edges, p.lock_version, p.event_seq,
                       sensitive.reveal(sensitive.paths_of(p), p.context)) for p in processes],
        "tasks": [(index[t.process_id], t.atom_id, t.status, t.assigned_to.username if t.assigned_to else None,
                   t.version, t.priority, t.escalated, t.attempts,
                   sensitive.reveal(sensitive.paths_of(t.process), t.result)) for t in tasks],
        "events": [(index[e.process_id], e.type, e.atom_id, task_index.get(e.task_id), e.username, e.seq,
                    normalised(e.payload)) for e in events],
    }


@pytest.fixture
def people(small_version):
    boss = UserFactory(username="boss", is_superuser=True, is_staff=True)
    clerk = UserFactory(username="clara", roles=["role-clerk"], permissions=[START_ANY_JOURNEY])
    clerk.workflow_profile.manager = boss
    clerk.workflow_profile.save()
    return {"clerk": clerk, "checker": UserFactory(username="chet", roles=["role-checker"]), "boss": boss}


def test_every_trick_leaves_the_rows_and_answers_of_the_plain_way(people):
    # given the same work done with every trick on, then with every trick set aside
    marker = ProcessInstance.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    with_tricks = work(people)
    middle = ProcessInstance.objects.order_by("-pk").values_list("pk", flat=True).first()
    with tricks.plain():
        plain = work(people)

    # when the rows each left are read
    tricked_rows, plain_rows = rows_since(marker), rows_since(middle)
    tricked_rows = {key: rows[: len(plain_rows[key])] for key, rows in tricked_rows.items()}

    # then they are the same, and so were the answers
    assert tricked_rows == plain_rows
    assert with_tricks == plain
    assert [row[1] for row in plain_rows["processes"]] == ["completed", "running", "aborted"]


def test_plain_names_only_known_tricks():
    # given / when a name no trick has / then it is refused, as GNDP_PLAIN's would be
    with pytest.raises(ValueError, match="unknown tricks: nonsense"):
        with tricks.plain("nonsense"):
            pass
