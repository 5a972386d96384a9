"""The runtime mirror on FalkorDB's Bolt endpoint: processes advanced through the services,
mirrored from the event log, compared and repaired."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import call_command

from processes import graph, jobs, services
from processes.graph import mirror
from processes.models import EventType, ProcessEvent
from processes.versions import publish_journey
from tasks import services as task_services
from tasks.models import TaskInstance
from tests.graph.falkordb import FalkorDB, graph_query

pytestmark = pytest.mark.django_db(transaction=True)

PROCESS_NODE = "MATCH (p:ProcessInstance {id: $id}) RETURN p.status AS status, p.journey_id AS journey_id"
PROCESS_RELATIONSHIPS = (
    "MATCH (:ProcessInstance {id: $id})-[r]->(a:Atom) "
    "RETURN type(r) AS type, a.id AS atom_id, r.timestamp AS timestamp ORDER BY atom_id, type"
)
CURSOR = "MATCH (c:MirrorCursor) RETURN c.name AS name, c.last_event_id AS last_event_id"
FORGET_CURSOR = "MATCH (c:MirrorCursor) DETACH DELETE c"


@pytest.fixture
def mirror_settings(neo4j_settings):
    # Ids of a test's events do not start at 1 (sequences survive the flush between tests):
    # waiting for the "missing" ones would only hold the cursor back.
    neo4j_settings.GNDP_MIRROR_GAP_GRACE = 0
    return neo4j_settings


@pytest.fixture
def store(mirror_settings, small_definition):
    publish_journey(small_definition)
    return graph.get_store()


def open_task(process, atom_id):
    return TaskInstance.objects.get(process=process, atom_id=atom_id, status__in=["pending", "in_progress"])


def complete(process, atom_id, user, **result):
    task_services.complete_task(open_task(process, atom_id).pk, user=user, result=result)


def run_to_the_split(clerk):
    """Apply with a good score: the two system steps run, and both branches are open."""
    process = services.start_process(workflow_id="journey-small", user=clerk)
    complete(process, "atom-apply", clerk, amount=1000, score=700)
    return process


def run_to_the_end(clerk, checker):
    process = run_to_the_split(clerk)
    task_services.start_task(open_task(process, "atom-b").pk, user=checker)
    complete(process, "atom-b", checker)
    complete(process, "atom-a", clerk)
    complete(process, "atom-join", clerk)
    return process


def completed_at(process) -> dict[str, str]:
    events = ProcessEvent.objects.filter(process=process, type=EventType.TASK_COMPLETED)
    return {event.atom_id: mirror.iso_timestamp(event.timestamp) for event in events}


def drawn(store, process) -> list[tuple]:
    rows = graph_query(store.driver, PROCESS_RELATIONSHIPS, id=process.pk)
    return [(row["type"], row["atom_id"], row["timestamp"]) for row in rows]


def test_a_process_is_drawn_as_the_database_holds_it(store, clerk):
    # given
    process = run_to_the_split(clerk)

    # when
    run = mirror.mirror_events(store)

    # then: active atoms AT_STEP, completed ones COMPLETED, waiting ones PENDING, the skipped none
    at = completed_at(process)
    assert graph_query(store.driver, PROCESS_NODE, id=process.pk) == [
        {"status": "running", "journey_id": "journey-small"}
    ]
    assert drawn(store, process) == [
        ("AT_STEP", "atom-a", None),
        ("COMPLETED", "atom-apply", at["atom-apply"]),
        ("AT_STEP", "atom-b", None),
        ("PENDING", "atom-done", None),
        ("PENDING", "atom-join", None),
        ("COMPLETED", "atom-open", at["atom-open"]),
        ("COMPLETED", "atom-score", at["atom-score"]),
    ]
    last_event = ProcessEvent.objects.latest("pk").pk
    assert (run.events, run.cursor) == (ProcessEvent.objects.count(), last_event)
    assert graph_query(store.driver, CURSOR) == [{"name": "runtime", "last_event_id": last_event}]


def test_mirroring_an_event_again_changes_nothing(store, clerk):
    # given: mirrored once
    process = run_to_the_split(clerk)
    mirror.mirror_events(store)
    before = drawn(store, process)

    # when: nothing new, then every event again from the start
    nothing_new = mirror.mirror_events(store)
    graph_query(store.driver, FORGET_CURSOR)
    again = mirror.mirror_events(store)

    # then
    assert (nothing_new.events, nothing_new.changed) == (0, 0)
    assert (again.events, again.changed) == (ProcessEvent.objects.count(), 0)
    assert drawn(store, process) == before


def test_a_fresh_hole_in_the_event_ids_holds_the_cursor_not_the_mirror(store, clerk):
    # given: as if the event just before this process's first were still uncommitted
    process = run_to_the_split(clerk)
    first, last = ProcessEvent.objects.earliest("pk").pk, ProcessEvent.objects.latest("pk").pk
    mirror.write_cursor(store, first - 2)

    # when
    held = mirror.mirror_events(store, batch_size=2, grace=timedelta(minutes=1))
    passed = mirror.mirror_events(store, grace=timedelta(0))

    # then: everything is mirrored at once; the cursor passes the hole only once it is old
    assert (held.events, held.cursor) == (ProcessEvent.objects.count(), first - 2)
    assert ("AT_STEP", "atom-a", None) in drawn(store, process)
    assert (passed.events, passed.changed, passed.cursor) == (ProcessEvent.objects.count(), 0, last)


def test_a_cursor_past_the_end_of_the_event_log_starts_over(store, clerk):
    # given: a graph whose cursor was left by another database
    process = run_to_the_split(clerk)
    mirror.write_cursor(store, ProcessEvent.objects.latest("pk").pk + 1000)

    # when
    run = mirror.mirror_events(store)

    # then
    assert (run.events, run.cursor) == (ProcessEvent.objects.count(), ProcessEvent.objects.latest("pk").pk)
    assert ("AT_STEP", "atom-a", None) in drawn(store, process)


def test_closed_processes_keep_only_what_was_completed(store, clerk, checker):
    # given
    finished = run_to_the_end(clerk, checker)
    aborted = run_to_the_split(clerk)
    services.abort_process(aborted.pk, user=clerk)

    # when
    mirror.mirror_events(store)

    # then
    at = completed_at(finished)
    assert graph_query(store.driver, PROCESS_NODE, id=finished.pk)[0]["status"] == "completed"
    assert drawn(store, finished) == sorted(
        ("COMPLETED", atom_id, at[atom_id])
        for atom_id in ("atom-a", "atom-apply", "atom-b", "atom-done", "atom-join", "atom-open", "atom-score")
    )
    assert graph_query(store.driver, PROCESS_NODE, id=aborted.pk)[0]["status"] == "aborted"
    assert {rel_type for rel_type, _, _ in drawn(store, aborted)} == {"COMPLETED"}


def test_the_mirror_follows_a_process_step_by_step(store, clerk, checker):
    process = run_to_the_split(clerk)
    mirror.mirror_events(store)

    complete(process, "atom-a", clerk)
    run = mirror.mirror_events(store)

    assert ("COMPLETED", "atom-a", completed_at(process)["atom-a"]) in drawn(store, process)
    assert ("AT_STEP", "atom-a", None) not in drawn(store, process)
    assert (run.processes, run.changed) == (1, 1)


DRIFT = (
    "MATCH (p:ProcessInstance {id: $id})-[r:AT_STEP]->(:Atom {id: 'atom-a'}) DELETE r",
    "MATCH (p:ProcessInstance {id: $id}), (a:Atom {journey_id: 'journey-small', id: 'atom-manual'}) "
    "CREATE (p)-[:PENDING]->(a)",
    "MATCH (p:ProcessInstance {id: $id}), (a:Atom {journey_id: 'journey-small', id: 'atom-apply'}) "
    "CREATE (p)-[:COMPLETED {timestamp: 'then'}]->(a)",
    "MATCH (p:ProcessInstance {id: $id}) SET p.status = 'suspended'",
    "CREATE (:ProcessInstance {id: 987654, status: 'running', journey_id: 'journey-small'})",
)


def test_reconcile_reports_drift_then_repairs_it(store, clerk, capsys):
    # given: a mirrored process, then the graph damaged in every way the reconciler knows
    process = run_to_the_split(clerk)
    mirror.mirror_events(store)
    expected = drawn(store, process)
    for query in DRIFT:
        graph_query(store.driver, query, id=process.pk)

    # when
    check = mirror.reconcile(store, repair=False)
    call_command("mirror_check", "--repair")
    repaired = capsys.readouterr().out

    # then: missing the AT_STEP, and the right COMPLETED once its wrong twin is deleted;
    # extra the PENDING and the wrong COMPLETED
    assert (check.processes, check.status_differences, check.orphan_nodes) == (1, 1, 1)
    assert (check.missing_relationships, check.extra_relationships) == (2, 2)
    assert "differences: 6 (repaired)" in repaired
    assert drawn(store, process) == expected
    assert graph_query(store.driver, PROCESS_NODE, id=987654) == []
    assert mirror.reconcile(store, repair=False).differences == 0


def test_mirror_check_reports_a_difference_and_exits_1(store, clerk, capsys):
    run_to_the_split(clerk)  # never mirrored

    for options in ([], ["--check"]):  # --check is the default, and may be said
        with pytest.raises(SystemExit) as exited:
            call_command("mirror_check", *options)

        out = capsys.readouterr()
        assert exited.value.code == 1
        assert "process nodes missing: 1" in out.out
        assert "differences: 8\n" in out.out  # reported, not repaired
        assert "the graph differs from the database in 8 places" in out.err
    assert mirror.reconcile(store, repair=False).differences == 8


def test_graph_mirror_command_reports_its_progress(store, clerk, capsys):
    run_to_the_split(clerk)
    last_event = ProcessEvent.objects.latest("pk").pk

    call_command("graph_mirror")

    assert capsys.readouterr().out.strip() == (
        f"mirrored {ProcessEvent.objects.count()} events of 1 processes (1 changed); cursor at event {last_event}"
    )


def test_atoms_missing_from_the_graph_are_counted_not_differences(mirror_settings, small_definition, clerk):
    # given: the journey was published before Neo4j was configured
    neo4j_uri, mirror_settings.NEO4J_URI = mirror_settings.NEO4J_URI, ""
    graph.get_store.cache_clear()
    publish_journey(small_definition)
    process = run_to_the_split(clerk)
    mirror_settings.NEO4J_URI = neo4j_uri
    graph.get_store.cache_clear()
    store = graph.get_store()

    # when
    report = mirror.reconcile(store)

    # then: the process node is there, without relationships, and nothing is left to repair
    assert (report.missing_nodes, report.unmirrorable) == (1, 7)
    assert graph_query(store.driver, PROCESS_NODE, id=process.pk)[0]["status"] == "running"
    assert mirror.reconcile(store, repair=False).differences == 0


def test_without_neo4j_the_job_is_off_and_the_commands_refuse(settings, capsys):
    settings.NEO4J_URI = ""
    graph.get_store.cache_clear()

    assert jobs.mirror_runtime() == "off"
    for command in ("graph_mirror", "mirror_check"):
        with pytest.raises(SystemExit):
            call_command(command)
        assert "set NEO4J_URI" in capsys.readouterr().err


def test_mirror_catches_up_after_the_server_was_away(mirror_settings, falkordb_server, tmp_path,
                                                     small_definition, clerk, checker, capsys):
    # given: a server of its own that keeps its graph across a restart, with a mirrored process
    server = FalkorDB(tmp_path, persistent=True)
    server.start()
    try:
        mirror_settings.NEO4J_URI = server.uri
        mirror_settings.NEO4J_MAX_RETRY_TIME = 0.5
        graph.get_store.cache_clear()
        publish_journey(small_definition)
        first = run_to_the_split(clerk)
        second = run_to_the_split(clerk)
        assert jobs.mirror_runtime().endswith(f"cursor {ProcessEvent.objects.latest('pk').pk}")

        # when: the server goes away while the processes advance, then comes back
        server.stop()
        complete(first, "atom-a", clerk)
        task_services.start_task(open_task(second, "atom-b").pk, user=checker)
        complete(second, "atom-b", checker)
        assert jobs.mirror_runtime() == "unavailable"
        server.start()
        caught_up = jobs.mirror_runtime()

        # then
        assert caught_up.endswith(f"cursor {ProcessEvent.objects.latest('pk').pk}")
        store = graph.get_store()
        assert ("COMPLETED", "atom-a", completed_at(first)["atom-a"]) in drawn(store, first)
        assert ("COMPLETED", "atom-b", completed_at(second)["atom-b"]) in drawn(store, second)
        call_command("mirror_check")
        report = capsys.readouterr().out
        assert "differences: 0" in report
        assert "left out" not in report
    finally:
        server.stop()
