"""Run directories ``runs/<run-id>/``: ``config.json`` (written first), ``history.jsonl``,
``rounds.jsonl``, ``summary.json`` and, for predictor runs, ``predictor.pkl``.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from nasloop.errors import ConfigError

CONFIG = "config.json"
HISTORY = "history.jsonl"
ROUNDS = "rounds.jsonl"
SUMMARY = "summary.json"
PREDICTOR = "predictor.pkl"  # the predictor after its latest fit (lets resume skip finished fits)


def new_run_id(space: str, strategy: str, predictor: str, seed: int, *, root: str | Path = "runs") -> str:
    """``<space>-<strategy>-<predictor>-s<seed>-<timestamp>``, with a suffix if that one exists."""
    clean = [_slug(x) for x in (space, strategy, predictor)]
    base = f"{clean[0]}-{clean[1]}-{clean[2]}-s{seed}-{time.strftime('%Y%m%d-%H%M%S')}"
    run_id, n = base, 1
    while (Path(root) / run_id).exists():
        n += 1
        run_id = f"{base}-{n}"
    return run_id


def _slug(name: str) -> str:
    # "package.module:Class" plug-in names → "Class"
    return name.rpartition(":")[2].rpartition(".")[2] or "x"


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename (never a half-written file)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def atomic_write_json(path: str | Path, payload: Any) -> None:
    """Write JSON to ``path`` atomically (see :func:`atomic_write_text`)."""
    atomic_write_text(path, json.dumps(payload, indent=2) + "\n")


def check_new(path: str | Path) -> Path:
    """``path`` as a place for a new run: it must not exist or be an empty folder."""
    path = Path(path)
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise ConfigError(
            f"{str(path)!r} already exists; choose another --out, or continue it with --resume {path}"
        )
    return path


def create(path: str | Path, config: dict[str, Any]) -> Path:
    """Make the run directory and write ``config.json`` into it before anything else."""
    path = check_new(path)
    existed = path.exists()
    path.mkdir(parents=True, exist_ok=True)
    try:
        atomic_write_json(path / CONFIG, config)
    except BaseException:
        if not existed:
            for child in path.iterdir():
                child.unlink()
            path.rmdir()
        raise
    return path


def read_config(path: str | Path) -> dict[str, Any]:
    """The ``config.json`` of an existing run directory (``ConfigError`` if it is not a run)."""
    path = Path(path)
    if not path.is_dir():
        raise ConfigError(f"{str(path)!r} is not a run directory (no such folder)")
    cfg_path = path / CONFIG
    try:
        config = json.loads(cfg_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{str(path)!r} is not a run directory: it has no {CONFIG}") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ConfigError(f"{cfg_path} is damaged (not JSON); this run cannot be resumed") from None
    if not isinstance(config, dict) or "strategy" not in config or "budget" not in config:
        raise ConfigError(f"{cfg_path} is not a nasloop search config")
    return config
