"""Fingerprints (size and SHA-256) of the data files a run reads, recorded in its ``config.json``.

Resume compares them with the files as they are now: a table edited in place between a kill and a
resume would otherwise mix old and new values in one history.
"""

from __future__ import annotations

import hashlib
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

from nasloop.errors import ConfigError

# The variable the NAS-Bench-201 loader reads when no --data is given.
NB201_ENV = "NASLOOP_NB201"
_CHUNK = 1 << 20


def data_paths(space: str, data: str | list[str] | None) -> list[Path]:
    """The data files a run of ``space`` reads for ``data`` (one or several sources; a directory: every
    file under it).

    Without ``data`` the NAS-Bench-201 loader reads ``$NASLOOP_NB201`` when set; other defaults ship
    inside installed packages and are not fingerprinted.
    """
    from nasloop.benchmark import data_sources

    sources = data_sources(data) or [s for s in [os.environ.get(NB201_ENV) if space == "nb201" else None] if s]
    paths: list[Path] = []
    for source in sources:
        path = Path(source).expanduser()
        if path.is_file():
            paths.append(path.resolve())
        elif path.is_dir():
            paths.extend(sorted(p.resolve() for p in path.rglob("*") if p.is_file()))
    return paths


def fingerprints(space: str, data: str | list[str] | None) -> dict[str, dict[str, Any]]:
    """``{absolute path: {"size": bytes, "sha256": hex}}`` of every data file of the run."""
    return {str(p): file_fingerprint(p) for p in data_paths(space, data)}


def file_fingerprint(path: str | Path) -> dict[str, Any]:
    """Size and SHA-256 of one file, read in 1 MiB chunks (memory stays flat for multi-GB files)."""
    path = Path(path)
    try:
        st = path.stat()
        return dict(_hashed(str(path), st.st_size, st.st_mtime_ns, st.st_ino))
    except OSError as exc:
        raise ConfigError(f"cannot read data file {str(path)!r}: {exc.strerror or exc}") from None


@lru_cache(maxsize=64)
def _hashed(path: str, size: int, _mtime_ns: int, _inode: int) -> tuple[tuple[str, Any], ...]:
    # Keyed by size, mtime and inode: a study's worker hashes a large official file once, not per run.
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            digest.update(chunk)
    return (("size", size), ("sha256", digest.hexdigest()))


def check_unchanged(run_dir: Path, stored: Any, current: dict[str, dict[str, Any]]) -> None:
    """Refuse to resume when a data file differs from the one the run started with."""
    if not isinstance(stored, dict):
        raise ConfigError(f"{run_dir}/config.json has a damaged data_files entry; this run cannot be resumed")
    for path in sorted(set(stored) | set(current)):
        before, now = stored.get(path), current.get(path)
        if before == now:
            continue
        if now is None:
            what = "is gone"
        elif before is None:
            what = "is new (the run did not read it)"
        elif not isinstance(before, dict) or before.get("size") != now["size"]:
            old = before.get("size") if isinstance(before, dict) else "?"
            what = f"changed size ({old} -> {now['size']} bytes)"
        else:
            what = "changed content (same size, another SHA-256)"
        raise ConfigError(f"data file {path} {what} since {run_dir} started; resuming would mix two data "
                          "sets: restore the file or start a new run")
