"""Targets of every kind on the real control plane: StatefulSets and DaemonSets roll like Deployments.

Each kind is restarted by its own controller (KWOK plays the kubelet of two Nodes, so a DaemonSet
really rolls node by node) and judged rolled by its own status. The order of the restarts is read
from the controllers' own records: the ReplicaSets of a Deployment and the ControllerRevisions of
a StatefulSet or DaemonSet, created when the pod template changes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest
from kubernetes import client

from helpers import wait_for
from kubetools import (
    Kube,
    OperatorProcess,
    daemonset,
    daemonset_rolled,
    deployment,
    rollout_complete,
    statefulset,
    statefulset_rolled,
    template_annotations,
)

pytestmark = pytest.mark.integration

ROTATION = {"interval": "30d", "publishAhead": "0s", "gracePeriod": "7d", "retention": "14d"}
REV = "keyturn.dev/rev-keys"
KEYSET = "keyturn.dev/keyset"
ROLE = "keyturn.dev/role"
ORDER = "keyturn.dev/order"
RELOAD = "keyturn.dev/reload"

DEPLOYMENT, STATEFULSET, DAEMONSET = "Deployment", "StatefulSet", "DaemonSet"
Ref = tuple[str, str]  # kind, name


@dataclass(frozen=True)
class Record:
    """One revision of a workload's pod template, as its controller recorded it."""

    revision: int
    created: datetime
    name: str


# ---------------------------------------------------------------------------------- reading
def read(kube: Kube, ref: Ref) -> Any:
    kind, name = ref
    reader: Callable[[str, str], Any] = {
        DEPLOYMENT: kube.apps.read_namespaced_deployment,
        STATEFULSET: kube.apps.read_namespaced_stateful_set,
        DAEMONSET: kube.apps.read_namespaced_daemon_set,
    }[kind]
    return reader(name, kube.namespace)


def rolled(kube: Kube, ref: Ref) -> bool:
    """The workload's own controller finished rolling its current template (kubectl rollout status)."""
    checks: dict[str, Callable[[Any], bool]] = {
        DEPLOYMENT: rollout_complete,
        STATEFULSET: statefulset_rolled,
        DAEMONSET: daemonset_rolled,
    }
    return checks[ref[0]](read(kube, ref))


def revision(kube: Kube, ref: Ref) -> str | None:
    """Keyturn's restart revision on the pod template, if it ever set one."""
    return template_annotations(read(kube, ref)).get(REV)


def _owned_by(meta: client.V1ObjectMeta, ref: Ref) -> bool:
    return any(o.kind == ref[0] and o.name == ref[1] for o in meta.owner_references or ())


def _created(meta: client.V1ObjectMeta) -> datetime:
    assert meta.creation_timestamp is not None
    return meta.creation_timestamp


def records(kube: Kube, ref: Ref) -> list[Record]:
    """The pod-template revisions the controller made, oldest first: ReplicaSets of a Deployment,
    ControllerRevisions of a StatefulSet or DaemonSet."""
    found: list[Record] = []
    if ref[0] == DEPLOYMENT:
        for rs in kube.apps.list_namespaced_replica_set(kube.namespace).items:
            meta = rs.metadata
            if meta is not None and _owned_by(meta, ref):
                number = int((meta.annotations or {})["deployment.kubernetes.io/revision"])
                found.append(Record(number, _created(meta), str(meta.name)))
    else:
        for cr in kube.apps.list_namespaced_controller_revision(kube.namespace).items:
            meta = cr.metadata
            if meta is not None and _owned_by(meta, ref):
                found.append(Record(int(cr.revision or 0), _created(meta), str(meta.name)))
    return sorted(found, key=lambda r: r.revision)


def newest(kube: Kube, ref: Ref) -> Record:
    return records(kube, ref)[-1]


def pods(kube: Kube, ref: Ref) -> list[client.V1Pod]:
    items: list[client.V1Pod] = kube.core.list_namespaced_pod(
        kube.namespace, label_selector=f"app={ref[1]}"
    ).items
    return items


def revision_hashes(kube: Kube, ref: Ref) -> dict[str, str]:
    """Pod name -> the controller revision it runs (a StatefulSet's Pods carry the revision's name)."""
    found: dict[str, str] = {}
    for pod in pods(kube, ref):
        meta = pod.metadata
        if meta is not None and meta.name:
            found[meta.name] = (meta.labels or {}).get("controller-revision-hash", "")
    return found


def last_ready(kube: Kube, ref: Ref) -> datetime:
    """When the last of the workload's Pods became Ready."""
    times = [
        c.last_transition_time
        for pod in pods(kube, ref)
        for c in ((pod.status.conditions or ()) if pod.status else ())
        if c.type == "Ready" and c.status == "True" and c.last_transition_time is not None
    ]
    assert times, f"no Pod of {ref} is Ready"
    return max(times)


def targets(kube: Kube) -> dict[Ref, dict[str, Any]]:
    """status.rollout.targets[] by (kind, name)."""
    listed = (kube.status("keys").get("rollout") or {}).get("targets") or []
    return {(t["kind"], t["name"]): t for t in listed}


def settled(kube: Kube, restarted: list[Ref], untouched: tuple[Ref, ...] = ()) -> bool:
    """Every target Ready in status; the restarted ones stamped and rolled by their controllers."""
    shown = targets(kube)
    return (
        set(shown) == {*restarted, *untouched}
        and all(t["state"] == "Ready" for t in shown.values())
        and all(revision(kube, ref) and rolled(kube, ref) for ref in restarted)
    )


def rotate(kube: Kube) -> str:
    """Asks for a rotation; returns the kid that signed before it."""
    old: str = kube.status("keys")["currentKid"]
    kube.patch_keyset("keys", {"metadata": {"annotations": {"keyturn.dev/rotate": "go"}}})
    return old


def opt_in(role: str, **extra: str) -> dict[str, str]:
    return {KEYSET: "keys", ROLE: role, **{f"keyturn.dev/{k}": v for k, v in extra.items()}}


def condition(kube: Kube, kind: str, reason: str, *fragments: str) -> dict[str, Any] | None:
    cond = kube.condition("keys", kind)
    ok = (
        cond is not None
        and cond["status"] == "True"
        and cond["reason"] == reason
        and all(f in cond["message"] for f in fragments)
    )
    return cond if ok else None


# ---------------------------------------------------------------------------------- role order
def test_a_statefulset_and_a_daemonset_roll_in_role_order_each_judged_by_its_own_status(
    kube: Kube, keyturn: OperatorProcess
) -> None:
    kube.create_keyset("keys", {"rotation": ROTATION, "rollout": {"timeout": "60s", "pauseBetween": "2s"}})
    api, db, edge = (DEPLOYMENT, "api"), (STATEFULSET, "db"), (DAEMONSET, "edge")
    # `order` puts the StatefulSet before the Deployment (by name it would come after), and the
    # verifier DaemonSet goes last whatever its order.
    kube.apps.create_namespaced_deployment(kube.namespace, deployment("api", opt_in("signer", order="5")))
    kube.apps.create_namespaced_stateful_set(
        kube.namespace, statefulset("db", opt_in("both", order="-1"), replicas=2)
    )
    kube.apps.create_namespaced_daemon_set(kube.namespace, daemonset("edge", opt_in("verifier", order="-9")))
    refs = [api, db, edge]
    wait_for(lambda: settled(kube, refs), 120, message="first rollout of the three targets")
    # The DaemonSet runs on both Nodes.
    assert {p.spec.node_name for p in pods(kube, edge) if p.spec} == {"kwok-node-0", "kwok-node-1"}
    before = {ref: newest(kube, ref) for ref in refs}
    before_revision = kube.status("keys")["rollout"]["revision"]
    old = rotate(kube)
    seen_rolling: list[tuple[Ref, ...]] = []
    # Shown Ready for the new revision while its controller was still rolling: (target, rollout, workload).
    premature: list[tuple[Ref, Any, Any]] = []

    def done() -> bool:
        status = kube.status("keys")
        rollout = status.get("rollout") or {}
        shown = {(t["kind"], t["name"]): t for t in rollout.get("targets") or ()}
        rolling = tuple(ref for ref, t in shown.items() if t["state"] in ("Rolling", "Checking"))
        if rolling:
            seen_rolling.append(rolling)
        if rollout.get("revision") != before_revision:
            for ref, t in shown.items():
                if t["state"] == "Ready" and not rolled(kube, ref):
                    premature.append((ref, rollout, read(kube, ref).to_dict()))
        return (
            status["currentKid"] != old
            and settled(kube, refs)
            and all(newest(kube, ref) != before[ref] for ref in refs)
        )

    wait_for(done, 120, interval=0.1, message="the rotation rolled every target")
    assert premature == []
    assert all(len(r) == 1 for r in seen_rolling), seen_rolling  # one target at a time
    after = {ref: newest(kube, ref) for ref in refs}
    # Each controller made exactly one new revision, in order: both (order -1), signer, verifier.
    assert all(after[ref].revision == before[ref].revision + 1 for ref in refs), (before, after)
    assert after[db].created < after[api].created < after[edge].created, after
    # ...and each one only after the previous target's own Pods were all Ready again.
    assert after[api].created > last_ready(kube, db)
    assert after[edge].created > last_ready(kube, api)
    sts = read(kube, db)
    assert sts.status.current_revision == sts.status.update_revision == after[db].name
    assert set(revision_hashes(kube, db).values()) == {after[db].name}
    ds = read(kube, edge)
    assert ds.status.desired_number_scheduled == ds.status.updated_number_scheduled == 2
    # status.rollout names the kinds; the Events name each restart by kind, in restart order.
    shown = targets(kube)
    assert {ref: t["role"] for ref, t in shown.items()} == {api: "signer", db: "both", edge: "verifier"}
    final = {ref: revision(kube, ref) for ref in refs}
    labels = {ref: f"{ref[0].lower()} {ref[1]} " for ref in refs}
    restarts = sorted(
        (
            e
            for e in kube.events()
            if e.reason == "RolloutProgressing"
            and any(labels[ref] in e.message and str(final[ref]) in e.message for ref in refs)
        ),
        key=lambda e: e.last_timestamp,
    )
    assert [e.message.split()[1:3] for e in restarts] == [
        ["statefulset", "db"],
        ["deployment", "api"],
        ["daemonset", "edge"],
    ]


# ---------------------------------------------------------------------------------- partition
def test_a_partitioned_statefulset_is_rolled_once_the_ordinals_above_the_partition_are(
    kube: Kube, keyturn: OperatorProcess
) -> None:
    kube.create_keyset("keys", {"rotation": ROTATION, "rollout": {"timeout": "60s", "pauseBetween": "0s"}})
    db, edge = (STATEFULSET, "db"), (DEPLOYMENT, "edge")
    kube.apps.create_namespaced_stateful_set(
        kube.namespace, statefulset("db", opt_in("both"), replicas=3, partition=2)
    )
    kube.apps.create_namespaced_deployment(kube.namespace, deployment("edge", opt_in("verifier")))
    wait_for(lambda: settled(kube, [db, edge]), 90, message="first rollout")
    first = records(kube, db)[0].name  # the template the StatefulSet was created with
    before = {db: newest(kube, db), edge: newest(kube, edge)}
    old = rotate(kube)

    def done() -> bool:
        return (
            kube.status("keys")["currentKid"] != old
            and settled(kube, [db, edge])
            and newest(kube, db) != before[db]
            and newest(kube, edge) != before[edge]
        )

    wait_for(done, 90, message="the rotation rolled both targets")
    sts = read(kube, db)
    hashes = revision_hashes(kube, db)
    # Only the ordinal at or above the partition took the new template; Keyturn did not wait for the
    # others (the verifier after it rolled), and never will: they stay on the first template.
    assert hashes == {"db-0": first, "db-1": first, "db-2": newest(kube, db).name}, hashes
    assert sts.status.current_revision == first != sts.status.update_revision
    assert targets(kube)[db]["state"] == "Ready"
    assert newest(kube, edge).created >= newest(kube, db).created


# ---------------------------------------------------------------------------------- failure
@pytest.fixture
def node_label(kube: Kube) -> Iterator[str]:
    """A label on kwok-node-0 that a StatefulSet can require; removing it strands new Pods."""
    key = f"keyturn.dev/test-{kube.namespace}"
    kube.core.patch_node("kwok-node-0", {"metadata": {"labels": {key: "yes"}}})
    yield key
    kube.core.patch_node("kwok-node-0", {"metadata": {"labels": {key: None}}})


@pytest.mark.parametrize("on_failure", ["Rollback", "Pause"])
def test_a_statefulset_that_never_becomes_ready_stops_the_rotation(
    kube: Kube, keyturn: OperatorProcess, node_label: str, on_failure: str
) -> None:
    kube.create_keyset(
        "keys",
        {"rotation": ROTATION, "rollout": {"timeout": "8s", "pauseBetween": "0s", "onFailure": on_failure}},
    )
    db, edge = (STATEFULSET, "db"), (DAEMONSET, "edge")
    kube.apps.create_namespaced_stateful_set(
        kube.namespace,
        # One replica: its restarted Pod counts as updated at once, so only readiness can hold it.
        statefulset("db", opt_in("signer"), replicas=1, node_selector={node_label: "yes"}),
    )
    kube.apps.create_namespaced_daemon_set(kube.namespace, daemonset("edge", opt_in("verifier")))
    wait_for(lambda: settled(kube, [db, edge]), 90, message="first rollout")
    edge_records = records(kube, edge)
    kube.core.patch_node("kwok-node-0", {"metadata": {"labels": {node_label: None}}})  # strands new Pods
    old = rotate(kube)
    new = wait_for(
        lambda: (s := kube.status("keys"))["currentKid"] != old and s["currentKid"], 20, message="activation"
    )
    events = wait_for(
        lambda: [e for e in kube.events() if e.reason == "TargetFailed" and "statefulset db" in e.message],
        40,
        message="a TargetFailed Event naming the StatefulSet",
    )
    assert events[0].type == "Warning"
    assert "rollout not complete after 8s" in events[0].message
    # The controller really is stuck: the restarted ordinal waits for a Node.
    assert any(p.status and p.status.phase == "Pending" for p in pods(kube, db))
    if on_failure == "Rollback":
        status = kube.wait_status("keys", lambda s: s["currentKid"] == old, 20, "rolled back to the old key")
        assert {k["kid"]: k["state"] for k in status["keys"]}[new] == "failed"
        cond = kube.wait_condition("keys", "RolledBack", "True")
        assert cond["message"].startswith(f"rolled back to {old}")
        rollback = next(h for h in status["history"] if h["operation"] == "rollback")
        assert rollback["trigger"] == "rollout" and "statefulset db" in rollback["reason"]
        assert (kube.secret("keys") or {})["JWT_KID"] == old
    else:
        cond = kube.wait_condition("keys", "Stalled", "True")
        assert cond["reason"] == "RolloutPaused" and "statefulset db" in cond["message"]
        status = kube.status("keys")
        assert status["phase"] == "Paused" and status["currentKid"] == new
        assert condition(kube, "Degraded", "TargetFailed", "statefulset db")
        assert targets(kube)[db]["state"] == "Failed"
        # Paused: the verifier after the failed signer is never restarted.
        assert records(kube, edge) == edge_records
        assert targets(kube)[edge]["state"] == "Pending"


# ---------------------------------------------------------------------------------- OnDelete
def test_on_delete_targets_are_reported_and_hold_nothing(kube: Kube, keyturn: OperatorProcess) -> None:
    kube.create_keyset("keys", {"rotation": ROTATION, "rollout": {"timeout": "30s", "pauseBetween": "0s"}})
    api, db, edge = (DEPLOYMENT, "api"), (STATEFULSET, "db"), (DAEMONSET, "edge")
    kube.apps.create_namespaced_deployment(kube.namespace, deployment("api", opt_in("signer")))
    kube.apps.create_namespaced_stateful_set(
        kube.namespace, statefulset("db", opt_in("both"), replicas=1, on_delete=True)
    )
    kube.apps.create_namespaced_daemon_set(
        kube.namespace, daemonset("edge", opt_in("verifier"), on_delete=True)
    )
    cond = wait_for(
        lambda: condition(kube, "Degraded", "BadTarget", "statefulset db", "daemonset edge", "OnDelete"),
        30,
        message="Degraded=True BadTarget naming both OnDelete targets",
    )
    assert "keyturn.dev/reload: none" in cond["message"]  # the message names the fix
    assert any(e.reason == "BadTarget" and e.type == "Warning" for e in kube.events())
    wait_for(lambda: settled(kube, [api]), 60, message="the Deployment rolled; the others left out")
    before = newest(kube, api)
    old = rotate(kube)
    wait_for(
        lambda: (
            kube.status("keys")["currentKid"] != old and settled(kube, [api]) and newest(kube, api) != before
        ),
        60,
        message="the rotation went on and restarted the Deployment",
    )
    assert set(targets(kube)) == {api}
    for ref in (db, edge):
        assert revision(kube, ref) is None  # never restarted
        assert len(records(kube, ref)) == 1
    assert condition(kube, "Degraded", "BadTarget", "statefulset db", "daemonset edge")


# ---------------------------------------------------------------------------------- reload: none
def test_reload_none_targets_are_never_restarted_by_a_rotation_or_an_emergency(
    kube: Kube, keyturn: OperatorProcess
) -> None:
    kube.create_keyset("keys", {"rotation": ROTATION, "rollout": {"timeout": "60s", "pauseBetween": "0s"}})
    api, edge = (DEPLOYMENT, "api"), (DAEMONSET, "edge")
    # One of each kind reloads by itself; an OnDelete StatefulSet is fine then (nothing restarts it).
    quiet = ((DEPLOYMENT, "cache"), (STATEFULSET, "db"), (DAEMONSET, "agent"))
    kube.apps.create_namespaced_deployment(kube.namespace, deployment("api", opt_in("both")))
    kube.apps.create_namespaced_daemon_set(kube.namespace, daemonset("edge", opt_in("verifier")))
    kube.apps.create_namespaced_deployment(
        kube.namespace, deployment("cache", opt_in("verifier", reload="none"))
    )
    kube.apps.create_namespaced_stateful_set(
        kube.namespace, statefulset("db", opt_in("both", reload="none"), replicas=1, on_delete=True)
    )
    kube.apps.create_namespaced_daemon_set(
        kube.namespace, daemonset("agent", opt_in("signer", reload="none"))
    )
    restarted = [api, edge]
    wait_for(lambda: settled(kube, restarted, quiet), 90, message="first rollout")
    quiet_records = {ref: records(kube, ref) for ref in quiet}
    assert all(len(r) == 1 for r in quiet_records.values()), quiet_records

    def rolled_again(old: str, before: dict[Ref, Record]) -> Callable[[], bool]:
        return lambda: (
            kube.status("keys")["currentKid"] != old
            and settled(kube, restarted, quiet)
            and all(newest(kube, ref) != before[ref] for ref in restarted)
        )

    before = {ref: newest(kube, ref) for ref in restarted}
    old = rotate(kube)
    wait_for(rolled_again(old, before), 90, message="the rotation restarted the other targets")
    before = {ref: newest(kube, ref) for ref in restarted}
    old = kube.status("keys")["currentKid"]
    kube.patch_status("keys", {"status": {"emergency": {"requestId": "inc-1", "reason": "key_compromise"}}})
    wait_for(rolled_again(old, before), 90, message="the emergency restarted the other targets")
    assert kube.status("keys")["emergency"]["result"]
    for ref in quiet:
        assert revision(kube, ref) is None, ref
        assert records(kube, ref) == quiet_records[ref], ref
    shown = targets(kube)
    assert all(shown[ref]["state"] == "Ready" for ref in quiet), shown
    degraded = kube.condition("keys", "Degraded")
    assert degraded is None or degraded["status"] == "False", degraded  # none + OnDelete is no BadTarget


# ---------------------------------------------------------------------------------- the watch index
def test_removing_the_keyset_annotation_drops_the_target(kube: Kube, keyturn: OperatorProcess) -> None:
    kube.create_keyset("keys", {"rotation": ROTATION, "rollout": {"timeout": "60s", "pauseBetween": "0s"}})
    api, db = (DEPLOYMENT, "api"), (STATEFULSET, "db")
    kube.apps.create_namespaced_deployment(kube.namespace, deployment("api", opt_in("signer")))
    kube.apps.create_namespaced_stateful_set(kube.namespace, statefulset("db", opt_in("both"), replicas=1))
    wait_for(lambda: settled(kube, [api, db]), 90, message="first rollout")
    db_records = records(kube, db)
    kube.apps.patch_namespaced_stateful_set(
        "db", kube.namespace, {"metadata": {"annotations": {KEYSET: None}}}
    )
    wait_for(lambda: set(targets(kube)) == {api}, 20, message="the StatefulSet left status.rollout.targets")
    kube.apps.patch_namespaced_deployment(
        "api", kube.namespace, {"metadata": {"annotations": {KEYSET: None}}}
    )
    wait_for(lambda: targets(kube) == {}, 20, message="the Deployment left status.rollout.targets")
    assert records(kube, db) == db_records  # leaving restarts nothing
