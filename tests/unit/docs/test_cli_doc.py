"""cli.md against the parser (cli/parser.py), the command table (cli/commands.py) and the exit codes
(cli/errors.py): every flag, command and code is documented, and nothing else is."""

from __future__ import annotations

import argparse
import re

import pytest

from keyturn import cli
from keyturn.cli.commands import COMMANDS
from keyturn.cli.errors import ExitCode
from unit.docs.sources import doc, section, tables, ticked

HELP = {"-h", "--help"}
FLAG = re.compile(r"(?<![\w-])(--?[A-Za-z][\w-]*)")


def subparsers() -> dict[str, argparse.ArgumentParser]:
    (group,) = [a for a in cli.parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(group.choices)


def options(parser: argparse.ArgumentParser) -> list[set[str]]:
    """Each option of `parser` as the set of its spellings (-v, --verbose), help left out."""
    return [
        set(a.option_strings)
        for a in parser._actions
        if a.option_strings and not HELP & set(a.option_strings)
    ]


def flags_in_first_column(rows: list[list[str]]) -> set[str]:
    return {flag for row in rows for cell in ticked(row[0]) for flag in FLAG.findall(cell)}


def assert_same_flags(where: str, documented: set[str], parser_options: list[set[str]]) -> None:
    known = set().union(*parser_options)
    assert not documented - known, f"{where} documents flags that do not exist: {sorted(documented - known)}"
    missing = [sorted(o) for o in parser_options if not o & documented]
    assert not missing, f"{where} does not document {missing}"


def test_the_global_flags_table_is_the_top_level_parser() -> None:
    (rows,) = tables(section(doc("cli.md"), "Global flags"))
    assert_same_flags("cli.md's global flags", flags_in_first_column(rows), options(cli.parser()))


def test_the_run_flags_table_is_the_run_parser() -> None:
    (rows,) = tables(section(doc("cli.md"), "`run`"))
    assert_same_flags("cli.md's `run` table", flags_in_first_column(rows), options(subparsers()["run"]))


def command_headings() -> dict[str, str]:
    """`### `name ...`` headings of cli.md's Commands section, by command name."""
    text = section(doc("cli.md"), "Commands")
    headings = re.findall(r"^### `([^`]+)`", text, re.MULTILINE)
    return {heading.split()[0]: heading for heading in headings}


def test_every_command_has_a_section_and_every_section_a_command() -> None:
    assert set(command_headings()) == set(COMMANDS)


GLOBAL = set().union(*options(cli.parser())) - {"--version"}


@pytest.mark.parametrize("command", sorted(set(COMMANDS) - {"run"}))
def test_a_command_s_heading_shows_its_own_flags(command: str) -> None:
    documented = set(FLAG.findall(command_headings()[command]))
    own = [o for o in options(subparsers()[command]) if not o <= GLOBAL]
    assert_same_flags(f"cli.md's `{command}` heading", documented, own)


def test_the_exit_code_table_is_the_exit_codes() -> None:
    (rows,) = tables(section(doc("cli.md"), "Exit codes"))
    assert {int(row[0]) for row in rows} == {int(code) for code in ExitCode}
