"""Where the harness's progress lines go: a callable per line, stderr by default."""

from __future__ import annotations

import sys
from collections.abc import Callable

Log = Callable[[str], None]


def stderr_log(line: str) -> None:
    print(f"[keyturn] {line}", file=sys.stderr, flush=True)


def quiet(_line: str) -> None:
    """A Log that drops every line."""
