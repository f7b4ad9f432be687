"""The key lifecycle end to end: the real operator process against the real kube-apiserver.

Durations are seconds instead of days; nothing here fakes a clock.
"""

from __future__ import annotations

import concurrent.futures
import functools
import json
import time
from typing import Any

import pytest
from jwcrypto import jwk, jwt
from kubernetes import client, watch

from contract import ALGORITHMS
from helpers import wait_for
from keyturn.keys.jwk import private_jwk
from keyturn.keys.material import load_raw_secret
from keyturn.keys.pem import load_private_pem
from keyturn.keys.signing import sign
from kubetools import Kube, OperatorProcess

pytestmark = pytest.mark.integration

FAST = {"interval": "6s", "publishAhead": "2s", "gracePeriod": "4s", "retention": "6s"}
SLOW = {"interval": "30d", "publishAhead": "1h", "gracePeriod": "7d", "retention": "14d"}


def kids_in(doc: dict[str, Any] | None) -> list[str]:
    return [k["kid"] for k in (doc or {}).get("keys", [])]


def keys_by_kid(status: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {k["kid"]: k for k in status.get("keys", [])}


def test_every_algorithm_signs_with_the_secret_and_verifies_with_the_published_jwks(
    kube: Kube, keyturn: OperatorProcess
) -> None:
    for alg in ALGORITHMS:
        spec: dict[str, Any] = {"algorithm": alg, "rotation": SLOW}
        if alg in ("RS512", "PS512"):
            spec["keySize"] = 3072
        kube.create_keyset(alg.lower(), spec)
    for alg in ALGORITHMS:
        name = alg.lower()
        status = kube.wait_ready(name)
        secret = wait_for(functools.partial(kube.secret, name), 10, message=f"Secret {name}")
        assert secret["JWT_KID"] == status["currentKid"]
        if alg.startswith("HS"):
            material = load_raw_secret(secret["JWT_SECRET"], alg)
            assert kube.jwks(f"{name}-jwks") is None  # a symmetric key is never published
            verifier = jwk.JWK(kty="oct", k=private_jwk(material, "x")["k"])
            assert "JWT_SECRET_NEXT" in secret
        else:
            material = load_private_pem(secret["JWT_PRIVATE_KEY"], None, alg)
            doc = wait_for(functools.partial(kube.jwks, f"{name}-jwks"), 10, message=f"JWKS of {name}")
            assert kids_in(doc)[0] == status["currentKid"]
            assert kids_in(doc)[1] == status["nextKid"]
            published = doc["keys"][0]
            assert published["use"] == "sig" and published["alg"] == alg
            verifier = jwk.JWK(**published)
        token = sign(material, {"sub": "test", "iat": int(time.time())}, status["currentKid"])
        checked = jwt.JWT(key=verifier, jwt=token, algs=[alg])  # jwcrypto: an independent library
        assert json.loads(checked.claims)["sub"] == "test"


def test_full_cycle_next_current_previous_retired_purged(kube: Kube, keyturn: OperatorProcess) -> None:
    kube.create_keyset("cycle", {"algorithm": "ES256", "rotation": FAST})
    first = kube.wait_ready("cycle")["currentKid"]
    seen: dict[str, set[str]] = {}

    def track() -> bool:
        # JWKS first, then the Secret: the operator writes them in the opposite order, so a key
        # missing from this JWKS must already be retired (or gone) in the Secret read after it.
        doc = kube.jwks("cycle-jwks")
        raw = kube.core.read_namespaced_secret("cycle", kube.namespace)
        record = {k["kid"]: k for k in kube.secret_record("cycle")["keys"]} if raw else {}
        secret = kube.secret("cycle") or {}
        state = record.get(first, {}).get("state")
        if state is not None:
            seen.setdefault(first, set()).add(state)
        for kid, key in record.items():
            seen.setdefault(kid, set()).add(key["state"])
        if first not in kids_in(doc):
            assert state in (None, "retired"), f"{first} left the JWKS while {state}"
        if state == "retired":
            assert f"key.{first}.pem" in secret, "a retired key keeps its material until retention"
        if state is None:
            assert f"key.{first}.pem" not in secret
        return state is None and "retired" in seen[first]

    wait_for(track, 60, interval=0.25, message=f"{first} to go current -> previous -> retired -> purged")
    assert {"current", "previous", "retired"} <= seen[first]
    second = [kid for kid, states in seen.items() if "next" in states and "current" in states]
    assert second, "the prepared key became current"
    # the Secret's record is read, not status: status is written after it and may lag a pass behind
    history = kube.secret_record("cycle")["history"]
    assert any(h["operation"] == "purge" and h["kids"] == [first] for h in history)


def test_manual_rotation_by_annotation(kube: Kube, keyturn: OperatorProcess) -> None:
    kube.create_keyset("manual", {"rotation": {**SLOW, "publishAhead": "1s"}})
    status = kube.wait_ready("manual")
    old, nxt = status["currentKid"], status["nextKid"]
    kube.patch_keyset("manual", {"metadata": {"annotations": {"keyturn.dev/rotate": "ticket-17"}}})
    status = kube.wait_status(
        "manual", lambda s: s.get("lastHandledRotate") == "ticket-17", 20, "rotate token handled"
    )
    assert status["currentKid"] == nxt
    assert keys_by_kid(status)[old]["state"] == "previous"
    assert kube.secret("manual")["JWT_KID"] == nxt  # type: ignore[index]
    assert kids_in(kube.jwks("manual-jwks"))[0] == nxt
    rotations = [h for h in status["history"] if h["operation"] == "rotate" and h["trigger"] == "manual"]
    assert len(rotations) == 1


@pytest.mark.parametrize("revoke_all", [False, True])
def test_emergency_revocation(kube: Kube, keyturn: OperatorProcess, revoke_all: bool) -> None:
    kube.create_keyset("sos", {"algorithm": "RS256", "rotation": SLOW})
    status = kube.wait_ready("sos")
    old, nxt = status["currentKid"], status["nextKid"]
    request = {"requestId": "inc-2026-042", "reason": "key_compromise", "revokeAll": revoke_all}
    kube.patch_status("sos", {"status": {"emergency": request}})
    # acknowledged, and (in the pass right after the revocation) a fresh next key prepared
    status = kube.wait_status(
        "sos",
        lambda s: s.get("emergency", {}).get("result") and s.get("nextKid") not in (None, nxt),
        20,
        "emergency acknowledged and a new next key",
    )
    ack = status["emergency"]
    assert ack["result"] == "Revoked" and ack["requestId"] == "inc-2026-042" and ack["handledAt"]
    keys = keys_by_kid(status)
    assert keys[old]["state"] == "revoked" and keys[old]["reason"] == "key_compromise"
    new = status["currentKid"]
    assert ack["newKid"] == new and new != old
    if revoke_all:
        assert keys[nxt]["state"] == "revoked" and new != nxt
    else:
        assert new == nxt
    secret = kube.secret("sos") or {}
    assert secret["JWT_KID"] == new
    assert not any(old in item for item in secret)
    doc = kube.jwks("sos-jwks")
    assert old not in kids_in(doc) and kids_in(doc)[0] == new
    assert status["nextKid"] not in (old, nxt, new)
    # handled once: a replay of the same requestId changes nothing
    before = kube.secret_record("sos")
    kube.patch_status("sos", {"status": {"emergency": {**request, "reason": "replayed"}}})
    wait_for(lambda: kube.status("sos")["emergency"]["reason"] == "replayed", 10, message="replay visible")
    assert kube.secret_record("sos")["keys"] == before["keys"]


def test_declarative_revocation_with_revoked_kids(kube: Kube, keyturn: OperatorProcess) -> None:
    kube.create_keyset("decl", {"algorithm": "EdDSA", "rotation": SLOW})
    status = kube.wait_ready("decl")
    old = status["currentKid"]
    kube.patch_keyset("decl", {"spec": {"revokedKids": [{"kid": old, "reason": "key_compromise"}]}})

    def revoked() -> dict[str, Any] | None:
        s = kube.status("decl")
        return (
            s if keys_by_kid(s).get(old, {}).get("state") == "revoked" and s.get("phase") == "Ready" else None
        )

    status = wait_for(revoked, 20, message="declarative revocation")
    assert status["currentKid"] != old
    assert old not in kids_in(kube.jwks("decl-jwks"))
    entry = [h for h in status["history"] if h["operation"] == "revoke"][-1]
    assert entry["trigger"] == "declarative" and entry["kids"] == [old]


@pytest.mark.parametrize(
    ("spec", "reason", "fragment"),
    [
        (
            {"rotation": {"gracePeriod": "1h"}, "tokens": {"maxLifetime": "2h", "verifierCacheTTL": "5m"}},
            "GracePeriodTooShort",
            "raise gracePeriod to at least 2h5m",
        ),
        (
            {"rotation": {"publishAhead": "1m"}, "tokens": {"verifierCacheTTL": "5m"}},
            "PublishAheadTooShort",
            "raise publishAhead to at least 5m",
        ),
        ({"rotation": {"gracePeriod": "30d", "retention": "7d"}}, "RetentionTooShort", "raise retention"),
        (
            {"secret": {"encryption": {"passphraseSecretRef": {"name": "nope", "key": "p"}}}},
            "PassphraseMissing",
            "Secret nope",
        ),
    ],
)
def test_stalled_specs_generate_nothing(
    kube: Kube, keyturn: OperatorProcess, spec: dict[str, Any], reason: str, fragment: str
) -> None:
    kube.create_keyset("bad", spec)
    cond = kube.wait_condition("bad", "Stalled", "True", 20)
    assert cond["reason"] == reason
    assert fragment in cond["message"]
    assert kube.status("bad")["phase"] == "Failed"
    assert kube.condition("bad", "Ready")["status"] == "False"  # type: ignore[index]
    assert kube.secret("bad") is None and kube.jwks("bad-jwks") is None
    events = [e for e in kube.events() if e.involved_object.name == "bad" and e.reason == reason]
    assert events and events[0].type == "Warning"


def test_stall_clears_once_the_passphrase_secret_appears(kube: Kube, keyturn: OperatorProcess) -> None:
    kube.create_keyset(
        "enc",
        {
            "keySize": 3072,
            "secret": {"encryption": {"passphraseSecretRef": {"name": "pass", "key": "passphrase"}}},
        },
    )
    kube.wait_condition("enc", "Stalled", "True", 20)
    kube.core.create_namespaced_secret(
        kube.namespace,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name="pass"),
            string_data={"passphrase": "correct horse battery staple"},
        ),
    )
    kube.wait_ready("enc", timeout=40)
    secret = kube.secret("enc") or {}
    assert secret["JWT_PRIVATE_KEY"].startswith("-----BEGIN ENCRYPTED PRIVATE KEY-----")
    load_private_pem(secret["JWT_PRIVATE_KEY"], b"correct horse battery staple", "RS256")


def test_foreign_secret_is_never_overwritten(kube: Kube, keyturn: OperatorProcess) -> None:
    kube.core.create_namespaced_secret(
        kube.namespace,
        client.V1Secret(metadata=client.V1ObjectMeta(name="theirs"), string_data={"JWT_SECRET": "keep-me"}),
    )
    kube.create_keyset("mine", {"secret": {"name": "theirs"}})
    cond = kube.wait_condition("mine", "Stalled", "True", 20)
    assert cond["reason"] == "SecretConflict"
    assert kube.secret("theirs") == {"JWT_SECRET": "keep-me"}


@pytest.mark.parametrize("failpoint", ["after-secret-write"])
def test_sigkill_between_secret_and_status_loses_nothing(
    kube: Kube, keyturn: OperatorProcess, failpoint: str
) -> None:
    kube.create_keyset("crash", {"algorithm": "ES384", "rotation": {**SLOW, "publishAhead": "1s"}})
    before = kube.wait_ready("crash")
    keyturn.stop()
    keyturn.start(KEYTURN_FAILPOINTS=failpoint)
    kube.patch_keyset("crash", {"metadata": {"annotations": {"keyturn.dev/rotate": "crash-1"}}})
    code = keyturn.wait_exit(timeout=30)
    assert code == -9, f"the operator should have been SIGKILLed at {failpoint}, exit {code}"
    # the Secret says the rotation happened; the status has not caught up
    record = kube.secret_record("crash")
    assert record["handled"]["rotate"] == "crash-1"
    assert kube.status("crash")["currentKid"] == before["currentKid"]
    keyturn.start()
    status = kube.wait_status(
        "crash", lambda s: s.get("lastHandledRotate") == "crash-1", 30, "status caught up after restart"
    )
    assert status["currentKid"] == before["nextKid"]
    keys = keys_by_kid(status)
    assert keys[before["currentKid"]]["state"] == "previous"  # no key lost
    secret = kube.secret("crash") or {}
    for kid in keys:
        assert f"key.{kid}.pem" in secret
    assert set(kids_in(kube.jwks("crash-jwks"))) == set(keys)
    assert len([h for h in status["history"] if h["operation"] == "rotate"]) == 1  # rotated exactly once
    assert sum(1 for k in keys.values() if k["state"] == "current") == 1


def test_no_private_material_outside_the_secret(kube: Kube, keyturn: OperatorProcess) -> None:
    kube.create_keyset("leak-rsa", {"algorithm": "PS256", "rotation": FAST})
    kube.create_keyset("leak-hs", {"algorithm": "HS384", "rotation": FAST})
    kube.wait_ready("leak-rsa")
    kube.wait_ready("leak-hs")
    # let a rotation or two happen, revoke one key, so every code path logged something
    wait_for(lambda: len(kube.status("leak-rsa").get("history", [])) >= 4, 30, message="rotations")
    kube.patch_status("leak-hs", {"status": {"emergency": {"requestId": "leak-test"}}})
    wait_for(lambda: kube.status("leak-hs").get("emergency", {}).get("result"), 20, message="emergency")
    # Needles: slices of every private key body and every HMAC secret the Secrets hold.
    needles: set[str] = set()
    for name in ("leak-rsa", "leak-hs"):
        for item, value in (kube.secret(name) or {}).items():
            if item.endswith(".pem"):
                needles |= {line[10:50] for line in value.splitlines() if len(line) >= 50}
            elif item.endswith(".secret"):
                needles.add(value)
    assert needles
    haystacks = {
        "configmaps": json.dumps(
            [cm.data for cm in kube.core.list_namespaced_config_map(kube.namespace).items]
        ),
        "status": json.dumps([kube.keyset(n) for n in ("leak-rsa", "leak-hs")]),
        "events": json.dumps([e.message for e in kube.events()]),
        "log": keyturn.log_text(),
        "metrics": keyturn.metrics(),
    }
    for where, text in haystacks.items():
        assert "PRIVATE KEY" not in text, where
        for needle in needles:
            assert needle not in text, f"private material found in {where}"
    for doc in (kube.jwks("leak-rsa-jwks") or {}).get("keys", []):
        assert not set(doc) & {"d", "p", "q", "dp", "dq", "qi", "k"}


def _changes(list_fn: Any, resource_version: str, *args: str) -> list[str]:
    """Every change after `resource_version`, observed for 30 s (the window is the measurement)."""
    events = watch.Watch().stream(list_fn, *args, resource_version=resource_version, timeout_seconds=30)
    out = []
    for event in events:
        obj = event["object"]
        name = obj["metadata"]["name"] if isinstance(obj, dict) else obj.metadata.name
        out.append(f"{event['type']} {name}")
    return out


def test_a_rotation_costs_one_write_of_each_object_and_then_nothing(
    kube: Kube, keyturn: OperatorProcess
) -> None:
    # publishAhead 0s: the rotation happens on the annotation, with no intermediate "waiting" status
    kube.create_keyset("quiet", {"algorithm": "ES256", "rotation": {**SLOW, "publishAhead": "0s"}})
    kube.wait_ready("quiet")
    wait_for(lambda: kube.jwks("quiet-jwks"), 10, message="JWKS")
    ns = kube.namespace
    keyset_rv = kube.keyset("quiet")["metadata"]["resourceVersion"]
    secret_rv = kube.resource_version("secret", "quiet")
    cm_rv = kube.resource_version("configmap", "quiet-jwks")
    kube.patch_keyset("quiet", {"metadata": {"annotations": {"keyturn.dev/rotate": "once"}}})
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        keyset = pool.submit(
            _changes,
            kube.custom.list_namespaced_custom_object,
            keyset_rv,
            "keyturn.dev",
            "v1alpha1",
            ns,
            "jwtkeysets",
        )
        secret = pool.submit(_changes, kube.core.list_namespaced_secret, secret_rv, ns)
        configmap = pool.submit(_changes, kube.core.list_namespaced_config_map, cm_rv, ns)
    # the person's annotation, then one status patch; one Secret write; one JWKS write; then silence
    assert keyset.result() == ["MODIFIED quiet", "MODIFIED quiet"]
    assert secret.result() == ["MODIFIED quiet"]
    assert [c for c in configmap.result() if c.endswith("quiet-jwks")] == ["MODIFIED quiet-jwks"]
    assert kube.status("quiet")["lastHandledRotate"] == "once"


@pytest.mark.parametrize("policy", ["Retain", "Delete"])
def test_deletion_policy(kube: Kube, keyturn: OperatorProcess, policy: str) -> None:
    kube.create_keyset("gone", {"algorithm": "ES256", "rotation": SLOW, "secret": {"deletionPolicy": policy}})
    kube.wait_ready("gone")
    wait_for(lambda: kube.jwks("gone-jwks"), 10, message="JWKS")
    kube.custom.delete_namespaced_custom_object(
        "keyturn.dev", "v1alpha1", kube.namespace, "jwtkeysets", "gone"
    )

    def keyset_gone() -> bool:
        try:
            kube.keyset("gone")
        except client.ApiException as exc:
            return bool(exc.status == 404)
        return False

    wait_for(keyset_gone, 20, message="the finalizer released the JwtKeySet")
    if policy == "Retain":  # keys outlive the JwtKeySet: verifiers keep working
        assert kube.secret("gone") is not None and kube.jwks("gone-jwks") is not None
    else:  # owner references: the garbage collector deletes both (it picks up a new CRD's kind on its
        # discovery resync, every 30 s, so a keyset made right after the CRD may wait that long)
        wait_for(lambda: kube.secret("gone") is None and kube.jwks("gone-jwks") is None, 120, message="GC")


def test_a_deleted_jwks_configmap_is_published_again(kube: Kube, keyturn: OperatorProcess) -> None:
    kube.create_keyset("drift", {"algorithm": "ES256", "rotation": SLOW})
    kube.wait_ready("drift")
    original = wait_for(lambda: kube.jwks("drift-jwks"), 10, message="JWKS")
    kube.core.delete_namespaced_config_map("drift-jwks", kube.namespace)
    assert wait_for(lambda: kube.jwks("drift-jwks"), 20, message="JWKS published again") == original


def test_a_lost_secret_is_reported_and_the_keyset_starts_over(kube: Kube, keyturn: OperatorProcess) -> None:
    kube.create_keyset("lost", {"algorithm": "ES256", "rotation": SLOW})
    old = kube.wait_ready("lost")["currentKid"]
    kube.core.delete_namespaced_secret("lost", kube.namespace)
    status = kube.wait_status("lost", lambda s: s.get("currentKid") not in (None, old), 20, "new keys")
    assert old not in [k["kid"] for k in status["keys"]]
    events = [e for e in kube.events() if e.reason == "SecretLost"]
    assert events and events[0].type == "Warning"


def test_material_removed_by_hand_stalls_until_the_kid_is_revoked(
    kube: Kube, keyturn: OperatorProcess
) -> None:
    kube.create_keyset("hand", {"algorithm": "ES256", "rotation": SLOW})
    status = kube.wait_ready("hand")
    nxt = status["nextKid"]
    kube.core.patch_namespaced_secret("hand", kube.namespace, {"data": {f"key.{nxt}.pem": None}})
    cond = kube.wait_condition("hand", "Stalled", "True")
    assert cond["reason"] == "SecretCorrupt" and nxt in cond["message"]
    kube.patch_status("hand", {"status": {"emergency": {"requestId": "fix-1", "revokeKids": [nxt]}}})
    status = kube.wait_status(
        "hand", lambda s: s.get("phase") == "Ready" and s.get("nextKid") not in (None, nxt), 30, "recovered"
    )
    assert {k["kid"]: k["state"] for k in status["keys"]}[nxt] == "revoked"


def test_a_foreign_configmap_is_never_overwritten(kube: Kube, keyturn: OperatorProcess) -> None:
    kube.core.create_namespaced_config_map(
        kube.namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="theirs-jwks"), data={"a": "b"})
    )
    kube.create_keyset("theirs", {"algorithm": "ES256", "rotation": SLOW})
    cond = kube.wait_condition("theirs", "Stalled", "True")
    assert cond["reason"] == "JwksConflict"
    assert kube.core.read_namespaced_config_map("theirs-jwks", kube.namespace).data == {"a": "b"}
    assert kube.secret("theirs") is None  # nothing generated while stalled


def test_an_unknown_kid_in_revoked_kids_stalls_a_keyset_that_has_keys(
    kube: Kube, keyturn: OperatorProcess
) -> None:
    kube.create_keyset("typo", {"algorithm": "ES256", "rotation": SLOW})
    before = kube.wait_ready("typo")
    record = kube.secret_record("typo")
    kube.patch_keyset("typo", {"spec": {"revokedKids": [{"kid": "never-existed"}]}})
    cond = kube.wait_condition("typo", "Stalled", "True")
    assert cond["reason"] == "UnknownKid" and "never-existed" in cond["message"]
    assert kube.secret_record("typo") == record  # nothing revoked or generated meanwhile
    assert kube.status("typo")["currentKid"] == before["currentKid"]


def test_revoked_kids_from_an_earlier_life_do_not_stall_a_new_keyset(
    kube: Kube, keyturn: OperatorProcess
) -> None:
    kube.create_keyset(
        "reborn",
        {
            "algorithm": "ES256",
            "rotation": {**SLOW, "publishAhead": "0s"},
            "revokedKids": [{"kid": "from-before", "reason": "key_compromise"}],
        },
    )
    kube.wait_ready("reborn")
    assert "from-before" in kube.secret_record("reborn")["revokedKids"]
    kube.patch_keyset("reborn", {"metadata": {"annotations": {"keyturn.dev/rotate": "again"}}})
    status = kube.wait_status("reborn", lambda s: s.get("lastHandledRotate") == "again", 20, "a later pass")
    assert kube.condition("reborn", "Stalled")["status"] == "False"  # type: ignore[index]
    assert status["phase"] == "Ready"
