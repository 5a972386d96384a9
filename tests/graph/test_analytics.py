"""Graph analytics: where processes wait now, and which step pairs they travel. The Cypher
answers (over the runtime mirror, on FalkorDB's Bolt endpoint) and the SQL answers are
computed on the same processes and compared; then the API that serves them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.urls import include, path
from django.utils import timezone

from processes import graph, services
from processes.graph import analytics, mirror
from processes.graph.neo4j_store import GraphStoreUnavailable, Neo4jGraphStore
from processes.models import EventType, ProcessEvent, ProcessInstance
from processes.versions import publish_journey
from tasks import services as task_services
from tasks.access import visible_processes
from tasks.models import Profile, TaskInstance
from tests.factories import UserFactory

EVERYTHING = dict(since=timezone.now() - timedelta(days=1), until=timezone.now() + timedelta(days=1))

# The scenario's expected answers (journey-small throughout).
HOTSPOTS = [("atom-b", 2), ("atom-a", 1), ("atom-apply", 1), ("atom-manual", 1)]
PATHS = [
    ("atom-apply", "atom-score", 5), ("atom-score", "atom-open", 4),
    ("atom-a", "atom-join", 1), ("atom-b", "atom-a", 1), ("atom-join", "atom-done", 1),
    ("atom-open", "atom-a", 1), ("atom-open", "atom-b", 1),
]


@dataclass
class Scenario:
    checker: object
    finished: ProcessInstance


@pytest.fixture
def scenario(db, small_definition, clerk, checker, django_capture_on_commit_callbacks) -> Scenario:
    """Processes of journey-small in every state the analytics tell apart (system steps run
    as they would after commit)."""
    publish_journey(small_definition)

    def step(service, *args, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return service(*args, **kwargs)

    def start(user=clerk):
        return step(services.start_process, workflow_id="journey-small", user=user)

    def complete(process, atom_id, user, **result):
        task = TaskInstance.objects.get(process=process, atom_id=atom_id, status__in=["pending", "in_progress"])
        step(task_services.complete_task, task.pk, user=user, result=result)

    def to_the_split():
        process = start()
        complete(process, "atom-apply", clerk, amount=1000, score=700)  # score and open run: a and b open
        return process

    to_the_split()  # waits at a and b
    complete(to_the_split(), "atom-a", clerk)  # waits at b
    finished = to_the_split()
    task = TaskInstance.objects.get(process=finished, atom_id="atom-b", status="pending")
    step(task_services.start_task, task.pk, user=checker)
    for atom_id, user in (("atom-b", checker), ("atom-a", clerk), ("atom-join", clerk)):
        complete(finished, atom_id, user)
    start(user=checker)  # waits at apply
    complete(start(), "atom-apply", clerk, amount=10, score=500)  # waits at manual
    suspended = to_the_split()
    step(services.suspend_process, suspended.pk, user=clerk)  # waits nowhere: not running
    return Scenario(checker=checker, finished=finished)


@pytest.fixture
def mirrored(scenario, neo4j_settings, small_definition) -> Scenario:
    """The scenario, with journey-small stored in Neo4j and the processes mirrored there."""
    neo4j_settings.GNDP_MIRROR_GAP_GRACE = 0
    store = graph.get_store()
    publish_journey(small_definition)  # into Neo4j now; the same version
    mirror.mirror_events(store)
    assert mirror.reconcile(store, repair=False).differences == 0
    return scenario


def hotspots(analysis) -> list[tuple]:
    return [(row["atom_id"], row["processes"]) for row in analysis.rows]


def paths(analysis) -> list[tuple]:
    return [(row["source"], row["target"], row["travelled"]) for row in analysis.rows]


def both(function, *args, **kwargs):
    """The same question in Cypher and in SQL: the answers, once they are seen to agree."""
    cypher = function(*args, using="cypher", **kwargs)
    sql = function(*args, using="sql", **kwargs)
    assert (cypher.computed_in, sql.computed_in) == ("cypher", "sql")
    assert cypher.rows == sql.rows
    return sql


def completion_time(process, atom_id):
    return ProcessEvent.objects.get(process=process, atom_id=atom_id, type=EventType.TASK_COMPLETED).timestamp


# --- the same answers in Cypher and in SQL -----------------------------------------------------------

def test_waiting_hotspots_agree(mirrored):
    everything = both(analytics.waiting_hotspots, 20)
    cut = both(analytics.waiting_hotspots, 2)

    assert hotspots(everything) == HOTSPOTS
    assert everything.rows[0] == {"journey_id": "journey-small", "atom_id": "atom-b", "atom_name": "Branch B",
                                  "processes": 2}
    assert hotspots(cut) == HOTSPOTS[:2]  # ties broken by id, the same way on both sides


def test_travelled_paths_agree(mirrored):
    everything = both(analytics.travelled_paths, limit=20, **EVERYTHING)
    cut = both(analytics.travelled_paths, limit=4, **EVERYTHING)

    assert paths(everything) == PATHS
    assert everything.rows[0] == {"journey_id": "journey-small", "source": "atom-apply", "target": "atom-score",
                                  "source_name": "Apply", "target_name": "Score", "travelled": 5}
    assert paths(cut) == PATHS[:4]


def test_a_window_counts_the_pairs_whose_second_step_completes_in_it(mirrored):
    # [completion of b, completion of join): b is in, join is out
    finished = mirrored.finished
    window = dict(since=completion_time(finished, "atom-b"), until=completion_time(finished, "atom-join"))

    answer = both(analytics.travelled_paths, limit=20, **window)

    assert paths(answer) == [("atom-b", "atom-a", 1), ("atom-open", "atom-b", 1)]


def test_only_the_processes_a_caller_may_see_count(mirrored, neo4j_settings):
    # given: ids sent to Neo4j one per batch, so that the batches' counts are added up
    neo4j_settings.NEO4J_BATCH_ROWS = 1
    graph.get_store.cache_clear()
    seen = visible_processes(mirrored.checker)  # the process it started, and the one it worked on
    everything_but_the_suspended = ProcessInstance.objects.exclude(status="suspended")

    # when
    its_hotspots = both(analytics.waiting_hotspots, 20, processes=seen)
    its_paths = both(analytics.travelled_paths, limit=20, processes=seen, **EVERYTHING)
    most_paths = both(analytics.travelled_paths, limit=3, processes=everything_but_the_suspended, **EVERYTHING)

    # then
    assert graph.get_store().batch_rows == 1
    assert hotspots(its_hotspots) == [("atom-apply", 1)]
    assert paths(its_paths) == [
        ("atom-a", "atom-join", 1), ("atom-apply", "atom-score", 1), ("atom-b", "atom-a", 1),
        ("atom-join", "atom-done", 1), ("atom-open", "atom-b", 1), ("atom-score", "atom-open", 1),
    ]
    assert paths(most_paths) == [("atom-apply", "atom-score", 4), ("atom-score", "atom-open", 3),
                                 ("atom-a", "atom-join", 1)]
    assert both(analytics.waiting_hotspots, 20, processes=ProcessInstance.objects.none()).rows == []


def test_sql_answers_when_neo4j_is_unreachable(mirrored, monkeypatch):
    def unreachable(self, work, *args):
        raise GraphStoreUnavailable("Neo4j at bolt://test is unreachable")

    monkeypatch.setattr(Neo4jGraphStore, "read", unreachable)

    answer = analytics.waiting_hotspots(20)

    assert (answer.computed_in, hotspots(answer)) == ("sql", HOTSPOTS)
    with pytest.raises(GraphStoreUnavailable):
        analytics.waiting_hotspots(20, using="cypher")


def test_without_neo4j_sql_answers(scenario):
    assert analytics.waiting_hotspots(20).computed_in == "sql"
    assert paths(analytics.travelled_paths(limit=20, **EVERYTHING)) == PATHS
    with pytest.raises(ValueError, match="set NEO4J_URI"):
        analytics.waiting_hotspots(20, using="cypher")


# --- the API ---------------------------------------------------------------------------------------

HOTSPOTS_URL = "/api/monitoring/graph-hotspots"
PATHS_URL = "/api/monitoring/travelled-paths"


def administrator():
    """Staff who may see every process (the permission, not the staff flag, counts)."""
    admin = UserFactory(username="ops", is_staff=True)
    admin.user_permissions.set(Permission.objects.filter(codename="view_all_processes"))
    return admin


def test_administrators_count_every_process_managers_their_team_and_others_are_refused(scenario, client):
    lead = UserFactory(username="lead")
    Profile.objects.filter(user=scenario.checker).update(manager=lead)
    client.force_login(administrator())
    admin_hotspots = client.get(HOTSPOTS_URL).json()
    admin_paths = client.get(PATHS_URL, {"limit": 2}).json()
    client.force_login(lead)
    lead_hotspots = client.get(HOTSPOTS_URL).json()
    refused = {}
    for name, user in (("staff", UserFactory(username="staff", is_staff=True)), ("checker", scenario.checker)):
        client.force_login(user)
        refused[name] = (client.get(HOTSPOTS_URL).status_code, client.get(PATHS_URL).status_code)

    assert admin_hotspots["computed_in"] == "sql"
    assert [(row["atom_id"], row["processes"]) for row in admin_hotspots["atoms"]] == HOTSPOTS
    assert [(row["source"], row["target"], row["travelled"]) for row in admin_paths["paths"]] == PATHS[:2]
    assert admin_paths["paths"][0]["source_name"] == "Apply"
    # the lead's team is the checker: the process the checker started waits at atom-apply
    assert [(row["atom_id"], row["processes"]) for row in lead_hotspots["atoms"]] == [("atom-apply", 1)]
    assert refused == {"staff": (403, 403), "checker": (403, 403)}


def test_the_window_is_the_last_7_days_unless_given(db, client):
    client.force_login(administrator())
    until = timezone.now().replace(microsecond=0)

    default = client.get(PATHS_URL).json()
    given = client.get(PATHS_URL, {"until": until.isoformat()}).json()

    assert default["paths"] == []
    assert given["since"] == (until - timedelta(days=7)).isoformat().replace("+00:00", "Z")


@pytest.mark.parametrize("query", [{"since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"},
                                   {"since": "2020-01-01T00:00:00Z", "until": "2026-01-01T00:00:00Z"},
                                   {"limit": "0"}, {"until": "yesterday"}])
def test_a_bad_query_is_400(db, client, query):
    client.force_login(administrator())

    response = client.get(PATHS_URL, query)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"


def test_anonymous_callers_are_401(db, client):
    assert client.get(HOTSPOTS_URL).status_code == 401
    assert client.get(PATHS_URL).status_code == 401


def test_the_openapi_schema_of_the_analytics_is_valid_without_warnings():
    from drf_spectacular.drainage import GENERATOR_STATS
    from drf_spectacular.generators import SchemaGenerator
    from drf_spectacular.validation import validate_schema

    GENERATOR_STATS.reset()
    generator = SchemaGenerator(patterns=[path("api/monitoring/", include("processes.graph_urls"))])

    schema = generator.get_schema(request=None, public=True)

    validate_schema(schema)
    assert not GENERATOR_STATS, "drf-spectacular warned (spectacular --fail-on-warn would fail)"
    assert set(schema["paths"]) == {"/api/monitoring/graph-hotspots", "/api/monitoring/travelled-paths"}
