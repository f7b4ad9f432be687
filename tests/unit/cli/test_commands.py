"""cli/commands.py: the command table and the parser declare the same commands."""

from __future__ import annotations

import argparse

from keyturn import cli
from keyturn.cli.commands import COMMANDS


def subcommands(top: argparse.ArgumentParser) -> set[str]:
    (group,) = [a for a in top._actions if isinstance(a, argparse._SubParsersAction)]
    return set(group.choices)


def test_every_parsed_command_has_a_function_and_every_function_a_command() -> None:
    assert subcommands(cli.parser()) == set(COMMANDS)


def test_each_command_is_parsed_under_its_own_name() -> None:
    argv = {
        "run": ["run"],
        "status": ["status"],
        "rotate": ["rotate", "x"],
        "rollback": ["rollback", "x"],
        "revoke": ["revoke", "x", "--reason", "r"],
        "jwks": ["jwks", "x"],
        "init": ["init", "x"],
        "serve-jwks": ["serve-jwks"],
        "sa-signer": ["sa-signer", "--socket", "/s", "--keyset", "ns/x"],
    }
    assert set(argv) == set(COMMANDS)
    for name, args in argv.items():
        assert cli.parse_args(args).command == name
