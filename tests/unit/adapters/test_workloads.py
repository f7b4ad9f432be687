"""adapters/workloads.py: to_target is total; any workload body is a Target or a BadTarget that names
the fault and the fix, and "rolled" is judged by each kind's own status."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from kubernetes import client

from keyturn.adapters.workloads import BadTarget, to_target
from keyturn.domain.targets import Reload, Role, Target, WorkloadKind

KEYSET = "keys"
STAMPED = "keyturn.dev/stamped-keys"
READY = "keyturn.dev/ready-keys"


def deployment(
    annotations: dict[str, Any] | None = None,
    *,
    status: client.V1DeploymentStatus | None = None,
    replicas: int | None = 1,
    template: dict[str, str] | None = None,
    generation: int | None = 2,
) -> dict[str, Any]:
    """A Deployment as the watch delivers it: its JSON body."""
    return as_body(
        client.V1Deployment(
            metadata=client.V1ObjectMeta(
                name="api",
                annotations={"keyturn.dev/keyset": KEYSET, **(annotations or {})},
                generation=generation,
            ),
            spec=client.V1DeploymentSpec(
                replicas=replicas,
                selector=client.V1LabelSelector(match_labels={"app": "api"}),
                template=client.V1PodTemplateSpec(metadata=client.V1ObjectMeta(annotations=template)),
            ),
            status=status
            if status is not None
            else client.V1DeploymentStatus(
                observed_generation=2, replicas=1, updated_replicas=1, available_replicas=1
            ),
        ),
        "Deployment",
    )


def as_body(model: Any, kind: str) -> dict[str, Any]:
    body: dict[str, Any] = client.ApiClient().sanitize_for_serialization(model)
    return {**body, "kind": kind}


@pytest.mark.parametrize(
    ("annotations", "expected"),
    [
        ({}, {"role": Role.BOTH, "order": 0}),
        ({"keyturn.dev/role": " verifier "}, {"role": Role.VERIFIER}),
        ({"keyturn.dev/role": ""}, {"role": Role.BOTH}),
        ({"keyturn.dev/order": "-10"}, {"order": -10}),
        ({"keyturn.dev/order": "+999999999"}, {"order": 999_999_999}),
        (
            {STAMPED: "2026-05-01T12:00:00Z"},
            {"stamped_at": datetime(2026, 5, 1, 12, tzinfo=UTC), "damaged": ()},
        ),
        (
            {READY: "b-abc 2026-05-01T12:00:00Z"},
            {"verified": "b-abc", "verified_at": datetime(2026, 5, 1, 12, tzinfo=UTC), "damaged": ()},
        ),
        ({"keyturn.dev/health-url": " http://api.auth/h "}, {"health_url": "http://api.auth/h"}),
    ],
    ids=["defaults", "role", "empty role", "negative order", "largest order", "stamp", "ready", "health url"],
)
def test_readable_annotations(annotations: dict[str, str], expected: dict[str, Any]) -> None:
    target = to_target(deployment(annotations), KEYSET)
    assert {k: getattr(target, k) for k in expected} == expected


@pytest.mark.parametrize(
    ("annotations", "named"),
    [
        ({"keyturn.dev/role": "admin"}, "keyturn.dev/role"),
        ({"keyturn.dev/role": "x" * 100_000}, "keyturn.dev/role"),
        ({"keyturn.dev/order": "1e999"}, "keyturn.dev/order"),
        ({"keyturn.dev/order": "9" * 5000}, "keyturn.dev/order"),
        ({"keyturn.dev/order": "1000000000"}, "keyturn.dev/order"),
        ({"keyturn.dev/order": "ten"}, "keyturn.dev/order"),
        ({"keyturn.dev/order": "٣"}, "keyturn.dev/order"),
        ({"keyturn.dev/order": "1.5"}, "keyturn.dev/order"),
    ],
    ids=[
        "unknown role",
        "huge role",
        "order overflows a float",
        "order longer than int() parses",
        "order too large",
        "order a word",
        "order in arabic digits",
        "order a fraction",
    ],
)
def test_unreadable_role_or_order_is_a_bad_target(annotations: dict[str, str], named: str) -> None:
    with pytest.raises(BadTarget) as bad:
        to_target(deployment(annotations), KEYSET)
    message = str(bad.value)
    assert message.startswith("deployment api: ") and named in message and "fix the annotation" in message
    assert len(message) < 400


@pytest.mark.parametrize(
    ("annotations", "field", "named"),
    [
        ({STAMPED: "yesterday"}, "stamped_at", STAMPED),
        ({STAMPED: "99999-01-01T00:00:00Z"}, "stamped_at", STAMPED),
        ({STAMPED: "9999-12-31T23:59:59-23:59"}, "stamped_at", STAMPED),
        ({STAMPED: "0001-01-01T00:00:00+23:59"}, "stamped_at", STAMPED),
        ({STAMPED: "2026-05-01T12:00:00"}, "stamped_at", STAMPED),
        ({STAMPED: "2026-13-01T12:00:00Z"}, "stamped_at", STAMPED),
        ({STAMPED: "1" * 10_000}, "stamped_at", STAMPED),
        ({READY: "b-abc"}, "verified", READY),
        ({READY: "b-abc yesterday"}, "verified", READY),
        ({READY: " 2026-05-01T12:00:00Z"}, "verified", READY),
        ({READY: "b-abc 99999-01-01T00:00:00Z"}, "verified", READY),
        ({READY: "x" * 100_000 + " 2026-05-01T12:00:00Z"}, "verified", READY),
    ],
    ids=[
        "stamp a word",
        "stamp year 99999",
        "stamp overflows to UTC",
        "stamp underflows to UTC",
        "stamp without a zone",
        "stamp month 13",
        "stamp huge",
        "ready without time",
        "ready time a word",
        "ready without revision",
        "ready year 99999",
        "ready huge revision",
    ],
)
def test_damaged_bookkeeping_is_ignored_and_reported(
    annotations: dict[str, str], field: str, named: str
) -> None:
    target = to_target(deployment(annotations), KEYSET)
    assert getattr(target, field) is None
    if field == "verified":
        assert target.verified_at is None
    assert len(target.damaged) == 1
    assert target.damaged[0].startswith("deployment api: ") and named in target.damaged[0]
    assert "ignored" in target.damaged[0] and len(target.damaged[0]) < 400


@pytest.mark.parametrize(
    "dep",
    [
        deployment(status=client.V1DeploymentStatus()),
        {"metadata": {"name": "api", "annotations": None}, "spec": None, "status": None},
        {
            "kind": ["not", "a", "kind"],
            "metadata": {"name": "api", "annotations": {"keyturn.dev/role": 7}, "generation": "x"},
            "spec": {"replicas": "3", "template": None, "updateStrategy": "junk"},
            "status": {"replicas": -1, "updatedReplicas": True, "conditions": "junk"},
        },
        deployment(replicas=None, template={"keyturn.dev/rev-keys": "b-1"}, generation=None),
        deployment(
            status=client.V1DeploymentStatus(
                observed_generation=2,
                replicas=1,
                updated_replicas=1,
                available_replicas=1,
                conditions=[client.V1DeploymentCondition(type="Progressing", status="False", reason=None)],
            )
        ),
    ],
    ids=[
        "empty status",
        "no spec nor status",
        "wrong types everywhere",
        "spec defaults",
        "condition without reason",
    ],
)
def test_any_deployment_shape_reads(dep: Any) -> None:
    target = to_target(dep, KEYSET)
    assert isinstance(target, Target) and target.name == "api"


def test_missing_status_is_not_complete() -> None:
    assert not to_target({"metadata": {"name": "api"}}, KEYSET).complete
    assert not to_target(deployment(status=client.V1DeploymentStatus()), KEYSET).complete
    assert to_target(deployment(), KEYSET).complete


@pytest.mark.parametrize(
    "dep",
    [{}, {"metadata": None}, {"metadata": {"name": ""}}],
    ids=["nothing", "no metadata", "no name"],
)
def test_a_deployment_without_a_name_is_a_bad_target(dep: Any) -> None:
    with pytest.raises(BadTarget, match="without a name"):
        to_target(dep, KEYSET)


# ------------------------------------------------------------------------------ other kinds
def statefulset(
    status: dict[str, Any], *, replicas: int = 3, strategy: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "kind": "StatefulSet",
        "metadata": {"name": "db", "generation": 4, "annotations": {"keyturn.dev/keyset": KEYSET}},
        "spec": {"replicas": replicas, "updateStrategy": strategy or {"type": "RollingUpdate"}},
        "status": {"observedGeneration": 4, **status},
    }


def daemonset(status: dict[str, Any], *, strategy: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "kind": "DaemonSet",
        "metadata": {"name": "agent", "generation": 2, "annotations": {"keyturn.dev/keyset": KEYSET}},
        "spec": {"updateStrategy": strategy or {"type": "RollingUpdate"}},
        "status": {"observedGeneration": 2, **status},
    }


DONE_STS = {
    "replicas": 3,
    "updatedReplicas": 3,
    "readyReplicas": 3,
    "currentRevision": "r2",
    "updateRevision": "r2",
}
DONE_DS = {
    "desiredNumberScheduled": 2,
    "updatedNumberScheduled": 2,
    "numberAvailable": 2,
    "numberUnavailable": 0,
}
ROLLED = {
    "a StatefulSet on its update revision everywhere is rolled": (statefulset(DONE_STS), True),
    "a StatefulSet with a replica still on the old revision is not": (
        statefulset({**DONE_STS, "updatedReplicas": 2, "currentRevision": "r1"}),
        False,
    ),
    "a StatefulSet with a replica not ready is not": (statefulset({**DONE_STS, "readyReplicas": 2}), False),
    "a StatefulSet whose controller has not seen the change is not": (
        {**statefulset(DONE_STS), "metadata": {"name": "db", "generation": 5}},
        False,
    ),
    "a partitioned StatefulSet is rolled once the ordinals above the partition are": (
        statefulset(
            {**DONE_STS, "updatedReplicas": 1, "currentRevision": "r1"},
            strategy={"type": "RollingUpdate", "rollingUpdate": {"partition": 2}},
        ),
        True,
    ),
    "a partitioned StatefulSet is not rolled before them": (
        statefulset(
            {**DONE_STS, "updatedReplicas": 0, "currentRevision": "r1"},
            strategy={"type": "RollingUpdate", "rollingUpdate": {"partition": 2}},
        ),
        False,
    ),
    "a DaemonSet updated and available on every scheduled node is rolled": (daemonset(DONE_DS), True),
    "a DaemonSet with a node not updated is not": (
        daemonset({**DONE_DS, "updatedNumberScheduled": 1}),
        False,
    ),
    "a DaemonSet with a Pod unavailable is not": (
        daemonset({**DONE_DS, "numberAvailable": 1, "numberUnavailable": 1}),
        False,
    ),
}


@pytest.mark.parametrize(("body", "rolled"), ROLLED.values(), ids=ROLLED.keys())
def test_rolled_is_judged_by_the_kind_s_own_status(body: dict[str, Any], rolled: bool) -> None:
    target = to_target(body, KEYSET)
    assert target.complete is rolled
    assert target.kind is WorkloadKind(body["kind"])


@pytest.mark.parametrize(
    "body",
    [
        statefulset(DONE_STS, strategy={"type": "OnDelete"}),
        daemonset(DONE_DS, strategy={"type": "OnDelete"}),
    ],
    ids=["a StatefulSet", "a DaemonSet"],
)
def test_on_delete_cannot_be_restarted_by_keyturn(body: dict[str, Any]) -> None:
    with pytest.raises(BadTarget, match="OnDelete") as bad:
        to_target(body, KEYSET)
    assert str(bad.value).startswith(f"{body['kind'].lower()} ")


def test_on_delete_is_fine_for_a_target_that_reloads_by_itself() -> None:
    body = statefulset(DONE_STS, strategy={"type": "OnDelete"})
    body["metadata"]["annotations"]["keyturn.dev/reload"] = "none"
    assert to_target(body, KEYSET).reload is Reload.NONE


@pytest.mark.parametrize(
    ("value", "expected"),
    [("", Reload.RESTART), ("restart", Reload.RESTART), (" none ", Reload.NONE)],
    ids=["default", "restart", "none"],
)
def test_the_reload_strategy(value: str, expected: Reload) -> None:
    assert to_target(deployment({"keyturn.dev/reload": value}), KEYSET).reload is expected


def test_an_unknown_reload_strategy_is_a_bad_target() -> None:
    with pytest.raises(BadTarget, match=r"keyturn\.dev/reload"):
        to_target(deployment({"keyturn.dev/reload": "sometimes"}), KEYSET)
