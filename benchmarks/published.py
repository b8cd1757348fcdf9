"""Shared by the scripts that regenerate the published tables: run nasloop commands, keep their JSON.

Each table script lists the exact ``nasloop ...`` commands behind one table of docs/results.md. This
module runs them one after the other (``--json`` added; one torch thread, so times compare across
hosts of the same speed), and writes one JSON file: the machine, and per command its line, wall time
and the JSON it printed. ``--quick`` swaps in small sizes to check that a table's commands still run.
"""

from __future__ import annotations

import json
import os
import platform
import shlex
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def machine() -> dict[str, object]:
    """What the figures were measured on (the docs quote it next to each table)."""
    import torch

    return {"python": platform.python_version(), "torch": torch.__version__, "cpus": os.cpu_count(),
            "processor": platform.processor() or platform.machine(), "cuda": torch.cuda.is_available(),
            "load_average": os.getloadavg(), "date": time.strftime("%Y-%m-%d %H:%M:%S")}


def run_json(args: Sequence[str]) -> dict[str, object]:
    """Run ``nasloop ARGS --json`` from the repository root; its line, wall time and printed JSON."""
    line = "nasloop " + shlex.join(args)
    log(line)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "nasloop.cli", *args, "--json"], cwd=ROOT, env=env,
                          capture_output=True, text=True)
    wall_s = time.perf_counter() - start
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["(no message)"])[-1]
        raise SystemExit(f"{line} failed (exit {proc.returncode}): {last}")
    return {"command": line, "wall_s": round(wall_s, 2), "result": json.loads(proc.stdout)}


def run_table(name: str, commands: Sequence[Sequence[str]], out: str | Path | None, *, quick: bool) -> Path:
    """Run every command of table ``name`` and write the JSON (default: benchmarks/results/NAME.json)."""
    path = Path(out) if out else RESULTS / f"{name}{'-quick' if quick else ''}.json"
    runs = [run_json(args) for args in commands]
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"table": name, "quick": quick, "machine": machine(), "runs": runs}
    path.write_text(json.dumps(payload, indent=2) + "\n")
    log(f"wrote {path}")
    return path


def main(description: str, tables: dict, *, prefix: str) -> None:
    """The command line every table script shares: ``SCRIPT TABLE [--quick] [--out FILE] [--list]``;
    results go to benchmarks/results/PREFIX-TABLE.json."""
    import argparse

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("table", choices=sorted(tables))
    parser.add_argument("--quick", action="store_true", help="small sizes: check that the commands run")
    parser.add_argument("--out", default=None, help=f"JSON file [default: benchmarks/results/{prefix}-TABLE.json]")
    parser.add_argument("--list", action="store_true", help="print the commands, run nothing")
    args = parser.parse_args()
    commands = tables[args.table](args.quick)
    if args.list:
        for command in commands:
            print("nasloop " + shlex.join(command))
        return
    run_table(f"{prefix}-{args.table}", commands, args.out, quick=args.quick)
