"""Run directories ``runs/<run-id>/``: ``config.json`` (written first), ``history.jsonl``,
``rounds.jsonl``, ``summary.json``, the lock file ``.nasloop.lock`` (see :mod:`nasloop.locks`) and,
for torch predictors, the snapshot ``predictor.pt`` + ``predictor.json`` (see ``run_store.Snapshots``).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nasloop.errors import ConfigError
from nasloop.locks import LOCK_FILE, DirectoryLock

CONFIG = "config.json"
HISTORY = "history.jsonl"
ROUNDS = "rounds.jsonl"
SUMMARY = "summary.json"
# A pickled predictor some run directories hold; never read (unpickling runs code): resume refits instead.
LEGACY_PREDICTOR = "predictor.pkl"


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
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)  # a full disk must not leave a half-written temporary file
        raise


def atomic_write_json(path: str | Path, payload: Any) -> None:
    """Write JSON to ``path`` atomically (see :func:`atomic_write_text`)."""
    atomic_write_text(path, json.dumps(payload, indent=2) + "\n")


def check_new(path: str | Path) -> Path:
    """``path`` as a place for a new run: it must not exist or be an empty folder (a lock file aside)."""
    path = Path(path)
    try:
        occupied = path.exists() and (not path.is_dir() or any(p.name != LOCK_FILE for p in path.iterdir()))
    except OSError as exc:
        raise ConfigError(f"cannot use {str(path)!r} as a run directory: {exc.strerror or exc}") from None
    if occupied:
        raise ConfigError(
            f"{str(path)!r} already exists; choose another --out, or continue it with --resume {path}"
        )
    return path


def make_directory(path: Path, what: str) -> bool:
    """``mkdir -p path``; whether it was created. OS refusals (a file in the way, a read-only or full
    disk) become a one-line :class:`ConfigError`."""
    existed = path.is_dir()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise ConfigError(f"cannot create {what} directory {str(path)!r}: a file is in the way") from None
    except OSError as exc:
        raise ConfigError(f"cannot create {what} directory {str(path)!r}: {exc.strerror or exc}") from None
    return not existed


def create(path: str | Path, config: dict[str, Any]) -> DirectoryLock:
    """Make the run directory, lock it, and write ``config.json`` into it before anything else.

    Returns the held lock (the caller releases it when the run ends). On any failure nothing is left:
    a directory this call created is removed again.
    """
    path = check_new(path)

    def write_config() -> None:
        check_new(path)  # another process may have started a run here between the check and the lock
        atomic_write_json(path / CONFIG, config)

    return claim_directory(path, "run", write_config)


def claim_directory(path: Path, what: str, first_write: Callable[[], None]) -> DirectoryLock:
    """Make ``path`` (a ``what`` directory: run or study), lock it and call ``first_write`` under the lock.

    Returns the held lock. On any failure the lock is released and a directory this call created is
    removed again; OS errors become a one-line :class:`ConfigError`.
    """
    created = make_directory(path, what)
    lock = DirectoryLock(path, what=what)
    try:
        lock.acquire()
        first_write()
    except BaseException as exc:
        lock.release()
        if created:
            remove_new_directory(path)
        if isinstance(exc, OSError):
            raise ConfigError(f"cannot write {what} directory {str(path)!r}: {exc.strerror or exc}") from None
        raise
    return lock


def remove_new_directory(path: Path) -> None:
    import contextlib

    with contextlib.suppress(OSError):
        for child in path.iterdir():
            child.unlink()
        path.rmdir()


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
