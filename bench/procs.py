"""What /proc says of a process: its CPU time, its peak memory, its children (Linux)."""

from __future__ import annotations

import os
from pathlib import Path


def _stat(pid: int) -> tuple[str, list[str]] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.index("(") + 1:text.rindex(")")], text.rsplit(")", 1)[1].split()


def cpu_seconds(pid: int, children: bool = False) -> float:
    """CPU seconds of a process (with those of its exited, reaped children)."""
    stat = _stat(pid)
    if stat is None:
        return 0.0
    fields = stat[1]
    ticks = int(fields[11]) + int(fields[12]) + (int(fields[13]) + int(fields[14]) if children else 0)
    return ticks / os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    return [int(entry) for entry in os.listdir("/proc")
            if entry.isdigit() and (stat := _stat(int(entry))) is not None and int(stat[1][1]) == pid]


def named(prefix: str) -> list[int]:
    """The processes whose command name starts with `prefix`."""
    return [int(entry) for entry in os.listdir("/proc")
            if entry.isdigit() and (stat := _stat(int(entry))) is not None and stat[0].startswith(prefix)]


def peak_rss_mb(pid: int) -> float:
    """A process's peak resident memory (VmHWM), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0
