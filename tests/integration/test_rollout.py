"""Rolling reloads on the real control plane: Deployments on the KWOK node restart one at a time."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

import localcluster
from helpers import wait_for
from kubetools import Kube, OperatorProcess, deployment, rollout_complete, template_annotations

pytestmark = pytest.mark.integration

ROTATION = {"interval": "30d", "publishAhead": "0s", "gracePeriod": "7d", "retention": "14d"}
REV = "keyturn.dev/rev-keys"


def template_revision(kube: Kube, name: str) -> str | None:
    return template_annotations(kube.apps.read_namespaced_deployment(name, kube.namespace)).get(REV)


def complete(kube: Kube, name: str) -> bool:
    return rollout_complete(kube.apps.read_namespaced_deployment(name, kube.namespace))


def newest_replicaset(kube: Kube, name: str) -> tuple[datetime, str]:
    sets = kube.apps.list_namespaced_replica_set(kube.namespace, label_selector=f"app={name}").items
    metas = [rs.metadata for rs in sets if rs.metadata is not None]
    newest = max(metas, key=lambda m: int((m.annotations or {})["deployment.kubernetes.io/revision"]))
    assert newest.creation_timestamp is not None and newest.name is not None
    return newest.creation_timestamp, newest.name


def settled(kube: Kube, names: list[str]) -> bool:
    status = kube.status("keys")
    targets = (status.get("rollout") or {}).get("targets") or []
    return (
        len(targets) == len(names)
        and all(t["state"] == "Ready" for t in targets)
        and all(template_revision(kube, n) and complete(kube, n) for n in names)
    )


def test_three_targets_roll_one_at_a_time_in_role_order(kube: Kube, keyturn: OperatorProcess) -> None:
    kube.create_keyset("keys", {"rotation": ROTATION, "rollout": {"timeout": "60s", "pauseBetween": "2s"}})
    roles = {"verify-a": "verifier", "sign-b": "signer", "both-c": "both"}
    for name, role in roles.items():
        kube.apps.create_namespaced_deployment(
            kube.namespace, deployment(name, {"keyturn.dev/keyset": "keys", "keyturn.dev/role": role})
        )
    names = list(roles)
    wait_for(lambda: settled(kube, names), 90, message="first rollout of the three targets")
    before = {n: newest_replicaset(kube, n) for n in names}
    old = kube.status("keys")["currentKid"]
    kube.patch_keyset("keys", {"metadata": {"annotations": {"keyturn.dev/rotate": "go"}}})
    seen_rolling: list[tuple[str, ...]] = []

    def rolled() -> bool:
        status = kube.status("keys")
        rolling = tuple(
            t["name"] for t in status["rollout"]["targets"] if t["state"] in ("Rolling", "Checking")
        )
        if rolling:
            seen_rolling.append(rolling)
        return (
            status["currentKid"] != old
            and settled(kube, names)
            and all(newest_replicaset(kube, n) != before[n] for n in names)
        )

    wait_for(rolled, 90, interval=0.1, message="rotation rolled every target")
    after = {n: newest_replicaset(kube, n)[0] for n in names}
    # signers (both counts as a signer) first, by name within a role, then verifiers; one at a time
    assert after["both-c"] < after["sign-b"] < after["verify-a"], after
    assert all(len(r) == 1 for r in seen_rolling), seen_rolling
    # the Events of this rotation name each target's final revision, in restart order
    final = {n: template_revision(kube, n) for n in names}
    ours = [
        e
        for e in kube.events()
        if e.reason == "RolloutProgressing"
        and any(f"{n} " in e.message and str(r) in e.message for n, r in final.items())
    ]
    order = [e.message.split()[2] for e in sorted(ours, key=lambda e: e.last_timestamp)]
    assert order == ["both-c", "sign-b", "verify-a"]
    assert template_revision(kube, "sign-b") != template_revision(kube, "verify-a")


@pytest.fixture
def node_label(kube: Kube) -> Iterator[str]:
    """A label on the KWOK node that a Deployment can require; removing it strands new Pods."""
    key = f"keyturn.dev/test-{kube.namespace}"
    kube.core.patch_node("kwok-node-0", {"metadata": {"labels": {key: "yes"}}})
    yield key
    kube.core.patch_node("kwok-node-0", {"metadata": {"labels": {key: None}}})


def _strand(kube: Kube, label: str) -> None:
    kube.core.patch_node("kwok-node-0", {"metadata": {"labels": {label: None}}})


@pytest.mark.parametrize("on_failure", ["Rollback", "Pause"])
def test_a_target_that_never_becomes_available_stops_the_rotation(
    kube: Kube, keyturn: OperatorProcess, node_label: str, on_failure: str
) -> None:
    kube.create_keyset(
        "keys",
        {"rotation": ROTATION, "rollout": {"timeout": "8s", "pauseBetween": "0s", "onFailure": on_failure}},
    )
    kube.apps.create_namespaced_deployment(
        kube.namespace,
        deployment(
            "api",
            {"keyturn.dev/keyset": "keys", "keyturn.dev/role": "signer"},
            node_selector={node_label: "yes"},
        ),
    )
    kube.apps.create_namespaced_deployment(
        kube.namespace, deployment("edge", {"keyturn.dev/keyset": "keys", "keyturn.dev/role": "verifier"})
    )
    wait_for(lambda: settled(kube, ["api", "edge"]), 60, message="first rollout")
    old = kube.status("keys")["currentKid"]
    edge_before = newest_replicaset(kube, "edge")
    _strand(kube, node_label)  # new Pods of "api" can no longer be scheduled
    kube.patch_keyset("keys", {"metadata": {"annotations": {"keyturn.dev/rotate": "go"}}})
    new = wait_for(
        lambda: (s := kube.status("keys"))["currentKid"] != old and s["currentKid"], 20, message="activation"
    )
    events = wait_for(
        lambda: [e for e in kube.events() if e.reason == "TargetFailed" and "api" in e.message],
        30,
        message="TargetFailed event naming the target",
    )
    assert events[0].type == "Warning"
    if on_failure == "Rollback":
        status = kube.wait_status("keys", lambda s: s["currentKid"] == old, 20, "rolled back to the old key")
        keys = {k["kid"]: k for k in status["keys"]}
        assert keys[new]["state"] == "failed"
        assert kube.wait_condition("keys", "RolledBack", "True")["message"].startswith(
            f"rolled back to {old}"
        )
        assert any(h["operation"] == "rollback" and h["trigger"] == "rollout" for h in status["history"])
        assert (kube.secret("keys") or {})["JWT_KID"] == old
        assert new in [k["kid"] for k in (kube.jwks("keys-jwks") or {})["keys"]]
    else:
        cond = kube.wait_condition("keys", "Stalled", "True")
        assert cond["reason"] == "RolloutPaused" and "api" in cond["message"]
        assert kube.status("keys")["phase"] == "Paused"
        assert kube.status("keys")["currentKid"] == new
        # paused: the verifier after the failed signer is never restarted
        assert newest_replicaset(kube, "edge") == edge_before


class _Health(http.server.BaseHTTPRequestHandler):
    healthy = True
    asked: list[str]  # the paths requested so far

    def do_GET(self) -> None:
        type(self).asked.append(self.path)
        self.send_response(200 if type(self).healthy else 500)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        del format, args


@pytest.fixture
def health_server() -> Iterator[tuple[str, type[_Health]]]:
    handler = type("Health", (_Health,), {"healthy": True, "asked": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/health/jwt", handler
    server.shutdown()


def test_a_health_url_answering_500_triggers_rollback(
    kube: Kube, keyturn: OperatorProcess, health_server: tuple[str, type[_Health]]
) -> None:
    url, handler = health_server
    kube.create_keyset("keys", {"rotation": ROTATION, "rollout": {"timeout": "6s", "pauseBetween": "0s"}})
    kube.apps.create_namespaced_deployment(
        kube.namespace,
        deployment(
            "api", {"keyturn.dev/keyset": "keys", "keyturn.dev/role": "both", "keyturn.dev/health-url": url}
        ),
    )
    wait_for(lambda: settled(kube, ["api"]), 60, message="first rollout behind a healthy URL")
    old = kube.status("keys")["currentKid"]
    handler.healthy = False
    kube.patch_keyset("keys", {"metadata": {"annotations": {"keyturn.dev/rotate": "go"}}})
    status = kube.wait_status(
        "keys", lambda s: any(h["operation"] == "rollback" for h in s.get("history", [])), 40, "rollback"
    )
    assert status["currentKid"] == old
    rollback = next(h for h in status["history"] if h["operation"] == "rollback")
    assert "health check" in rollback["reason"] and "HTTP 500" in rollback["reason"]


LONG_HOST_URL = f"http://{'a' * 64}.example/health/jwt"  # a host label over 63 characters
STAMPED = "keyturn.dev/stamped-keys"


def degraded(kube: Kube, reason: str, *fragments: str) -> dict[str, Any] | None:
    cond = kube.condition("keys", "Degraded")
    ok = (
        cond is not None
        and cond["status"] == "True"
        and cond["reason"] == reason
        and all(f in cond["message"] for f in fragments)
    )
    return cond if ok else None


@pytest.mark.parametrize("trigger", ["rotation", "emergency"])
def test_damaged_annotations_and_an_unusable_health_url_hold_neither_a_rotation_nor_an_emergency(
    kube: Kube, keyturn: OperatorProcess, trigger: str
) -> None:
    kube.create_keyset("keys", {"rotation": ROTATION, "rollout": {"timeout": "5s", "pauseBetween": "0s"}})
    keyset = {"keyturn.dev/keyset": "keys"}
    kube.apps.create_namespaced_deployment(
        kube.namespace, deployment("api", {**keyset, "keyturn.dev/role": "signer"})
    )
    kube.apps.create_namespaced_deployment(
        kube.namespace, deployment("edge", {**keyset, "keyturn.dev/role": "verifier"})
    )
    wait_for(lambda: settled(kube, ["api", "edge"]), 60, message="first rollout")
    old = kube.status("keys")["currentKid"]
    # A person damages Keyturn's stamp on one target and gives the other an unusable health URL.
    kube.apps.patch_namespaced_deployment(
        "api", kube.namespace, {"metadata": {"annotations": {STAMPED: "yesterday"}}}
    )
    kube.apps.patch_namespaced_deployment(
        "edge", kube.namespace, {"metadata": {"annotations": {"keyturn.dev/health-url": LONG_HOST_URL}}}
    )
    cond = wait_for(
        lambda: degraded(kube, "BadTarget", "deployment api", STAMPED, "deployment edge", "longer than 63"),
        30,
        message="Degraded=True BadTarget naming both faults",
    )
    assert "'yesterday'" in cond["message"]
    assert any(e.reason == "BadTarget" and e.type == "Warning" for e in kube.events())

    if trigger == "rotation":
        kube.patch_keyset("keys", {"metadata": {"annotations": {"keyturn.dev/rotate": "go"}}})
    else:
        request = {"requestId": "inc-periphery", "reason": "key_compromise"}
        kube.patch_status("keys", {"status": {"emergency": request}})
    status = kube.wait_status(
        "keys", lambda s: s.get("currentKid") not in (None, old), 30, f"{trigger} activated a new key"
    )
    new = status["currentKid"]
    wait_for(
        lambda: (kube.secret("keys") or {}).get("JWT_KID") == new, 10, message="the Secret signs with it"
    )
    if trigger == "emergency":
        ack = kube.wait_status("keys", lambda s: s["emergency"].get("result"), 10, "emergency acknowledged")
        assert ack["emergency"]["newKid"] == new and ack["emergency"]["handledAt"]
        jwks = kube.jwks("keys-jwks") or {}
        assert old not in [k["kid"] for k in jwks["keys"]]
    # The signer was restarted (its stamp rewritten); the verifier behind the unusable URL fails
    # its health check once restarted, and the keyset names that fault.
    cond = wait_for(
        lambda: degraded(kube, "TargetFailed", "deployment edge", "health check", "longer than 63"),
        60,
        message="Degraded=True TargetFailed naming the health URL",
    )
    assert len(cond["message"]) < 1000
    api = kube.apps.read_namespaced_deployment("api", kube.namespace)
    assert api.metadata is not None
    stamp = (api.metadata.annotations or {})[STAMPED]
    assert datetime.fromisoformat(stamp.replace("Z", "+00:00")).tzinfo is not None, stamp  # rewritten
    assert template_revision(kube, "api") != template_revision(kube, "edge")
    targets = {t["name"]: t for t in kube.status("keys")["rollout"]["targets"]}
    assert targets["api"]["state"] == "Ready" and targets["edge"]["state"] == "Failed"


@pytest.fixture
def fenced_keyturn(
    cluster: localcluster.Cluster, namespace: str, tmp_path: Path
) -> Iterator[OperatorProcess]:
    """An operator that may only reach *.monitoring.svc (health URLs and analysis addresses)."""
    proc = OperatorProcess(
        kubeconfig=Path(cluster.kubeconfig),
        namespace=namespace,
        log_path=tmp_path / "operator.log",
        extra_args=["--egress-allow", "*.monitoring.svc"],
    )
    proc.start()
    yield proc
    proc.stop()


def test_a_health_url_outside_the_egress_allow_list_is_never_requested(
    kube: Kube, fenced_keyturn: OperatorProcess, health_server: tuple[str, type[_Health]]
) -> None:
    url, handler = health_server
    kube.create_keyset("keys", {"rotation": ROTATION, "rollout": {"timeout": "4s", "pauseBetween": "0s"}})
    kube.apps.create_namespaced_deployment(
        kube.namespace,
        deployment("api", {"keyturn.dev/keyset": "keys", "keyturn.dev/health-url": url}),
    )
    cond = wait_for(
        lambda: degraded(kube, "TargetFailed", "deployment api", "allow-list", "*.monitoring.svc"),
        40,
        message="the target fails: its health URL is outside the allow-list",
    )
    assert "127.0.0.1" in cond["message"]
    assert handler.asked == []
    assert any(
        "egress allowed to *.monitoring.svc" in line for line in fenced_keyturn.log_text().splitlines()
    )
