"""domain/annotations.py: every name Keyturn reads or writes is documented, spelled as the code has it."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest

from keyturn.domain import annotations as names_module  # not `annotations`: the __future__ import has it
from keyturn.domain.annotations import annotation_suffix, revision_annotation, stamped_annotation

DOCS = Path(__file__).resolve().parents[3] / "docs"


def names() -> dict[str, str]:
    out: dict[str, str] = {}
    for attr, value in vars(names_module).items():
        if attr.isupper() and isinstance(value, str):
            out[attr] = value
        elif attr.isupper() and isinstance(value, Mapping):
            out |= {f"{attr}[{k}]": f"{k}: {v}" for k, v in value.items()}
    return out


NAMES = names()


def test_the_module_holds_the_names() -> None:
    assert {"ROTATE_ANNOTATION", "KEYSET_LABEL", "REVISION_PREFIX"} <= set(NAMES)


@pytest.mark.parametrize("name", NAMES.values(), ids=NAMES.keys())
def test_every_name_is_in_the_docs(name: str) -> None:
    text = "\n".join(p.read_text() for p in sorted(DOCS.glob("*.md")))
    assert name in text


def test_the_keysets_a_deployment_names() -> None:
    assert names_module.keysets_of({names_module.KEYSET_ANNOTATION: " a, b ,,c "}) == ["a", "b", "c"]
    assert names_module.keysets_of({}) == []


def test_annotation_names_stay_within_the_63_character_limit() -> None:
    long = "k" * 200
    for name in (stamped_annotation(long), revision_annotation(long)):
        assert len(name.split("/", 1)[1]) <= 63
    assert annotation_suffix("api-keys") == "api-keys"
    assert annotation_suffix("a" * 100) != annotation_suffix("a" * 101)
