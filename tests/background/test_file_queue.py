"""The embedded default's broker (`gndp.filequeue`) under several OS processes writing and
reading one queue folder at once: nothing lost, nothing doubled, nothing corrupt, no
exception in any of them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow

WRITERS, READERS, MESSAGES, SIZE = 4, 4, 250, 16384
# GNDP_STRESS_TRANSPORT=filesystem runs the same against kombu's own file-system transport,
# the embedded default's broker before: readers die on half-written messages.
TRANSPORT = os.environ.get("GNDP_STRESS_TRANSPORT", "gndpfiles")


def run_stress(tmp_path, transport: str) -> dict:
    folder = tmp_path / "run"
    for sub in ("queue", "control", "out"):
        (folder / sub).mkdir(parents=True)

    def start(role: str, index: int) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-m", "tests.background.queue_stress", role, transport, str(folder), str(index),
             str(WRITERS), str(MESSAGES), str(SIZE)], cwd=ROOT, stderr=subprocess.PIPE)

    readers = [start("reader", index) for index in range(READERS)]
    writers = [start("writer", index) for index in range(WRITERS)]
    writer_codes = [proc.wait(timeout=300) for proc in writers]
    (folder / "out" / "writers-done").touch()
    reader_codes = [proc.wait(timeout=300) for proc in readers]
    received = [json.loads(line) for path in sorted((folder / "out").glob("reader-*.jsonl"))
                for line in path.read_text().splitlines()]
    counts = Counter((item["writer"], item["seq"]) for item in received)
    sent = {(writer, seq) for writer in range(WRITERS) for seq in range(MESSAGES)}
    return {
        "exit_codes": writer_codes + reader_codes,
        "errors": {path.name: path.read_text()[-2000:] for path in (folder / "out").glob("error-*.txt")},
        "lost": len(sent - set(counts)),
        "doubled": sum(1 for n in counts.values() if n > 1),
        "corrupt": sum(1 for item in received if not item["intact"]),
        "unexpected": len(set(counts) - sent),
        "set_aside": len(list((folder / "queue" / "corrupt").glob("*"))) if (folder / "queue" / "corrupt").exists()
        else 0,
        "left_in_queue": len([name for name in (folder / "queue").iterdir() if name.suffix == ".msg"]),
    }


def test_concurrent_writers_and_readers_lose_double_and_corrupt_nothing(tmp_path):
    # given four writer and four reader processes on one folder, 1,000 messages of 16 KiB,
    # with the exchange table rewritten every ten messages of each writer
    started = time.monotonic()
    # when they all run at once
    result = run_stress(tmp_path, TRANSPORT)
    # then every message arrived exactly once and whole, and no process raised
    assert result["errors"] == {}
    assert result["exit_codes"] == [0] * (WRITERS + READERS)
    assert result == {**result, "lost": 0, "doubled": 0, "corrupt": 0, "unexpected": 0, "set_aside": 0,
                      "left_in_queue": 0}
    assert time.monotonic() - started < 300
