"""``nasloop list``: the registered spaces, benchmarks, strategies and predictors."""

from __future__ import annotations

import click

from nasloop.commands.common import emit_json, json_option
from nasloop.registry import available

_TITLES = {
    "search_spaces": "search spaces",
    "benchmarks": "benchmarks (by space)",
    "strategies": "strategies",
    "predictors": "predictors",
}


@click.command("list")
@json_option
def list_cmd(as_json: bool) -> None:
    """List search spaces, benchmarks, strategies and predictors (plug-ins included)."""
    listing = {kind: available(kind) for kind in _TITLES}
    if as_json:
        emit_json(listing)
        return
    for kind, title in _TITLES.items():
        click.echo(f"{title}:")
        for name, target in listing[kind].items():
            click.echo(f"  {name:<14} {target}")
