"""The value types an option may hold in a TOML file, and the check that refuses the wrong ones.

Each option declares its type once, in the ``toml`` metadata of its dataclass field
(:class:`~nasloop.runspec.RunSpec`, :class:`~nasloop.search_config.SearchConfig`,
:class:`~nasloop.executors.Execution`); the CLI reads the valid keys and their types from there.
"""

from __future__ import annotations

import math
from dataclasses import Field
from typing import Any

from nasloop.errors import ConfigError

TEXT, INTEGER, NUMBER, BOOLEAN, TABLE = "a string", "an integer", "a finite number", "true or false", "a table"
POOL = "a positive integer, 'all' or 'auto'"
FIT_BUDGET = "a positive integer or 'full'"
PATHS = "a path or a list of paths"


def toml(kind: str | None) -> dict[str, Any]:
    """Field metadata of a run option: its type in a TOML file (``None``: not a file option)."""
    return {"toml": kind}


def toml_type(f: Field) -> str | None:
    return f.metadata.get("toml")


def check_toml_types(path: str | None, values: dict[str, Any], types: dict[str, str | None]) -> None:
    """Refuse a TOML value of the wrong type (``budget = "ten"``) with a one-line ``ConfigError``.

    TOML numbers may be ``inf`` or ``nan``; every number here must be finite.
    """
    for key, value in values.items():
        kind = types.get(key)
        ok = {
            None: True,
            TEXT: isinstance(value, str),
            INTEGER: isinstance(value, int) and not isinstance(value, bool),
            NUMBER: isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value),
            BOOLEAN: isinstance(value, bool),
            TABLE: isinstance(value, dict),
            POOL: (isinstance(value, int) and not isinstance(value, bool)) or value in ("all", "auto"),
            FIT_BUDGET: (isinstance(value, int) and not isinstance(value, bool)) or value == "full",
            PATHS: isinstance(value, str) or (isinstance(value, list) and bool(value)
                                              and all(isinstance(v, str) for v in value)),
        }[kind]
        if not ok:
            where = f"{path}: " if path else ""
            raise ConfigError(f"{where}{key} must be {kind}, got {value!r}")
