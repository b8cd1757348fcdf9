"""Time reading NAS-Bench-201 CSV tables with very wide headers (reading must stay linear in the size).

Writes, for each width, a table ``index,arch,m0..m{N-1}`` with two rows and times
``search_spaces.nasbench201.data.load_csv`` (the parser; ``load_benchmark`` would go on to refuse a
table that lacks cells).

Usage (from the repository root)::

    PYTHONPATH=. python benchmarks/wide_header.py 10000 20000 40000
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from nasloop.errors import NasloopError
from search_spaces.nasbench201.data import load_csv

ARCHS = (
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|",
    "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|",
)


def write_table(path: Path, n_columns: int) -> Path:
    names = [f"m{i}" for i in range(n_columns)]
    rows = [",".join(["index", "arch", *names])]
    for index, arch in zip((6111, 1651), ARCHS):
        rows.append(",".join([str(index), arch, *("1.5" for _ in names)]))
    path.write_text("\n".join(rows) + "\n")
    return path


def time_load(path: Path) -> tuple[float, str]:
    start = time.perf_counter()
    try:
        bench = load_csv(path)
        outcome = f"loaded, {len(bench.metrics)} metrics"
    except NasloopError as exc:
        outcome = f"refused: {str(exc)[:60]}..."
    return time.perf_counter() - start, outcome


def main(widths: list[int]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        for n in widths:
            path = write_table(Path(folder) / f"wide_{n}.csv", n)
            seconds, outcome = time_load(path)
            print(f"{n:>7} columns  {path.stat().st_size / 1e6:6.2f} MB  {seconds:7.3f} s  ({outcome})")


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [10_000, 20_000, 40_000])
