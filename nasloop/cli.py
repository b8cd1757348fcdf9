"""The ``nasloop`` command. The only module that prints or sets up logging.

Subcommands live in ``nasloop/commands/`` and are imported only when invoked, so ``nasloop --help``
and ``nasloop list`` start fast. Exit codes: 0 success, 2 bad input (one line on stderr), 1 internal
error (set ``NASLOOP_DEBUG=1`` for the traceback).
"""

from __future__ import annotations

import errno
import logging
import os
import sys
import traceback
from typing import Any

import click

from nasloop import __version__
from nasloop.errors import NasloopError

# command name → "module:attribute" of its click command; loaded lazily.
COMMANDS: dict[str, str] = {
    "search": "nasloop.commands.search:search",
    "compare": "nasloop.commands.compare:compare",
    "plot": "nasloop.commands.plot:plot",
    "predictor": "nasloop.commands.predictor:predictor",
    "data": "nasloop.commands.data:data",
    "list": "nasloop.commands.listing:list_cmd",
}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(name for name in COMMANDS if self._load(name) is not None)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return self._load(cmd_name)

    @staticmethod
    def _load(name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module_name, _, attr = COMMANDS[name].partition(":")
        import importlib
        import importlib.util

        if importlib.util.find_spec(module_name) is None:
            return None
        return getattr(importlib.import_module(module_name), attr)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="nasloop")
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
def cli(verbose: int) -> None:
    """nasloop: neural architecture search with a learned predictor in the loop."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")


def main(argv: list[str] | None = None) -> Any:
    """Entry point of the console script."""
    try:
        cli.main(args=argv, prog_name="nasloop", standalone_mode=False)
    except click.exceptions.Exit as exc:  # --help / --version
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("nasloop: interrupted", err=True)
        sys.exit(130)
    except click.ClickException as exc:  # usage errors: one line, exit 2
        click.echo(f"nasloop: error: {exc.format_message()}", err=True)
        sys.exit(2)
    except NasloopError as exc:
        click.echo(f"nasloop: error: {exc}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        click.echo("nasloop: interrupted", err=True)
        sys.exit(130)
    except OSError as exc:
        if exc.errno not in _USER_OS_ERRORS:
            _internal_error(exc)
        where = f" {exc.filename}" if exc.filename else ""
        click.echo(f"nasloop: error: cannot write or read{where}: {exc.strerror or exc}", err=True)
        sys.exit(2)
    except Exception as exc:
        _internal_error(exc)
    sys.exit(0)


# Errors of the place the user chose (full or read-only disk, no permission, a file where a folder
# should be): their message, exit 2. Any other OSError is a bug (exit 1).
_USER_OS_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOTDIR, errno.EISDIR,
                   errno.EEXIST, errno.ENAMETOOLONG, errno.EFBIG, errno.ELOOP}


def _internal_error(exc: BaseException) -> None:
    if os.environ.get("NASLOOP_DEBUG"):
        traceback.print_exc()
    click.echo(f"nasloop: internal error: {type(exc).__name__}: {exc} (NASLOOP_DEBUG=1 for details)", err=True)
    sys.exit(1)


if __name__ == "__main__":
    main()
