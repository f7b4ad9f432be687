"""runtime/engine.py: which watch events wake which keyset, in which lane; echoes of own writes none."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from kubernetes import client

from keyturn.adapters.kube import OWN_WRITES
from keyturn.executor import Outcome
from keyturn.runtime.engine import Engine
from keyturn.runtime.scheduler import Lane, _State

NS = "ns"


def engine() -> Engine:
    return Engine(client.ApiClient(client.Configuration(host="http://127.0.0.1:1")), namespaces=[NS])


def keyset(name: str, version: str, status: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"metadata": {"namespace": NS, "name": name, "resourceVersion": version}, "status": status or {}}


def secret(keyset_name: str, version: str) -> dict[str, Any]:
    return {
        "metadata": {
            "namespace": NS,
            "name": keyset_name,
            "resourceVersion": version,
            "labels": {"keyturn.dev/keyset": keyset_name},
        }
    }


def lane_of(e: Engine, name: str) -> Lane | None:
    state = e.scheduler._states.get((NS, name))
    return None if state is None else state.queued


def test_a_change_someone_made_wakes_the_keyset() -> None:
    e = engine()
    e.keyset_event("MODIFIED", keyset("a", "10"))
    assert lane_of(e, "a") is Lane.CHANGE


def test_a_pending_emergency_goes_in_the_emergency_lane() -> None:
    e = engine()
    e.keyset_event("MODIFIED", keyset("a", "10", {"emergency": {"requestId": "inc-1"}}))
    assert lane_of(e, "a") is Lane.EMERGENCY


def test_the_echo_of_keyturn_s_own_write_wakes_nothing() -> None:
    e = engine()
    OWN_WRITES.add("JwtKeySet", NS, "a", "11")
    OWN_WRITES.add("Secret", NS, "a", "12")
    e.keyset_event("MODIFIED", keyset("a", "11"))
    e.owned_object_event("MODIFIED", "Secret", secret("a", "12"))
    assert lane_of(e, "a") is None
    assert e.keysets.cached_body(NS, "a") is not None  # the body is remembered all the same


def test_the_initial_listing_of_owned_objects_wakes_nothing() -> None:
    e = engine()
    e.owned_object_event(None, "Secret", secret("a", "12"))
    assert lane_of(e, "a") is None


@pytest.mark.parametrize(
    ("edits", "again"),
    [(False, None), (True, Lane.CHANGE)],
    ids=["only the pass's own echo: nothing more", "a person's edit too: one more pass"],
)
def test_a_change_during_a_pass_is_judged_after_it(edits: bool, again: Lane | None) -> None:
    e = engine()
    key = (NS, "b")

    async def reconcile(namespace: str, name: str) -> Outcome:
        # The echo of this pass's write arrives before the write returns (and a person's edit).
        e.owned_object_event("MODIFIED", "Secret", secret(name, "21"))
        if edits:
            e.owned_object_event("MODIFIED", "Secret", secret(name, "22"))
        OWN_WRITES.add("Secret", NS, name, "21")
        return Outcome()

    e.executor.reconcile = reconcile  # type: ignore[method-assign]
    e.scheduler._states[key] = _State(running=True)  # as the scheduler's worker sets it
    asyncio.run(e._pass(key))
    assert e.scheduler._states[key].again is again
