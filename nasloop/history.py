"""Append-only JSONL journals: ``history.jsonl`` (one line per true query) and ``rounds.jsonl``.

Each line is written whole and flushed at once, so a run killed at any point leaves at most one
partial last line; :func:`read_jsonl` drops it and :class:`JsonlWriter` cuts it off before appending.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from nasloop.errors import DataError
from nasloop.types import Record


def _valid_lines(path: Path) -> tuple[list[dict[str, Any]], int]:
    """Parsed complete lines and the byte length they span (a partial last line is left out)."""
    if not path.exists():
        return [], 0
    blob = path.read_bytes()
    rows: list[dict[str, Any]] = []
    end = 0
    for n, line in enumerate(blob.split(b"\n")[:-1], start=1):  # the piece after the last \n is partial
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                raise DataError(f"{path} line {n} is not valid JSON; the journal is damaged") from None
        end += len(line) + 1
    return rows, end


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Every complete line of a JSONL journal (a partial last line, from a kill, is ignored)."""
    return _valid_lines(Path(path))[0]


def read_history(path: str | Path) -> list[Record]:
    """The records of a ``history.jsonl``, checked to be numbered 1, 2, 3, ... without repeats."""
    records = [Record.from_json(d) for d in read_jsonl(path)]
    seen: set[str] = set()
    for i, rec in enumerate(records, start=1):
        if rec.number != i or rec.arch in seen:
            raise DataError(
                f"{path}: record {i} has number {rec.number} / arch {rec.arch!r}; expected unique archs "
                "numbered 1, 2, 3, ..."
            )
        seen.add(rec.arch)
    return records


class JsonlWriter:
    """Appends one JSON object per line and flushes it at once.

    A partial last line left by a killed process is cut off when the writer opens the file.

    Args:
        path: the journal file (created when missing).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        _, end = _valid_lines(self.path)
        if self.path.exists() and self.path.stat().st_size != end:
            os.truncate(self.path, end)
        self._fh = open(self.path, "a", encoding="utf-8")

    def append(self, row: Mapping[str, Any]) -> None:
        self._fh.write(json.dumps(row, sort_keys=False) + "\n")
        self._fh.flush()

    def extend(self, rows: Iterable[Mapping[str, Any]]) -> None:
        for row in rows:
            self.append(row)

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> JsonlWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
