"""NAS-Bench-201 benchmark sources: compact CSV tables, the official ``.pth`` file, and the
zero-download AnalogNAS-Bench table.

Resolution order of the source: the ``data`` argument (``--data``), then ``$NASLOOP_NB201``, then the
AnalogNAS-Bench table shipped inside the ``analog-nasbench`` package.
"""

from __future__ import annotations

import csv
import importlib.util
import logging
import math
import os
import pickle
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

from nasloop.benchmark import TabularBenchmark, read_csv_table
from nasloop.errors import ConfigError, DataError, InvalidArchitectureError, UnknownNameError
from search_spaces.nasbench201.space import OPS, NasBench201Space

log = logging.getLogger(__name__)

ENV_VAR = "NASLOOP_NB201"
ANALOG_LABEL = "AnalogNAS-Bench CIFAR-10, NAS-Bench-201 cell space"
PTH_DATASETS = ("cifar10-valid", "cifar10", "cifar100", "ImageNet16-120")
# Columns of the CSV that are identifiers, not metrics.
ID_COLUMNS = ("index", "arch")
# Metric columns read as the simulated cost of a query, when present (seconds of training).
COST_COLUMNS = ("train_time",)


def load_benchmark(data: str | None = None, dataset: str | None = None) -> TabularBenchmark:
    """The NAS-Bench-201 benchmark for ``data`` (see the module docstring for the resolution order).

    Args:
        data: a CSV table (``index,arch,metric...``) or an official NAS-Bench-201 ``.pth`` file.
        dataset: for ``.pth`` files, one of ``cifar10-valid``, ``cifar10`` (default), ``cifar100``,
            ``ImageNet16-120``. Not accepted for tables, which hold one dataset each.

    Example:
        >>> bench = load_benchmark("../shared/data/nb201/cifar10.csv")  # doctest: +SKIP
        >>> bench.optimum("val_acc")[0]  # doctest: +SKIP
        91.6067
    """
    source = data or os.environ.get(ENV_VAR) or None
    if source is None:
        if dataset not in (None, "cifar10"):
            raise ConfigError(
                f"the default AnalogNAS-Bench table has CIFAR-10 only, not {dataset!r}; "
                "give --data with a table or official .pth file for other datasets"
            )
        return _load_analog()
    path = Path(source).expanduser()
    if not path.is_file():
        origin = "--data" if data else f"${ENV_VAR}"
        raise DataError(f"{origin} file {str(path)!r} does not exist")
    if path.suffix in (".pth", ".pt"):
        return load_official_pth(path, dataset=dataset or "cifar10")
    if dataset is not None:
        raise ConfigError(
            f"--dataset applies to official .pth files; the table {path.name} holds one dataset "
            "(drop --dataset)"
        )
    return _load_csv_cached(str(path.resolve()), path.stat().st_mtime_ns)


# --- CSV tables -----------------------------------------------------------------------------------
@lru_cache(maxsize=8)
def _load_csv_cached(path: str, _mtime: int) -> TabularBenchmark:
    return load_csv(Path(path))


def load_csv(path: Path) -> TabularBenchmark:
    """A table with an ``arch`` column (official strings), an optional ``index`` and metric columns."""
    space = NasBench201Space()
    header, rows = read_csv_table(path)
    if not header or "arch" not in header:
        raise DataError(f"table {str(path)!r} has no 'arch' column; expected a header like index,arch,val_acc,...")
    arch_col = header.index("arch")
    index_col = header.index("index") if "index" in header else None
    metric_names = [h for h in header if h not in ID_COLUMNS]
    if not metric_names:
        raise DataError(f"table {str(path)!r} has no metric columns besides {ID_COLUMNS}")
    archs, indices = [], []
    columns: dict[str, list[float]] = {m: [] for m in metric_names}
    metric_pos = [(m, header.index(m)) for m in metric_names]
    for line_no, row in enumerate(rows, start=2):
        if not row:
            continue
        if len(row) != len(header):
            raise DataError(f"{path.name} line {line_no}: {len(row)} fields, header has {len(header)}")
        try:
            arch = space.from_str(row[arch_col])
        except InvalidArchitectureError as exc:
            raise DataError(f"{path.name} line {line_no}: {exc}") from None
        archs.append(arch)
        indices.append(int(row[index_col]) if index_col is not None else space.index_of(arch))
        for name, pos in metric_pos:
            cell = row[pos].strip()
            try:
                columns[name].append(float(cell) if cell else math.nan)
            except ValueError:
                raise DataError(
                    f"{path.name} line {line_no}: column {name!r} holds {cell!r}, expected a number"
                ) from None
    if not archs:
        raise DataError(f"table {str(path)!r} has no rows")
    if len(set(archs)) != len(archs):
        raise DataError(f"table {str(path)!r} lists some architectures twice")
    cost = next((c for c in COST_COLUMNS if c in columns), None)
    return TabularBenchmark(
        space, archs, columns, label=f"NAS-Bench-201 table {path.name}", cost_column=cost, indices=indices
    )


def write_csv(bench: TabularBenchmark, dst: str | Path) -> Path:
    """Export a benchmark as the compact CSV format (``index,arch,metrics...``), atomically."""
    dst = Path(dst)
    tmp = dst.with_name(dst.name + ".tmp")
    order = sorted(range(len(bench)), key=lambda r: bench.indices[r])
    names = list(bench.metrics)
    with open(tmp, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["index", "arch", *names])
        for r in order:
            values = [bench.columns[n][r] for n in names]
            writer.writerow([bench.indices[r], bench.space.to_str(bench.archs[r]),
                             *("" if math.isnan(v) else f"{v:.6g}" for v in values)])
    os.replace(tmp, dst)
    return dst


# --- the official NAS-Bench-201 .pth file ------------------------------------------------------------
def load_official_pth(path: Path, *, dataset: str = "cifar10") -> TabularBenchmark:
    """Read an official ``NAS-Bench-201-v1_*.pth`` through ``nas_201_api`` (200-epoch seed means).

    Columns: ``val_acc`` / ``test_acc`` (200 epochs), ``val_acc_12ep`` / ``test_acc_12ep`` where the
    file has the 12-epoch schedule, and ``train_time`` (seconds, used as query cost). For ``cifar10``,
    ``val_acc`` is the ``cifar10-valid`` validation accuracy, as in the NAS-Bench-201 protocol.
    """
    if dataset not in PTH_DATASETS:
        raise UnknownNameError(f"unknown dataset {dataset!r}; the .pth file has {', '.join(PTH_DATASETS)}")
    api = _open_api(path)
    space = NasBench201Space()
    archs, indices = [], []
    columns: dict[str, list[float]] = {}
    for index in sorted(api.evaluated_indexes):
        archs.append(space.from_str(api.meta_archs[index]))
        indices.append(index)
        for name, value in _official_metrics(api, index, dataset).items():
            columns.setdefault(name, [math.nan] * (len(archs) - 1)).append(value)
        for values in columns.values():  # keep columns aligned when a metric is missing here
            if len(values) < len(archs):
                values.append(math.nan)
    if not archs:
        raise DataError(f"{path.name} holds no evaluated architectures")
    return TabularBenchmark(
        space, archs, columns, label=f"NAS-Bench-201 {dataset} ({path.name})",
        cost_column="train_time" if "train_time" in columns else None, indices=indices,
    )


def _open_api(path: Path):
    try:
        import torch
        from nas_201_api import NASBench201API
    except ImportError as exc:  # pragma: no cover - both are install requirements
        raise DataError(f"reading .pth files needs torch and nas-bench-201: {exc}") from None
    try:
        # The official file pickles plain dicts of results; weights_only=False because older files
        # hold numpy scalars. Only open benchmark files you trust.
        raw = torch.load(str(path), map_location="cpu", weights_only=False)
        return NASBench201API(raw, verbose=False)
    except Exception as exc:
        raise DataError(f"{path.name} is not an official NAS-Bench-201 file: {type(exc).__name__}: {exc}") from None


def _official_metrics(api, index: int, dataset: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for hp, suffix in (("200", ""), ("12", "_12ep")):
        if hp not in api.arch2infos_dict[index]:
            continue
        main = _more_info(api, index, dataset, hp)
        if main is None:
            continue
        if dataset == "cifar10":  # validation signal comes from the cifar10-valid split
            valid = _more_info(api, index, "cifar10-valid", hp) or {}
            val = valid.get("valid-accuracy")
        else:
            val = main.get("valid-accuracy")
        if val is not None:
            out[f"val_acc{suffix}"] = float(val)
        if main.get("test-accuracy") is not None:
            out[f"test_acc{suffix}"] = float(main["test-accuracy"])
        if hp == "200" and main.get("train-all-time") is not None:
            out["train_time"] = float(main["train-all-time"])
    return out


def _more_info(api, index: int, dataset: str, hp: str) -> dict | None:
    try:
        return api.get_more_info(index, dataset, iepoch=None, hp=hp, is_random=False)
    except (KeyError, ValueError, AssertionError):
        return None


# --- AnalogNAS-Bench (zero-download default) -----------------------------------------------------------
# NASLib op ids and edge order: ops (skip, none, conv3x3, conv1x1, avgpool); the tuple lists edges
# (1,2),(1,3),(1,4),(2,3),(2,4),(3,4) in NASLib's 1-based node numbering.
NASLIB_OPS = ("skip_connect", "none", "nor_conv_3x3", "nor_conv_1x1", "avg_pool_3x3")
# Position in the NASLib tuple of each edge in arch-string order (1←0, 2←0, 2←1, 3←0, 3←1, 3←2).
NASLIB_EDGE_ORDER = (0, 1, 3, 2, 4, 5)
assert set(NASLIB_OPS) == set(OPS)


def naslib_to_arch(op_tuple: Sequence[int]) -> tuple[str, ...]:
    """NASLib's NAS-Bench-201 op tuple → our architecture (tuple of op names in string order)."""
    if len(op_tuple) != 6 or any(not 0 <= int(o) < 5 for o in op_tuple):
        raise InvalidArchitectureError(f"a NASLib NAS-Bench-201 tuple has 6 ids in 0..4, got {op_tuple!r}")
    return tuple(NASLIB_OPS[int(op_tuple[pos])] for pos in NASLIB_EDGE_ORDER)


class _PlainRecord:
    """Stand-in for analognasbench's classes: keeps the pickled attributes, runs none of its code."""

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)


class _AnalogUnpickler(pickle.Unpickler):
    _ALLOWED = {("analognasbench.data", "Architecture"), ("analognasbench.data", "DriftMeasurement")}

    def find_class(self, module: str, name: str):
        if (module, name) in self._ALLOWED:
            return _PlainRecord
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from the AnalogNAS-Bench file")


def _analog_file() -> Path:
    """Path of ``analognasbench/data.anb``, found without importing the package (its
    ``__init__`` imports ``pkg_resources``, which modern environments lack)."""
    spec = importlib.util.find_spec("analognasbench")
    locations = list(spec.submodule_search_locations or []) if spec else []
    for folder in locations:
        candidate = Path(folder) / "data.anb"
        if candidate.is_file():
            return candidate
    raise DataError(
        "the default benchmark needs the analog-nasbench package (pip install analog-nasbench), "
        "or give --data TABLE.csv"
    )


@lru_cache(maxsize=1)
def _load_analog() -> TabularBenchmark:
    import io

    blob = _analog_file().read_bytes()

    table = _AnalogUnpickler(io.BytesIO(blob)).load()
    space = NasBench201Space()
    archs, columns = [], {}
    # Rows in official index order, like the CSV tables.
    for key in sorted(table, key=lambda k: space.index_of(naslib_to_arch(k))):
        record = table[key]
        archs.append(naslib_to_arch(key))
        for name, value in vars(record).items():
            if name == "architecture":
                continue
            if isinstance(value, _PlainRecord):  # drift "value ± uncertainty": keep the value
                value = getattr(value, "value", math.nan)
            columns.setdefault(name, []).append(_as_float(value))
    return TabularBenchmark(
        space, archs, columns, label=ANALOG_LABEL, indices=[space.index_of(a) for a in archs]
    )


def _as_float(value: object) -> float:
    if isinstance(value, str):  # drift strings such as "88.1 ± 0.3"
        value = value.split("±")[0]
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan


def convert(src: str | Path, dst: str | Path, *, dataset: str | None = None) -> Path:
    """``nasloop data convert``: official ``.pth`` (or any readable source) → compact CSV table."""
    bench = load_benchmark(str(src), dataset=dataset)
    return write_csv(bench, dst)
