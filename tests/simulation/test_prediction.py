"""Prediction: Monte Carlo over the blueprint, from SLA targets or from seeded history."""

from __future__ import annotations

import math
import random
from datetime import timedelta

import pytest
from django.utils import timezone

from processes import jobs, prediction
from processes.engine.blueprint import compile_blueprint
from processes.engine.prediction import History, ProcessState, build_model, monte_carlo, path_duration
from processes.journey import normalize
from processes.models import ProcessInstance
from processes.services import start_process
from processes.versions import publish_journey
from tasks.models import TaskInstance
from tests.factories import UserFactory

from .journeys import ROLE, enables, human, journey, score_form

HOUR = 3600.0


def chain(*targets: str, journey_target: str | None = None, journey_id: str = "journey-t"):
    ids = [f"atom-{i}" for i in range(len(targets))]
    atoms = [human(atom_id, sla={"target": target}) for atom_id, target in zip(ids, targets)]
    top = {"journey": {"sla": {"target": journey_target}}} if journey_target else {}
    return journey(atoms, [enables(a, b) for a, b in zip(ids, ids[1:])], journey_id=journey_id, **top)


def blueprint_of(raw):
    return compile_blueprint(normalize(raw))


# --- the engine's Monte Carlo ------------------------------------------------------------------


def test_without_history_a_chain_takes_the_sum_of_its_sla_targets():
    model = build_model(blueprint_of(chain("PT4H", "PT2H", "P1D", journey_target="P1D")))

    result = monte_carlo(model, 1000)

    assert result.p50 == result.p90 == 30 * HOUR
    assert result.source == "sla" and result.within_target == 0.0
    assert result.as_dict()["p50"] == "P1DT6H"


def test_without_history_each_conditional_edge_fires_with_even_odds():
    raw = journey([human("atom-a", form=score_form()), human("atom-b", sla={"target": "PT10H"}), human("atom-z")],
                  [enables("atom-a", "atom-b", condition={"field": "score", "operator": "gte", "value": 1}),
                   enables("atom-a", "atom-z", default=True)])

    result = monte_carlo(build_model(blueprint_of(raw)), 4000, seed=7)

    assert result.visit_probability["atom-b"] == pytest.approx(0.5, abs=0.03)
    assert result.visit_probability["atom-b"] + result.visit_probability["atom-z"] == pytest.approx(1.0, abs=1e-3)
    assert result.atoms["atom-a"]["branch_source"] == "prior"


def test_observed_branches_and_durations_replace_the_prior_and_the_targets():
    raw = journey([human("atom-a", form=score_form()), human("atom-b"), human("atom-z")],
                  [enables("atom-a", "atom-b", condition={"field": "score", "operator": "gte", "value": 1}),
                   enables("atom-a", "atom-z", default=True)])
    history = History(durations={"atom-a": [HOUR] * 10}, branches={"atom-a": {frozenset({"atom-z"}): 9}})

    result = monte_carlo(build_model(blueprint_of(raw), history), 500)

    assert result.visit_probability == {"atom-a": 1.0, "atom-b": 0.0, "atom-z": 1.0}
    assert result.p50 == 2 * HOUR  # a from history, z its SLA target
    assert result.source == "mixed" and result.atoms["atom-a"]["duration_source"] == "history"


def test_an_exclusive_choice_fires_one_conditional_edge_at_most():
    edges = [enables("atom-a", f"atom-{k}", condition={"field": "score", "operator": "gte", "value": v})
             for k, v in (("b", 2), ("c", 1))] + [enables("atom-a", "atom-z", default=True)]
    atoms = [human("atom-a", form=score_form(), choose="first"), human("atom-b"), human("atom-c"), human("atom-z")]

    visits = monte_carlo(build_model(blueprint_of(journey(atoms, edges))), 4000, seed=3).visit_probability

    # The first edge passes its draw half the time; the second only when the first did not.
    assert visits["atom-b"] == pytest.approx(0.5, abs=0.03)
    assert visits["atom-c"] == pytest.approx(0.25, abs=0.03)
    assert visits["atom-b"] + visits["atom-c"] + visits["atom-z"] == pytest.approx(1.0, abs=1e-3)


def test_the_fastest_racer_wins_and_the_race_ends_with_it():
    raw = journey([human("atom-offer", then="first_done"), human("atom-slow", sla={"target": "PT9H"}),
                   human("atom-fast", sla={"target": "PT2H"}), human("atom-after")],
                  [enables("atom-offer", "atom-slow"), enables("atom-offer", "atom-fast"),
                   enables("atom-slow", "atom-after"), enables("atom-fast", "atom-after")])

    result = monte_carlo(build_model(blueprint_of(raw)), 200)

    assert result.visit_probability["atom-fast"] == 1.0 and result.visit_probability["atom-slow"] == 0.0
    assert result.p50 == result.p90 == (1 + 2 + 1) * HOUR  # offer, the fast racer, then what follows


def test_a_running_process_is_predicted_from_where_it_is():
    blueprint = blueprint_of(chain("PT4H", "PT2H", "PT8H"))
    state = ProcessState(states={"atom-0": "completed", "atom-1": "active", "atom-2": "waiting"},
                         fired={"atom-0": frozenset({"atom-1"})}, active_for={"atom-1": HOUR})

    result = monte_carlo(build_model(blueprint), 10, state=state, elapsed=5 * HOUR)

    assert result.p50 == 5 * HOUR + 1 * HOUR + 8 * HOUR  # elapsed, the rest of atom-1, atom-2
    assert result.visit_probability["atom-0"] == 0.0  # done before now: no run visits it again


def test_a_merge_waits_until_its_skipped_branch_is_decided():
    raw = journey([human("atom-x", sla={"target": "PT1H"}), human("atom-y", sla={"target": "PT5H"}),
                   human("atom-z"), human("atom-m", sla={"target": "PT1H"})],
                  [enables("atom-x", "atom-m"), enables("atom-y", "atom-z", condition={"field": "go", "operator": "exists"}),
                   enables("atom-z", "atom-m")])
    states = {"atom-x": "completed", "atom-y": "completed", "atom-z": "skipped", "atom-m": "completed"}

    # atom-m becomes active when atom-z is skipped, i.e. when atom-y completes at 5h.
    assert path_duration(blueprint_of(raw), states) == timedelta(hours=6)


# --- from seeded history ----------------------------------------------------------------------------

MEAN = 2 * HOUR  # every atom's duration is exponential with this mean
SLOW_SHARE = 0.3  # the share of processes that take the slow branch (one more atom)


def erlang_cdf(t: float, k: int, rate: float) -> float:
    return 1 - sum(math.exp(-rate * t) * (rate * t) ** n / math.factorial(n) for n in range(k))


def true_median() -> float:
    """Median of 0.3 * Erlang(4) + 0.7 * Erlang(3): the process time the history follows."""
    low, high = 0.0, 100 * MEAN
    for _ in range(100):
        mid = (low + high) / 2
        cdf = SLOW_SHARE * erlang_cdf(mid, 4, 1 / MEAN) + (1 - SLOW_SHARE) * erlang_cdf(mid, 3, 1 / MEAN)
        low, high = (mid, high) if cdf < 0.5 else (low, mid)
    return (low + high) / 2


TIMED = journey(
    [human("atom-a", form=score_form()), human("atom-slow"), human("atom-slow-2"), human("atom-fast"), human("atom-end")],
    [enables("atom-a", "atom-slow", condition={"field": "score", "operator": "lt", "value": 500}),
     enables("atom-a", "atom-fast", default=True), enables("atom-slow", "atom-slow-2"),
     enables("atom-slow-2", "atom-end"), enables("atom-fast", "atom-end")],
    journey_id="journey-timed",
)


def seed_history(version, processes: int = 400, seed: int = 42) -> None:
    """Completed processes whose steps took exponential times, 30% through the slow branch."""
    rng = random.Random(seed)
    runs = []
    for _ in range(processes):
        slow = rng.random() < SLOW_SHARE
        path = ["atom-a", "atom-slow", "atom-slow-2", "atom-end"] if slow else ["atom-a", "atom-fast", "atom-end"]
        states = {atom: ("completed" if atom in path else "skipped")
                  for atom in ["atom-a", "atom-slow", "atom-slow-2", "atom-fast", "atom-end"]}
        fired = {atom: [] for atom in states}
        fired.update({a: [b] for a, b in zip(path, path[1:])})
        runs.append((path, ProcessInstance(version=version, journey_id=version.journey_id, workflow_id=version.journey_id,
                                           status="completed", atom_states=states, fired_edges=fired)))
    ProcessInstance.objects.bulk_create([process for _, process in runs])
    steps = [TaskInstance(process=process, atom_id=atom, name=atom, role=ROLE, status="completed")
             for path, process in runs for atom in path]
    TaskInstance.objects.bulk_create(steps)
    for step in steps:  # created_at is set on insert; completion follows the drawn duration
        step.completed_at = step.created_at + timedelta(seconds=rng.expovariate(1 / MEAN))
        step.version += 1  # every change of a task moves its version on (steps.changes)
    TaskInstance.objects.bulk_update(steps, ["completed_at", "version"], batch_size=500)


def test_with_seeded_history_the_predicted_p50_is_within_ten_percent_of_the_true_one(db):
    version = publish_journey(TIMED).version
    seed_history(version)

    predicted = prediction.predict_workflow("journey-timed", runs=10_000)

    assert predicted["source"] == "history"
    assert predicted["visit_probability"]["atom-slow"] == pytest.approx(SLOW_SHARE, abs=0.05)
    assert predicted["p50_seconds"] == pytest.approx(true_median(), rel=0.10)


def test_the_dry_run_duration_uses_the_observed_medians(db):
    version = publish_journey(TIMED).version
    seed_history(version, processes=60)
    from processes import simulation

    report = simulation.dry_run("journey-timed", {}, {"atom-a": {"score": 700}})

    blueprint = compile_blueprint(version.definition)
    medians = prediction.typical_durations("journey-timed", blueprint)
    expected = medians["atom-a"] + medians["atom-fast"] + medians["atom-end"]
    from processes.engine.durations import format_duration
    assert report["predicted_duration"] == format_duration(expected)


# --- running processes and the periodic job -----------------------------------------------------------


@pytest.fixture
def worker(db):
    return UserFactory(username="walt", roles=[ROLE])


def test_the_job_flags_a_process_predicted_to_miss_its_target(worker):
    publish_journey(chain("PT4H", "PT4H", journey_target="PT6H", journey_id="journey-late"))
    publish_journey(chain("PT4H", "PT4H", journey_target="P30D", journey_id="journey-easy"))
    late = start_process(workflow_id="journey-late", user=worker)
    easy = start_process(workflow_id="journey-easy", user=worker)
    now = timezone.now()

    refreshed = prediction.refresh_predictions(now=now)

    late.refresh_from_db(), easy.refresh_from_db()
    assert refreshed == 2
    assert late.at_risk is True and easy.at_risk is False
    # 8h of SLA targets from the start, less nothing: the first task was created at the start.
    assert abs((late.predicted_finish - late.started_at) - timedelta(hours=8)) < timedelta(seconds=5)
    assert late.predicted_at == now


def test_the_prediction_of_a_process_counts_the_time_already_spent(worker):
    publish_journey(chain("PT4H", "PT4H", journey_target="PT6H", journey_id="journey-late"))
    process = start_process(workflow_id="journey-late", user=worker)
    three_hours_later = process.started_at + timedelta(hours=3)

    predicted = prediction.predict_process(process, runs=50, now=three_hours_later)

    # The first task was created a moment after the process: the prediction counts from it.
    assert abs(predicted["predicted_finish"] - (process.started_at + timedelta(hours=8))) < timedelta(seconds=5)
    assert predicted["deadline"] == process.started_at + timedelta(hours=6)
    assert predicted["at_risk"] is True
    assert predicted["prediction"]["within_target"] == 0.0


def test_the_job_clears_the_flag_of_a_process_that_ended(worker):
    publish_journey(chain("PT4H", journey_target="PT1H", journey_id="journey-late"))
    process = start_process(workflow_id="journey-late", user=worker)
    ProcessInstance.objects.filter(pk=process.pk).update(at_risk=True, status="completed")

    assert jobs.refresh_process_predictions() == 0

    process.refresh_from_db()
    assert process.at_risk is False
