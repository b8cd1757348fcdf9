"""Linux process helpers for tests that check no worker outlives a killed or interrupted study."""

from __future__ import annotations

from pathlib import Path


def child_pids(pid: int) -> set[int]:
    """The direct children of ``pid`` (from ``/proc/PID/task/*/children``)."""
    out: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        out |= {int(x) for x in (task / "children").read_text().split()}
    return out


def process_alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie or dead process does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")
