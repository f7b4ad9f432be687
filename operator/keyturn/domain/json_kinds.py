"""What a JSON value is, named for error messages about the spec and the record."""

from __future__ import annotations

from collections.abc import Mapping


def json_kind(value: object) -> str:
    """ "a string", "an object", ...: never the value itself, which may be huge or private."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__
