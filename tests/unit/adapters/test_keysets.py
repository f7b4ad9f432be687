"""adapters/keysets.py: the cache keeps the newest version, whichever source delivers it last."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client

from keyturn.adapters.keysets import Keysets
from keyturn.adapters.kube import newer


def body(version: str | None, note: str = "") -> dict[str, Any]:
    meta: dict[str, Any] = {"namespace": "ns", "name": "a"}
    if version is not None:
        meta["resourceVersion"] = version
    return {"metadata": meta, "spec": {"note": note}}


@pytest.mark.parametrize(
    ("mine", "theirs", "expected"),
    [
        ("11", "10", True),
        ("10", "11", False),
        ("10", "10", False),
        ("100", "99", True),  # compared as numbers, not as text
        ("abc", "10", True),  # not an integer: any other version is taken as newer
        (None, "10", True),
        (None, None, False),
    ],
    ids=["later", "earlier", "same", "numeric order", "opaque", "missing", "both missing"],
)
def test_which_version_is_newer(mine: str | None, theirs: str | None, expected: bool) -> None:
    assert newer(body(mine), body(theirs)) is expected


def test_an_older_version_never_replaces_a_newer_one() -> None:
    keysets = Keysets(client.ApiClient(client.Configuration(host="http://127.0.0.1:1")), cached=True)
    assert keysets.remember(body("12", "patched"))
    assert not keysets.remember(body("11", "listed before"))  # e.g. kopf's listing after a write
    assert not keysets.remember(body("12", "the same again"))
    assert keysets.cached_body("ns", "a") == body("12", "patched")
    assert keysets.remember(body("13", "edited"))
    assert keysets.cached_body("ns", "a") == body("13", "edited")


def test_a_remembered_body_is_a_copy_unless_handed_over() -> None:
    keysets = Keysets(client.ApiClient(client.Configuration(host="http://127.0.0.1:1")), cached=True)
    mine = body("1")
    keysets.remember(mine)
    mine["spec"]["note"] = "changed by the caller"
    assert keysets.cached_body("ns", "a") == body("1")
    handed = body("2")
    keysets.remember(handed, copy=False)
    assert keysets.cached_body("ns", "a") is not None
    assert keysets.cached_body("ns", "a") == handed
