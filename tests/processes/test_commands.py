"""The management commands: one line per problem, non-zero exits, nothing half-stored."""

from __future__ import annotations

import json

import pytest
import yaml
from django.core.management import call_command

from processes.models import GraphNode, WorkflowVersion
from tests.fixtures import DEMO_FILE, SMALL_JOURNEY


def run(*args) -> tuple[int, str, str]:
    import io

    out, err = io.StringIO(), io.StringIO()
    try:
        call_command(*args, stdout=out, stderr=err)
        code = 0
    except SystemExit as exc:
        code = exc.code
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def small_file(tmp_path):
    path = tmp_path / "small.yaml"
    path.write_text(SMALL_JOURNEY)
    return path


def test_load_prints_id_version_hash_and_is_idempotent(db, small_file):
    first = run("load_journey", str(small_file))
    again = run("load_journey", str(small_file))

    assert first[0] == 0 and first[1].split()[:3] == ["journey-small", "version", "1"]
    assert again[1] == first[1]
    assert WorkflowVersion.objects.count() == 1


def test_a_bad_file_exits_1_with_one_line_per_problem_and_stores_nothing(db, tmp_path, small_file):
    data = yaml.safe_load(SMALL_JOURNEY)
    data["edges"][3]["to"] = "x"
    data["atoms"][2]["colour"] = "red"
    del data["atoms"][0]["performed_by"]
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(data))

    code, out, err = run("load_journey", str(small_file), str(bad))

    lines = err.strip().splitlines()
    assert code == 1 and out == ""
    assert f"{bad}: edges[3].to: unknown atom 'x'" in lines
    assert f"{bad}: atoms[2].colour: unknown key" in lines
    assert any("atoms[0].performed_by" in line for line in lines)
    assert not GraphNode.objects.exists() and not WorkflowVersion.objects.exists()


def test_unreadable_and_non_yaml_files_are_one_line_each(db, tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text("journey: [unclosed")

    code, _, err = run("load_journey", str(tmp_path / "missing.yaml"), str(broken))

    assert code == 1 and len(err.strip().splitlines()) == 2


@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_export_loads_back_to_the_same_hash(db, tmp_path, fmt):
    _, loaded, _ = run("load_journey", str(DEMO_FILE))
    _, exported, _ = run("export_journey", "journey-purchase-fha", "--format", fmt)
    path = tmp_path / f"exported.{fmt}"
    path.write_text(exported)
    WorkflowVersion.objects.all().delete()

    _, reloaded, _ = run("load_journey", str(path))

    assert reloaded.split()[-1] == loaded.split()[-1]


def test_validate_and_simulate(db):
    run("load_journey", str(DEMO_FILE))
    results = {"atom-lo-record-credit-results": {"credit_score": 580, "monthly_debts": 900},
               "atom-uw-manual-credit-review": {"decision": "decline"}}
    filled = _fill_all_required(results)

    valid = run("validate_journey", "journey-purchase-fha")
    simulated = run("simulate", "journey-purchase-fha", "--results", json.dumps(filled))
    bad_json = run("simulate", "journey-purchase-fha", "--context", "{nope")
    unknown = run("simulate", "journey-nope")

    assert valid[0] == 0 and "valid" in valid[1]
    outcome = json.loads(simulated[1])
    assert simulated[0] == 0 and outcome["success"]
    assert "atom-uw-manual-credit-review" in outcome["visited_atoms"]
    assert "atom-proc-open-file" in outcome["skipped_atoms"]
    assert bad_json[0] == 1 and bad_json[2].startswith("--context: invalid JSON")
    assert unknown[0] == 1 and "journey-nope" in unknown[2]


def _fill_all_required(overrides):
    from processes.journey import normalize, parse_text
    from tests.driver import SAMPLE

    definition = normalize(parse_text(DEMO_FILE.read_text()))
    results = {}
    for atom in definition["atoms"]:
        fields = {f["name"]: (f["choices"][0] if f["type"] == "choice" else SAMPLE[f["type"]])
                  for f in atom.get("form", []) if f.get("required")}
        results[atom["id"]] = {**fields, **overrides.get(atom["id"], {})}
    return results


def test_create_workflow_user_prints_the_token_last_and_updates(db):
    run("create_workflow_user", "boss", "--roles", "")
    code, out, _ = run("create_workflow_user", "ann", "--roles", "role-a,role-b", "--manager", "boss",
                       "--password", "pw")
    again = run("create_workflow_user", "ann", "--roles", "role-c")
    missing_manager = run("create_workflow_user", "zed", "--roles", "role-a", "--manager", "nobody")

    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    ann = get_user_model().objects.get(username="ann")
    assert code == 0 and out.strip().splitlines()[-1] == Token.objects.get(user=ann).key
    assert again[1].strip().splitlines()[-1] == out.strip().splitlines()[-1]
    assert list(ann.groups.values_list("name", flat=True)) == ["role-c"]
    assert ann.workflow_profile.manager.username == "boss" and ann.check_password("pw")
    assert missing_manager[0] == 1 and "nobody" in missing_manager[2]


def test_seed_demo_is_idempotent(db):
    run("seed_demo")
    run("seed_demo")

    from django.contrib.auth import get_user_model

    assert WorkflowVersion.objects.count() == 1
    assert get_user_model().objects.filter(username__in=["olivia", "admin", "manager"]).count() == 3
