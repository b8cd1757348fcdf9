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
import re
import warnings
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

from nasloop.benchmark import TabularBenchmark, parse_index_cell, parse_metric_cell, read_csv_table
from nasloop.errors import ConfigError, DataError, InvalidArchitectureError, UnknownNameError
from search_spaces.nasbench201.space import N_CELLS, OPS, NasBench201Space

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
    bench = _read_source(data, dataset)
    return require_every_cell(bench, bench.label)


def _read_source(data: str | None, dataset: str | None) -> TabularBenchmark:
    """The benchmark ``data`` names (resolved as in :func:`load_benchmark`), whether complete or not."""
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
    """A table with an ``arch`` column (official strings), an optional ``index`` and metric columns.

    Rejected with ``DataError`` naming the line: a missing ``arch`` column, an unknown architecture, an
    index that is not a whole number or not the official index of its architecture, a repeated index
    or architecture, and a metric value that is not a finite number (an empty cell is a missing value).
    """
    space = NasBench201Space()
    table = read_csv_table(path)
    arch_col, index_col = table.position("arch"), table.position("index")
    if arch_col is None:
        raise DataError(f"table {str(path)!r} has no 'arch' column; expected a header like index,arch,val_acc,...")
    metric_pos = [(name, pos) for pos, name in enumerate(table.header) if name not in ID_COLUMNS]
    if not metric_pos:
        raise DataError(f"table {str(path)!r} has no metric columns besides {ID_COLUMNS}")
    archs, indices = [], []
    columns: dict[str, list[float]] = {name: [] for name, _ in metric_pos}
    line_of_index: dict[int, int] = {}
    for line_no, row in table.rows:
        try:
            arch = space.from_str(row[arch_col])
        except InvalidArchitectureError as exc:
            raise DataError(f"{path.name} line {line_no}: {exc}") from None
        index = _row_index(space, arch, row[index_col] if index_col is not None else None, path.name, line_no)
        if index in line_of_index:
            what = "index" if index_col is not None else "architecture"
            raise DataError(
                f"{path.name} line {line_no}: {what} {index if index_col is not None else row[arch_col]} "
                f"already appears on line {line_of_index[index]}"
            )
        line_of_index[index] = line_no
        archs.append(arch)
        indices.append(index)
        for name, pos in metric_pos:
            columns[name].append(parse_metric_cell(row[pos], table=path.name, line=line_no, column=name))
    if not archs:
        raise DataError(f"table {str(path)!r} has no rows")
    cost = next((c for c in COST_COLUMNS if c in columns), None)
    return TabularBenchmark(
        space, archs, columns, label=f"NAS-Bench-201 table {path.name}", cost_column=cost, indices=indices
    )


def _row_index(space: NasBench201Space, arch: tuple[str, ...], written: str | None, table: str, line: int) -> int:
    """The official index of a row's cell, checked against the ``index`` column when there is one."""
    official = space.index_of(arch)
    if written is None:
        return official
    index = parse_index_cell(written, table=table, line=line)
    if index != official:
        raise DataError(
            f"{table} line {line}: index {index} is not the official index of {space.to_str(arch)} "
            f"(that is {official})"
        )
    return index


def require_every_cell(bench: TabularBenchmark, source: str) -> TabularBenchmark:
    """``bench`` if it holds all 15,625 cells; otherwise ``DataError`` saying how many lack and naming one.

    A search proposes any cell of the space, so a partial table would fail at its first missing cell.
    """
    present = set(bench.indices)
    if len(present) == N_CELLS:
        return bench
    missing = N_CELLS - len(present)
    first = next(i for i in range(N_CELLS) if i not in present)
    raise DataError(
        f"{source} lacks {missing:,} of the {N_CELLS:,} NAS-Bench-201 cells (e.g. index {first}, "
        f"{bench.space.to_str(bench.space.from_index(first))}); a benchmark table must hold every cell"
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
        arch, metrics = _cell_results(api, space, index, dataset, path.name)
        archs.append(arch)
        indices.append(index)
        for name, value in metrics.items():
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
        from nas_201_api import NASBench201API
    except ImportError as exc:  # pragma: no cover - an install requirement
        raise DataError(f"reading .pth files needs nas-bench-201: {exc}") from None
    raw = read_pth_safely(path)
    if not (isinstance(raw, dict) and {"meta_archs", "arch2infos", "evaluated_indexes"} <= set(raw)):
        raise DataError(
            f"{path.name} is not an official NAS-Bench-201 file: expected a dict with meta_archs, "
            "arch2infos and evaluated_indexes"
        )
    try:
        return NASBench201API(raw, verbose=False)
    except Exception as exc:  # the API asserts on malformed content; any failure means a bad file
        raise DataError(f"{path.name} is not an official NAS-Bench-201 file: {type(exc).__name__}: {exc}") from None


def read_pth_safely(path: Path) -> object:
    """The content of a ``.pth`` file, unpickled without running code from it.

    ``torch.load(weights_only=True)`` builds only containers, numbers, strings and tensors; the numpy
    scalars of older official files are allowed besides (see :func:`_numpy_safe_globals`). A file that
    needs any other class or function is refused, naming it.
    """
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - an install requirement
        raise DataError(f"reading .pth files needs torch: {exc}") from None
    try:
        with torch.serialization.safe_globals(_numpy_safe_globals()), warnings.catch_warnings():
            # torch warns about pickle protocols its restricted unpickler was not written for; the
            # outcome (loaded, or refused below) is what the user needs, in one line.
            warnings.simplefilter("ignore", UserWarning)
            return torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise DataError(
            f"{path.name} is not an official NAS-Bench-201 file: it needs {_refused_global(str(exc))} to load, "
            "and nasloop does not run code from data files"
        ) from None
    except Exception as exc:  # torch reports a damaged or foreign file with many exception types
        raise DataError(f"{path.name} is not an official NAS-Bench-201 file: {type(exc).__name__}: {exc}") from None


def _numpy_safe_globals() -> list:
    """numpy scalars and arrays (as pickled by numpy 1.x and 2.x): they rebuild values, never call code."""
    import numpy as np

    try:
        from numpy._core.multiarray import _reconstruct, scalar
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import _reconstruct, scalar  # type: ignore[no-redef]
    dtypes = getattr(np, "dtypes", None)  # numpy >= 1.25 pickles a scalar's dtype with its class
    kinds = ("Float16", "Float32", "Float64", "Int8", "Int16", "Int32", "Int64", "UInt8", "UInt16", "UInt32",
             "UInt64", "Bool")
    allowed: list = [np.dtype, np.ndarray]
    allowed += [getattr(dtypes, f"{k}DType") for k in kinds if hasattr(dtypes, f"{k}DType")]
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        allowed += [(scalar, f"{module}.scalar"), (_reconstruct, f"{module}._reconstruct")]
    return allowed


def _refused_global(message: str) -> str:
    """The class or function named in torch's refusal (``... GLOBAL posix.system ...``)."""
    found = re.search(r"GLOBAL ([\w.]+)", message) or re.search(r"got <class '([\w.]+)'>", message)
    return found.group(1) if found else "a class or function"


def _cell_results(api, space: NasBench201Space, index: int, dataset: str, file_name: str):
    """The architecture and metrics of one evaluated cell; ``DataError`` when the file's entry is malformed."""
    try:
        return space.from_str(api.meta_archs[index]), _official_metrics(api, index, dataset)
    except (InvalidArchitectureError, DataError) as exc:
        raise DataError(f"{file_name}: {exc}") from None
    except (TypeError, KeyError, IndexError, AttributeError, ValueError) as exc:
        raise DataError(f"{file_name}: cell {index} has malformed results: {type(exc).__name__}: {exc}") from None


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
            out[f"val_acc{suffix}"] = val
        if main.get("test-accuracy") is not None:
            out[f"test_acc{suffix}"] = main["test-accuracy"]
        if hp == "200" and main.get("train-all-time") is not None:
            out["train_time"] = main["train-all-time"]
    return {name: _finite(value, index, name) for name, value in out.items()}


def _finite(value: object, index: int, name: str) -> float:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        number = math.nan
    if not math.isfinite(number):
        raise DataError(f"cell {index} of the .pth file has {name} = {value}, expected a finite number")
    return number


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
    """``nasloop data convert``: official ``.pth`` (or any readable source) → compact CSV table.

    The cells the source holds are copied as they are; :func:`load_benchmark` refuses a table that
    lacks some of the 15,625 cells.
    """
    bench = _read_source(str(src), dataset)
    return write_csv(bench, dst)
