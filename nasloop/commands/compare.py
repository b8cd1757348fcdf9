"""``nasloop compare``: strategies × predictors × seeds in parallel, then tables and plots."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import click

from nasloop.commands.common import (
    BOOLEAN,
    INTEGER,
    TABLE,
    TEXT,
    check_toml_types,
    data_options,
    emit_json,
    json_option,
    load_toml,
    progress,
    space_option,
)
from nasloop.errors import ConfigError
from nasloop.runspec import RunSpec
from nasloop.search_config import SearchConfig

AT = (25, 50, 100, 150)
_LIST_OF_TEXT = "a list of strings"
_LIST_OF_TABLES = "a list of tables ([[configs]])"
# The run options a study file may set for all its runs (their types are the runs' own), then the
# study's own keys (seeds: a count or a list, checked by _seeds).
_RUN_KEYS = ("space", "data", "dataset", "metric", "report", "preset", "budget", "objectives", "constraints",
             "workers", "simulate", "cost", "cost_scale", "scheduler", "scheduler_file")
_FILE_TYPES: dict[str, str | None] = {
    **{k: RunSpec.toml_types()[k] for k in _RUN_KEYS}, **SearchConfig.toml_types(),
    "jobs": INTEGER, "log_x": BOOLEAN, "out": TEXT, "prior": TEXT, "search": TABLE, "seeds": None,
    "strategies": _LIST_OF_TEXT, "predictors": _LIST_OF_TEXT, "configs": _LIST_OF_TABLES,
}
_CONFIG_KEYS = ("strategy", "predictor", "label", "preset", "search", "strategy_options", "predictor_options")


def _seeds(value: Any) -> tuple[int, ...]:
    def count(v: Any) -> bool:
        return isinstance(v, int) and not isinstance(v, bool)

    if count(value):
        if value < 1:
            raise ConfigError(f"--seeds must be at least 1, got {value}")
        return tuple(range(value))
    if isinstance(value, list) and value and all(count(v) and v >= 0 for v in value):
        if len(set(value)) < len(value):
            raise ConfigError(f"seeds must not repeat, got {value!r}")
        return tuple(value)
    raise ConfigError(f"seeds must be a count or a list of non-negative integers, got {value!r}")


def study_file_options(path: str | None) -> dict[str, Any]:
    """The options of a study TOML file, with unknown keys and ill-typed values refused."""
    raw = load_toml(path)
    options = {k.replace("-", "_"): v for k, v in raw.items()}
    if "strategy" in options or "predictor" in options:
        raise ConfigError("in the study file write strategies = [...] and predictors = [...] (plural)")
    unknown = sorted(set(options) - set(_FILE_TYPES))
    if unknown:
        raise ConfigError(f"{path}: unknown options {unknown}; valid: {', '.join(_FILE_TYPES)}")
    # Every key of a known type is checked, also where a flag overrides it: a wrong file is refused.
    check_toml_types(path, {k: v for k, v in options.items()
                            if _FILE_TYPES[k] not in (None, _LIST_OF_TEXT, _LIST_OF_TABLES)}, _FILE_TYPES)
    for key in ("strategies", "predictors"):
        value = options.get(key)
        if value is not None and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            raise ConfigError(f"{path}: {key} must be {_LIST_OF_TEXT}, got {value!r}")
    configs = options.get("configs")
    if configs is not None:
        if not isinstance(configs, list) or not all(isinstance(c, dict) for c in configs):
            raise ConfigError(f"{path}: configs must be {_LIST_OF_TABLES}, got {configs!r}")
    return options


def check_configs(spec: Any, bench: Any) -> None:
    """Build every configuration's strategy and predictor once, before anything is written: an
    unknown name, preset or option is refused here, not by a worker after study.json exists."""
    from nasloop.loop import check_parts
    from nasloop.registry import make_space
    from nasloop.space import SearchSpace

    space = bench.space if isinstance(getattr(bench, "space", None), SearchSpace) else make_space(spec.space)
    for config in spec.configs:
        if spec.objectives:
            from nasloop.multiobjective import make_mo_strategy
            from nasloop.objectives import build_goal

            make_mo_strategy(config.strategy, space, build_goal("", objectives=spec.objectives), seed=0,
                             **config.strategy_options)
            continue
        check_parts(space, spec.run_spec(config, seed=0))


def build_spec(options: dict[str, Any]):
    """The StudySpec from merged TOML + flag options (flags win)."""
    from nasloop.compare import StudyConfig, StudySpec, grid

    search = {k: SearchConfig.parse_option(k, options[k]) for k in SearchConfig.toml_types()
              if options.get(k) is not None}
    predictors = options.get("predictors") or ([] if options.get("prior") else ["none"])
    configs = list(grid(options.get("strategies") or [], predictors,
                        preset=options.get("preset") or "fast", search={**options.get("search", {}), **search}))
    if not options.get("strategies"):
        configs = []
    configs += _prior_configs(options, search)
    for entry in options.get("configs", []):
        if not isinstance(entry, dict) or "strategy" not in entry:
            raise ConfigError(f"each [[configs]] entry needs a strategy, got {entry!r}")
        extra = sorted(set(entry) - set(_CONFIG_KEYS))
        if extra:
            raise ConfigError(f"unknown keys {extra} in a [[configs]] entry; valid: {', '.join(_CONFIG_KEYS)}")
        configs.append(StudyConfig(**entry))
    return StudySpec(
        configs=tuple(configs), seeds=_seeds(options.get("seeds", 5)), budget=options.get("budget", 100),
        space=options.get("space") or "nb201", data=options.get("data"), dataset=options.get("dataset"),
        metric=options.get("metric"), report=options.get("report"),
        objectives=_strings(options.get("objectives")), constraints=_strings(options.get("constraints")),
        execution=_run_execution(options),
    )


def _strings(value: Any) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(value or ())


def _run_execution(options: dict[str, Any]) -> dict[str, Any] | None:
    """Each run's execution in a study: simulated parallel time (``--workers N --simulate --cost``)."""
    from nasloop.compare import RUN_EXECUTION_KEYS

    execution = {k: options[k] for k in RUN_EXECUTION_KEYS if options.get(k) is not None}
    if not execution.get("simulate"):
        execution.pop("simulate", None)
    return execution or None


def _prior_configs(options: dict[str, Any], search: dict[str, Any]) -> list:
    """One configuration per strategy with ``--prior DIR`` adapted at every refit (warm-up 5 unless set)."""
    if not options.get("prior"):
        return []
    from nasloop.compare import StudyConfig
    from predictors.prior import PRIOR_WARMUP, prior_options

    loop = {**options.get("search", {}), **search}
    loop.setdefault("n_warmup", PRIOR_WARMUP)
    return [StudyConfig(strategy=s, predictor="prior", preset=options.get("preset") or "fast", search=loop,
                        predictor_options=prior_options(options["prior"]))
            for s in options.get("strategies") or []]


@click.command()
@click.option("--config", "config_file", default=None, type=click.Path(dir_okay=False),
              help="TOML study file (keys as the flags; [[configs]] tables for tuned configurations).")
@space_option
@data_options
@click.option("--metric", default=None, help="Metric to search (default: val_acc, else test_acc, else first).")
@click.option("--report", default=None, help="Metric to report (default: test_acc when searching val_acc).")
@click.option("--objective", "objectives", multiple=True, metavar="METRIC[:max|min]",
              help="Repeat 2-3 times to compare Pareto searches (strategies random, nsga2, motpe).")
@click.option("--constraint", "constraints", multiple=True, metavar="METRIC<=X|METRIC>=X",
              help="Constraint of every run (repeatable), e.g. \"pixel3<=8.5\".")
@click.option("--strategy", "strategies", multiple=True, help="Strategy (repeatable): random, evolution, tpe.")
@click.option("--predictor", "predictors", multiple=True,
              help="Predictor (repeatable): none, nnformer, narformer2, mlp, gin, rf.")
@click.option("--preset", default=None, help="Predictor preset (fast | paper).")
@click.option("--prior", default=None, type=click.Path(file_okay=False), metavar="PRIOR_DIR",
              help="Add, per strategy, a configuration adapting this pre-trained prior (from "
                   "`predictor pretrain`) at every refit; its warm-up defaults to 5 queries.")
@click.option("--seeds", type=int, default=None, help="Number of seeds per configuration (0..N-1). [default: 5]")
@click.option("--budget", type=int, default=None, help="True queries per run. [default: 100]")
@click.option("--jobs", type=int, default=None,
              help="Runs at once: worker processes of an embedded Dask LocalCluster. [default: number of cores]")
@click.option("--scheduler", default=None, metavar="ADDRESS",
              help="Run the study on this Dask scheduler (the study directory must be shared with its workers).")
@click.option("--scheduler-file", default=None, metavar="FILE", help="Dask scheduler file, instead of --scheduler.")
@click.option("--workers", type=int, default=None, help="Each run simulates this many workers (with --simulate).")
@click.option("--simulate", is_flag=True, default=None, help="Simulated parallel time per run (needs --cost).")
@click.option("--cost", default=None, metavar="COLUMN", help="Table column read as each query's cost.")
@click.option("--cost-scale", type=float, default=None, help="Factor applied to --cost.")
@click.option("--n-warmup", type=int, default=None, help="Random true queries before the first fit.")
@click.option("--n-per-round", type=int, default=None, help="True queries per predictor round.")
@click.option("--n-pool", default=None, help="Candidates scored per round, or 'all'.")
@click.option("--n-local", type=int, default=None,
              help="Picks per round from the best architectures' unqueried neighbours.")
@click.option("--refit-every", type=int, default=None, help="Refit after this many new results.")
@click.option("--max-fit-steps", type=int, default=None, help="Cap on optimiser steps per predictor fit.")
@click.option("--fit-budget", default=None,
              help="Optimiser steps per new true result of a warm refit, or 'full'. [default: 6]")
@click.option("--acquisition", default=None, help="greedy | ucb | thompson.")
@click.option("--skip-equivalent/--no-skip-equivalent", default=None,
              help="Pass over cells equivalent to a queried one (space.canonical). [default: skip]")
@click.option("--out", default=None, type=click.Path(file_okay=False),
              help="Study directory (rerun with the same options to resume). [default: runs/study-<time>]")
@click.option("--log-x", is_flag=True, help="Log-scaled x axis in the curves.")
@json_option
def compare(config_file: str | None, as_json: bool, log_x: bool, jobs: int | None, out: str | None,
            **flags: Any) -> None:
    """Compare strategies and predictors over many seeds: runs, tables and search-efficiency curves."""
    from nasloop.benchmark import resolved_sources
    from nasloop.compare import prepare
    from nasloop.registry import make_benchmark
    from nasloop.search_config import choose_metrics

    options = study_file_options(config_file)
    flags["strategies"] = list(flags["strategies"]) or None
    flags["predictors"] = list(flags["predictors"]) or None
    for key in ("objectives", "constraints"):
        flags[key] = list(flags[key]) or None
    options.update({k: v for k, v in flags.items() if v is not None})
    if not options.get("strategies") and not options.get("configs"):
        options["strategies"] = ["random", "nsga2", "motpe"] if options.get("objectives") else ["random", "evolution"]
    bench = make_benchmark(options.get("space") or "nb201", data=options.get("data"), dataset=options.get("dataset"))
    from nasloop.objectives import split_metric

    metric, direction = split_metric(options.get("metric"))
    options["metric"], options["report"] = choose_metrics(bench, metric, options.get("report"))
    from nasloop.objectives import build_goal

    # every name, bound and count checked before study.json is written
    build_goal(options["metric"], objectives=_strings(options.get("objectives")),
               constraints=_strings(options.get("constraints")), metrics=tuple(bench.metrics))
    if direction is not None:  # kept with the name: run_search reads "pixel3:min"
        options["metric"] = f"{options['metric']}:{direction}"
    options["data"] = resolved_sources(options.get("data"))
    spec = build_spec(options)
    n_jobs = jobs if jobs is not None else options.get("jobs", os.cpu_count() or 1)
    if n_jobs < 1:
        raise ConfigError(f"--jobs must be at least 1, got {n_jobs}")
    check_configs(spec, bench)
    if spec.execution and spec.execution.get("cost") is not None:
        from nasloop.simulate import CostColumn

        CostColumn(bench, spec.execution["cost"])  # an unknown column is refused before anything is written
    if spec.execution and spec.execution.get("simulate") and not spec.execution.get("cost") \
            and getattr(bench, "cost_column", None) is None:
        raise ConfigError("--simulate needs a cost per query: name a table column with --cost COLUMN")
    cluster = {"scheduler": options.get("scheduler"), "scheduler_file": options.get("scheduler_file")}
    if cluster["scheduler"] is not None or cluster["scheduler_file"] is not None:
        from nasloop.executors import Execution

        Execution(**cluster).check_reachable()  # before the study directory is written
    study_dir = Path(out or options.get("out") or f"runs/study-{time.strftime('%Y%m%d-%H%M%S')}")
    with prepare(spec, study_dir):  # the study's lock, held until its files are written
        _run_and_report(spec, study_dir, bench, n_jobs=n_jobs, as_json=as_json, log_x=log_x, cluster=cluster)


def _run_and_report(spec: Any, study_dir: Path, bench: Any, *, n_jobs: int, as_json: bool, log_x: bool,
                    cluster: dict[str, Any] | None = None) -> None:
    from nasloop.compare import jobs_of, run_jobs
    from nasloop.study import find_runs, markdown_table, write_csv

    n_runs = len(jobs_of(spec, study_dir))
    t0 = time.perf_counter()
    with progress(disable=as_json) as bar:
        task = bar.add_task(f"study {study_dir.name}", total=n_runs, info="")

        def on_done(job, summary):
            best = (summary.get("best") or {}).get("report_value")
            bar.update(task, advance=1, info=f"{job.config.label} seed {job.seed}: {best}")

        run_jobs(spec, study_dir, n_jobs=min(n_jobs, n_runs), callback=on_done, **(cluster or {}))
    from nasloop.commands.plot import render

    runs = find_runs([study_dir])
    figures = render(runs, study_dir, log_x=log_x)
    if figures.get("pareto"):
        _report_pareto(spec, study_dir, bench, figures, n_jobs=n_jobs, as_json=as_json, t0=t0)
        return
    if spec.execution and spec.execution.get("simulate"):
        figures["files"] += render(runs, study_dir, x="time")["files"][:1]
    summaries = figures["summaries"]
    table = markdown_table(summaries, at=[a for a in AT if a <= spec.budget])
    payload = {
        "study_dir": str(study_dir), "benchmark": bench.label, "metric": spec.metric, "report": spec.report,
        "optimum": figures["optimum"], "budget": spec.budget, "seeds": len(spec.seeds),
        "wall_seconds": round(time.perf_counter() - t0, 1), "jobs": n_jobs,
        "configurations": [s.to_json(at=AT) for s in summaries], "files": figures["files"],
    }
    write_csv(summaries, study_dir / "curves.csv")
    _write_summaries(study_dir, f"search `{spec.metric}`, report `{spec.report}`", spec, bench, table, payload)
    if as_json:
        emit_json(payload)
        return
    click.echo(f"{bench.label}: search {spec.metric}, report {spec.report}, optimum {figures['optimum']}")
    click.echo(table)
    click.echo(f"study directory: {study_dir} (summary.md, curves.csv, summary.json, figures)")


def _write_summaries(study_dir: Path, goal: str, spec: Any, bench: Any, table: str, payload: dict[str, Any]) -> None:
    """The study's summary.md (the table under one line of what was searched) and summary.json."""
    (study_dir / "summary.md").write_text(
        f"# Study {study_dir.name}\n\nBenchmark: {bench.label}; {goal}; budget {spec.budget}; "
        f"{len(spec.seeds)} seeds.\n\n{table}\n")
    (study_dir / "summary.json").write_text(json.dumps(payload, indent=2, default=str) + "\n")


def _report_pareto(spec: Any, study_dir: Path, bench: Any, figures: dict[str, Any], *, n_jobs: int, as_json: bool,
                   t0: float) -> None:
    """summary.md / summary.json of a study of Pareto searches: hypervolume gaps and queries to gap thresholds."""
    from nasloop.pareto_study import markdown_table

    summaries = figures["summaries"]
    table = markdown_table(summaries, at=[a for a in AT if a <= spec.budget])
    payload = {
        "study_dir": str(study_dir), "benchmark": bench.label, "objectives": figures["objectives"],
        "true_hypervolume": figures["true_hypervolume"], "budget": spec.budget, "seeds": len(spec.seeds),
        "wall_seconds": round(time.perf_counter() - t0, 1), "jobs": n_jobs,
        "configurations": [s.to_json(at=AT) for s in summaries], "files": figures["files"],
    }
    _write_summaries(study_dir, f"objectives {', '.join(figures['objectives'])}", spec, bench, table, payload)
    if as_json:
        emit_json(payload)
        return
    click.echo(f"{bench.label}: objectives {', '.join(figures['objectives'])}, "
               f"true front hypervolume {figures['true_hypervolume']:.4f}")
    click.echo(table)
    click.echo(f"study directory: {study_dir} (summary.md, summary.json, figures)")
