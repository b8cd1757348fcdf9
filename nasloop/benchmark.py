"""The Benchmark contract (the oracle) and a table-backed implementation.

A benchmark is pure: ``query(arch)`` answers with an :class:`Evaluation` and keeps no budget; the
loop's :class:`~nasloop.budget.Budget` decides what may be asked.
"""

from __future__ import annotations

import csv
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from nasloop.errors import ConfigError, DataError, InvalidArchitectureError, UnknownNameError
from nasloop.space import SearchSpace
from nasloop.types import Evaluation


class Benchmark(ABC):
    """Answers true metrics for architectures of one space.

    Attributes:
        space: the search space the benchmark's architectures belong to.
        label: an honest, human-readable description of the data source (printed in outputs).
        progress: a hook a benchmark that trains calls as ``progress(done, total)`` during each
            evaluation, when set (the CLI sets it to draw a "training cell" bar); ``None``: unset.
            Tables never call it.
    """

    space: SearchSpace
    label: str = "benchmark"
    progress: Callable[[int, int], None] | None = None

    @property
    @abstractmethod
    def metrics(self) -> tuple[str, ...]:
        """Names of the metrics that ``query`` returns."""

    @abstractmethod
    def query(self, arch: Hashable) -> Evaluation:
        """True metrics (and cost) of ``arch``."""

    def check_metric(self, metric: str) -> str:
        """Return ``metric`` or raise ``UnknownNameError`` listing the available ones."""
        if metric not in self.metrics:
            raise UnknownNameError(
                f"metric {metric!r} is not in {self.label}; available: {', '.join(self.metrics)}"
            )
        return metric

    def optimum(self, metric: str, *, maximize: bool = True) -> tuple[float, Hashable] | None:
        """Best value of ``metric`` and its architecture, when the benchmark knows it (tables do)."""
        return None

    def size(self) -> int | None:
        """How many architectures the benchmark holds; ``None`` when it evaluates on demand."""
        return None

    def table(self) -> TabularBenchmark | None:
        """The full table of every architecture's metrics behind the benchmark (``archs``,
        ``values(metric)``), or ``None`` when it has none (it evaluates on demand)."""
        return None


class TabularBenchmark(Benchmark):
    """A benchmark backed by a full table: one row per architecture, one column per metric.

    Args:
        space: the space the rows belong to.
        archs: one architecture per row.
        columns: metric name → values aligned with ``archs`` (NaN marks a missing value).
        label: description of the data source.
        cost_column: optional column used as the simulated cost of a query (e.g. train seconds).
        indices: optional official index per row (shown by ``nasloop data info``).
    """

    def __init__(
        self,
        space: SearchSpace,
        archs: Sequence[Hashable],
        columns: Mapping[str, Sequence[float]],
        *,
        label: str,
        cost_column: str | None = None,
        indices: Sequence[int] | None = None,
    ) -> None:
        self.space = space
        self.label = label
        self.archs = list(archs)
        self.columns = {k: np.asarray(v, dtype=np.float64) for k, v in columns.items()}
        for name, values in self.columns.items():
            if len(values) != len(self.archs):
                raise ValueError(f"column {name!r} has {len(values)} values for {len(self.archs)} rows")
        self.indices = list(indices) if indices is not None else list(range(len(self.archs)))
        self.cost_column = cost_column
        self._row = {arch: i for i, arch in enumerate(self.archs)}
        self._metric_names = tuple(self.columns)

    def __len__(self) -> int:
        return len(self.archs)

    def size(self) -> int:
        return len(self.archs)

    def table(self) -> TabularBenchmark:
        return self

    @property
    def metrics(self) -> tuple[str, ...]:
        return self._metric_names

    def row_of(self, arch: Hashable) -> int:
        try:
            return self._row[arch]
        except (KeyError, TypeError):
            raise InvalidArchitectureError(
                f"{arch!r} is not in {self.label} ({len(self)} architectures)"
            ) from None

    def query(self, arch: Hashable) -> Evaluation:
        row = self.row_of(arch)
        metrics = {k: v[row] for k, v in self.columns.items() if np.isfinite(v[row])}
        cost = self.columns[self.cost_column][row] if self.cost_column else 0.0
        return Evaluation(metrics, cost=cost if np.isfinite(cost) else 0.0)

    def values(self, metric: str) -> np.ndarray:
        """The column of ``metric`` aligned with ``self.archs``."""
        return self.columns[self.check_metric(metric)]

    def optimum(self, metric: str, *, maximize: bool = True) -> tuple[float, Hashable]:
        values = self.values(metric)
        row = int(np.nanargmax(values) if maximize else np.nanargmin(values))
        return float(values[row]), self.archs[row]


@dataclass(frozen=True)
class CsvTable:
    """A CSV table read by :func:`read_csv_table`: clean, unique column names and rows of the header's width.

    Attributes:
        name: the file name, for messages.
        header: column names, byte-order mark and surrounding spaces stripped.
        rows: ``(line number, fields)`` per non-blank row, each with ``len(header)`` fields.
    """

    name: str
    header: tuple[str, ...]
    rows: list[tuple[int, list[str]]]
    positions: dict[str, int] = field(repr=False)

    def position(self, column: str) -> int | None:
        """Index of ``column`` in each row, or ``None`` when the table lacks it (constant time)."""
        return self.positions.get(column)


def read_csv_table(path: str | Path) -> CsvTable:
    """Read a UTF-8 CSV table whose first line names its columns, in time linear in the file size.

    Raises ``DataError`` for an unreadable or empty file, an empty or repeated column name, or a row
    whose number of fields differs from the header's. Blank lines are skipped.
    """
    path = Path(path)
    try:
        # utf-8-sig drops a leading byte-order mark, which would otherwise become part of the first name.
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            if header is None:
                raise DataError(f"table {str(path)!r} is empty; expected a header line naming its columns")
            names = tuple(_clean_name(h) for h in header)
            positions = _column_positions(names, path.name)
            rows: list[tuple[int, list[str]]] = []
            for row in reader:
                if not row or (len(row) == 1 and not row[0].strip()):
                    continue
                if len(row) != len(names):
                    raise DataError(
                        f"{path.name} line {reader.line_num}: {len(row)} fields, header has {len(names)}"
                    )
                rows.append((reader.line_num, row))
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read table {str(path)!r}: {exc}") from None
    except csv.Error as exc:  # NUL bytes, oversized fields, unterminated quotes
        raise DataError(f"{path.name} is not a readable CSV table: {exc}") from None
    return CsvTable(path.name, names, rows, positions)


def _clean_name(raw: str) -> str:
    return raw.strip().lstrip("\ufeff").strip()


def _column_positions(names: Sequence[str], file_name: str) -> dict[str, int]:
    positions: dict[str, int] = {}
    for pos, name in enumerate(names):
        if not name:
            raise DataError(f"{file_name}: column {pos + 1} of the header has no name")
        if name in positions:
            raise DataError(
                f"{file_name}: the header names column {name!r} twice (columns {positions[name] + 1} and {pos + 1})"
            )
        positions[name] = pos
    return positions


def parse_metric_cell(text: str, *, table: str, line: int, column: str) -> float:
    """A metric value of a table: a finite number, or NaN for an empty cell (value not measured).

    Written ``inf`` or ``nan`` values are refused: they would turn optima and regrets into ``inf``.
    """
    cell = text.strip()
    if not cell:
        return math.nan
    try:
        value = float(cell)
    except ValueError:
        raise DataError(f"{table} line {line}: column {column!r} holds {cell!r}, expected a number") from None
    if not math.isfinite(value):
        raise DataError(
            f"{table} line {line}: column {column!r} holds {cell!r}, expected a finite number "
            "(leave the cell empty for a missing value)"
        )
    return value


def parse_index_cell(text: str, *, table: str, line: int, column: str = "index") -> int:
    """A non-negative integer identifier such as an official cell index (digits only)."""
    cell = text.strip()
    if not (cell.isascii() and cell.isdigit()) or len(cell) > 18:
        raise DataError(f"{table} line {line}: column {column!r} holds {cell!r}, expected a whole number >= 0")
    return int(cell)


def table_of(bench: object) -> TabularBenchmark | None:
    """The full table behind ``bench`` (:meth:`Benchmark.table`, also through a ``--cost`` wrapper);
    ``None`` for a benchmark that evaluates on demand."""
    from nasloop.simulate import CostColumn

    if isinstance(bench, CostColumn):
        return bench.table()
    return bench.table() if isinstance(bench, Benchmark) else None


# --- several tables of one space, joined on the architecture ------------------------------------------
DataSource = str | Sequence[str] | None


def data_sources(data: DataSource) -> list[str]:
    """``data`` (``None``, one path, or several) as a list of paths; an empty list means the default."""
    if data is None:
        return []
    if isinstance(data, str | Path):
        return [str(data)]
    if isinstance(data, Sequence) and all(isinstance(d, str | Path) for d in data):
        return [str(d) for d in data]
    raise ConfigError(f"data must be a path or a list of paths, got {data!r}")


def single_or_list(sources: Sequence[str]) -> str | list[str] | None:
    """The stored form of ``--data``: ``None``, one path, or a list when several tables are joined."""
    return None if not sources else sources[0] if len(sources) == 1 else list(sources)


def resolved_sources(data: DataSource) -> str | list[str] | None:
    """``data`` as recorded in a run or study file: absolute paths, one or a list."""
    return single_or_list([str(Path(d).expanduser().resolve()) for d in data_sources(data)])


def join_tables(tables: Sequence[Benchmark], sources: Sequence[str]) -> TabularBenchmark:
    """One table with every metric column of ``tables`` (full tables of one space), rows of the first.

    Accuracy and latency columns measured in different files can then be searched together. Refused
    with a one-line ``ConfigError``: a source that is not a full table, tables covering different
    cells (their counts named), and a column name that two tables share (which one would be meant?).
    """
    for table, source in zip(tables, sources, strict=True):
        if not isinstance(table, TabularBenchmark):
            raise ConfigError(f"--data {source} is not a table ({type(table).__name__}); only full tables of "
                              "one space can be joined")
    first, first_source = tables[0], sources[0]
    columns: dict[str, np.ndarray] = dict(first.columns)
    owner = dict.fromkeys(first.columns, first_source)
    for table, source in zip(tables[1:], sources[1:], strict=True):
        _check_same_cells(first, first_source, table, source)
        order = np.fromiter((table.row_of(a) for a in first.archs), dtype=np.int64, count=len(first))
        for name, values in table.columns.items():
            if name in columns:
                raise ConfigError(f"column {name!r} is in both {owner[name]} and {source}; join tables whose "
                                  "metric columns differ")
            columns[name], owner[name] = values[order], source
    cost = next((t.cost_column for t in tables if t.cost_column), None)
    label = " + ".join(t.label for t in tables)
    return TabularBenchmark(first.space, first.archs, columns, label=label, cost_column=cost, indices=first.indices)


def _check_same_cells(a: TabularBenchmark, a_source: str, b: TabularBenchmark, b_source: str) -> None:
    if type(a.space) is not type(b.space):
        raise ConfigError(f"{a_source} and {b_source} hold cells of different spaces "
                          f"({type(a.space).__name__}, {type(b.space).__name__}); they cannot be joined")
    if len(a) != len(b) or any(arch not in b._row for arch in a.archs):
        common = sum(arch in b._row for arch in a.archs)
        raise ConfigError(f"{a_source} has {len(a):,} cells and {b_source} {len(b):,}, {common:,} in common; "
                          "joined tables must hold the same cells")
