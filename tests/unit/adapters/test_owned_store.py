"""adapters/owned_store.py: a pass reads the watch's copy when there is one, else asks the API."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

from kubernetes import client

from keyturn.adapters.configmaps import ConfigMaps
from keyturn.adapters.owned_store import OwnedStore
from keyturn.adapters.secrets import Secrets


def obj(name: str, version: str, namespace: str = "ns", **extra: Any) -> dict[str, Any]:
    return {"metadata": {"namespace": namespace, "name": name, "resourceVersion": version}, **extra}


def test_nothing_is_answered_before_the_scope_is_listed() -> None:
    store = OwnedStore()
    store.apply("ADDED", obj("a", "1"))
    assert store.get("ns", "a") is None  # not listed yet: absence would mean nothing
    store.replace("ns", [obj("a", "2")])
    assert store.get("ns", "a") == obj("a", "2")
    assert store.get("other", "a") is None


def test_a_list_of_every_namespace_answers_for_each() -> None:
    store = OwnedStore()
    store.replace("", [obj("a", "1", namespace="x"), obj("b", "1", namespace="y")])
    assert store.get("x", "a") is not None and store.get("y", "b") is not None


def test_a_list_drops_what_is_gone_and_keeps_a_newer_write() -> None:
    store = OwnedStore()
    store.replace("ns", [obj("a", "1"), obj("b", "1")])
    store.remember(obj("a", "9"))  # a write's answer, newer than the list about to come
    store.replace("ns", [obj("a", "5")])
    assert store.get("ns", "a") == obj("a", "9")
    assert store.get("ns", "b") is None


def test_events_keep_the_newest_and_a_deletion_removes() -> None:
    store = OwnedStore()
    store.replace("ns", [])
    store.remember(obj("a", "7"))
    store.apply("MODIFIED", obj("a", "6"))  # the watch catching up with an older version
    assert store.get("ns", "a") == obj("a", "7")
    store.apply("DELETED", obj("a", "8"))
    assert store.get("ns", "a") is None


def test_objects_without_a_name_are_ignored() -> None:
    store = OwnedStore()
    store.replace("ns", [{"metadata": {"namespace": "ns"}}, {"metadata": "garbage"}, {}])
    store.apply("ADDED", {"metadata": None})
    assert store._objects == {}


def unreachable_api() -> Any:
    return client.ApiClient(client.Configuration(host="http://127.0.0.1:1"))


def test_a_secret_is_read_from_the_store_with_its_items_and_record() -> None:
    store = OwnedStore()
    secret = obj(
        "a",
        "3",
        data={"JWT_KID": base64.b64encode(b"kid-1").decode(), "blob": base64.b64encode(b"\xff\xfe").decode()},
    )
    secret["metadata"].update(
        labels={"keyturn.dev/keyset": "a"},
        annotations={"keyturn.dev/state": "{}"},
        ownerReferences=[{"uid": "u-1"}, {"uid": 7}, "junk"],
    )
    store.replace("ns", [secret])
    snapshot = asyncio.run(
        Secrets(unreachable_api(), store).read("ns", "a")
    )  # no request: the API is unreachable
    assert snapshot is not None
    assert snapshot.data == {"JWT_KID": "kid-1"} and set(snapshot.binary) == {"blob"}
    assert snapshot.owner_uids == ("u-1",) and snapshot.resource_version == "3"
    assert snapshot.record == "{}"


def test_a_config_map_is_read_from_the_store() -> None:
    store = OwnedStore()
    store.replace("ns", [obj("a-jwks", "4", data={"jwks.json": "{}", "odd": 5})])
    snapshot = asyncio.run(ConfigMaps(unreachable_api(), store).read("ns", "a-jwks"))
    assert snapshot is not None
    assert snapshot.data == {"jwks.json": "{}"} and snapshot.resource_version == "4"
