"""The watch index of target workloads: events move it, a LIST sweeps it, and a LIST never undoes an
event that arrived while it was being answered."""

from __future__ import annotations

from typing import Any

import pytest

from keyturn.adapters.workload_index import WorkloadIndex

NS = "auth"


def body(
    name: str, keysets: str | None = "keys", kind: str = "Deployment", namespace: str = NS
) -> dict[str, Any]:
    annotations = {"keyturn.dev/keyset": keysets} if keysets is not None else {}
    annotations["unrelated.example/big"] = "x" * 100
    return {
        "kind": kind,
        "metadata": {"name": name, "namespace": namespace, "generation": 1, "annotations": annotations},
        "spec": {"replicas": 1, "template": {"metadata": {"annotations": {"keyturn.dev/rev-keys": "b-1"}}}},
        "status": {"observedGeneration": 1},
    }


def names(index: WorkloadIndex, keyset: str = "keys") -> list[str]:
    return [b["metadata"]["name"] for b in index.targets(NS, keyset)]


def test_events_add_move_and_drop_targets() -> None:
    index = WorkloadIndex()
    assert index.update(body("api", "keys,other")) == {(NS, "keys"), (NS, "other")}
    assert index.update(body("db", kind="StatefulSet")) == {(NS, "keys")}
    assert names(index) == ["api", "db"] and names(index, "other") == ["api"]
    # The annotation now names one keyset: both hear of it, the one it left included.
    assert index.update(body("api", "other")) == {(NS, "keys"), (NS, "other")}
    assert names(index) == ["db"]
    assert index.update(body("db", None, kind="StatefulSet")) == {(NS, "keys")}  # annotation removed
    assert index.remove(body("api", "other")) == {(NS, "other")}
    assert len(index) == 0


def test_the_index_keeps_only_what_a_target_needs() -> None:
    index = WorkloadIndex()
    index.update(body("api"))
    (kept,) = index.targets(NS, "keys")
    assert kept["metadata"]["annotations"] == {"keyturn.dev/keyset": "keys"}
    assert kept["spec"]["template"]["metadata"]["annotations"] == {"keyturn.dev/rev-keys": "b-1"}


def test_a_same_name_of_another_kind_is_another_target() -> None:
    index = WorkloadIndex()
    index.update(body("api"))
    index.update(body("api", kind="DaemonSet"))
    assert [b["kind"] for b in index.targets(NS, "keys")] == ["DaemonSet", "Deployment"]


def test_a_sweep_makes_the_index_equal_to_the_list() -> None:
    index = WorkloadIndex()
    index.update(body("gone"))  # deleted while the watch was disconnected
    index.update(body("other-ns", namespace="elsewhere"))
    before = index.listed
    affected = index.sweep([body("api"), body("plain", None)], {NS})
    assert (before, index.listed) == (False, True)
    assert affected == {(NS, "keys")}
    assert names(index) == ["api"]
    assert [b["metadata"]["name"] for b in index.targets("elsewhere", "keys")] == ["other-ns"]  # not listed


@pytest.mark.parametrize(
    ("during_the_list", "listed", "expected"),
    [
        pytest.param(lambda i: i.remove(body("api")), [body("api")], [], id="a deletion is not brought back"),
        pytest.param(
            lambda i: i.update(body("api", None)), [body("api")], [], id="a removed annotation stays removed"
        ),
        pytest.param(lambda i: i.update(body("new")), [], ["new"], id="a workload created meanwhile stays"),
        pytest.param(
            lambda i: i.update({**body("api"), "status": {"observedGeneration": 2}}),
            [body("api")],
            ["api"],
            id="a newer body is not overwritten",
        ),
    ],
)
def test_an_event_during_the_list_wins_over_the_list(
    during_the_list: Any, listed: list[dict[str, Any]], expected: list[str]
) -> None:
    index = WorkloadIndex()
    index.update(body("api"))
    since = index.clock()  # the LIST starts
    during_the_list(index)
    index.sweep(listed, {NS}, since)
    assert names(index) == expected
    if expected == ["api"]:
        assert index.targets(NS, "keys")[0]["status"] == {"observedGeneration": 2}


def test_events_before_the_list_do_not_shield_a_workload_from_later_sweeps() -> None:
    index = WorkloadIndex()
    index.update(body("api"))
    index.sweep([], {NS}, index.clock())  # the event came before the LIST: the LIST wins
    assert names(index) == []
    index.update(body("api"))
    since = index.clock()
    index.sweep([body("api")], {NS}, since)
    index.sweep([], {NS}, index.clock())  # a later LIST without it: deleted meanwhile
    assert names(index) == []


def test_without_a_clock_the_list_wins() -> None:
    index = WorkloadIndex()
    index.update(body("api"))
    index.remove(body("api"))
    index.sweep([body("api")], {NS})
    assert names(index) == ["api"]
