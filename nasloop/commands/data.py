"""``nasloop data info`` and ``nasloop data convert``."""

from __future__ import annotations

import math
from pathlib import Path

import click

from nasloop.commands.common import data_options, emit_json, json_option, space_option
from nasloop.errors import DataError, UnknownNameError
from nasloop.registry import import_target, make_benchmark


@click.group()
def data() -> None:
    """Inspect and convert benchmark data."""


def describe(bench, space_name: str) -> dict:
    """Source, size, metric columns and the best value and cell per metric of a table benchmark."""
    info = {
        "space": space_name,
        "source": bench.label,
        "n_cells": bench.size(),  # None: e.g. a training benchmark
        "metrics": list(bench.metrics),
        "best": {},
    }
    table = bench.table()
    if table is None:
        return info
    for metric in table.metrics:
        values = table.values(metric)
        if not any(math.isfinite(v) for v in values):
            continue
        best, arch = table.optimum(metric)
        row = table.row_of(arch)
        info["best"][metric] = {
            "value": best,
            "index": table.indices[row],
            "arch": table.space.to_str(arch),
            "n_values": int(sum(math.isfinite(v) for v in values)),
        }
    return info


@data.command("info")
@space_option
@data_options
@json_option
def info(space: str, data: str | list[str] | None, dataset: str | None, as_json: bool) -> None:
    """Source, number of cells, metric columns and the best value and cell per metric."""
    bench = make_benchmark(space, data=data, dataset=dataset)
    summary = describe(bench, space)
    if as_json:
        emit_json(summary)
        return
    click.echo(f"source:  {summary['source']}")
    click.echo(f"space:   {space}")
    n_cells = summary["n_cells"]
    click.echo(f"cells:   {n_cells:,}" if n_cells is not None else "cells:   not enumerable (evaluated on demand)")
    click.echo(f"metrics: {', '.join(summary['metrics'])}")
    if summary["best"]:
        width = max(len(m) for m in summary["best"])
        click.echo("best per metric (highest value):")
        for metric, best in summary["best"].items():
            click.echo(f"  {metric:<{width}}  {best['value']:.4f}  index {best['index']}  {best['arch']}")


@data.command("convert")
@click.argument("source", type=click.Path(dir_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="CSV table to write.")
@space_option
@click.option("--dataset", default=None, help="Dataset inside an official file (e.g. cifar10, cifar100).")
def convert(source: str, output: str, space: str, dataset: str | None) -> None:
    """Export an official benchmark file (NAS-Bench-201 .pth, NAS-Bench-101 .tfrecord) as a compact CSV."""
    if not Path(source).is_file():
        raise DataError(f"{source!r} does not exist")
    out = Path(output)
    if not out.parent.exists():
        raise DataError(f"output folder {str(out.parent)!r} does not exist")
    converter = _converter(space)
    written = converter(source, output, dataset=dataset)
    click.echo(f"wrote {written}")


def _converter(space: str):
    targets = {
        "nb201": "search_spaces.nasbench201.data:convert",
        "nb101": "search_spaces.nasbench101.data:convert",
    }
    if space not in targets:
        raise UnknownNameError(f"no converter for space {space!r}; converters exist for {', '.join(targets)}")
    return import_target(targets[space])
