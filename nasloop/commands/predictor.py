"""``nasloop predictor eval``: the papers' train-on-N, test-on-all protocol on a table benchmark."""

from __future__ import annotations

import click

from nasloop.commands.common import data_options, emit_json, json_option, progress, space_option
from nasloop.errors import ConfigError
from nasloop.registry import make_benchmark


@click.group()
def predictor() -> None:
    """Evaluate performance predictors."""


@predictor.command("eval")
@space_option
@data_options
@click.option("--target", "column", default="val_acc", show_default=True,
              help="Target column of the table (e.g. val_acc, or a latency device such as pixel3).")
@click.option("--predictor", "names", multiple=True,
              help="Predictor name (repeatable): nnformer, narformer2, mlp, gin, rf or package.module:Class.")
@click.option("--prior", default=None, type=click.Path(file_okay=False), metavar="PRIOR_DIR",
              help="Also evaluate this prior (from `predictor pretrain`) adapted on the N cells: "
                   "N is then the number of measured cells of the new target.")
@click.option("--preset", type=click.Choice(["fast", "paper"]), default="fast", show_default=True,
              help="fast: CPU default; paper: the papers' sizes and schedules (CUDA when available; "
                   "on one CPU thread about 30 min per NAR-Former V2 fit at N=156, docs/results.md).")
@click.option("--train-size", "train_sizes", type=int, multiple=True, default=(156, 1563), show_default=True,
              help="Training cells N drawn at random with each seed (repeatable).")
@click.option("--seeds", type=int, default=3, show_default=True, help="Seeds 0..K-1 (mean ± std over them).")
@click.option("--kind", type=click.Choice(["auto", "accuracy", "latency"]), default="auto", show_default=True,
              help="Target kind: latency uses the relative-error loss and reports MAPE and Acc(10%).")
@click.option("--n-members", type=int, default=None, help="Ensemble size of the torch predictors.")
@click.option("--fit-threads", type=int, default=None,
              help="Torch threads per fit of the torch predictors [default: the preset's; fast: 1].")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Folder for predictor_eval.json/.csv and the predicted-vs-true scatter PNG.")
@json_option
def eval_cmd(space: str, data: str | list[str] | None, dataset: str | None, column: str, names: tuple[str, ...],
             preset: str,
             train_sizes: tuple[int, ...], seeds: int, kind: str, n_members: int | None,
             fit_threads: int | None, prior: str | None, out: str | None, as_json: bool) -> None:
    """Train on N random cells, test on the whole table; Kendall's tau (or MAPE) per predictor and N.

    Example: nasloop predictor eval --data ../shared/data/nb201/cifar10.csv --target val_acc
    --predictor nnformer --train-size 156 --train-size 1563 --seeds 3 --out runs/pred
    """
    from nasloop.predictor_eval import evaluate, format_table, write_outputs

    if seeds < 1:
        raise ConfigError(f"--seeds must be >= 1, got {seeds}")
    if any(n < 2 for n in train_sizes):
        raise ConfigError(f"--train-size must be >= 2, got {list(train_sizes)}")
    if not names and prior is None:
        raise ConfigError("give at least one --predictor (or --prior PRIOR_DIR)")
    per_predictor = _prior_options(prior) if prior is not None else {}
    bench = make_benchmark(space, data=data, dataset=dataset)
    bench.check_metric(column)
    options = {"n_members": n_members} if n_members is not None else {}
    with progress(transient=True) as bar:
        task = bar.add_task("predictor eval", total=1, info="")

        def on_start(name: str, n: int, seed: int) -> None:
            bar.reset(task, total=1, description=f"{name} N={n} seed={seed}", info="")

        def on_step(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        result = evaluate(bench, column, [*names, *per_predictor], list(train_sizes), n_seeds=seeds,
                          preset=preset, kind=None if kind == "auto" else kind, options=options,
                          predictor_options=per_predictor,
                          on_start=on_start, on_step=on_step, fit_threads=fit_threads)
    paths = write_outputs(result, out) if out else []
    if as_json:
        emit_json({k: v for k, v in result.items() if k not in ("scatter", "true")}
                  | {"files": [str(p) for p in paths]})
        return
    click.echo(format_table(result))
    for path in paths:
        click.echo(f"wrote {path}")


def _prior_options(prior: str) -> dict[str, dict]:
    """The adapted prior as one more predictor of the evaluation, pinned to the prior's digest."""
    from predictors.prior import prior_options

    return {"prior": prior_options(prior)}


from nasloop.commands.pretrain import pretrain_cmd  # noqa: E402  (registers `predictor pretrain`)

predictor.add_command(pretrain_cmd)
