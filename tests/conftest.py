"""Shared fixtures. Real benchmark data lives in ../shared/data beside the repository."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
NB201_CIFAR10 = SHARED_DATA / "nb201" / "cifar10.csv"
NB201_CIFAR100 = SHARED_DATA / "nb201" / "cifar100.csv"
NB201_LATENCY = SHARED_DATA / "nb201" / "latency_ms.csv"


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny models run faster on one thread, and the CPU is shared with other work.

    Use it per module: ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``.
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def require_shared(path: Path) -> Path:
    """Return ``path``; outside CI skip when it is missing, in CI (CI=true) fail."""
    if not path.exists():
        message = f"real benchmark data {path} is missing (expected ../shared/data beside the repo)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The ``../shared/data`` folder (skips outside CI, fails in CI, when absent)."""
    return require_shared(SHARED_DATA)


@pytest.fixture(scope="session")
def nb201_cifar10_path() -> Path:
    return require_shared(NB201_CIFAR10)


@pytest.fixture(scope="session")
def nb201_cifar10(nb201_cifar10_path):
    """The CIFAR-10 NAS-Bench-201 table as a TabularBenchmark (loaded once per session)."""
    from search_spaces.nasbench201.data import load_benchmark

    return load_benchmark(data=str(nb201_cifar10_path))


def run_cli(*args: str, cwd: Path = ROOT, pythonpath: Sequence[Path] = (ROOT,), exe: Sequence[str] | None = None,
            hashseed: str = "0", env: Mapping[str, str] | None = None, timeout: float = 600,
            ) -> subprocess.CompletedProcess:
    """``python -m nasloop.cli ARGS`` in a fresh process, as a user runs it.

    ``NASLOOP_NB201`` is unset (the default data unless a test passes ``--data``), ``PYTHONPATH`` is
    ``pythonpath`` (the repository, so the test plug-ins import; empty: none at all) and the hash seed
    is fixed; ``env`` adds or overrides variables. ``exe`` replaces the interpreter and module (an
    installed console script).
    """
    full_env = {k: v for k, v in os.environ.items() if k not in ("NASLOOP_NB201", "PYTHONPATH")}
    if pythonpath:
        full_env["PYTHONPATH"] = os.pathsep.join(map(str, pythonpath))
    full_env["PYTHONHASHSEED"] = hashseed
    full_env.update(env or {})
    cmd = [*(exe or (sys.executable, "-m", "nasloop.cli")), *args]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, env=full_env, timeout=timeout)
