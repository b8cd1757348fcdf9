"""Options and helpers shared by the subcommands: data selection, JSON output, progress bars."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

import click

from nasloop.errors import ConfigError
from nasloop.option_types import (  # noqa: F401  (the subcommands import them from here)
    BOOLEAN,
    FIT_BUDGET,
    INTEGER,
    NUMBER,
    PATHS,
    POOL,
    TABLE,
    TEXT,
    check_toml_types,
)

F = Callable[..., Any]


def space_option(f: F) -> F:
    return click.option(
        "--space", default="nb201", show_default=True,
        help="Search space name (see `nasloop list`) or package.module:Class.",
    )(f)


def data_options(f: F) -> F:
    f = click.option(
        "--dataset", default=None,
        help="Dataset inside the data source (e.g. cifar10-valid, cifar100, ImageNet16-120 for .pth).",
    )(f)
    return click.option(
        "--data", multiple=True, metavar="PATH", callback=_one_or_several,
        help="Benchmark data: a CSV table or an official file; repeat to join tables of the space on the "
        "architecture (e.g. accuracy and latency). Default: $NASLOOP_NB201, then the zero-download "
        "AnalogNAS-Bench table.",
    )(f)


def _one_or_several(_ctx: Any, _param: Any, values: tuple[str, ...]) -> str | list[str] | None:
    """``--data`` as given: ``None``, one path, or the list of tables to join."""
    from nasloop.benchmark import single_or_list

    return single_or_list(list(values))


def json_option(f: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print a machine-readable summary.")(f)


def emit_json(payload: Any) -> None:
    json.dump(payload, sys.stdout, indent=2, sort_keys=False, default=_json_default)
    sys.stdout.write("\n")


def _json_default(obj: Any) -> Any:
    import numpy as np

    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, tuple | set):
        return list(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def load_toml(path: str | None) -> dict[str, Any]:
    """Options from a TOML config file (flags given on the command line override them)."""
    if not path:
        return {}
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"config file {path!r} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path!r} is not valid TOML: {exc}") from None


def check_finite_flag(name: str, value: float | None) -> None:
    """``--max-cost`` / ``--max-seconds``: a positive finite number (click's float accepts nan and inf)."""
    import math

    if value is not None and not (math.isfinite(value) and value > 0):
        raise ConfigError(f"--{name.replace('_', '-')} must be a positive finite number of seconds, got {value}")


def progress(*, transient: bool = False, disable: bool = False) -> Any:
    """A rich progress bar on stderr (stdout stays clean for --json)."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[info]}"),
        console=Console(stderr=True),
        transient=transient,
        disable=disable,
    )
