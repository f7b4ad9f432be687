"""README's "What is where" names every module of operator/keyturn, everything in hack/ and bench/,
and the layout of tests/; and its quick start stays two commands."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from unit.docs.sources import ROOT, doc, section, tables, ticked

PACKAGE = ROOT / "operator" / "keyturn"


def rows() -> dict[str, str]:
    """The table's rows: first cell -> the whole row."""
    (table,) = tables(section(doc("README.md"), "What is where"))
    return {row[0]: " | ".join(row) for row in table}


def row_for(path: str) -> str:
    found = [text for first, text in rows().items() if f"`{path}`" in first]
    assert len(found) == 1, f"README's What is where has {len(found)} rows for {path}"
    return found[0]


def named(text: str) -> set[str]:
    return {part for token in ticked(text) for part in re.split(r"[\s,()]+", token) if part}


def modules(folder: Path) -> set[str]:
    """Every module and subpackage below `folder`, by file name (__init__.py of a package aside)."""
    found = {p.name for p in folder.rglob("*.py") if p.name != "__init__.py" and "__pycache__" not in p.parts}
    return found | {f"{p.name}/" for p in folder.iterdir() if (p / "__init__.py").exists()}


PACKAGES = sorted(p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists())


@pytest.mark.parametrize("package", PACKAGES)
def test_a_package_s_row_names_each_of_its_modules(package: str) -> None:
    missing = modules(PACKAGE / package) - named(row_for(f"operator/keyturn/{package}/"))
    assert not missing, f"README's row for {package}/ does not name {sorted(missing)}"


def test_every_top_level_module_has_a_row() -> None:
    firsts = " ".join(rows())
    listed = {Path(t).name for t in ticked(firsts) if t.endswith(".py")}
    missing = {p.name for p in PACKAGE.glob("*.py")} - listed
    assert not missing, f"README's What is where has no row for {sorted(missing)}"


@pytest.mark.parametrize("folder", ["hack", "bench"])
def test_hack_and_bench_rows_name_everything_in_them(folder: str) -> None:
    entries = {
        p.name + ("/" if p.is_dir() else "")
        for p in (ROOT / folder).iterdir()
        if p.name not in {"__pycache__", "README.md"}
    }
    missing = entries - named(row_for(f"{folder}/"))
    assert not missing, f"README's row for {folder}/ does not name {sorted(missing)}"


def test_the_tests_row_names_the_layout() -> None:
    entries = {p.name + "/" for p in (ROOT / "tests").iterdir() if (p / "__init__.py").exists()}
    entries |= {p.name for p in (ROOT / "tests").glob("*.py")}
    text = row_for("tests/")
    missing = {e for e in entries if e not in named(text)}
    assert not missing, f"README's row for tests/ does not name {sorted(missing)}"


def test_the_quick_start_is_two_commands() -> None:
    block = re.search(r"```sh\n(.*?)```", section(doc("README.md"), "Quick start"), re.DOTALL)
    assert block is not None
    commands = [line.split("#")[0].strip() for line in block.group(1).splitlines() if line.strip()]
    assert commands == ["make demo", "make test"]
