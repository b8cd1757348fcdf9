"""``nasloop predictor pretrain``: one shared model over many targets, saved as a prior folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from nasloop.commands.common import emit_json, json_option, progress, space_option
from nasloop.errors import ConfigError
from nasloop.registry import make_benchmark


@click.command("pretrain")
@space_option
@click.option("--data", "tables", multiple=True, required=True, metavar="TABLE",
              help="Table to learn from (repeatable; rows are matched by architecture).")
@click.option("--target", "columns", multiple=True, required=True, metavar="COL",
              help="Target column (repeatable), or 'all' for every metric column of every table. "
                   "With several tables, a name takes the column from each table that has it.")
@click.option("--predictor", type=click.Choice(["nnformer", "narformer2"]), default="nnformer", show_default=True,
              help="Whose encoder the prior shares across targets.")
@click.option("--preset", type=click.Choice(["fast", "paper"]), default="fast", show_default=True,
              help="Model sizes of the predictor's preset.")
@click.option("--steps", type=int, default=None, help="Optimiser steps [default: 3000].")
@click.option("--max-cells", default=None, metavar="N|all",
              help="Cells drawn at random to learn from [default: 4000]; 'all' for every row.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of initialisation and batching.")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Prior folder to write (must not exist).")
@json_option
def pretrain_cmd(space: str, tables: tuple[str, ...], columns: tuple[str, ...], predictor: str, preset: str,
                 steps: int | None, max_cells: str | None, seed: int, out: str, as_json: bool) -> None:
    """Pre-train a prior on several targets (e.g. every device of a latency table).

    The prior adapts to a new target from a few measured cells: give it to
    `predictor eval --prior`, `search --prior` or `compare --prior`.

    Example: nasloop predictor pretrain --data ../shared/data/nb201/latency_ms.csv --target all
    --out priors/nb201_latency
    """
    from predictors.prior import PretrainConfig, default_graph_kind, pretrain, save_prior, target_kinds

    cfg = PretrainConfig(seed=seed)
    if steps is not None:
        if steps < 1:
            raise ConfigError(f"--steps must be >= 1, got {steps}")
        cfg.steps = steps
    if max_cells is not None:
        cfg.max_cells = _parse_cells(max_cells)
    target = Path(out)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise ConfigError(f"--out {out!r} exists and is not empty; choose a new folder")
    names, values, labels, graphs, sources = _targets(space, tables, columns, predictor)
    kinds = target_kinds([n.rsplit("/", 1)[-1] for n in names], labels)
    graph_kind = default_graph_kind(predictor, kinds)
    from nasloop.space import graphs_for

    graphs_of_kind = graphs_for(graphs[0], graphs[1], graph_kind)
    with progress(transient=True) as bar:
        task = bar.add_task(f"pretrain {predictor} on {len(names)} targets", total=cfg.steps, info="")

        def on_step(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        settings, network = pretrain(graphs_of_kind, values, names, kinds, predictor=predictor, preset=preset,
                                     graph_kind=graph_kind, config=cfg, sources=sources, callback=on_step)
    digest = save_prior(target, settings, network)
    if as_json:
        emit_json({"out": str(target), "sha256": digest, "targets": names, "kinds": kinds,
                   "n_cells": settings["n_cells"], "fit_seconds": settings["fit_seconds"]})
        return
    click.echo(f"prior: {len(names)} targets ({', '.join(names)}), {settings['n_cells']:,} cells, "
               f"{cfg.steps} steps, {settings['fit_seconds']:.0f} s")
    click.echo(f"wrote {target} (sha256 {digest})")


def _parse_cells(text: str) -> int | None:
    if text == "all":
        return None
    try:
        value = int(text)
    except ValueError:
        raise ConfigError(f"--max-cells must be a positive integer or 'all', got {text!r}") from None
    if value < 2:
        raise ConfigError(f"--max-cells must be >= 2, got {value}")
    return value


def _targets(space: str, tables: tuple[str, ...], columns: tuple[str, ...],
             predictor: str) -> tuple[list[str], Any, list[str], tuple[Any, list[Any]], list[str]]:
    """(target names, values (rows, T), table label per target, (space, archs), table paths)."""
    import numpy as np

    benches = [make_benchmark(space, data=t) for t in tables]
    if "all" in columns and len(columns) > 1:
        raise ConfigError("--target all takes every column; give it alone")
    wanted = None if "all" in columns else list(dict.fromkeys(columns))
    first = benches[0]
    names, cols, labels = [], [], []
    several = len(benches) > 1
    for table, bench in zip(tables, benches):
        take = list(bench.metrics) if wanted is None else [c for c in wanted if c in bench.metrics]
        rows = np.fromiter((bench.row_of(a) if _has(bench, a) else -1 for a in first.archs), dtype=np.int64,
                           count=len(first.archs))
        for col in take:
            column = np.asarray(bench.values(col), dtype=float)
            values = np.where(rows >= 0, column[np.clip(rows, 0, None)], np.nan)
            names.append(f"{Path(table).stem}/{col}" if several else col)
            cols.append(values)
            labels.append(getattr(bench, "label", ""))
    if wanted is not None:
        missing = [c for c in wanted if not any(c in b.metrics for b in benches)]
        if missing:
            raise ConfigError(f"--target {missing} is in none of the tables; columns: "
                              f"{sorted({m for b in benches for m in b.metrics})}")
    if not names:
        raise ConfigError("no target columns to learn from")
    return names, np.stack(cols, axis=1), labels, (first.space, list(first.archs)), [str(t) for t in tables]


def _has(bench: Any, arch: Any) -> bool:
    try:
        bench.row_of(arch)
    except Exception:  # any lookup failure means the table lacks the cell
        return False
    return True
