"""cli/entry.py: no command, and contradictory arguments refused before any connection."""

from __future__ import annotations

from typing import Any

import pytest

from keyturn import cli
from keyturn.cli import connection
from keyturn.cli.errors import ExitCode


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["revoke", "x", "k1", "--all", "--reason", "r"], "KIDs or --all, not both"),
        (["status", "x", "-A"], "NAME or -A"),
        (["init", "x", "--algorithm", "ES256", "--key-size", "2048"], "only to RSA"),
    ],
)
def test_contradictory_arguments_exit_2_before_any_connection(
    argv: list[str], fragment: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(connection, "connect", _no_connection)
    assert cli.main(argv) == ExitCode.USAGE
    assert fragment in capsys.readouterr().err


def _no_connection(*_args: Any) -> Any:
    raise AssertionError("must not connect")


def test_no_command_prints_help_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([]) == 2
    assert "COMMAND" in capsys.readouterr().err
