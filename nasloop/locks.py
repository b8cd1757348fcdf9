"""Exclusive locks on run and study directories: one writer at a time.

The lock is ``fcntl.flock`` on a file ``.nasloop.lock`` inside the directory. The kernel releases it
when the process ends in any way (SIGKILL included), so a lock left by a killed process is no lock:
the next run takes it at once, with no stale-lock guessing. The file itself stays (it holds the pid
of the latest holder, for the message a second writer gets).
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterator
from pathlib import Path

from nasloop.errors import ConfigError

LOCK_FILE = ".nasloop.lock"


class DirectoryLock:
    """An exclusive, non-blocking lock on ``directory`` (which must exist).

    Args:
        directory: the run or study directory.
        what: ``"run"`` or ``"study"``, for the message.

    Raises:
        ConfigError: another process holds the lock (the message names its pid when known).
    """

    def __init__(self, directory: str | Path, *, what: str = "run") -> None:
        self.directory = Path(directory)
        self.what = what
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> DirectoryLock:
        import fcntl

        if self._fd is not None:
            return self
        path = self.directory / LOCK_FILE
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise ConfigError(f"cannot lock {self.what} directory {str(self.directory)!r}: "
                              f"{exc.strerror or exc}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = _read_pid(fd)
            os.close(fd)
            if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                by = f" (pid {holder})" if holder else ""
                raise ConfigError(
                    f"{self.what} directory {str(self.directory)!r} is in use by another nasloop process{by}; "
                    "wait for it to end (or stop it), then run this again"
                ) from None
            raise ConfigError(f"cannot lock {self.what} directory {str(self.directory)!r}: "
                              f"{exc.strerror or exc}") from None
        with contextlib.suppress(OSError):  # the pid is only informative
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None

    def __enter__(self) -> DirectoryLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


@contextlib.contextmanager
def locked(directory: str | Path, *, what: str = "run") -> Iterator[DirectoryLock]:
    """``with locked(path):`` hold the directory's lock for the block."""
    lock = DirectoryLock(directory, what=what).acquire()
    try:
        yield lock
    finally:
        lock.release()
