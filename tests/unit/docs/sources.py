"""Reading the docs and the CRD the way a reader does: sections, tables, backticked values, lists.

The tests next to this module compare what the docs list with what the code defines, in both
directions, so a value added to an enum without its doc (or a doc naming a value the code dropped)
fails the build.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[3]
DOCS = ROOT / "docs"
CRD = ROOT / "crds" / "keyturn.dev_jwtkeysets.yaml"

_HEADING = re.compile(r"^(#{1,6}) +(.*?) *$")
_TICKED = re.compile(r"`([^`]+)`")
_FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)


@cache
def doc(name: str) -> str:
    """A page of docs/ (or README.md at the root) as text."""
    path = ROOT / name if name == "README.md" else DOCS / name
    return path.read_text(encoding="utf-8")


def without_code_blocks(text: str) -> str:
    return _FENCE.sub("", text)


def section(text: str, heading: str) -> str:
    """The text under the heading named `heading`, up to the next heading of its level or higher."""
    lines = text.splitlines()
    for start, line in enumerate(lines):
        match = _HEADING.match(line)
        if match and match.group(2) == heading:
            level = len(match.group(1))
            body: list[str] = []
            for other in lines[start + 1 :]:
                found = _HEADING.match(other)
                if found and len(found.group(1)) <= level:
                    break
                body.append(other)
            return "\n".join(body)
    raise AssertionError(f"no heading {heading!r}")


def tables(text: str) -> list[list[list[str]]]:
    """Every Markdown table in `text`: its body rows (header and rule left out), as cells."""
    found: list[list[list[str]]] = []
    rows: list[list[str]] = []
    for line in [*text.splitlines(), ""]:
        if line.startswith("|"):
            rows.append([cell.strip() for cell in _split_row(line)])
            continue
        if rows:
            found.append(rows[2:])
            rows = []
    return found


def _split_row(line: str) -> list[str]:
    """Cells of `| a | b |`; a `|` inside backticks or escaped (`\\|`) does not split."""
    cells: list[str] = []
    cell = ""
    ticked = False
    escaped = False
    for char in line.strip().strip("|"):
        if escaped:
            cell += char
            escaped = False
        elif char == "\\":
            cell += char
            escaped = True
        elif char == "`":
            ticked = not ticked
            cell += char
        elif char == "|" and not ticked:
            cells.append(cell)
            cell = ""
        else:
            cell += char
    cells.append(cell)
    return cells


def table_after(text: str, marker: str) -> list[list[str]]:
    """The first table that follows the line containing `marker`."""
    at = text.index(marker)
    return tables(text[at:])[0]


def ticked(text: str) -> list[str]:
    """Every `backticked` value in `text`, in order."""
    return _TICKED.findall(text)


def strip_parens(text: str) -> str:
    """`text` without its parenthesised remarks (nested ones included)."""
    previous = None
    while previous != text:
        previous = text
        text = re.sub(r"\([^()]*\)", "", text)
    return text


def between(text: str, start: str, end: str) -> str:
    """The text after the first `start` up to the next `end`."""
    at = text.index(start) + len(start)
    return text[at : text.index(end, at)]


def run_after(text: str, marker: str) -> list[str]:
    """The backticked values that follow `marker`, joined by nothing but spaces, `,` `/` `|`, or, and.

    `marker` one of `a` `b`, or `c` -> [a, b, c]; the run ends at the first other word.
    """
    rest = text[text.index(marker) + len(marker) :]
    values: list[str] = []
    for token in re.finditer(r"`([^`]+)`|([^`\s,/|]+)|[\s,/|]+", rest):
        if token.group(1) is not None:
            values.append(token.group(1))
        elif token.group(2) is not None and token.group(2) not in ("or", "and"):
            break
    return values


@cache
def crd() -> dict[str, Any]:
    loaded = yaml.safe_load(CRD.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def crd_node(path: str) -> dict[str, Any]:
    """A schema node by its field path, e.g. `status.history.operation` (arrays are walked through)."""
    node: dict[str, Any] = crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for part in path.split("."):
        while "properties" not in node and "items" in node:
            node = node["items"]
        node = node["properties"][part]
    return node


def crd_enum(path: str) -> set[str]:
    return {str(value) for value in crd_node(path)["enum"]}


def described_values(description: str) -> set[str]:
    """The values a description lists: `Intro: a (why), b, or an X, c or d. More text.` -> {a, b, c, d}.

    Remarks in parentheses are dropped, then the first sentence after the last colon is split on
    commas, semicolons and "or"; only single words are values (so "an analysis verdict" is not one).
    """
    text = strip_parens(" ".join(description.split()))
    text = text.rsplit(": ", 1)[-1]
    text = re.split(r"\.(?:\s|$)", text, maxsplit=1)[0]
    parts = re.split(r"[,;]|\bor\b", text)
    return {part.strip() for part in parts if re.fullmatch(r"[A-Za-z][A-Za-z-]*", part.strip())}


def markdown_files() -> Iterator[Path]:
    yield ROOT / "README.md"
    yield from sorted(DOCS.glob("*.md"))
