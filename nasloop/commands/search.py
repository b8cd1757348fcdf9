"""``nasloop search``: one predictor-guided (or plain) search, written to ``runs/<run-id>/``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from nasloop.benchmark import Benchmark
from nasloop.commands.common import (
    TEXT,
    check_finite_flag,
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

# Options a TOML file may set (flags given on the command line override them): the run's options, and
# two of the command's own (where the run directory goes, a pre-trained prior to adapt).
_COMMAND_KEYS = {"out": TEXT, "prior": TEXT}
_FILE_TYPES = {**RunSpec.toml_types(), **_COMMAND_KEYS}
_RUN = RunSpec()  # the flags' defaults are the run's own
_DEFAULT = _RUN.search


@click.command("search")
@space_option
@click.option("--benchmark", default=None, metavar="MODULE:FUNCTION",
              help="Evaluator factory for a plug-in space, called as f(data=..., dataset=...) -> Benchmark.")
@data_options
@click.option("--metric", default=None, help="Metric to search (default: val_acc if the table has it, "
              "else test_acc, else its first metric).")
@click.option("--report", default=None, help="Metric to report for the best cell (default: test_acc when "
              "searching val_acc, else the search metric).")
@click.option("--objective", "objectives", multiple=True, metavar="METRIC[:max|min]",
              help="Repeat 2-3 times for a Pareto search (strategies random, nsga2, motpe); see "
                   "docs/hardware_aware.md.")
@click.option("--constraint", "constraints", multiple=True, metavar="METRIC<=X|METRIC>=X",
              help="Only cells meeting it count as found (repeatable), e.g. \"pixel3<=8.5\".")
@click.option("--side-predictor", default=None,
              help="Predictor of constraint columns and further objectives (default: rf).")
@click.option("--strategy", default=_RUN.strategy, show_default=True,
              help="random, evolution, tpe or module:Class (with a predictor it proposes the pool).")
@click.option("--predictor", default=_RUN.predictor, show_default=True,
              help="none (the strategy alone), nnformer, narformer2, mlp, gin, rf or module:Class.")
@click.option("--preset", default=_RUN.preset, show_default=True, help="Predictor preset.")
@click.option("--budget", default=_RUN.budget, show_default=True, type=int, help="Unique true queries.")
@click.option("--seed", default=_RUN.seed, show_default=True, type=int, help="Seed of every random stream of the run.")
@click.option("--out", default=None, metavar="DIR", help="Run directory (default: runs/<run-id>).")
@click.option("--resume", default=None, metavar="DIR",
              help="Continue the run in DIR (killed or finished); with --budget N, go on to N queries.")
@click.option("--config", "config_file", default=None, metavar="FILE.toml", help="Options from a TOML file.")
@click.option("--n-pool", default=str(_DEFAULT.n_pool), show_default=True,
              help="Candidates the strategy proposes per round for the predictor to score, or 'all'.")
@click.option("--n-per-round", default=_DEFAULT.n_per_round, show_default=True, type=int,
              help="True queries chosen per predictor round.")
@click.option("--n-local", default=_DEFAULT.n_local, show_default=True, type=int,
              help="Of the picks per round, how many come from the best architectures' unqueried neighbours.")
@click.option("--n-warmup", default=_DEFAULT.n_warmup, show_default=True, type=int,
              help="Random true queries before the first predictor fit.")
@click.option("--refit-every", default=_DEFAULT.refit_every, show_default=True, type=int,
              help="Refit the predictor after this many new true results.")
@click.option("--acquisition", default=_DEFAULT.acquisition, show_default=True,
              help="greedy, ucb or thompson (UCB and Thompson use an ensemble's std).")
@click.option("--max-fit-steps", default=_DEFAULT.max_fit_steps, show_default=True, type=int,
              help="Cap on optimiser steps per predictor fit (warm refits run half).")
@click.option("--fit-budget", default=str(_DEFAULT.fit_budget), show_default=True,
              help="Optimiser steps per new true result of a warm refit, or 'full' (half of --max-fit-steps "
                   "every refit): run time against predictor quality, see docs/performance.md.")
@click.option("--skip-equivalent/--no-skip-equivalent", default=_DEFAULT.skip_equivalent, show_default=True,
              help="Pass over cells equivalent to a queried one (space.canonical) while others are left.")
@click.option("--prior", default=None, metavar="PRIOR_DIR",
              help="Adapt this pre-trained prior (from `predictor pretrain`) at every refit instead of training "
                   "a predictor from scratch; the warm-up then defaults to 5 queries.")
@click.option("--max-cost", default=None, type=float, help="Simulated cost budget in seconds (cost column).")
@click.option("--max-seconds", default=None, type=float, help="Wall-clock budget in seconds.")
@click.option("--workers", default=None, type=int,
              help="Evaluations in flight: 1 (default) is the serial loop; N > 1 an embedded Dask LocalCluster "
                   "(N virtual workers with --simulate); with --scheduler, default one per cluster thread. "
                   "See docs/scaling.md.")
@click.option("--simulate", is_flag=True, default=False,
              help="Simulate --workers N on the table: each query takes its --cost; records simulated times.")
@click.option("--scheduler", default=None, metavar="ADDRESS", help="Run evaluations on this Dask scheduler.")
@click.option("--scheduler-file", default=None, metavar="FILE", help="Dask scheduler file (dask scheduler "
              "--scheduler-file).")
@click.option("--cost", default=None, metavar="COLUMN", help="Table column read as each query's cost.")
@click.option("--cost-scale", default=_RUN.execution.cost_scale, show_default=True, type=float,
              help="Factor applied to --cost.")
@click.option("--max-retries", default=_RUN.execution.max_retries, show_default=True, type=int,
              help="Resubmissions of an evaluation whose worker died.")
@click.option("--eval-timeout", default=None, type=float, metavar="SECONDS",
              help="A running evaluation is recorded as failed after this long.")
@click.option("--gpu", is_flag=True, default=False, help="Each evaluation asks its Dask worker for one GPU "
              "(workers started with --resources GPU=1).")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
@json_option
@click.pass_context
def search(ctx: click.Context, resume: str | None, config_file: str | None, quiet: bool, as_json: bool,
           **flags: Any) -> None:
    """Search an architecture space with a strategy, guided by a learned predictor.

    \b
    Example:
      nasloop search --data ../shared/data/nb201/cifar10.csv --strategy evolution \\
          --predictor nnformer --budget 100 --seed 0
    """
    from nasloop.loop import resume_search, run_search

    chosen = _with_prior(chosen_options(ctx, flags, config_file))
    with _Bar(flags["budget"] if resume is None else None, disable=quiet) as bar:
        if resume is not None:
            from nasloop.loop import check_resume_names
            from nasloop.rundir import read_config

            if chosen.get("out") is not None:
                raise ConfigError("--out and --resume do not go together: --resume DIR continues DIR")
            stored = read_config(resume)
            named = [chosen[k] for k in ("space", "strategy", "predictor", "benchmark", "side_predictor")
                     if isinstance(chosen.get(k), str)]
            check_resume_names(stored, resume, named)
            if not chosen:
                result = resume_search(resume, callback=bar.update, on_benchmark=bar.attach)
            else:
                spec = RunSpec.from_json(stored).replace(**_run_options(chosen))
                result = run_search(spec, out=resume, resume=True, callback=bar.update, on_benchmark=bar.attach)
        else:
            spec = new_run_spec(flags, chosen)
            out = flags["out"] if "out" not in chosen else chosen["out"]
            if out is None:
                from nasloop.rundir import new_run_id
                from nasloop.runspec import predictor_name

                out = str(Path("runs") / new_run_id(str(spec.space), spec.strategy,
                                                    predictor_name(spec.predictor), spec.seed))
            result = run_search(spec, out=out, callback=bar.update, on_benchmark=bar.attach)
    if as_json:
        emit_json(result.summary)
    else:
        _print_summary(result.summary)


def _with_prior(chosen: dict[str, Any]) -> dict[str, Any]:
    """``--prior DIR`` as the ``prior`` predictor with the prior's path and digest (and a short warm-up)."""
    if chosen.get("prior") is None:
        return {k: v for k, v in chosen.items() if k != "prior"}
    from predictors.prior import PRIOR_WARMUP, prior_options

    out = {k: v for k, v in chosen.items() if k != "prior"}
    if out.get("predictor") not in (None, "prior"):
        raise ConfigError(f"--prior replaces the predictor; drop --predictor {out['predictor']}")
    out["predictor"] = "prior"
    out["predictor_options"] = {**(out.get("predictor_options") or {}), **prior_options(chosen["prior"])}
    out.setdefault("n_warmup", PRIOR_WARMUP)
    return out


def chosen_options(ctx: click.Context, flags: dict[str, Any], config_file: str | None) -> dict[str, Any]:
    """The options the user chose: those of the TOML file, overridden by flags given on the command line."""
    given = {k: v for k, v in flags.items() if ctx.get_parameter_source(k) == ParameterSource.COMMANDLINE}
    for name in ("max_cost", "max_seconds"):
        check_finite_flag(name, given.get(name))
    return {**_file_options(config_file), **given}


def new_run_spec(flags: dict[str, Any], chosen: dict[str, Any]) -> RunSpec:
    """The RunSpec of a new run: the flags' defaults, then the ``chosen`` options."""
    return RunSpec().replace(**_run_options({**flags, **chosen}))


def _run_options(options: dict[str, Any]) -> dict[str, Any]:
    """The run options among the command's options (the command's own, ``out`` and ``prior``, left out)."""
    return {k: v for k, v in options.items() if k not in _COMMAND_KEYS}


def _file_options(path: str | None) -> dict[str, Any]:
    raw = load_toml(path)
    if not isinstance(raw.get("search", {}), dict):
        raise ConfigError(f"{path}: search must be a table ([search]), got {raw['search']!r}")
    raw = {**{k: v for k, v in raw.items() if k != "search"}, **raw.get("search", {})}
    out = {k.replace("-", "_"): v for k, v in raw.items()}
    unknown = sorted(set(out) - set(_FILE_TYPES))
    if unknown:
        raise ConfigError(f"{path}: unknown options {unknown}; valid: {', '.join(_FILE_TYPES)}")
    check_toml_types(path, out, _FILE_TYPES)
    return out


class _Bar:
    """The rich progress bar behind the loop's callback: queries used, best so far, round.

    A benchmark that trains (it calls its ``progress`` hook, :attr:`nasloop.benchmark.Benchmark.progress`,
    as ``fn(done, total)`` during each evaluation) gets a second bar, "training cell", for the
    evaluation under way.
    """

    def __init__(self, total: int | None, *, disable: bool) -> None:
        self.progress = progress(disable=disable)
        self.disable = disable
        self.total = total
        self.task: Any = None
        self.train_task: Any = None
        self.train_done = 0
        self.train_over = False  # the last evaluation ended: the next step starts a new one

    def __enter__(self) -> _Bar:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.task is not None:
            self.progress.__exit__(*exc)

    def _start(self) -> None:
        if self.task is None:  # started on the first event, so input errors print no empty bar
            self.progress.__enter__()
            self.task = self.progress.add_task("search", total=self.total, info="")

    def attach(self, benchmark: Any) -> None:
        """run_search's ``on_benchmark`` hook: follow the trainings of a benchmark that reports them."""
        if not self.disable and isinstance(benchmark, Benchmark):
            benchmark.progress = self.training

    def training(self, done: int, total: int) -> None:
        """The benchmark's per-step hook: steps done of the evaluation under way."""
        self._start()
        if self.train_task is None:
            self.train_task = self.progress.add_task("training cell", total=total, info="")
        elif self.train_over or done < self.train_done:  # a new evaluation began
            self.progress.reset(self.train_task, total=total, visible=True)
        self.train_done, self.train_over = done, False
        self.progress.update(self.train_task, total=total, completed=done)

    def update(self, event: Any) -> None:
        self._start()
        if self.train_task is not None and event.phase in ("query", "done"):  # the evaluation is over
            self.progress.update(self.train_task, visible=False)
            self.train_over = True
        best = "" if event.best_value is None else f"best {event.best_value:.4g}"
        tau = "" if event.tau is None else f"tau {event.tau:.2f}"
        stage = {"fit": "fitting", "start": "search"}.get(event.phase, "replaying" if event.replay else "search")
        info = " · ".join(x for x in (best, f"round {event.round}", tau) if x)
        self.progress.update(self.task, total=event.budget, completed=event.n_queries, description=stage, info=info)


def _print_summary(summary: dict[str, Any]) -> None:
    best, metric, report = summary["best"], summary["metric"], summary["report"]
    optimum = summary.get("optimum") or {}
    if best is None:
        click.echo("no architecture was queried")
        return
    if summary.get("objectives"):
        _print_front(summary)
        return
    goal = f"{metric}:{summary.get('direction', 'max')}"
    subject = ", subject to " + " and ".join(summary["constraints"]) if summary.get("constraints") else ""
    click.echo(f"benchmark:  {summary['benchmark']} (search {goal}{subject}, report {report})")
    click.echo(f"best cell:  {best['arch']}  (query {best['number']} of {summary['n_queries']}, "
               f"round {best['round']})")
    rows = [(metric, "search_regret"), (report, "regret")] if report != metric else [(report, "regret")]
    for name, regret_key in rows:
        value = best["metrics"].get(name)
        line = f"  {name:<12} {value:.4f}" if value is not None else f"  {name:<12} n/a"
        if name in optimum:
            line += f"   optimum {optimum[name]['value']:.4f}"
            if summary.get(regret_key) is not None:
                line += f"   regret {summary[regret_key]:.4f}"
        click.echo(line)
    timings = summary["timings"]
    extra = f", predictor tau {summary['predictor_tau']:.3f}" if summary.get("predictor_tau") is not None else ""
    if summary.get("constraints"):
        extra += f", {summary['n_infeasible']} infeasible"
    click.echo(f"queries:    {summary['n_queries']} of {summary['budget']} ({summary['stopped']}){extra}")
    click.echo(f"time:       {timings['total_s']:.1f} s total: {timings['fit_s']:.1f} s fitting the predictor, "
               f"{timings.get('score_s', 0.0):.1f} s scoring, {timings.get('evaluate_s', 0.0):.1f} s evaluating")
    parallel = summary.get("parallel")
    if parallel:
        kind = "simulated " if parallel["simulated"] else ""
        idle = "n/a" if parallel["idle_share"] is None else f"{100 * parallel['idle_share']:.1f}%"
        to_best = "n/a" if parallel["time_to_best"] is None else f"{parallel['time_to_best']:.4g}"
        click.echo(f"parallel:   {parallel['workers']} {kind}workers, best after {to_best} "
                   f"{'(simulated) ' if parallel['simulated'] else 's '}of {parallel['makespan']:.4g}, "
                   f"idle share {idle}, {parallel['retries']} retries, {parallel['failed']} failed")
    click.echo(f"run:        {summary['run_dir']}")


def _print_front(summary: dict[str, Any]) -> None:
    names = [o.rpartition(":")[0] for o in summary["objectives"]]
    click.echo(f"benchmark:  {summary['benchmark']} (Pareto search of {', '.join(summary['objectives'])})")
    click.echo(f"front:      {len(summary['front'])} cells found")
    for row in summary["front"]:
        values = "  ".join(f"{n} {row[n]:.4g}" for n in names)
        click.echo(f"  {values}   {row['arch']} (query {row['number']})")
    if summary.get("hypervolume") is not None:
        click.echo(f"hypervolume: {summary['hypervolume']:.4f} of the true front's {summary['true_hypervolume']:.4f} "
                   f"(gap {summary['hv_gap']:.4f}; {summary['true_front_size']} cells on the true front)")
    timings = summary["timings"]
    click.echo(f"queries:    {summary['n_queries']} of {summary['budget']} ({summary['stopped']})")
    click.echo(f"time:       {timings['total_s']:.1f} s total: {timings['fit_s']:.1f} s fitting the predictors, "
               f"{timings.get('score_s', 0.0):.1f} s scoring")
    click.echo(f"run:        {summary['run_dir']}")
