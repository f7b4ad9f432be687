"""Every class of bad input Keyturn meets, each with its outcome, in one table (CORPUS).

A spec, and the status.emergency people write, pass the API server's admission first: the CRD
refuses what its schema can express (422 with a message), and Keyturn refuses the rest with
Stalled and a reason. Objects other people control at runtime (the Secret and ConfigMap Keyturn
writes, annotated Deployments, annotations and requests on the keyset) are read totally: each
fault becomes a Stalled reason, a target-level problem (Degraded), a Warning Event where Keyturn
refuses or repairs it at once, or an emergency acknowledged as Rejected.

Every admitted keyset gets a verdict (Ready or Stalled) within 30 s, and no pass may fail with an
exception (ReconcileError) on any row. Admission rows need no operator. The other rows share one
operator and one namespace and run in parallel threads, so they cost about the slowest row, not
the sum of them.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import json
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
from kubernetes import client, config
from kubernetes.client import ApiClient, ApiException

from helpers import wait_for
from keyturn.domain.annotations import annotation_suffix
from keyturn.domain.reasons import Reason
from kubetools import GROUP, PLURAL, VERSION, Kube, OperatorProcess, deployment

pytestmark = pytest.mark.integration

VERDICT_TIMEOUT = 30.0  # every admitted spec: Ready or Stalled within this
OUTCOME_TIMEOUT = 30.0  # a runtime fault: its outcome within this after it is injected
SLOW = {"interval": "30d", "publishAhead": "1h", "gracePeriod": "7d", "retention": "14d"}
BASE: dict[str, Any] = {"algorithm": "ES256", "rotation": SLOW}
PROMETHEUS = {"address": "http://prometheus.monitoring:9090", "query": "vector(1)"}
NO_SPEC = object()  # a keyset object sent without a spec

T = TypeVar("T")
Step = Callable[[Kube, str, Mapping[str, Any]], None]


# ---------------------------------------------------------------------------------------- outcomes
@dataclass(frozen=True)
class Admission:
    """The API server refuses the input: 422 Unprocessable Entity with the fragment in its message."""

    fragment: str


@dataclass(frozen=True)
class Stalled:
    """Stalled=True with this reason and the fragment in its message. A keyset refused before it ever
    had a key gets no Secret and no JWKS ConfigMap."""

    reason: Reason
    fragment: str = ""


@dataclass(frozen=True)
class Target:
    """A target-level problem: Degraded=True with this reason; the keys are not held back."""

    reason: Reason
    fragment: str = ""


@dataclass(frozen=True)
class Warned:
    """Refused or repaired at once: a Warning Event with this reason, and the keyset is Ready after."""

    reason: Reason
    fragment: str = ""


@dataclass(frozen=True)
class Rejected:
    """The emergency `request` acknowledged with result Rejected, the fragment in its message. Where
    it is the row's only request (inc-1), the signing key is unchanged."""

    fragment: str
    request: str = "inc-1"


@dataclass(frozen=True)
class Revoked:
    """The emergency `request` acknowledged with result Revoked, the fragment in its message; another
    key signs."""

    fragment: str
    request: str = "inc-1"


@dataclass(frozen=True)
class Served:
    """Nothing wrong after all: Ready, and its Secret holds the signing key."""


@dataclass(frozen=True)
class Rotated:
    """The request was handled once: status.lastHandledRotate records this, another key signs."""

    handled: str


Outcome = Admission | Stalled | Target | Warned | Rejected | Revoked | Rotated | Served


@dataclass(frozen=True)
class Case:
    outcome: Outcome
    # The keyset's spec (NO_SPEC: none at all; a callable: made from the keyset's name); for
    # runtime rows, a good one.
    spec: Any = field(default_factory=lambda: copy.deepcopy(BASE))
    # Objects put in place before the keyset is created (a foreign Secret, a passphrase Secret...).
    before: Step | None = None
    # The bad input, sent once the keyset has its verdict (an update, a status patch, a fault).
    after: Step | None = None
    # A known bug: the row asserts the right behaviour and is expected to fail until it is fixed.
    xfail: str | None = None
    # The keyset's name, where the name is the bad input; else one is made from the row's id.
    name: str | None = None


# ------------------------------------------------------------------------------------ input builders
def spec(changes: Mapping[str, Any] | None = None, base: Mapping[str, Any] = BASE) -> dict[str, Any]:
    """base with changes merged in (recursively); a None value removes the field."""
    out = copy.deepcopy(dict(base))
    for key, value in (changes or {}).items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = spec(value, out[key])
        else:
            out[key] = copy.deepcopy(value)
    return out


def analysis(**fields: Any) -> dict[str, Any]:
    prometheus = fields.pop("prometheus", {})
    return spec({"analysis": {"prometheus": {**PROMETHEUS, **prometheus}, **fields}})


def rotation(**fields: Any) -> dict[str, Any]:
    return spec({"rotation": fields})


def steps(*parts: Step) -> Step:
    def run(kube: Kube, name: str, status: Mapping[str, Any]) -> None:
        for part in parts:
            part(kube, name, status)

    return run


def patch_spec(changes: Mapping[str, Any]) -> Step:
    def run(kube: Kube, name: str, _: Mapping[str, Any]) -> None:
        kube.patch_keyset(name, {"spec": dict(changes)})

    return run


def annotate(key: str, value: str) -> Step:
    def run(kube: Kube, name: str, _: Mapping[str, Any]) -> None:
        kube.patch_keyset(name, {"metadata": {"annotations": {key: value}}})

    return run


def emergency(request: Mapping[str, Any] | Callable[[Mapping[str, Any]], Mapping[str, Any]]) -> Step:
    """status.emergency as a person writes it: replaced whole (JSON patch) once there is a status.

    A callable request is built from the keyset's status as it is when the request is sent.
    """

    def run(kube: Kube, name: str, _: Mapping[str, Any]) -> None:
        current = kube.status(name)
        value = dict(request(current) if callable(request) else request)
        if current:
            kube.patch_status(name, [{"op": "add", "path": "/status/emergency", "value": value}])
        else:
            kube.patch_status(name, {"status": {"emergency": value}})

    return run


def raw_emergency(value: object) -> Step:
    def run(kube: Kube, name: str, _: Mapping[str, Any]) -> None:
        kube.patch_status(name, {"status": {"emergency": value}})

    return run


def answered(request_id: str) -> Step:
    """Waits until Keyturn acknowledged the request (a row's second request comes after the first)."""

    def run(kube: Kube, name: str, _: Mapping[str, Any]) -> None:
        wait_for(
            lambda: (
                (kube.status(name).get("emergency") or {}).get("requestId") == request_id
                and (kube.status(name).get("emergency") or {}).get("result")
            ),
            OUTCOME_TIMEOUT,
            message=f"{name}: emergency {request_id} acknowledged",
        )

    return run


def edit_secret(change: Callable[[client.V1Secret, Mapping[str, Any]], None]) -> Step:
    """Read, change, replace; again if Keyturn wrote the Secret in between (409 Conflict)."""

    def run(kube: Kube, name: str, status: Mapping[str, Any]) -> None:
        for attempt in range(5):
            secret = kube.core.read_namespaced_secret(name, kube.namespace)
            change(secret, status)
            try:
                kube.core.replace_namespaced_secret(name, kube.namespace, secret)
            except ApiException as exc:
                if exc.status != 409 or attempt == 4:
                    raise
            else:
                return

    return run


def delete_secret(kube: Kube, name: str, _: Mapping[str, Any]) -> None:
    kube.core.delete_namespaced_secret(name, kube.namespace)


def record_edit(change: Callable[[dict[str, Any], Mapping[str, Any]], None]) -> Step:
    """An edit of the record's JSON (which stays a record this version reads)."""

    def edit(secret: client.V1Secret, status: Mapping[str, Any]) -> None:
        assert secret.metadata is not None
        annotations = dict(secret.metadata.annotations or {})
        record = json.loads(annotations["keyturn.dev/state"])
        change(record, status)
        annotations["keyturn.dev/state"] = json.dumps(record)
        secret.metadata.annotations = annotations

    return edit_secret(edit)


def _garbage_public_key(record: dict[str, Any], status: Mapping[str, Any]) -> None:
    key = next(k for k in record["keys"] if k["kid"] == status["currentKid"])
    key["publicJwk"] = {"kty": "EC", "crv": "P-256", "x": "not base64!", "y": "?"}


def material(change: Callable[[str, str], str]) -> Step:
    """Replaces the current key's stored material by change(current, next), base64 text both."""

    def edit(secret: client.V1Secret, status: Mapping[str, Any]) -> None:
        data = {k: str(v) for k, v in (secret.data or {}).items()}
        current, nxt = f"key.{status['currentKid']}.pem", f"key.{status['nextKid']}.pem"
        updated: dict[str, bytes | str] = {**data, current: change(data[current], data[nxt])}
        secret.data = updated

    return edit_secret(edit)


NOT_A_KEY = base64.b64encode(
    b"-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n"
).decode()


def _own_secret_as_passphrase(kube: Kube, name: str, _: Mapping[str, Any]) -> None:
    ref = {"name": name, "key": "JWT_KID"}
    kube.patch_keyset(name, {"spec": {"secret": {"encryption": {"passphraseSecretRef": ref}}}})


def _revoked(status: Mapping[str, Any]) -> str:
    return next(str(k["kid"]) for k in status.get("keys") or () if k.get("state") == "revoked")


def record_text(text: str) -> Step:
    def change(secret: client.V1Secret, _: Mapping[str, Any]) -> None:
        assert secret.metadata is not None
        secret.metadata.annotations = {**(secret.metadata.annotations or {}), "keyturn.dev/state": text}

    return edit_secret(change)


def record_version(version: int) -> Step:
    return record_edit(lambda record, _: record.update(version=version))


def _record_removed(secret: client.V1Secret, _: Mapping[str, Any]) -> None:
    assert secret.metadata is not None
    secret.metadata.annotations = {
        k: v for k, v in (secret.metadata.annotations or {}).items() if k != "keyturn.dev/state"
    }


def _binary_item(secret: client.V1Secret, _: Mapping[str, Any]) -> None:
    secret.data = {**(secret.data or {}), "blob": base64.b64encode(b"\xff\xfe\x00\x01").decode()}


def _material_deleted(secret: client.V1Secret, status: Mapping[str, Any]) -> None:
    secret.data = {k: v for k, v in (secret.data or {}).items() if k != f"key.{status['currentKid']}.pem"}


def foreign_secret(labels: Mapping[str, str] | None = None) -> Step:
    """A Secret named like the keyset's that Keyturn did not write."""

    def run(kube: Kube, name: str, _: Mapping[str, Any]) -> None:
        kube.core.create_namespaced_secret(
            kube.namespace,
            client.V1Secret(
                metadata=client.V1ObjectMeta(name=name, labels=dict(labels or {})),
                string_data={"token": "someone else's"},
            ),
        )

    return run


def passphrase_secret(key: str) -> Step:
    def run(kube: Kube, name: str, _: Mapping[str, Any]) -> None:
        kube.core.create_namespaced_secret(
            kube.namespace,
            client.V1Secret(
                metadata=client.V1ObjectMeta(name=f"{name}-pass"),
                string_data={key: "correct horse battery staple"},
            ),
        )

    return run


def encrypted(name: str) -> dict[str, Any]:
    """The spec of an encrypted keyset, whose passphrase Secret is named after the keyset."""
    return spec({"secret": {"encryption": {"passphraseSecretRef": {"name": f"{name}-pass", "key": "p"}}}})


def _foreign_jwks(kube: Kube, name: str, _: Mapping[str, Any]) -> None:
    kube.core.create_namespaced_config_map(
        kube.namespace,
        client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name=f"{name}-jwks"), data={"jwks.json": '{"keys": []}'}
        ),
    )


def target(annotations: Mapping[str, str]) -> Step:
    """A Deployment (named like the keyset) that names the keyset as the keys it loads."""

    def run(kube: Kube, name: str, _: Mapping[str, Any]) -> None:
        body = deployment(name, {"keyturn.dev/keyset": name, **_expand(annotations, name)})
        kube.apps.create_namespaced_deployment(kube.namespace, body)

    return run


LONG_LABEL = "a" * 64
TEN_KB = "r" * 10_240
UNKNOWN_KID = "never-had-this-kid"


# ------------------------------------------------------------------------------------------ corpus
CORPUS: dict[str, Case] = {
    # ---- refused at admission by the CRD: spec
    "an RSA key of 1024 bits": Case(
        Admission("Unsupported value: 1024"), spec({"algorithm": "RS256", "keySize": 1024})
    ),
    'algorithm "none"': Case(Admission('Unsupported value: "none"'), spec({"algorithm": "none"})),
    "an algorithm JOSE does not define (HS128)": Case(
        Admission('Unsupported value: "HS128"'), spec({"algorithm": "HS128"})
    ),
    "an HS256 secret of 16 bytes": Case(
        Admission("secretLength must be at least 32 bytes for HS256"),
        spec({"algorithm": "HS256", "secretLength": 16}),
    ),
    "a keySize with an EC algorithm": Case(
        Admission("keySize applies only to RSA algorithms (RS*/PS*)"), spec({"keySize": 2048})
    ),
    "a duration with 7 digits": Case(
        Admission("with at most 6 digits per unit"), rotation(gracePeriod="1000000d")
    ),
    "a duration in ISO 8601 (P1D)": Case(Admission("must be a duration like 90d"), rotation(retention="P1D")),
    "a rotation interval of zero": Case(
        Admission("rotation.interval must be greater than zero"), rotation(interval="0s")
    ),
    "both an interval and a schedule": Case(
        Admission("set either rotation.interval or rotation.schedule, not both"),
        rotation(schedule="0 2 * * *"),
    ),
    "a cron schedule of 4 fields": Case(
        Admission("rotation.schedule must be a cron expression of 5 space-separated fields"),
        rotation(interval=None, schedule="0 2 * *"),
    ),
    "a time zone that is a file path": Case(
        Admission("rotation.timeZone must be an IANA time zone name"), rotation(timeZone="../../etc/passwd")
    ),
    "a window that ends when it starts": Case(
        Admission("must differ (the window would be empty)"),
        rotation(window={"start": "02:00", "end": "02:00"}),
    ),
    "a window ending at 24:00": Case(
        Admission("rotation.window.end must be a time"), rotation(window={"start": "22:00", "end": "24:00"})
    ),
    "a kid template without {n}": Case(
        Admission("kid.template must contain {n}"),
        spec({"kid": {"strategy": "Template", "template": "prod"}}),
    ),
    "a kid template with a conversion ({n!r})": Case(
        Admission("kid.template may contain only letters, digits"),
        spec({"kid": {"strategy": "Template", "template": "{n!r}"}}),
    ),
    "a Prometheus address with user info": Case(
        Admission("analysis.prometheus.address must be an http:// or https:// URL without user info"),
        analysis(prometheus={"address": "http://admin:hunter2@prometheus:9090"}),
    ),
    "a Prometheus address with a query": Case(
        Admission("analysis.prometheus.address must be an http:// or https:// URL without user info"),
        analysis(prometheus={"address": "http://prometheus:9090/?redirect=evil"}),
    ),
    "a Prometheus address with a fragment": Case(
        Admission("analysis.prometheus.address must be an http:// or https:// URL without user info"),
        analysis(prometheus={"address": "http://prometheus:9090/#x"}),
    ),
    "a Prometheus address of scheme file": Case(
        Admission("analysis.prometheus.address must be an http:// or https:// URL without user info"),
        analysis(prometheus={"address": "file:///etc/passwd"}),
    ),
    "an empty Prometheus query": Case(
        Admission("analysis.prometheus.query must not be empty"), analysis(prometheus={"query": "  \t"})
    ),
    "a success threshold of 1.5": Case(
        Admission("analysis.successThreshold must be a decimal number between 0 and 1"),
        analysis(successThreshold="1.5"),
    ),
    "a success threshold written as a number": Case(
        Admission('Invalid value: "number": spec.analysis.successThreshold in body must be of type string'),
        analysis(successThreshold=0.5),
    ),
    "a failureLimit not below count": Case(
        Admission("analysis.failureLimit must be less than analysis.count"), analysis(count=3, failureLimit=3)
    ),
    "an analysis of 101 measurements": Case(
        Admission("should be less than or equal to 100"), analysis(count=101)
    ),
    "an encrypted HMAC secret": Case(
        Admission("encryption applies to PEM private keys"),
        spec(
            {
                "algorithm": "HS256",
                "secret": {"encryption": {"passphraseSecretRef": {"name": "pass", "key": "p"}}},
            }
        ),
    ),
    "a jwk item next to encryption": Case(
        Admission("jwk/jwks items would expose the private key unencrypted"),
        spec(
            {
                "secret": {
                    "items": [{"key": "JWK", "format": "jwk"}],
                    "encryption": {"passphraseSecretRef": {"name": "pass", "key": "p"}},
                }
            }
        ),
    ),
    "an empty list of Secret items": Case(
        Admission("secret.items must not be empty"), spec({"secret": {"items": []}})
    ),
    "a Secret item named like Keyturn's key material": Case(
        Admission("must not be of the form key.<kid>.pem"),
        spec({"secret": {"items": [{"key": "key.abc.pem", "format": "pem"}]}}),
    ),
    "two Secret items with the same key": Case(
        Admission("Duplicate value"),
        spec({"secret": {"items": [{"key": "K", "format": "kid"}, {"key": "K", "format": "pem"}]}}),
    ),
    "a raw item with an EC key": Case(
        Admission("format raw is for HMAC algorithms"),
        spec({"secret": {"items": [{"key": "RAW", "format": "raw"}]}}),
    ),
    "a Secret name in capitals": Case(
        Admission("secret.name must be a valid Kubernetes object name"), spec({"secret": {"name": "Keys"}})
    ),
    "a revoked kid that is a path": Case(
        Admission("revokedKids[].kid must be a kid of 1 to 128 characters"),
        spec({"revokedKids": [{"kid": "../etc/passwd"}]}),
    ),
    "no spec at all": Case(Admission("spec: Required value"), NO_SPEC),
    "a spec that is a string": Case(Admission("must be of type object"), "rotate every Monday"),
    # ---- refused at admission: updates of an existing keyset, and status.emergency
    "a Secret name changed on an existing keyset": Case(
        Admission("secret.name cannot change"), after=patch_spec({"secret": {"name": "elsewhere"}})
    ),
    "an HMAC keyset switched to RSA": Case(
        Admission("cannot switch between HMAC (HS*) and asymmetric algorithms"),
        spec({"algorithm": "HS256"}),
        after=patch_spec({"algorithm": "RS256"}),
    ),
    "an emergency without a requestId": Case(
        Admission("status.emergency.requestId is required"), after=emergency({"reason": "key_compromise"})
    ),
    "an emergency requestId with a space": Case(
        Admission("status.emergency.requestId must be 1 to 128 letters"),
        after=emergency({"requestId": "inc 42"}),
    ),
    "an emergency with both revokeKids and revokeAll": Case(
        Admission("set either status.emergency.revokeKids or status.emergency.revokeAll, not both"),
        after=emergency({"requestId": "inc-1", "revokeKids": ["k1"], "revokeAll": True}),
    ),
    "an emergency revoking a kid that is a path": Case(
        Admission("status.emergency.revokeKids[] must be a kid"),
        after=emergency({"requestId": "inc-1", "revokeKids": ["../k1"]}),
    ),
    "an emergency revoking 65 kids": Case(
        Admission("must have at most 64 items"),
        after=emergency({"requestId": "inc-1", "revokeKids": [f"k{i}" for i in range(65)]}),
    ),
    "an emergency reason of 300 characters": Case(
        Admission("may not be more than 256 bytes"),
        after=emergency({"requestId": "inc-1", "reason": "x" * 300}),
    ),
    "an emergency that is a string": Case(
        Admission("must be of type object"), after=raw_emergency("revoke it all")
    ),
    "an emergency revokeAll written as a string": Case(
        Admission("must be of type boolean"), after=emergency({"requestId": "inc-1", "revokeAll": "yes"})
    ),
    # ---- admitted, refused by Keyturn: the spec
    "a time zone that is a region (America)": Case(
        Stalled(Reason.INVALID_SPEC, "spec.rotation.timeZone: 'America' is not an IANA time zone"),
        rotation(timeZone="America"),
    ),
    "an interval of 99999 days": Case(
        Stalled(Reason.INVALID_SPEC, "spec.rotation.interval"), rotation(interval="99999d")
    ),
    "a publishAhead of 999999 hours": Case(
        Stalled(Reason.INVALID_SPEC, "spec.rotation.publishAhead"), rotation(publishAhead="999999h")
    ),
    "a cron schedule that never fires (30 February)": Case(
        Stalled(Reason.INVALID_SPEC, "30 February never comes"),
        rotation(interval=None, schedule="0 0 30 2 *"),
    ),
    "a cron schedule that skips 2100 (29 February)": Case(
        Stalled(Reason.INVALID_SPEC, "does not fire at least once every 5 years"),
        rotation(interval=None, schedule="0 0 29 2 *"),
    ),
    "a cron minute of 61": Case(
        Stalled(Reason.INVALID_SPEC, "is not a cron expression of 5 fields"),
        rotation(interval=None, schedule="61 * * * *"),
    ),
    "an analysis longer than a hundred years": Case(
        Stalled(Reason.INVALID_SPEC, "longer than 100 years"), analysis(interval="36000d", count=100)
    ),
    "a Prometheus address on port 0": Case(
        Stalled(Reason.INVALID_SPEC, "port 0 is not a port"),
        analysis(prometheus={"address": "http://prometheus:0"}),
    ),
    "a Prometheus address on port 99999": Case(
        Stalled(Reason.INVALID_SPEC, "is not a URL"),
        analysis(prometheus={"address": "http://prometheus:99999"}),
    ),
    "a gracePeriod shorter than maxLifetime + verifierCacheTTL": Case(
        Stalled(Reason.GRACE_TOO_SHORT, "rotation.gracePeriod 7d is shorter than"),
        spec({"tokens": {"maxLifetime": "7d", "verifierCacheTTL": "5m"}}),
    ),
    "a publishAhead shorter than verifierCacheTTL": Case(
        Stalled(Reason.PUBLISH_AHEAD_TOO_SHORT, "rotation.publishAhead 1h is shorter than"),
        spec({"tokens": {"verifierCacheTTL": "2h"}}),
    ),
    "a retention shorter than gracePeriod": Case(
        Stalled(Reason.RETENTION_TOO_SHORT, "rotation.retention 1d is shorter than"), rotation(retention="1d")
    ),
    "a kid template whose kids are longer than 128 characters": Case(
        Stalled(Reason.KEY_GENERATION_FAILED, "generating a key failed"),
        spec({"kid": {"strategy": "Template", "template": "{name}{name}{name}{name}{n}"}}),
    ),
    "a passphrase Secret that does not exist": Case(
        Stalled(Reason.PASSPHRASE_MISSING, "not found"), encrypted
    ),
    "a passphrase Secret without the named key": Case(
        Stalled(Reason.PASSPHRASE_MISSING, "with key p not found"),
        encrypted,
        before=passphrase_secret("not-p"),
    ),
    "a Secret of the same name that Keyturn did not create": Case(
        Stalled(Reason.SECRET_CONFLICT, "is not managed by Keyturn"), before=foreign_secret()
    ),
    "a Secret of the same name that belongs to another keyset": Case(
        Stalled(Reason.SECRET_CONFLICT, "belongs to JwtKeySet other"),
        before=foreign_secret({"keyturn.dev/keyset": "other", "app.kubernetes.io/managed-by": "keyturn"}),
    ),
    "a JWKS ConfigMap of the same name that someone else wrote": Case(
        Stalled(Reason.JWKS_CONFLICT, "is not this keyset's JWKS"), before=_foreign_jwks
    ),
    "revokedKids naming a kid the keyset never had": Case(
        Stalled(Reason.UNKNOWN_KID, UNKNOWN_KID), after=patch_spec({"revokedKids": [{"kid": UNKNOWN_KID}]})
    ),
    "a time zone region set on a keyset that has keys": Case(
        Stalled(Reason.INVALID_SPEC, "spec.rotation.timeZone"),
        after=patch_spec({"rotation": {"timeZone": "Etc"}}),
    ),
    "a passphrase kept in the key Secret itself": Case(
        Stalled(Reason.INVALID_SPEC, "is the Secret that holds the keys"), after=_own_secret_as_passphrase
    ),
    # Kubernetes admits names up to 253 characters; the name is a label value of the keyset's objects.
    "a keyset name of 100 characters": Case(
        Admission("metadata.name must be at most 63 characters"),
        name="long-name-" * 9 + "0123456789",
    ),
    # ---- runtime: the Secret Keyturn writes, edited by someone else
    "the Secret's record is not JSON": Case(
        Stalled(Reason.SECRET_CORRUPT, "the key record is not JSON"),
        after=record_text('{"version": 1, "keys": ['),
    ),
    "the Secret's record is of another version": Case(
        Stalled(Reason.SECRET_CORRUPT, "unsupported record version 99"), after=record_version(99)
    ),
    "the Secret's record annotation was removed": Case(
        Stalled(Reason.SECRET_CORRUPT, "carries this keyset's label but no record"),
        after=edit_secret(_record_removed),
    ),
    "a binary item was added to the Secret": Case(
        Stalled(Reason.SECRET_CONFLICT, "holds binary item(s) Keyturn did not write: blob"),
        after=edit_secret(_binary_item),
    ),
    "the current key's material was deleted by hand": Case(
        Stalled(Reason.SECRET_CORRUPT, "its private key item is missing"),
        after=edit_secret(_material_deleted),
    ),
    "the current key's material is no key, and a jwk item needs it": Case(
        Stalled(Reason.SECRET_CORRUPT, "its private key does not load"),
        spec({"secret": {"items": [{"key": "JWK", "format": "jwk"}, {"key": "KID", "format": "kid"}]}}),
        after=material(lambda _current, _next: NOT_A_KEY),
    ),
    "the recorded public key of the current key is garbage": Case(
        Stalled(Reason.SECRET_CORRUPT, "cannot be rendered"), after=record_edit(_garbage_public_key)
    ),
    "the current key's material is no key": Case(
        Stalled(Reason.SECRET_CORRUPT),
        after=material(lambda _current, _next: NOT_A_KEY),
    ),
    "the current key's material is the next key's": Case(
        Stalled(Reason.SECRET_CORRUPT),
        after=material(lambda _current, nxt: nxt),
    ),
    "the Secret was deleted by hand": Case(Warned(Reason.SECRET_LOST, "was deleted"), after=delete_secret),
    # ---- runtime: status.emergency that gets past admission
    "an emergency naming a kid the keyset never had": Case(
        Rejected(f"unknown kid(s): {UNKNOWN_KID}"),
        after=emergency({"requestId": "inc-1", "revokeKids": [UNKNOWN_KID]}),
    ),
    "an emergency naming a kid already revoked": Case(
        Rejected("already revoked", request="inc-2"),
        after=steps(
            emergency({"requestId": "inc-1"}),
            answered("inc-1"),
            emergency(lambda status: {"requestId": "inc-2", "revokeKids": [_revoked(status)]}),
        ),
    ),
    "an emergency while the Secret's record is damaged": Case(
        Rejected("nothing was revoked yet: SecretCorrupt"),
        after=steps(record_text("not a record"), emergency({"requestId": "inc-1"})),
    ),
    "an emergency on a keyset that never had a key": Case(
        Rejected("nothing was revoked yet: InvalidSpec"),
        rotation(timeZone="America"),
        after=emergency({"requestId": "inc-1"}),
    ),
    "a handled requestId reused for another kid": Case(
        Rejected("", request="inc-7"),
        after=steps(
            emergency({"requestId": "inc-7"}),
            answered("inc-7"),
            emergency(lambda status: {"requestId": "inc-7", "revokeKids": [status["currentKid"]]}),
        ),
    ),
    # The API server prunes the unknown field: what is left asks for the default, the current key.
    "an emergency with a misspelt field (revokeKid)": Case(
        Revoked("revoked"), after=emergency({"requestId": "inc-1", "revokeKid": ["some-other-kid"]})
    ),
    # ---- runtime: annotations on the keyset
    "a keyturn.dev/rotate annotation of 10 kB": Case(
        Rotated(TEN_KB[:253]), rotation(publishAhead="0s"), after=annotate("keyturn.dev/rotate", TEN_KB)
    ),
    "a keyturn.dev/rollback with nothing to roll back to": Case(
        Warned(Reason.ROLLBACK_IMPOSSIBLE, "no previous key is left"),
        after=annotate("keyturn.dev/rollback", "please"),
    ),
    # ---- runtime: target Deployments' annotations
    'a target whose role is "printer"': Case(
        Target(Reason.BAD_TARGET, "is not verifier, signer or both"),
        after=target({"keyturn.dev/role": "printer"}),
    ),
    'a target ordered "1e999"': Case(
        Target(Reason.BAD_TARGET, "is not a whole number"), after=target({"keyturn.dev/order": "1e999"})
    ),
    "a target ordered 10^20": Case(
        Target(Reason.BAD_TARGET, "is not a whole number"),
        after=target({"keyturn.dev/order": "1" + "0" * 20}),
    ),
    "a health URL with a 64-character host label": Case(
        Target(Reason.BAD_TARGET, "longer than 63 characters"),
        after=target({"keyturn.dev/health-url": f"http://{LONG_LABEL}.example:8000/health"}),
    ),
    "a health URL of scheme file": Case(
        Target(Reason.BAD_TARGET, "must start with http:// or https://"),
        after=target({"keyturn.dev/health-url": "file:///etc/passwd"}),
    ),
    "a health URL with user info": Case(
        Target(Reason.BAD_TARGET, "must not carry a user or password"),
        after=target({"keyturn.dev/health-url": "http://admin:hunter2@web:8000/health"}),
    ),
    "a health URL to the cloud metadata address": Case(
        Target(Reason.BAD_TARGET, "link-local"),
        after=target({"keyturn.dev/health-url": "http://169.254.169.254/latest/meta-data/"}),
    ),
    "a health URL with a decimal IPv4 host": Case(
        Target(Reason.BAD_TARGET, "write an IPv4 address as four decimal numbers"),
        after=target({"keyturn.dev/health-url": "http://2130706433:8000/health"}),
    ),
    'a target stamped "yesterday"': Case(
        Warned(Reason.BAD_TARGET, "is not an RFC 3339 time"),
        after=target({"keyturn.dev/stamped-{name}": "yesterday"}),
    ),
    "a target whose ready annotation is garbage": Case(
        Warned(Reason.BAD_TARGET, "is not '<revision> <time>'"),
        after=target({"keyturn.dev/ready-{name}": "garbage"}),
    ),
}


# ------------------------------------------------------------------------------------ plumbing
def _slug(text: str, index: int) -> str:
    stem = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40].strip("-")
    return f"{stem}-{index}"


NAMES = {row: case.name or _slug(row, i) for i, (row, case) in enumerate(CORPUS.items())}
ADMISSION = {row: case for row, case in CORPUS.items() if isinstance(case.outcome, Admission)}
ADMITTED = {row: case for row, case in CORPUS.items() if not isinstance(case.outcome, Admission)}


def _params(rows: Mapping[str, Case]) -> list[Any]:
    return [
        pytest.param(
            row, id=row, marks=[pytest.mark.xfail(strict=True, reason=case.xfail)] if case.xfail else []
        )
        for row, case in rows.items()
    ]


def _spec_of(case: Case, name: str) -> Any:
    return case.spec(name) if callable(case.spec) else case.spec


def _body(name: str, spec_value: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "JwtKeySet",
        "metadata": {"name": name},
    }
    if spec_value is not NO_SPEC:
        body["spec"] = copy.deepcopy(spec_value)
    return body


def _message(exc: ApiException) -> str:
    try:
        return str(json.loads(exc.body or "")["message"])
    except (TypeError, ValueError, KeyError):
        return str(exc.body)


def _expand(annotations: Mapping[str, str], name: str) -> dict[str, str]:
    """{name} in an annotation's name: the keyset's part of Keyturn's per-keyset annotations."""
    return {k.replace("{name}", annotation_suffix(name)): v for k, v in annotations.items()}


class Board:
    """One list call serves every waiting row: forty threads each polling their own keyset would
    load the API server (and the two shared cores) for nothing."""

    def __init__(self, kube: Kube, max_age: float = 0.25) -> None:
        self.kube = kube
        self.max_age = max_age
        self._lock = threading.Lock()
        self._keysets: tuple[float, dict[str, dict[str, Any]]] = (0.0, {})
        self._events: tuple[float, list[Any]] = (0.0, [])

    def status(self, name: str) -> dict[str, Any]:
        with self._lock:
            at, items = self._keysets
            if time.monotonic() - at > self.max_age:
                listing = self.kube.custom.list_namespaced_custom_object(
                    GROUP, VERSION, self.kube.namespace, PLURAL
                )
                assert isinstance(listing, dict)
                items = {o["metadata"]["name"]: o for o in listing.get("items", ())}
                self._keysets = (time.monotonic(), items)
        status: dict[str, Any] = items.get(name, {}).get("status") or {}
        return status

    def events(self, name: str) -> list[Any]:
        with self._lock:
            at, items = self._events
            if time.monotonic() - at > self.max_age:
                items = self.kube.core.list_namespaced_event(self.kube.namespace).items
                self._events = (time.monotonic(), items)
        return [e for e in items if e.involved_object and e.involved_object.name == name]


def _condition(status: Mapping[str, Any], kind: str) -> Mapping[str, Any] | None:
    return next((c for c in status.get("conditions") or () if c.get("type") == kind), None)


def _true(status: Mapping[str, Any], kind: str) -> bool:
    cond = _condition(status, kind)
    return cond is not None and cond.get("status") == "True"


def _verdict(status: Mapping[str, Any]) -> str | None:
    return next((kind for kind in ("Ready", "Stalled") if _true(status, kind)), None)


def _written(kube: Kube, kind: str, name: str, keyset: str) -> bool:
    """Whether Keyturn wrote this Secret or ConfigMap for the keyset (its keyset label says so)."""
    read = kube.core.read_namespaced_secret if kind == "Secret" else kube.core.read_namespaced_config_map
    try:
        obj = read(name, kube.namespace)
    except ApiException as exc:
        if exc.status == 404:
            return False
        raise
    labels = (obj.metadata.labels if obj.metadata else None) or {}
    return bool(labels.get("keyturn.dev/keyset") == keyset)


def _await(board: Board, name: str, what: str, probe: Callable[[], T | None], timeout: float) -> T:
    """wait_for, with what the keyset showed when it timed out: its conditions, its emergency
    answer and its Events."""
    try:
        return wait_for(probe, timeout, message=f"{name}: {what}")
    except AssertionError as exc:
        status = board.status(name)
        conditions = [
            (c.get("type"), c.get("status"), c.get("reason"), c.get("message"))
            for c in status.get("conditions") or ()
        ]
        events = [(e.type, e.reason, e.message) for e in board.events(name)]
        raise AssertionError(
            f"{exc}\n  conditions: {conditions}\n  emergency: {status.get('emergency')}\n  events: {events}"
        ) from None


def _with_condition(board: Board, name: str, kind: str, reason: str) -> Mapping[str, Any] | None:
    cond = _condition(board.status(name), kind)
    return cond if cond and cond.get("status") == "True" and cond.get("reason") == reason else None


def _answer(board: Board, name: str, outcome: Rejected | Revoked) -> Mapping[str, Any] | None:
    """The answer the row expects (an earlier answer to the same requestId may still be on show)."""
    ack: Mapping[str, Any] = board.status(name).get("emergency") or {}
    result = "Rejected" if isinstance(outcome, Rejected) else "Revoked"
    expected = ack.get("requestId") == outcome.request and ack.get("result") == result
    return ack if expected and outcome.fragment in str(ack.get("message")) else None


def _signing_kid(kube: Kube, name: str) -> str | None:
    """The kid the Secret gives applications to sign with (JWT_KID), if there is a Secret."""
    return (kube.secret(name) or {}).get("JWT_KID")


def _warning(board: Board, name: str, reason: str) -> Any:
    return next((e for e in board.events(name) if e.reason == reason and e.type == "Warning"), None)


def _ready(board: Board, name: str) -> Mapping[str, Any] | None:
    status = board.status(name)
    return status if _verdict(status) == "Ready" else None


def _judged(board: Board, name: str) -> Mapping[str, Any] | None:
    status = board.status(name)
    return status if _verdict(status) else None


def _rotated(board: Board, name: str, handled: str) -> Mapping[str, Any] | None:
    status = _ready(board, name)
    return status if status and status.get("lastHandledRotate") == handled else None


def _check(case: Case, kube: Kube, board: Board, name: str, status: Mapping[str, Any]) -> None:
    """Waits for the row's outcome; raises AssertionError (with what was seen) when it does not come.

    `status` is the keyset's status at its verdict, before the row's bad input (if any) was sent.
    """
    outcome = case.outcome
    if isinstance(outcome, Stalled | Target):
        kind = "Stalled" if isinstance(outcome, Stalled) else "Degraded"
        reason = str(outcome.reason)
        cond = _await(
            board,
            name,
            f"{kind}={reason}",
            lambda: _with_condition(board, name, kind, reason),
            OUTCOME_TIMEOUT,
        )
        assert outcome.fragment in str(cond.get("message")), cond
        if isinstance(outcome, Target):
            assert not _true(board.status(name), "Stalled"), "a target's fault must not stall the keyset"
        elif case.after is None:  # refused before it ever had a key: nothing is written for it
            assert not status.get("currentKid"), status
            assert not _written(kube, "Secret", name, name), "a Secret was written for a refused keyset"
            assert not _written(kube, "ConfigMap", f"{name}-jwks", name), "a JWKS was written for it"
    elif isinstance(outcome, Warned):
        reason = str(outcome.reason)
        event = _await(
            board, name, f"a Warning Event {reason}", lambda: _warning(board, name, reason), OUTCOME_TIMEOUT
        )
        assert outcome.fragment in str(event.message), event.message
        _await(board, name, "Ready after it", lambda: _ready(board, name), OUTCOME_TIMEOUT)
    elif isinstance(outcome, Rejected | Revoked):
        answer = outcome
        ack = _await(
            board, name, f"the answer {answer}", lambda: _answer(board, name, answer), OUTCOME_TIMEOUT
        )
        if isinstance(outcome, Revoked):
            assert ack.get("newKid") and ack["newKid"] != status["currentKid"], ack
            assert _signing_kid(kube, name) == ack["newKid"]
        elif outcome.request == "inc-1":  # the row's only request: the signing key must not change
            kid = _signing_kid(kube, name)
            assert kid == status.get("currentKid"), f"a rejected emergency changed the signing key to {kid}"
    elif isinstance(outcome, Rotated):
        handled = outcome.handled
        final = _await(
            board, name, "the rotation handled", lambda: _rotated(board, name, handled), OUTCOME_TIMEOUT
        )
        assert final["currentKid"] != status["currentKid"], final
    elif isinstance(outcome, Served):
        final = _await(board, name, "Ready", lambda: _ready(board, name), OUTCOME_TIMEOUT)
        assert _signing_kid(kube, name) == final["currentKid"], final
        assert not _true(final, "Degraded"), final
    else:  # Admission rows never reach the operator
        raise AssertionError(f"no check for {outcome!r}")
    errors = [e.message for e in board.events(name) if e.reason == Reason.RECONCILE_ERROR]
    assert not errors, f"a pass failed with an exception: {errors}"


def _run(case: Case, kube: Kube, board: Board, name: str) -> float:
    """One row end to end; returns how long its verdict took."""
    if case.before is not None:
        case.before(kube, name, {})
    kube.custom.create_namespaced_custom_object(
        GROUP, VERSION, kube.namespace, PLURAL, _body(name, _spec_of(case, name))
    )
    created = time.monotonic()
    status = _await(
        board, name, "a verdict (Ready or Stalled)", lambda: _judged(board, name), VERDICT_TIMEOUT
    )
    took = time.monotonic() - created
    if case.after is not None:
        case.after(kube, name, status)
    _check(case, kube, board, name, status)
    return took


# ------------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def module_api(cluster: Any) -> Iterator[ApiClient]:
    """A client whose connection pool serves every row's thread at once."""
    cfg = client.Configuration()
    config.load_kube_config(
        config_file=str(cluster.kubeconfig), client_configuration=cfg, persist_config=False
    )
    cfg.connection_pool_maxsize = 2 * len(CORPUS)
    with contextlib.closing(client.ApiClient(cfg)) as api_client:
        yield api_client


@pytest.fixture(scope="module")
def kube(module_api: ApiClient) -> Iterator[Kube]:
    """One namespace for the whole module (deleted, not awaited, at the end)."""
    core = client.CoreV1Api(module_api)
    name = f"t-bad-{secrets.token_hex(4)}"
    core.create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels={"keyturn.dev/test": "true"}))
    )
    try:
        yield Kube(module_api, name)
    finally:
        with contextlib.suppress(ApiException):
            core.delete_namespace(name, propagation_policy="Background")


def _default_sa(kube: Kube) -> bool:
    try:
        kube.core.read_namespaced_service_account("default", kube.namespace)
    except ApiException as exc:
        if exc.status == 404:
            return False
        raise
    return True


@pytest.fixture(scope="module")
def operator(cluster: Any, kube: Kube, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OperatorProcess]:
    # Targets' Pods are refused until the namespace's default ServiceAccount exists.
    wait_for(lambda: _default_sa(kube), 30, message="ServiceAccount default")
    proc = OperatorProcess(
        kubeconfig=Path(cluster.kubeconfig),
        namespace=kube.namespace,
        log_path=tmp_path_factory.mktemp("bad-inputs") / "operator.log",
    )
    proc.start()
    yield proc
    proc.stop()


def _selected(session: pytest.Session) -> list[str]:
    """The admitted rows this session runs (all of them, unless some were deselected)."""
    chosen = {
        item.callspec.params["row"]
        for item in session.items
        if isinstance(item, pytest.Function)
        and item.originalname == "test_admitted_input_gets_its_outcome"
        and hasattr(item, "callspec")
    }
    return [row for row in ADMITTED if row in chosen] or list(ADMITTED)


@pytest.fixture(scope="module")
def outcomes(
    request: pytest.FixtureRequest, kube: Kube, operator: OperatorProcess
) -> dict[str, BaseException | float]:
    """The admitted rows selected, run at once: the verdict's delay in seconds, or what went wrong."""
    board = Board(kube)
    rows = _selected(request.session)

    def run(row: str) -> BaseException | float:
        try:
            return _run(ADMITTED[row], kube, board, NAMES[row])
        except Exception as exc:  # the row's test reports it
            return exc

    with ThreadPoolExecutor(max_workers=len(rows)) as pool:
        return dict(zip(rows, pool.map(run, rows), strict=True))


# ------------------------------------------------------------------------------------ tests
@pytest.mark.parametrize("row", _params(ADMISSION))
def test_refused_at_admission(kube: Kube, row: str) -> None:
    case, name = ADMISSION[row], NAMES[row]
    outcome = case.outcome
    assert isinstance(outcome, Admission)
    if case.after is None:
        with pytest.raises(ApiException) as info:
            kube.custom.create_namespaced_custom_object(
                GROUP, VERSION, kube.namespace, PLURAL, _body(name, _spec_of(case, name))
            )
    else:
        kube.custom.create_namespaced_custom_object(
            GROUP, VERSION, kube.namespace, PLURAL, _body(name, _spec_of(case, name))
        )
        try:
            with pytest.raises(ApiException) as info:
                case.after(kube, name, {})
        finally:
            kube.custom.delete_namespaced_custom_object(GROUP, VERSION, kube.namespace, PLURAL, name)
    message = _message(info.value)
    assert info.value.status == 422, f"{info.value.status}: {message}"
    assert outcome.fragment in message, message


@pytest.mark.parametrize("row", _params(ADMITTED))
def test_admitted_input_gets_its_outcome(outcomes: dict[str, BaseException | float], row: str) -> None:
    result = outcomes[row]
    if isinstance(result, BaseException):
        raise result
    assert result <= VERDICT_TIMEOUT


def test_the_operator_survived_the_corpus(
    outcomes: dict[str, BaseException | float], operator: OperatorProcess
) -> None:
    assert operator.proc is not None and operator.proc.poll() is None, operator.log_text()[-4000:]
    known = {NAMES[row] for row in outcomes if ADMITTED[row].xfail}  # their rows say why
    failed = [
        line
        for line in operator.log_text().splitlines()
        if '"ReconcileError"' in line and json.loads(line).get("keyset") not in known
    ]
    assert not failed, "\n".join(failed[:20])
