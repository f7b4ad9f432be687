"""Faults that other people control must never hold an emergency (the robust-core contract).

Each row injects one fault through the public API only, then patches an emergency into status:
the request is acknowledged within seconds, the revoked kid leaves the Secret and the JWKS, and
the keyset shows a condition naming the fault.
"""

from __future__ import annotations

import base64
import http.server
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from kubernetes import client

from helpers import wait_for
from kubetools import Kube, OperatorProcess, deployment

pytestmark = pytest.mark.integration

NAME = "keys"
SLOW = {"interval": "30d", "publishAhead": "1h", "gracePeriod": "7d", "retention": "14d"}
ACK_TIMEOUT = 10.0


class _Garbage(http.server.BaseHTTPRequestHandler):
    body = b"[1, 2, 3]"  # JSON, but not the shape of a Prometheus answer

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture(scope="module")
def garbage_prometheus() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Garbage)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@dataclass(frozen=True)
class Fault:
    inject: Callable[[Kube, dict[str, Any]], None]
    # The condition (type, reason) that names the fault; None where Keyturn repairs it at once.
    condition: tuple[str, str] | None
    spec: dict[str, Any] = field(default_factory=dict)
    # Where the condition only shows once the emergency set things in motion (a target rolls).
    after_emergency: bool = False
    # Whether the condition is still there after the emergency; False where the emergency itself
    # ends the fault (the revoked key was the one without material, or the one being analysed).
    persists: bool = True
    # Faults Keyturn repairs in the same pass (it rewrites its own annotations): a Warning Event
    # with this reason is their trace, not a lasting condition.
    event: str | None = None
    jwks_ours: bool = True
    # Needs the local HTTP server that answers garbage (its address replaces $PROMETHEUS).
    prometheus: bool = False


def patch_spec(changes: dict[str, Any]) -> Callable[[Kube, dict[str, Any]], None]:
    def inject(kube: Kube, _: dict[str, Any]) -> None:
        kube.patch_keyset(NAME, {"spec": changes})

    return inject


def target(annotations: dict[str, str]) -> Callable[[Kube, dict[str, Any]], None]:
    def inject(kube: Kube, _: dict[str, Any]) -> None:
        body = deployment("web", {"keyturn.dev/keyset": NAME, **annotations})
        kube.apps.create_namespaced_deployment(kube.namespace, body)

    return inject


def replace_jwks(
    labels: dict[str, str] | None, data: dict[str, str] | None
) -> Callable[[Kube, dict[str, Any]], None]:
    def inject(kube: Kube, _: dict[str, Any]) -> None:
        cm = kube.core.read_namespaced_config_map(f"{NAME}-jwks", kube.namespace)
        assert cm.metadata is not None
        cm.metadata.labels = labels
        if data is not None:
            cm.data = data
        kube.core.replace_namespaced_config_map(f"{NAME}-jwks", kube.namespace, cm)

    return inject


def edit_secret(
    change: Callable[[dict[str, str], dict[str, Any]], None],
) -> Callable[[Kube, dict[str, Any]], None]:
    def inject(kube: Kube, status: dict[str, Any]) -> None:
        secret = kube.core.read_namespaced_secret(NAME, kube.namespace)
        data: dict[str, str] = {k: str(v) for k, v in (secret.data or {}).items()}
        change(data, status)
        secret.data = dict(data)
        kube.core.replace_namespaced_secret(NAME, kube.namespace, secret)

    return inject


def rotate(kube: Kube, _: dict[str, Any]) -> None:
    kube.patch_keyset(NAME, {"metadata": {"annotations": {"keyturn.dev/rotate": "go"}}})


def delete_passphrase(kube: Kube, _: dict[str, Any]) -> None:
    kube.core.delete_namespaced_secret("passphrase", kube.namespace)


def _binary(data: dict[str, str], _: dict[str, Any]) -> None:
    data["blob"] = base64.b64encode(b"\xff\xfe\x00\x01").decode()


def _material_deleted(data: dict[str, str], status: dict[str, Any]) -> None:
    del data[f"key.{status['currentKid']}.pem"]


def _rendered_item_garbled(data: dict[str, str], _: dict[str, Any]) -> None:
    data["JWT_PRIVATE_KEY"] = base64.b64encode(b"not a key").decode()


ENCRYPTED = {"secret": {"encryption": {"passphraseSecretRef": {"name": "passphrase", "key": "p"}}}}
LONG_HOST = "http://" + "a" * 70 + ".example:8000/health"
FAST_ROLLOUT = {"rollout": {"timeout": "5s", "pauseBetween": "0s"}}
ANALYSIS = {
    "rotation": {**SLOW, "publishAhead": "1s"},
    "analysis": {
        "prometheus": {"address": "$PROMETHEUS", "query": "up"},
        "initialDelay": "0s",
        "interval": "1s",
        "count": 2,
        "onNoData": "Inconclusive",
    },
}

FAULTS = {
    "the time zone is a directory of the tz database": Fault(
        patch_spec({"rotation": {"timeZone": "America"}}), ("Stalled", "InvalidSpec")
    ),
    "the interval is longer than a hundred years": Fault(
        patch_spec({"rotation": {"interval": "99999d"}}), ("Stalled", "InvalidSpec")
    ),
    "the cron schedule never fires": Fault(
        patch_spec({"rotation": {"interval": None, "schedule": "0 0 30 2 *"}}), ("Stalled", "InvalidSpec")
    ),
    "a timing rule is broken": Fault(
        patch_spec({"tokens": {"maxLifetime": "30d"}}), ("Stalled", "GracePeriodTooShort")
    ),
    # Keyturn does not watch a passphrase Secret: the next pass (here, the emergency's) notices it.
    "the passphrase Secret is gone": Fault(
        delete_passphrase, ("Stalled", "PassphraseMissing"), spec=ENCRYPTED, after_emergency=True
    ),
    "the JWKS ConfigMap was replaced by a foreign one": Fault(
        replace_jwks(None, {"jwks.json": '{"keys": []}'}), ("Stalled", "JwksConflict"), jwks_ours=False
    ),
    "the JWKS ConfigMap's labels were stripped": Fault(replace_jwks(None, None), None),
    "a binary item was added to the Secret": Fault(edit_secret(_binary), ("Stalled", "SecretConflict")),
    "the current key's material was deleted by hand": Fault(
        edit_secret(_material_deleted), ("Stalled", "SecretCorrupt"), persists=False
    ),
    "a rendered Secret item was edited by hand": Fault(edit_secret(_rendered_item_garbled), None),
    "a target's stamped annotation says yesterday": Fault(
        target({"keyturn.dev/stamped-keys": "yesterday"}), None, event="BadTarget"
    ),
    "a target's ready annotation overflows": Fault(
        target({"keyturn.dev/ready-keys": "b-1 9999-12-31T23:59:59Z"}), None, event="BadTarget"
    ),
    "a target's role is unknown": Fault(target({"keyturn.dev/role": "printer"}), ("Degraded", "BadTarget")),
    "a target's health URL has a host label over 63 characters": Fault(
        target({"keyturn.dev/health-url": LONG_HOST}),
        ("Degraded", "TargetFailed"),
        spec=FAST_ROLLOUT,
        after_emergency=True,
    ),
    "Prometheus answers JSON of the wrong shape": Fault(
        rotate,
        ("Stalled", "AnalysisInconclusive"),
        spec=ANALYSIS,
        prometheus=True,
        persists=False,
    ),
}


def _resolve(spec: dict[str, Any], prometheus: str) -> dict[str, Any]:
    analysis = spec.get("analysis")
    if not analysis:
        return spec
    return {**spec, "analysis": {**analysis, "prometheus": {**analysis["prometheus"], "address": prometheus}}}


@pytest.mark.parametrize("fault", FAULTS.values(), ids=FAULTS.keys())
def test_an_emergency_is_acknowledged_under_the_fault(
    kube: Kube, keyturn: OperatorProcess, fault: Fault, garbage_prometheus: str
) -> None:
    if "secret" in fault.spec:
        kube.core.create_namespaced_secret(
            kube.namespace,
            client.V1Secret(
                metadata=client.V1ObjectMeta(name="passphrase"),
                string_data={"p": "correct horse battery staple"},
            ),
        )
    spec = {"algorithm": "ES256", "rotation": SLOW, **_resolve(fault.spec, garbage_prometheus)}
    kube.create_keyset(NAME, spec)
    status = kube.wait_ready(NAME)
    fault.inject(kube, status)
    if fault.prometheus:  # the fault shows once the rotation it answers for has been analysed
        status = kube.wait_status(NAME, lambda s: s.get("lastHandledRotate") == "go", 20, "rotation")
    if fault.condition is not None and not fault.after_emergency:
        _wait_condition(kube, *fault.condition)
    if fault.event is not None:
        wait_for(lambda: _event(kube, fault.event or ""), 30, message=f"a {fault.event} Event")
    old, nxt = status["currentKid"], status["nextKid"]
    kube.patch_status(NAME, [{"op": "add", "path": "/status/emergency", "value": {"requestId": "inc-1"}}])

    acked = kube.wait_status(
        NAME,
        lambda s: (s.get("emergency") or {}).get("result") is not None,
        ACK_TIMEOUT,
        "the emergency acknowledged",
    )
    assert acked["emergency"]["result"] == "Revoked", acked["emergency"]
    assert acked["emergency"]["newKid"] == nxt
    secret = wait_for(lambda: _revoked_in_secret(kube, old), ACK_TIMEOUT, message=f"{old} out of the Secret")
    assert secret["JWT_KID"] == nxt
    if fault.jwks_ours:
        document = wait_for(lambda: _without(kube, old), ACK_TIMEOUT, message=f"{old} out of the JWKS")
        assert document["keys"][0]["kid"] == nxt
    if fault.condition is not None and fault.persists:
        _wait_condition(kube, *fault.condition)


def _event(kube: Kube, reason: str) -> bool:
    return any(e.reason == reason and e.type == "Warning" for e in kube.events())


def _wait_condition(kube: Kube, kind: str, reason: str) -> None:
    def named() -> dict[str, Any] | None:
        cond = kube.condition(NAME, kind)
        return cond if cond and cond["status"] == "True" and cond["reason"] == reason else None

    wait_for(named, 30, message=f"condition {kind}={reason}")


def _revoked_in_secret(kube: Kube, kid: str) -> dict[str, str] | None:
    raw = kube.core.read_namespaced_secret(NAME, kube.namespace).data or {}
    secret = {k: base64.b64decode(v).decode(errors="replace") for k, v in raw.items()}
    gone = secret.get("JWT_KID") not in (None, kid) and f"key.{kid}.pem" not in secret
    return secret if gone else None


def _without(kube: Kube, kid: str) -> dict[str, Any] | None:
    document = kube.jwks(f"{NAME}-jwks")
    if document is None or any(k["kid"] == kid for k in document["keys"]):
        return None
    return document
