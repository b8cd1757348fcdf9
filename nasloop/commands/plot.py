"""``nasloop plot``: search-efficiency curves, queries-to-optimum box plot, predictor scatter."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import click

from nasloop.commands.common import emit_json, json_option
from nasloop.errors import ConfigError, NasloopError
from nasloop.study import ConfigSummary, RunResult, aggregate, find_runs

log = logging.getLogger(__name__)


def optimum_of(run: RunResult, metric: str, report: str) -> tuple[float | None, float | None]:
    """Optimum of the search and report metrics: from the run's summary, else from its benchmark."""
    optimum = run.summary.get("optimum") or {}
    if metric in optimum and report in optimum:
        return float(optimum[metric]["value"]), float(optimum[report]["value"])
    try:
        from nasloop.registry import make_benchmark

        bench = make_benchmark(run.config["space"], data=run.config.get("data"), dataset=run.config.get("dataset"))
        maximize = (run.config.get("direction") or "max") == "max"
        found = bench.optimum(metric, maximize=maximize), bench.optimum(report, maximize=maximize)
        return (float(found[0][0]) if found[0] else None, float(found[1][0]) if found[1] else None)
    except NasloopError as exc:  # the data moved: plot without the optimum line
        log.warning("no optimum line: %s", exc)
        return None, None


def render(runs: list[RunResult], out_dir: Path, *, fmt: str = "png", log_x: bool = False,
           x: str = "queries") -> dict[str, Any]:
    """Write the figures (and return the aggregated summaries) for a set of runs."""
    from nasloop.plotting import plot_curves, plot_queries_to_optimum, plot_run_scatter

    if any(r.config.get("objectives") for r in runs):  # Pareto searches: hypervolume-gap curves, fronts
        from nasloop.pareto_study import render_pareto

        return render_pareto(runs, out_dir, fmt=fmt, log_x=log_x)
    metrics = {(r.config.get("metric"), r.config.get("report")) for r in runs}
    if len(metrics) != 1:
        raise ConfigError(f"the runs search or report different metrics {sorted(metrics)}; plot them separately")
    metric, report = metrics.pop()
    opt_metric, opt_report = optimum_of(runs[0], metric, report)
    summaries: list[ConfigSummary] = aggregate(runs, metric=metric, report=report,
                                               optimum=opt_metric if opt_metric is not None else float("nan"))
    out_dir.mkdir(parents=True, exist_ok=True)
    if x == "time":
        from nasloop.plotting import plot_time_curves

        simulated = all((r.config.get("execution") or {}).get("simulate") for r in runs)
        files = [plot_time_curves(runs, out_dir / f"curves_time.{fmt}", metric=metric, report=report,
                                  optimum=opt_report, simulated=simulated, log_x=log_x)]
    else:
        files = [plot_curves(summaries, out_dir / f"curves.{fmt}", report=report, optimum=opt_report, log_x=log_x)]
    if opt_metric is not None:
        files.append(plot_queries_to_optimum(summaries, out_dir / f"queries_to_optimum.{fmt}"))
    if len(runs) == 1:
        files.append(plot_run_scatter(runs[0], out_dir / f"predictor_scatter.{fmt}", metric=metric))
    return {"metric": metric, "report": report, "optimum": {metric: opt_metric, report: opt_report},
            "summaries": summaries, "files": [str(f) for f in files]}


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--out", "out_dir", default=None, type=click.Path(file_okay=False),
              help="Folder for the figures (default: the first path given).")
@click.option("--svg", is_flag=True, help="SVG instead of PNG.")
@click.option("--log-x", is_flag=True, help="Log-scaled x axis (true evaluations, or time).")
@click.option("--x", "x_axis", type=click.Choice(["queries", "time"]), default="queries", show_default=True,
              help="Curves against true queries, or against time (simulated time for --simulate runs).")
@json_option
def plot(paths: tuple[str, ...], out_dir: str | None, svg: bool, log_x: bool, x_axis: str, as_json: bool) -> None:
    """Plot studies or single runs: curves with 95% bands, queries to the optimum, predictor scatter."""
    for p in paths:
        if not Path(p).exists():
            raise ConfigError(f"{p!r} does not exist; give a study directory or a run directory")
    runs = find_runs(paths)
    target = Path(out_dir) if out_dir else Path(paths[0])
    result = render(runs, target, fmt="svg" if svg else "png", log_x=log_x, x=x_axis)
    if as_json:
        emit_json({"files": result["files"], "configurations": [s.to_json() for s in result["summaries"]]})
        return
    for f in result["files"]:
        click.echo(f"wrote {f}")
