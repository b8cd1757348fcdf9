"""Subcommands of the ``nasloop`` CLI, one module each (registered in ``nasloop.cli.COMMANDS``)."""
