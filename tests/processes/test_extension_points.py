"""The engine's extension points, each extended from this module alone (docs "extending.md"):
a routing strategy, a rule operator, an event type and a system handler, registered by
fixtures that remove them again, and used end to end by one journey."""

from __future__ import annotations

import pytest
import yaml
from django.db import models
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from processes import event_types, handlers, services
from processes.engine import analysis, operators, rules
from processes.models import ProcessEvent
from processes.validation import validate_definition
from processes.versions import publish_journey
from tasks import services as task_services
from tasks import strategies
from tasks.models import TaskInstance
from tests.factories import UserFactory

JOURNEY = """
format: gndp-journey/1
journey: {id: journey-ext, name: Extension points}
roles:
  - {id: role-ext, name: Reviewers, assignment: alphabetical}
phases: []
atoms:
  - id: atom-review
    name: Review
    performed_by: role-ext
    sla: {target: PT4H}
    form: [{name: email, type: string, required: true}]
  - {id: atom-flag, name: Flag, kind: system, handler: flag_review, params: {reason: bank}}
  - {id: atom-second, name: Second look, performed_by: role-ext, sla: {target: PT4H}}
edges:
  - {type: ENABLES, from: atom-review, to: atom-flag, condition: {field: email, operator: endswith, value: "@bank.example"}}
  - {type: ENABLES, from: atom-review, to: atom-second, default: true}
"""


class Alphabetical(strategies.Strategy):
    """The member whose username sorts first."""

    name = "alphabetical"

    def statement_order(self) -> tuple[str, ...]:
        return ("u.username",)

    def query_order(self) -> tuple[str, ...]:
        return ("username",)

    def memory_rank(self, open_tasks, user) -> tuple[str]:
        return (user.username,)


ENDSWITH = operators.Operator(
    "endswith",
    holds=lambda actual, value: isinstance(actual, str) and actual.endswith(value),
    check=lambda value: None if isinstance(value, str) else "'endswith' needs a string",
    kinds=lambda value: {"string"},
    steps_at_constants=True,  # never holds for a number
)


class ReviewEventType(models.TextChoices):
    FLAGGED = "review.flagged"


def client_for(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
    return client


def flag_review(context, params):
    return {"flagged": params["reason"]}


@pytest.fixture
def extended():
    """The four extensions registered, and removed again afterwards."""
    strategies.register(Alphabetical)
    operators.register(ENDSWITH)
    event_types.register(ReviewEventType)
    handlers.register("flag_review")(flag_review)
    yield
    strategies.unregister(Alphabetical.name)
    operators.unregister(ENDSWITH.name)
    event_types.unregister(ReviewEventType)
    handlers.unregister("flag_review")


@pytest.fixture
def reviewers(db):
    """zoe joins first (the lower id, so every built-in strategy's tie-break picks her)."""
    return UserFactory(username="zoe", roles=["role-ext"]), UserFactory(username="adam", roles=["role-ext"])


@pytest.mark.django_db(transaction=True)
def test_a_journey_routes_and_branches_through_the_extensions(extended, reviewers):
    # given
    zoe, adam = reviewers
    publish_journey(yaml.safe_load(JOURNEY))
    # when
    process = services.start_process(workflow_id="journey-ext")
    review = TaskInstance.objects.get(process=process, atom_id="atom-review")
    task_services.complete_task(review.pk, user=adam, result={"email": "ann@bank.example"})
    # then: the new strategy chose adam, the new operator fired the edge to the new handler
    process.refresh_from_db()
    assert review.assigned_to == adam
    assert process.status == "completed"
    assert process.atom_states == {"atom-review": "completed", "atom-flag": "completed", "atom-second": "skipped"}
    assert process.context == {"email": "ann@bank.example", "flagged": "bank"}


@pytest.mark.django_db(transaction=True)
def test_a_bulk_start_ranks_people_by_the_new_strategy_in_memory(extended, reviewers):
    # given
    zoe, adam = reviewers
    publish_journey(yaml.safe_load(JOURNEY))
    # when
    started = services.start_processes(workflow_id="journey-ext", contexts=[{}, {}, {}])
    # then: the username outranks the open tasks the batch gave adam
    tasks = TaskInstance.objects.filter(process__in=started, atom_id="atom-review")
    assert [task.assigned_to for task in tasks] == [adam, adam, adam]


def test_a_rule_with_the_new_operator_evaluates_and_passes_analysis(extended):
    # given
    condition = {"field": "email", "operator": "endswith", "value": "@bank.example"}
    # when
    verdict = analysis.solve(condition)
    report = validate_definition(yaml.safe_load(JOURNEY))
    # then
    assert rules.evaluate(condition, {"email": "ann@bank.example"}) is True
    assert rules.evaluate(condition, {"email": "ann@home.example"}) is False
    assert rules.evaluate(condition, {"email": 3}) is False
    assert rules.validate_condition({**condition, "value": 3}, "c") == ["c.value: 'endswith' needs a string"]
    assert verdict.status == analysis.SAT and verdict.witness["email"].endswith("@bank.example")
    assert report == {"valid": True, "errors": [], "warnings": []}


def test_the_journey_is_refused_once_its_extensions_are_gone(extended):
    # given
    data = yaml.safe_load(JOURNEY)
    # when
    strategies.unregister(Alphabetical.name)
    operators.unregister(ENDSWITH.name)
    handlers.unregister("flag_review")
    report = validate_definition(data)
    # then
    assert report["valid"] is False
    assert report["errors"] == [
        "roles[0].assignment: must be one of least_busy, round_robin, queue, got 'alphabetical'",
        "atoms[1].handler: unknown handler 'flag_review'",
        "edges[0].condition.operator: unknown operator 'endswith'",
    ]


def test_the_analysis_refuses_an_operator_it_does_not_know():
    # given
    condition = {"any": [{"field": "x", "operator": "eq", "value": 1},
                         {"field": "x", "operator": "matches", "value": "a+"}]}
    # when / then
    with pytest.raises(operators.UnknownOperator, match="no rule operator named 'matches'"):
        analysis.solve(condition)


@pytest.mark.django_db
def test_an_event_of_the_new_type_is_recorded_and_served(extended, reviewers, django_capture_on_commit_callbacks):
    # given
    zoe, adam = reviewers
    publish_journey(yaml.safe_load(JOURNEY))
    process = services.start_process(workflow_id="journey-ext")
    # when
    with django_capture_on_commit_callbacks(execute=True):
        ProcessEvent.objects.create(process=process, type=ReviewEventType.FLAGGED, payload={"by": "audit"})
    history = client_for(adam).get(f"/api/processes/{process.pk}/history").json()
    # then
    assert ("review.flagged", "Flagged") in ProcessEvent._meta.get_field("type").choices
    assert [(event["type"], event["payload"]) for event in history][-1] == ("review.flagged", {"by": "audit"})


def test_a_type_that_does_not_fit_the_column_is_refused():
    class TooLong(models.TextChoices):
        NAMED = "review.flagged_by_the_second_reviewer"

    with pytest.raises(ValueError, match="at most 24 characters"):
        event_types.register(TooLong)
    assert "review.flagged_by_the_second_reviewer" not in event_types.values()
