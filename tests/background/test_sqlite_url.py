"""`DATABASE_URL=sqlite:///...` gets what the embedded default gives SQLite: IMMEDIATE
transactions, WAL and a lock timeout. Without them two completions racing on an AND-join
failed with "database is locked" in most rounds."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow

ROUNDS = 30


def test_completions_racing_on_a_join_over_a_sqlite_url_both_succeed_and_the_join_fires_once(tmp_path):
    # given a database named by a SQLite URL (a fresh file), no Redis
    path = tmp_path / "url.sqlite3"
    env = {key: value for key, value in os.environ.items() if key not in ("REDIS_URL", "GNDP_REQUIRE_SERVICES")}
    env.update(DATABASE_URL=f"sqlite:///{path}", GNDP_VAR_DIR=str(tmp_path / "var"), PYTHONPATH=str(ROOT),
               LOG_LEVEL="WARNING")
    # when two completions race on the join, round after round
    done = subprocess.run([sys.executable, "-m", "tests.background.sqlite_join_race", str(ROUNDS)], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    # then it is that file, with the embedded default's settings
    assert (result["vendor"], result["name"], result["journal_mode"]) == ("sqlite", str(path), "wal")
    assert result["options"]["transaction_mode"] == "IMMEDIATE" and result["options"]["timeout"] >= 20
    # and in every round both completions succeeded and the join fired once
    assert [r["errors"] for r in result["rounds"]] == [[]] * ROUNDS
    assert [r["joins"] for r in result["rounds"]] == [1] * ROUNDS
