"""The spec's choices (domain/spec.py, domain/targets.Role) against the CRD's enums and descriptions
and api.md's field tables."""

from __future__ import annotations

from collections.abc import Iterable

import pytest

from keyturn.domain.spec import (
    ALGORITHMS,
    RSA_SIZES,
    DeletionPolicy,
    ItemFormat,
    KidStrategy,
    OnFailure,
    OnNoData,
    Slot,
)
from keyturn.domain.targets import Role, WorkloadKind
from unit.docs.sources import crd_enum, crd_node, described_values, doc, run_after, section, tables

CHOICES: dict[str, Iterable[object]] = {
    "algorithm": ALGORITHMS,
    "keySize": RSA_SIZES,
    "kid.strategy": KidStrategy,
    "secret.deletionPolicy": DeletionPolicy,
    "secret.items[].slot": Slot,
    "secret.items[].format": ItemFormat,
    "rollout.onFailure": OnFailure,
    "analysis.onNoData": OnNoData,
    "analysis.onFailure": OnFailure,
}


def values(choices: Iterable[object]) -> set[str]:
    return {str(c) for c in choices}


def api_field_row(field: str) -> list[str]:
    rows = [row for table in tables(section(doc("api.md"), "`spec`")) for row in table]
    (row,) = [r for r in rows if r[0] == f"`{field}`"]
    return row


def crd_path(field: str) -> str:
    return "spec." + field.replace("[]", "")


@pytest.mark.parametrize("field", sorted(CHOICES))
def test_the_crd_enum_is_the_code_s(field: str) -> None:
    assert crd_enum(crd_path(field)) == values(CHOICES[field])


@pytest.mark.parametrize("field", sorted(CHOICES))
def test_api_md_lists_exactly_the_choices(field: str) -> None:
    validation = api_field_row(field)[3]
    assert set(run_after(validation, "one of")) == values(CHOICES[field])


@pytest.mark.parametrize("field", ["secret.items[].slot", "secret.items[].format", "analysis.onNoData"])
def test_the_crd_description_explains_every_choice(field: str) -> None:
    assert described_values(crd_node(crd_path(field))["description"]) == values(CHOICES[field])


ROLE_LISTS = {
    "CRD status.rollout.targets.role": lambda: crd_enum("status.rollout.targets.role"),
    "api.md rollout": lambda: set(run_after(section(doc("api.md"), "`rollout`"), "`keyturn.dev/role`\n(")),
    "rollouts.md targets": lambda: set(
        run_after(section(doc("rollouts.md"), "Targets"), "| `keyturn.dev/role` |")
    ),
}


@pytest.mark.parametrize("where", sorted(ROLE_LISTS))
def test_the_roles_are_the_code_s(where: str) -> None:
    assert ROLE_LISTS[where]() == values(Role)


def test_the_crd_names_the_code_s_target_kinds() -> None:
    """status.rollout.targets[].kind: a kind the schema lacks is pruned from status by the API server."""
    assert crd_enum("status.rollout.targets.kind") == values(WorkloadKind)
