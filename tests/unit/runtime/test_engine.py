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
    e.keysets.remember(keyset("b", "20"))  # known: the watch delivered it

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


# ---------------------------------------------------------------------------------- the early look
URGENT = {"emergency": {"requestId": "inc-1"}}


def full(e: Engine) -> bool:
    """Whether every lane may run (not only emergencies)."""
    return e.scheduler.full and e.scheduler.active.is_set()


def leading_engine() -> Engine:
    """An engine leading, its workload index listed, the early look still to list NS."""
    e = engine()
    e.index.listed = True
    e._open_gate()
    return e


def test_the_early_look_queues_every_keyset_emergencies_first_and_only_those_run() -> None:
    e = leading_engine()
    assert not full(e)  # half open: nothing listed yet
    e._early_list(NS, [keyset("a", "10"), keyset("b", "11", URGENT)])
    assert (lane_of(e, "a"), lane_of(e, "b")) == (Lane.CHANGE, Lane.EMERGENCY)
    assert not full(e)  # kopf has not delivered them yet


def test_the_gate_opens_once_kopf_delivered_what_the_early_look_listed() -> None:
    e = leading_engine()
    e._early_list(NS, [keyset("a", "10"), keyset("b", "11")])
    e.scheduler._states.clear()  # as if both had their pass
    e.keyset_event(None, keyset("a", "10"))
    assert not full(e)
    e.keyset_event(None, keyset("b", "11"))
    assert full(e)
    assert lane_of(e, "a") is None and lane_of(e, "b") is None  # the same versions: no pass again


def test_a_version_older_than_the_known_one_wakes_nothing() -> None:
    e = engine()
    e.keyset_event("MODIFIED", keyset("a", "12", URGENT))
    e.scheduler._states.clear()
    e.keyset_event(None, keyset("a", "11"))  # kopf's listing, from before the status patch
    assert lane_of(e, "a") is None
    assert e.keysets.cached_body(NS, "a") == keyset("a", "12", URGENT)


def test_an_emergency_the_early_look_sees_goes_first() -> None:
    e = engine()
    e._early_event(keyset("a", "12", URGENT))
    assert lane_of(e, "a") is Lane.EMERGENCY


def test_a_failed_early_list_holds_nothing() -> None:
    e = leading_engine()
    e._early_failed(NS)
    assert full(e)  # kopf delivers the keysets all the same


def test_an_object_of_a_keyset_not_known_wakes_nothing() -> None:
    e = engine()
    e.owned_object_event("MODIFIED", "Secret", secret("elsewhere", "12"))
    assert lane_of(e, "elsewhere") is None


def test_what_the_threads_find_before_the_loop_waits_for_it() -> None:
    e = engine()
    e._look.replace(NS, [keyset("a", "10")])
    assert lane_of(e, "a") is None  # held: no loop yet

    async def attach() -> None:
        e._look.attach(asyncio.get_running_loop())

    asyncio.run(attach())
    assert lane_of(e, "a") is Lane.CHANGE


@pytest.mark.parametrize(
    ("version", "woken"),
    [("30", False), ("31", True)],
    ids=["the echo of Keyturn's write: dropped in the thread", "someone else's change: handed over"],
)
def test_the_owned_objects_watch_hands_over_only_other_people_s_changes(version: str, woken: bool) -> None:
    e = engine()
    e.keysets.remember(keyset("a", "1"))
    OWN_WRITES.add("Secret", NS, "a", "30")
    (secrets_look, _) = e._owned

    async def deliver() -> None:
        secrets_look.attach(asyncio.get_running_loop())
        secrets_look.apply(NS, "MODIFIED", secret("a", version))
        await asyncio.sleep(0)  # call_soon_threadsafe runs on the next turn of the loop

    asyncio.run(deliver())
    assert (lane_of(e, "a") is Lane.CHANGE) is woken
