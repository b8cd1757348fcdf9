"""A NAS-Bench-201 table benchmark that misbehaves on purpose, for tests with real worker processes.

Used as ``--benchmark tests.faulty_benchmark:make_benchmark`` with ``--data cifar10.csv``. Environment
variables (inherited by LocalCluster workers, set on ``dask worker`` processes) choose the faults:

* ``FAULTY_SLEEP``: seconds every evaluation takes.
* ``FAULTY_KILL_ONCE``: a marker path; the ``FAULTY_KILL_AFTER``-th evaluation (default 3) of a
  worker process kills that process with SIGKILL mid-evaluation, once in the whole run (the marker
  remembers).
* ``FAULTY_RAISE_MOD``: cells whose index modulo this number is 0 raise an error.
* ``FAULTY_HANG_MOD``: cells whose index modulo this number is 1 hang (sleep an hour).
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from nasloop.benchmark import Benchmark


class FaultyBenchmark(Benchmark):
    def __init__(self, inner) -> None:
        self.inner = inner
        self.space = inner.space
        self.label = inner.label
        self.index = {arch: i for i, arch in enumerate(inner.archs)}
        self.n_evaluations = 0  # in this process

    @property
    def metrics(self):
        return self.inner.metrics

    def check_metric(self, metric):
        return self.inner.check_metric(metric)

    def optimum(self, metric, maximize=True):
        return self.inner.optimum(metric)

    def query(self, arch):
        i = self.index[arch]
        time.sleep(float(os.environ.get("FAULTY_SLEEP", "0")))
        self.n_evaluations += 1
        marker = os.environ.get("FAULTY_KILL_ONCE")
        if marker and self.n_evaluations == int(os.environ.get("FAULTY_KILL_AFTER", "3")) \
                and not Path(marker).exists():
            Path(marker).write_text(str(os.getpid()))
            os.kill(os.getpid(), signal.SIGKILL)
        raise_mod = int(os.environ.get("FAULTY_RAISE_MOD", "0"))
        if raise_mod and i % raise_mod == 0:
            raise ValueError(f"cell {i} cannot be trained\nloss is nan")
        hang_mod = int(os.environ.get("FAULTY_HANG_MOD", "0"))
        if hang_mod and i % hang_mod == 1:
            time.sleep(3600)
        return self.inner.query(arch)


def make_benchmark(data=None, dataset=None):
    from search_spaces.nasbench201.data import load_benchmark

    return FaultyBenchmark(load_benchmark(data=data, dataset=dataset))
