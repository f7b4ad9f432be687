"""The Dockerfile read the way a reviewer reads it: global ARGs, stages and their instructions."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
DOCKERFILE = ROOT / "Dockerfile"


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [arg for kw, arg in self.instructions if kw == keyword]


def dockerfile_lines() -> Iterator[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    logical = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not logical and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue  # a comment inside a continued instruction
        if line.endswith("\\"):
            logical += line[:-1] + " "
            continue
        logical += line
        keyword, _, args = logical.partition(" ")
        yield keyword.upper(), args.strip()
        logical = ""


def expand(text: str, args: dict[str, str]) -> str:
    """Docker's substitution in FROM: $A, ${A}, and ${A:-word} (word itself may hold ${B})."""
    innermost = re.compile(r"\$\{(\w+)(?::-([^${}]*))?\}|\$(\w+)")

    def value(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(3)
        if m.group(2) is not None:  # ${A:-word}: word when A is unset or empty
            return args.get(name) or m.group(2)
        return args[name]

    while True:
        expanded = innermost.sub(value, text)
        if expanded == text:
            return text
        text = expanded


def parse_dockerfile() -> tuple[dict[str, str], list[Stage]]:
    """Global ARG defaults and the stages, with FROM's ${ARG}s resolved."""
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for keyword, args in dockerfile_lines():
        if keyword == "FROM":
            words = args.split()
            image = expand(words[0], global_args)
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(image, name))
        elif not stages and keyword == "ARG":
            key, _, default = args.partition("=")
            global_args[key] = default
        elif stages:
            stages[-1].instructions.append((keyword, args))
    return global_args, stages


def exec_form(arg: str) -> list[str]:
    value = json.loads(arg)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), arg
    return value
