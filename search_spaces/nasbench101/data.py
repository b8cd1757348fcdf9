"""NAS-Bench-101 benchmark sources, chosen by ``--data`` (or ``$NASLOOP_NB101``):

* ``nasbench_only108.tfrecord`` / ``nasbench_full.tfrecord``: the official files, read without
  TensorFlow (see :mod:`search_spaces.nasbench101.tfrecord`); ``nasloop data convert --space nb101``
  turns them into a compact CSV that loads in seconds.
* a CSV with ``hash`` and ``arch`` columns: a converted table (any subset of cells).
* NASLib's 500-cell JSON (``nasbench101_500_cifar10.json``): graphs with 108-epoch accuracies.
* a CSV with a ``hash`` column only (e.g. ``nasbench101_30k_by_hash.csv``): no graphs, so it answers
  queries for the cells it holds but cannot restrict a search to them.

Accuracies are percentages (the official files and the 30k table hold fractions; they are scaled).
``val_acc`` / ``test_acc`` / ``train_time`` are the 108-epoch values, means over the training repeats;
other budgets get a suffix, e.g. ``val_acc_12ep``. A table that holds only some cells restricts its
``space`` to them (``bench.space``), so searches on it only propose cells it can answer.
"""

from __future__ import annotations

import ast
import csv
import json
import logging
import math
import os
from collections import defaultdict
from collections.abc import Hashable, Mapping, Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np

from nasloop.benchmark import Benchmark, TabularBenchmark, parse_metric_cell, read_csv_table
from nasloop.errors import ConfigError, DataError, InvalidArchitectureError
from nasloop.types import Evaluation
from search_spaces.nasbench101.space import (
    CONV1X1,
    CONV3X3,
    INPUT,
    MAXPOOL3X3,
    N_CELLS,
    N_NODES,
    OUTPUT,
    Cell,
    NasBench101Space,
    module_hash,
    pad_module,
)

log = logging.getLogger(__name__)

ENV_VAR = "NASLOOP_NB101"
# Op codes of NASLib's 56-tuple encoding. Found by hashing the 500 cells with every assignment of
# the three ops to codes 2/3/4 and looking the hashes up in the 30k table: only this one finds >100
# cells whose 108-epoch accuracies agree (mean |difference| 0.23 points; see docs/results.md, "NAS-Bench-101").
NASLIB_CODES: dict[int, str] = {0: INPUT, 1: OUTPUT, 2: MAXPOOL3X3, 3: CONV1X1, 4: CONV3X3}
_HASH_ONLY_RENAMES = {  # the 30k table's columns → ours (fractions → percent where scaled)
    "val_acc_108ep": ("val_acc", 100.0),
    "val_acc_36ep": ("val_acc_36ep", 100.0),
    "val_acc_12ep": ("val_acc_12ep", 100.0),
    "val_acc_4ep": ("val_acc_4ep", 100.0),
    "train_seconds_108ep": ("train_time", 1.0),
}
COST_COLUMN = "train_time"


def load_benchmark(data: str | None = None, dataset: str | None = None) -> Benchmark:
    """The NAS-Bench-101 benchmark in ``data`` (see the module docstring for the formats).

    Args:
        data: a ``.tfrecord``, ``.json`` or ``.csv`` file; default ``$NASLOOP_NB101``.
        dataset: NAS-Bench-101 has CIFAR-10 only; ``None`` or ``"cifar10"``.

    Example:
        >>> bench = load_benchmark("../shared/data/nb101/nasbench101_500_cifar10.json")  # doctest: +SKIP
        >>> cell = bench.space.sample(np.random.default_rng(0))  # doctest: +SKIP
        >>> bench.query(cell).metrics["val_acc"]  # doctest: +SKIP
        92.578125
    """
    if dataset not in (None, "cifar10"):
        raise ConfigError(f"NAS-Bench-101 has CIFAR-10 only, not {dataset!r}; drop --dataset")
    source = data or os.environ.get(ENV_VAR)
    if not source:
        raise DataError(
            "NAS-Bench-101 needs data: give --data with nasbench_only108.tfrecord, a CSV written by "
            "`nasloop data convert --space nb101`, NASLib's 500-cell JSON or the 30k by-hash CSV "
            f"(or set ${ENV_VAR})"
        )
    path = Path(source).expanduser()
    if not path.is_file():
        raise DataError(f"{'--data' if data else '$' + ENV_VAR} file {str(path)!r} does not exist")
    return _load_cached(str(path.resolve()), path.stat().st_mtime_ns)


@lru_cache(maxsize=4)
def _load_cached(path: str, _mtime: int) -> Benchmark:
    p = Path(path)
    if p.suffix == ".json":
        return load_naslib_json(p)
    if p.suffix == ".csv":
        return load_csv(p)
    if p.suffix in (".tfrecord", ".tfrecords") or "tfrecord" in p.name:
        return load_tfrecord(p)
    raise DataError(f"{p.name}: expected a .tfrecord, .json or .csv NAS-Bench-101 file")


# --- benchmarks ----------------------------------------------------------------------------------------------
class NasBench101Table(TabularBenchmark):
    """A table of NAS-Bench-101 cells answered by official module hash.

    Any cell whose module is isomorphic to a row's module gets that row's metrics. When the table
    holds fewer than all 423,624 modules, ``space`` is restricted to its cells.
    """

    def __init__(self, archs: Sequence[Cell], hashes: Sequence[str], columns: Mapping[str, Sequence[float]],
                 *, label: str, cost_column: str | None = None) -> None:
        space = NasBench101Space()
        super().__init__(space, archs, columns, label=label, cost_column=cost_column)
        self.hashes = list(hashes)
        self._row_by_hash = {h: i for i, h in enumerate(self.hashes)}
        if len(self._row_by_hash) != len(self.hashes):
            raise DataError(f"{label}: some module hashes appear twice")
        if len(self.hashes) < N_CELLS:
            self.space = NasBench101Space._from_hash_index(dict(zip(self.hashes, self.archs)))

    def row_of(self, arch: Hashable) -> int:
        h = self.space.hash_of(arch)  # type: ignore[attr-defined]
        try:
            return self._row_by_hash[h]
        except KeyError:
            raise InvalidArchitectureError(
                f"cell {self.space.to_str(arch)} (module hash {h}) is not in {self.label} "
                f"({len(self):,} cells); search with bench.space to stay inside the table"
            ) from None


class HashTableBenchmark(Benchmark):
    """Metrics keyed by module hash only (no graphs): answers cells it holds, cannot be enumerated."""

    def __init__(self, hashes: Sequence[str], columns: Mapping[str, Sequence[float]], *, label: str,
                 cost_column: str | None = None) -> None:
        self.space = NasBench101Space()
        self.label = label
        self.hashes = list(hashes)
        self.columns = {k: np.asarray(v, dtype=np.float64) for k, v in columns.items()}
        self.cost_column = cost_column
        self._row = {h: i for i, h in enumerate(self.hashes)}

    def __len__(self) -> int:
        return len(self.hashes)

    def size(self) -> int:
        return len(self.hashes)

    @property
    def metrics(self) -> tuple[str, ...]:
        return tuple(self.columns)

    def lookup(self, module_hash_: str) -> Evaluation:
        """Metrics of the module with this official hash."""
        try:
            row = self._row[module_hash_]
        except KeyError:
            raise InvalidArchitectureError(
                f"module hash {module_hash_} is not among the {len(self):,} cells of {self.label}; "
                "this table has no graphs, so a search cannot be restricted to it (use a .tfrecord, a "
                "converted CSV or the 500-cell JSON to search)"
            ) from None
        metrics = {k: v[row] for k, v in self.columns.items() if np.isfinite(v[row])}
        cost = self.columns[self.cost_column][row] if self.cost_column else 0.0
        return Evaluation(metrics, cost=cost if np.isfinite(cost) else 0.0)

    def query(self, arch: Hashable) -> Evaluation:
        return self.lookup(self.space.hash_of(arch))

    def __contains__(self, arch: Hashable) -> bool:
        return self.space.hash_of(arch) in self._row


# --- NASLib's 500-cell JSON ----------------------------------------------------------------------------------
def decode_naslib(encoding: str | Sequence[int]) -> Cell:
    """NASLib's 56-tuple (49 adjacency digits row by row, then 7 op codes) → a cell."""
    expected = f"a NASLib NAS-Bench-101 encoding has 49 adjacency digits and 7 op codes in 0..4, got {encoding!r}"
    try:
        values = ast.literal_eval(encoding) if isinstance(encoding, str) else encoding
        values = [_whole(v) for v in values]
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        raise InvalidArchitectureError(expected) from None
    if (len(values) != N_NODES * N_NODES + N_NODES or any(c not in NASLIB_CODES for c in values[-N_NODES:])
            or any(v not in (0, 1) for v in values[: N_NODES * N_NODES])):
        raise InvalidArchitectureError(expected)
    matrix = np.asarray(values[: N_NODES * N_NODES]).reshape(N_NODES, N_NODES)
    return Cell.make(matrix, [NASLIB_CODES[c] for c in values[N_NODES * N_NODES :]])


def _whole(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"{value!r} is not a whole number")
    return int(value)


def load_naslib_json(path: Path) -> NasBench101Table:
    """NASLib's ``{"nasbench101": {"cifar10": {encoding: {val_accuracy, flops, params, ...}}}}``."""
    try:
        with open(path) as fh:
            table = json.load(fh)["nasbench101"]["cifar10"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataError(
            f"{path.name} is not NASLib's NAS-Bench-101 JSON (nasbench101 → cifar10 → cells): {exc}"
        ) from None
    space = NasBench101Space()
    # The file lists some modules several times (isomorphic cells, one sampled training run each):
    # keep one row per module hash with the mean of its values.
    groups: dict[str, list[tuple[Cell, Mapping]]] = defaultdict(list)
    if not isinstance(table, dict):
        raise DataError(f"{path.name}: nasbench101 → cifar10 must map cell encodings to their values")
    for encoding, values in table.items():
        if not isinstance(values, dict):
            raise DataError(f"{path.name}: the values of cell {encoding} are not a JSON object")
        try:
            cell = space._check(decode_naslib(encoding))
        except InvalidArchitectureError as exc:
            raise DataError(f"{path.name}: {exc}") from None
        groups[module_hash(cell)].append((cell, values))
    archs, hashes = [], []
    columns: dict[str, list[float]] = defaultdict(list)
    names = sorted({name for group in groups.values() for _, values in group for name in values})
    for h, group in groups.items():
        archs.append(group[0][0])
        hashes.append(h)
        for name in names:
            vals = [_finite_value(v[name], path.name, name) for _, v in group if isinstance(v.get(name), int | float)]
            columns["val_acc" if name == "val_accuracy" else name].append(float(np.mean(vals)) if vals else math.nan)
    return NasBench101Table(
        archs, hashes, columns,
        label=f"NAS-Bench-101 CIFAR-10, {len(archs)} modules of {len(table)} cells ({path.name})",
    )


def _finite_value(value: float, source: str, name: str) -> float:
    if not math.isfinite(value):
        raise DataError(f"{source}: a cell's {name!r} is {value!r}, expected a finite number")
    return float(value)


# --- CSV tables --------------------------------------------------------------------------------------------------
def load_csv(path: Path) -> Benchmark:
    """A converted table (``hash,arch,metrics...``) or a hash-only table (``hash,metrics...``).

    Rejected with ``DataError`` naming the line: a hash that is not 32 hex digits or appears twice, a
    bad cell string, and a metric value that is not a finite number (an empty cell is a missing value).
    """
    table = read_csv_table(path)
    hash_col, arch_col = table.position("hash"), table.position("arch")
    if hash_col is None:
        raise DataError(f"table {path.name} has no 'hash' column; expected hash[,arch],metric,...")
    renames = _HASH_ONLY_RENAMES if arch_col is None else {}
    positions = [(n, *renames.get(n, (n, 1.0)), pos) for pos, n in enumerate(table.header) if n not in ("hash", "arch")]
    columns: dict[str, list[float]] = {name: [] for _, name, _, _ in positions}
    if len(columns) != len(positions):
        raise DataError(f"{path.name}: after renaming the 30k table's columns, two of them share a name")
    hashes, arch_texts = [], []
    line_of_hash: dict[str, int] = {}
    for line_no, row in table.rows:
        h = row[hash_col].strip()
        if len(h) != 32 or not all(c in _HEX for c in h):
            raise DataError(f"{path.name} line {line_no}: hash {h!r} is not 32 hexadecimal digits")
        if h in line_of_hash:
            raise DataError(f"{path.name} line {line_no}: hash {h} already appears on line {line_of_hash[h]}")
        line_of_hash[h] = line_no
        hashes.append(h)
        if arch_col is not None:
            arch_texts.append((line_no, row[arch_col]))
        for column, name, scale, pos in positions:
            columns[name].append(scale * parse_metric_cell(row[pos], table=path.name, line=line_no, column=column))
    if not hashes:
        raise DataError(f"table {path.name} has no rows")
    cost = COST_COLUMN if COST_COLUMN in columns else None
    if arch_col is None:
        return HashTableBenchmark(
            hashes, columns, label=f"NAS-Bench-101 CIFAR-10 by hash, {len(hashes):,} cells ({path.name}, no graphs)",
            cost_column=cost,
        )
    archs = []
    for line_no, text in arch_texts:
        try:
            archs.append(_parse_trusted(text))
        except InvalidArchitectureError as exc:
            raise DataError(f"{path.name} line {line_no}: {exc}") from None
    return NasBench101Table(archs, hashes, columns, label=f"NAS-Bench-101 CIFAR-10 table {path.name}",
                            cost_column=cost)


_HEX = frozenset("0123456789abcdef")
_OP_NAMES = frozenset((INPUT, OUTPUT, CONV3X3, CONV1X1, MAXPOOL3X3))


def _parse_trusted(text: str) -> Cell:
    """A cell string from a table that also stores its hash: shape and op names are checked here, the
    pruning rules only when the cell is queried (full validation of 423,624 rows takes minutes)."""
    bits, _, ops_text = text.strip().partition(":")
    ops = ops_text.split(",")
    k = len(ops)
    if len(bits) != k * k or set(bits) - {"0", "1"} or not _OP_NAMES.issuperset(ops) or not 2 <= k <= N_NODES:
        raise InvalidArchitectureError(f"{text!r} is not '<k*k adjacency digits>:<k ops>' with NAS-Bench-101 ops")
    rows = [[int(c) for c in bits[i * k : (i + 1) * k]] for i in range(k)]
    return Cell(tuple(map(tuple, rows)), tuple(ops)) if k == N_NODES else pad_module(rows, ops)


def write_csv(bench: NasBench101Table, dst: str | Path) -> Path:
    """Export a table as ``hash,arch,metrics...`` (rows sorted by hash), atomically."""
    dst = Path(dst)
    tmp = dst.with_name(dst.name + ".tmp")
    names = list(bench.metrics)
    with open(tmp, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["hash", "arch", *names])
        for r in sorted(range(len(bench)), key=lambda r: bench.hashes[r]):
            values = [bench.columns[n][r] for n in names]
            writer.writerow([bench.hashes[r], bench.space.to_str(bench.archs[r]),
                             *("" if math.isnan(v) else f"{v:.6g}" for v in values)])
    os.replace(tmp, dst)
    return dst


# --- the official .tfrecord files ------------------------------------------------------------------------------------
def load_tfrecord(path: Path, *, verify: bool = True) -> NasBench101Table:
    """Read an official NAS-Bench-101 file: per module, the means over repeats of the final
    validation/test accuracy (percent) and training time for every epoch budget in the file."""
    from search_spaces.nasbench101.tfrecord import iter_nb101

    modules: dict[str, tuple[str, tuple[str, ...], int]] = {}
    runs: dict[str, dict[int, list[dict[str, float]]]] = defaultdict(lambda: defaultdict(list))
    for rec in iter_nb101(path, verify=verify):
        if rec.module_hash not in modules:
            modules[rec.module_hash] = (rec.adjacency, rec.ops, rec.metrics.trainable_parameters)
        if len(rec.metrics.evaluations) < 1:
            raise DataError(f"{path.name}: module {rec.module_hash} has a record without evaluations")
        runs[rec.module_hash][rec.epochs].append(rec.metrics.evaluations[-1])
    if not modules:
        raise DataError(f"{path.name} holds no records")
    epochs = sorted({e for per_epoch in runs.values() for e in per_epoch})
    top = max(epochs)
    columns: dict[str, list[float]] = defaultdict(list)
    archs, hashes = [], []
    for h in sorted(modules):
        adjacency, ops, params = modules[h]
        k = len(ops)
        if len(adjacency) != k * k:
            raise DataError(f"{path.name}: module {h} has {len(adjacency)} adjacency digits for {k} ops")
        archs.append(pad_module(np.asarray([int(c) for c in adjacency]).reshape(k, k), ops))
        hashes.append(h)
        columns["params"].append(float(params))
        for e in epochs:
            suffix = "" if e == top else f"_{e}ep"
            finals = runs[h].get(e, [])
            for key, name, scale in (("validation_accuracy", "val_acc", 100.0),
                                     ("test_accuracy", "test_acc", 100.0),
                                     ("train_accuracy", "train_acc", 100.0),
                                     ("training_time", "train_time", 1.0)):
                vals = [f[key] for f in finals if key in f]
                columns[name + suffix].append(scale * float(np.mean(vals)) if vals else math.nan)
    log.info("read %d modules (%s epochs) from %s", len(archs), epochs, path.name)
    return NasBench101Table(archs, hashes, columns, label=f"NAS-Bench-101 CIFAR-10 ({path.name})",
                            cost_column=COST_COLUMN)


def convert(src: str | Path, dst: str | Path, *, dataset: str | None = None) -> Path:
    """``nasloop data convert --space nb101``: an official ``.tfrecord`` (or the 500-cell JSON) →
    a compact ``hash,arch,metrics...`` CSV that :func:`load_benchmark` reads back."""
    bench = load_benchmark(str(src), dataset=dataset)
    if not isinstance(bench, NasBench101Table):
        raise DataError(f"{Path(src).name} has no graphs (hash-only table): nothing to convert")
    return write_csv(bench, dst)
