"""Offline checks of crds/keyturn.dev_jwtkeysets.yaml against the API contract (DESIGN.md section 1).

What only a real apiserver can judge (CEL compiling, the cost budget, how rules behave) is in
tests/integration/test_crd_admission.py; this file checks names, shape, enums, defaults,
descriptions and the single-field patterns, without a cluster.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from contract import ALGORITHMS, DESIGN_SPEC
from keyturn.domain.spec import DEFAULT_PROPAGATION_QUERY

ROOT = Path(__file__).resolve().parents[3]
CRD_PATH = ROOT / "crds" / "keyturn.dev_jwtkeysets.yaml"

_T = "2026-01-01T00:00:00Z"
DESIGN_STATUS: dict[str, Any] = {
    "observedGeneration": 3,
    "conditions": [
        {
            "type": t,
            "status": "True",
            "reason": "R",
            "message": "",
            "lastTransitionTime": _T,
            "observedGeneration": 3,
        }
        for t in ("Ready", "Reconciling", "Stalled", "RolledBack", "Degraded")
    ],
    "phase": "Ready",
    "currentKid": "k2",
    "nextKid": "k3",
    "nextRotationAt": _T,
    "lastRotationAt": _T,
    "lastHandledRotate": "token",
    "lastHandledRollback": "token",
    "keys": [
        {
            "kid": "k2",
            "state": "current",
            "algorithm": "RS256",
            "createdAt": _T,
            "publishedAt": _T,
            "activatedAt": _T,
            "demotedAt": _T,
            "removeFromJwksAt": _T,
            "purgeAt": _T,
            "revokedAt": _T,
            "reason": "r",
        }
    ],
    "rollout": {
        "revision": "r1",
        "targets": [{"name": "api", "role": "both", "state": "Healthy", "message": ""}],
    },
    "analysis": {
        "phase": "Successful",
        "successRate": "1",
        "measurements": [{"at": _T, "value": "1", "result": "ok"}],
    },
    "propagation": {
        "kid": "k3",
        "share": "0.5",
        "threshold": "1",
        "result": "Below",
        "message": "50% of consumers accept k3",
        "heldSince": _T,
    },
    "history": [
        {"at": _T, "operation": "Activate", "kids": ["k2"], "trigger": "Schedule", "reason": "", "result": ""}
    ],
    "emergency": {
        "requestId": "inc-2026-042",
        "reason": "key_compromise",
        "revokeKids": ["k1"],
        "revokeAll": False,
        "handledAt": _T,
        "result": "Revoked",
        "newKid": "k3",
        "message": "",
    },
}


ENUMS: dict[str, list[Any]] = {
    "spec.algorithm": ALGORITHMS,
    "spec.keySize": [2048, 3072, 4096],
    "spec.kid.strategy": ["Thumbprint", "Template"],
    "spec.secret.deletionPolicy": ["Retain", "Delete"],
    "spec.secret.items[].slot": ["current", "previous", "next"],
    "spec.secret.items[].format": ["pem", "public-pem", "jwk", "raw", "kid", "jwks"],
    "spec.rollout.onFailure": ["Rollback", "Pause"],
    "spec.analysis.onNoData": ["Pass", "Fail", "Inconclusive"],
    "spec.analysis.onFailure": ["Rollback", "Pause"],
    "status.phase": [
        "Pending",
        "Publishing",
        "RollingOut",
        "Analyzing",
        "RollingBack",
        "Ready",
        "Paused",
        "Failed",
    ],
    "status.conditions[].status": ["True", "False", "Unknown"],
    "status.keys[].state": ["next", "current", "previous", "failed", "retired", "revoked"],
    "status.rollout.targets[].role": ["verifier", "signer", "both"],
    "status.rollout.targets[].kind": ["Deployment", "StatefulSet", "DaemonSet"],
}

DURATIONS = [
    "spec.rotation.interval",
    "spec.rotation.publishAhead",
    "spec.rotation.gracePeriod",
    "spec.rotation.retention",
    "spec.tokens.maxLifetime",
    "spec.tokens.verifierCacheTTL",
    "spec.rollout.timeout",
    "spec.rollout.pauseBetween",
    "spec.analysis.initialDelay",
    "spec.analysis.interval",
    "spec.propagation.interval",
    "spec.propagation.timeout",
]
DURATION_MESSAGE = "must be a duration like 90d, 36h, 1d12h, 15m or 30s, with at most 6 digits per unit"

# Field -> the default its description must name (applied by the operator, not by the schema).
OPERATOR_DEFAULTS = {
    "spec.keySize": "Default 2048",
    "spec.secretLength": "Default: the hash size",
    "spec.rotation.interval": "Default 90d when neither interval nor schedule is set",
    "spec.rotation.timeZone": "Default UTC",
    "spec.rotation.publishAhead": "Default 1h",
    "spec.rotation.gracePeriod": "Default 30d",
    "spec.rotation.retention": "Default 180d",
    "spec.secret.name": "Default: metadata.name",
    "spec.secret.deletionPolicy": "Default Retain",
    "spec.secret.items[].slot": "Default current",
    "spec.jwks.configMapName": "Default: <metadata.name>-jwks",
    "spec.jwks.key": "Default jwks.json",
    "spec.rollout.timeout": "Default 10m",
    "spec.rollout.pauseBetween": "Default 10s",
    "spec.rollout.onFailure": "Default Rollback",
    "spec.analysis.successThreshold": 'Default "0.95"',
    "spec.analysis.initialDelay": "Default 1m",
    "spec.analysis.interval": "Default 30s",
    "spec.analysis.count": "Default 10",
    "spec.analysis.failureLimit": "Default 1",
    "spec.analysis.onNoData": "Default Inconclusive",
    "spec.analysis.onFailure": "Default Rollback",
    "spec.suspend": "Default false",
    "spec.propagation.prometheus": "Default spec.analysis.prometheus",
    "spec.propagation.prometheus.address": "Default spec.analysis.prometheus.address",
    "spec.propagation.query": "Default " + DEFAULT_PROPAGATION_QUERY,
    "spec.propagation.threshold": 'Default "1"',
    "spec.propagation.interval": "Default 15s",
    "spec.propagation.timeout": "Default 1h",
}

# The human messages the contract promises (the integration tests check the apiserver sends them).
MESSAGES = [
    "keySize applies only to RSA algorithms (RS*/PS*)",
    "secretLength applies only to HMAC algorithms (HS*)",
    "set either rotation.interval or rotation.schedule, not both",
    "secret.name cannot change: the Secret holds every key of this keyset; create a new JwtKeySet instead",
    "cannot switch between HMAC (HS*) and asymmetric algorithms; create a new JwtKeySet",
    "format raw is for HMAC algorithms; use pem or jwk",
    "HMAC keys have no PEM form; use raw",
    "encryption applies to PEM private keys; HMAC secrets cannot be encrypted",
    "jwk/jwks items would expose the private key unencrypted; use pem",
    "kid.template is required when kid.strategy is Template",
    DURATION_MESSAGE,
]


# ------------------------------------------------------------------------------------------ helpers
def _load() -> dict[str, Any]:
    docs = [d for d in yaml.safe_load_all(CRD_PATH.read_text()) if d is not None]
    assert len(docs) == 1, "the CRD file holds exactly one document"
    crd: dict[str, Any] = docs[0]
    return crd


CRD = _load()
VERSIONS: list[dict[str, Any]] = CRD["spec"]["versions"]
SCHEMA: dict[str, Any] = VERSIONS[0]["schema"]["openAPIV3Schema"]


def node(path: str) -> dict[str, Any]:
    """The schema of a dotted path; "[]" steps into a list's items."""
    current = SCHEMA
    for part in path.split("."):
        is_list = part.endswith("[]")
        name = part.removesuffix("[]")
        props = current.get("properties", {})
        assert name in props, f"{path}: no field {name!r}"
        current = props[name]
        if is_list:
            assert current.get("type") == "array", f"{path}: {name} is not a list"
            current = current["items"]
    return current


def walk(schema: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every schema node, with its dotted path."""
    yield path, schema
    for name, sub in schema.get("properties", {}).items():
        yield from walk(sub, f"{path}.{name}" if path else name)
    if "items" in schema:
        yield from walk(schema["items"], f"{path}[]")


def value_paths(value: Any, path: str) -> Iterator[str]:
    """Every field path of a value (lists collapsed to "[]")."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield f"{path}.{k}"
            yield from value_paths(v, f"{path}.{k}")
    elif isinstance(value, list):
        for v in value:
            yield from value_paths(v, f"{path}[]")


def rules(schema: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = schema.get("x-kubernetes-validations", [])
    return found


def matches(regex: str, value: str) -> bool:
    """How Go's regexp.MatchString (the apiserver's pattern check and CEL matches()) behaves."""
    return re.search(regex, value) is not None


# ----------------------------------------------------------------------------------- names, version
def test_identity() -> None:
    assert CRD["apiVersion"] == "apiextensions.k8s.io/v1"
    assert CRD["kind"] == "CustomResourceDefinition"
    assert CRD["metadata"]["name"] == "jwtkeysets.keyturn.dev"
    spec = CRD["spec"]
    assert spec["group"] == "keyturn.dev"
    assert spec["scope"] == "Namespaced"
    names = spec["names"]
    assert names["kind"] == "JwtKeySet"
    assert names["plural"] == "jwtkeysets"
    assert names["singular"] == "jwtkeyset"
    assert names["shortNames"] == ["jwtks"]
    assert names["categories"] == ["keyturn"]
    assert "preserveUnknownFields" not in spec or spec["preserveUnknownFields"] is False


def test_one_served_storage_version_with_status_subresource() -> None:
    assert [v["name"] for v in VERSIONS] == ["v1alpha1"]
    version = VERSIONS[0]
    assert version["served"] is True
    assert version["storage"] is True
    assert version["subresources"] == {"status": {}}


def test_printer_columns() -> None:
    columns = [(c["name"], c["type"], c["jsonPath"]) for c in VERSIONS[0]["additionalPrinterColumns"]]
    assert columns == [
        ("Algorithm", "string", ".spec.algorithm"),
        ("Current KID", "string", ".status.currentKid"),
        ("Ready", "string", '.status.conditions[?(@.type=="Ready")].status'),
        # A string column on purpose: a date column prints a time in the future as "<invalid>".
        ("Next Rotation", "string", ".status.nextRotationAt"),
        ("Age", "date", ".metadata.creationTimestamp"),
    ]
    for _, _, json_path in columns[:4]:
        field = json_path.split("[")[0].lstrip(".")
        node(field)  # the column shows a field the schema declares


# --------------------------------------------------------------------------------------- the shape
@pytest.mark.parametrize("path", sorted(set(value_paths(DESIGN_SPEC, "spec"))))
def test_design_spec_field_is_declared(path: str) -> None:
    node(path)


@pytest.mark.parametrize("path", sorted(set(value_paths(DESIGN_STATUS, "status"))))
def test_design_status_field_is_declared(path: str) -> None:
    node(path)


def test_no_undeclared_spec_fields_beyond_the_contract() -> None:
    declared = {p for p, _ in walk(node("spec"), "spec") if not p.endswith("[]")} - {"spec"}
    assert declared == set(value_paths(DESIGN_SPEC, "spec"))


def test_schema_is_structural() -> None:
    for path, schema in walk(SCHEMA):
        assert "x-kubernetes-preserve-unknown-fields" not in schema, path
        assert "x-kubernetes-int-or-string" not in schema, path
        assert "type" in schema, f"{path or '<root>'} has no type"
        if schema["type"] == "object" and path not in ("metadata",):
            assert "properties" in schema, f"{path}: an object without declared properties"
        if schema["type"] == "array":
            assert "items" in schema, path
    assert SCHEMA["required"] == ["spec"]


def test_every_field_is_described() -> None:
    for path, schema in walk(SCHEMA):
        if path.startswith(("spec", "status")):
            assert len(schema.get("description", "")) >= 8, f"{path} needs a description (kubectl explain)"


def test_only_algorithm_and_kid_strategy_have_schema_defaults() -> None:
    defaults = {path: schema["default"] for path, schema in walk(SCHEMA) if "default" in schema}
    assert defaults == {"spec.algorithm": "RS256", "spec.kid.strategy": "Thumbprint"}


@pytest.mark.parametrize(("path", "text"), sorted(OPERATOR_DEFAULTS.items()))
def test_description_names_the_operator_default(path: str, text: str) -> None:
    assert text in node(path)["description"]


@pytest.mark.parametrize(("path", "values"), sorted(ENUMS.items()))
def test_enum_is_exactly_the_contract(path: str, values: list[Any]) -> None:
    assert node(path)["enum"] == values


def test_none_is_not_an_algorithm() -> None:
    assert not any(a.lower() == "none" for a in node("spec.algorithm")["enum"])


def test_list_semantics() -> None:
    for path, key in [
        ("spec.secret.items", "key"),
        ("spec.revokedKids", "kid"),
        ("status.conditions", "type"),
        ("status.keys", "kid"),
    ]:
        schema = node(path)
        assert schema["x-kubernetes-list-type"] == "map", path
        assert schema["x-kubernetes-list-map-keys"] == [key], path
        assert key in schema["items"]["required"], f"{path}: a list-map key must be required"
    assert node("status.history")["maxItems"] == 20
    for path, schema in walk(node("spec"), "spec"):
        if schema["type"] == "array":
            assert "maxItems" in schema, f"{path}: bound it (CEL cost, object size)"


def test_required_fields() -> None:
    assert node("spec.rotation.window")["required"] == ["start", "end"]
    assert node("spec.secret.items")["items"]["required"] == ["key", "format"]
    assert node("spec.secret.encryption.passphraseSecretRef")["required"] == ["name", "key"]
    assert node("spec.analysis")["required"] == ["prometheus"]
    assert node("spec.analysis.prometheus")["required"] == ["address", "query"]
    assert node("spec.revokedKids")["items"]["required"] == ["kid"]
    assert set(node("status.conditions")["items"]["required"]) == {
        "type",
        "status",
        "lastTransitionTime",
        "reason",
        "message",
    }
    # requestId is required by a CEL rule (for its message), not by the schema: see below.
    assert "required" not in node("status.emergency")


def test_timestamps_are_date_times() -> None:
    for path in [
        "status.nextRotationAt",
        "status.lastRotationAt",
        "status.conditions[].lastTransitionTime",
        *(
            f"status.keys[].{f}"
            for f in (
                "createdAt",
                "publishedAt",
                "activatedAt",
                "demotedAt",
                "removeFromJwksAt",
                "purgeAt",
                "revokedAt",
            )
        ),
        "status.analysis.measurements[].at",
        "status.propagation.heldSince",
        "status.history[].at",
        "status.emergency.handledAt",
    ]:
        assert node(path)["format"] == "date-time", path
    assert node("status.observedGeneration")["format"] == "int64"


# ------------------------------------------------------------------------------------------- rules
def test_every_rule_has_a_message() -> None:
    for path, schema in walk(SCHEMA):
        for r in rules(schema):
            assert r.get("message"), f"{path}: rule {r['rule']!r} has no message"


def test_contract_messages_are_present() -> None:
    all_messages = {r["message"] for _, schema in walk(SCHEMA) for r in rules(schema)}
    for message in MESSAGES:
        assert message in all_messages, message
    secret_length = [
        r for r in rules(node("spec")) if "messageExpression" in r and "secretLength" in r["rule"]
    ]
    assert len(secret_length) == 1
    assert "' bytes for ' + self.algorithm" in secret_length[0]["messageExpression"]


def test_transition_rules() -> None:
    algorithm = [r for r in rules(node("spec")) if "oldSelf" in r["rule"]]
    assert [r["message"] for r in algorithm] == [
        "cannot switch between HMAC (HS*) and asymmetric algorithms; create a new JwtKeySet"
    ]
    # At the root, because the default Secret name is metadata.name: changing from the default
    # to an explicit other name is a change too.
    root = [r for r in rules(SCHEMA) if "oldSelf" in r["rule"]]
    assert len(root) == 1
    assert root[0]["message"].startswith("secret.name cannot change")
    assert "oldSelf.metadata.name" in root[0]["rule"]
    emergency = [r for r in rules(node("status.emergency")) if "requestId" in r["rule"]]
    assert any(r["rule"] == "has(self.requestId)" for r in emergency)


def _cel_regex(schema: dict[str, Any]) -> str:
    """The regex of the field's `self.matches('...')` rule, unescaped from its CEL literal."""
    for r in rules(schema):
        m = re.fullmatch(r"self\.matches\('(.*)'\)", r["rule"])
        if m:
            return m.group(1).replace("\\\\", "\\")
    raise AssertionError("no self.matches() rule")


def test_patterns_and_their_cel_twins_agree() -> None:
    """A pattern (for offline tools) doubled by a CEL rule (for a human message) must be the same regex."""
    count = 0
    for path, schema in walk(SCHEMA):
        if "pattern" in schema and any(r["rule"].startswith("self.matches(") for r in rules(schema)):
            assert _cel_regex(schema) == schema["pattern"], path
            count += 1
    assert count >= 20


@pytest.mark.parametrize("path", DURATIONS)
def test_duration_field(path: str) -> None:
    schema = node(path)
    assert schema["type"] == "string"
    assert schema["maxLength"] <= 64
    assert DURATION_MESSAGE in [r["message"] for r in rules(schema)]
    regex = schema["pattern"]
    for good in ["90d", "36h", "1d12h", "15m", "30s", "0s", "1d2h3m4s", "100d", "2h30s", "999999d"]:
        assert matches(regex, good), good
    for bad in ["", "90", "90x", "1.5d", "-1h", "1h30d", "1d 2h", "P90D", "90D", "d", "1m1h", "1s1s"]:
        assert not matches(regex, bad), bad
    # At most 6 digits per unit (the operator then refuses anything over 100 years).
    for long in ["3000000d", "1d1000000s", "0000001h", "1234567m"]:
        assert not matches(regex, long), long
    assert matches(regex, "999999d999999h999999m999999s")
    assert len("999999d999999h999999m999999s") <= schema["maxLength"]


@pytest.mark.parametrize(
    "path",
    [
        "spec.rotation.interval",
        "spec.rollout.timeout",
        "spec.analysis.interval",
        "spec.tokens.maxLifetime",
        "spec.propagation.interval",
        "spec.propagation.timeout",
    ],
)
def test_positive_durations(path: str) -> None:
    positive = [r for r in rules(node(path)) if "greater than zero" in r["message"]]
    assert len(positive) == 1
    regex = re.fullmatch(r"self\.matches\('(.*)'\)", positive[0]["rule"])
    assert regex is not None
    for zero in ["0s", "0d", "0h0m0s", "00m"]:
        assert not matches(regex.group(1), zero)
    for some in ["1s", "10d", "0d1s", "100m"]:
        assert matches(regex.group(1), some)


PATTERN_SAMPLES: dict[str, tuple[list[str], list[str]]] = {
    "spec.kid.template": (
        ["{date}_v{n}_prod", "{namespace}.{name}-{n}", "k{time}", "{date}{time}"],
        ["", "{date}/v{n}", "{year}-{n}", "{n", "v{n} prod", "{DATE}"],
    ),
    "spec.rotation.schedule": (
        ["", "0 2 1 */3 *", "30 3 * * MON-FRI", "0 0 1,15 * *", "5 4 * * 0"],
        ["@daily", "0 2 * *", "0 0 2 1 */3 *", " 0 2 1 * *", "0 2 1 * * "],
    ),
    "spec.rotation.timeZone": (
        ["UTC", "Europe/Paris", "America/Argentina/Buenos_Aires", "Etc/GMT+5", "America/Port-au-Prince"],
        ["", "Europe Paris", "/UTC", "UTC/", "Europe//Paris", "1UTC"],
    ),
    "spec.rotation.window.start": (
        ["00:00", "02:00", "23:59", "12:30"],
        ["24:00", "2:00", "12:60", "0200", ""],
    ),
    "spec.secret.name": (["api-keys", "a", "a.b-c"], ["", "API", "-a", "a-", "a_b", "a..b"]),
    "spec.secret.items[].key": (["JWT_PRIVATE_KEY", "keys.json", "a-b"], ["", "a b", "a/b", "ä"]),
    "spec.jwks.key": (["jwks.json"], ["jwks/json", ""]),
    "spec.revokedKids[].kid": (
        ["a", "NzbLsXh8uDCcd-6MNwXF4W_7noWXF", "20250101_v1.prod", "a" * 128],
        ["", "a b", "a" * 129, "a/b"],
    ),
    "spec.analysis.successThreshold": (
        ["0", "1", "0.95", "0.995", "1.0", "0.0"],
        ["", "1.5", "95%", ".95", "-0.1", "2", "1.01"],
    ),
    "spec.analysis.prometheus.address": (
        ["http://prometheus.monitoring:9090", "https://thanos.example.com/api/prom", "http://[::1]:9090/"],
        [
            "prometheus:9090",
            "ftp://x",
            "http://",
            "http:// x",
            "http://user:password@prometheus:9090",
            "http://prometheus@169.254.169.254",
            "http://prometheus:9090/?query=up",
            "http://prometheus:9090/api?x",
            "http://prometheus:9090#fragment",
            "http://prometheus:9090/api/v1#x",
        ],
    ),
    "spec.propagation.threshold": (
        ["0", "1", "0.9", "0.995", "1.0"],
        ["", "1.5", "100%", ".9", "-0.1", "2", "1.01"],
    ),
    "spec.propagation.prometheus.address": (
        ["http://prometheus.monitoring:9090", "https://thanos.example.com/api/prom"],
        ["prometheus:9090", "http://user:password@prometheus:9090", "http://prometheus:9090/?query=up"],
    ),
    "status.emergency.requestId": (["inc-2026-042", "INC:42", "a.b_c"], ["", "inc 42", "a" * 129, "inc/42"]),
}


@pytest.mark.parametrize("path", sorted(PATTERN_SAMPLES))
def test_pattern_samples(path: str) -> None:
    good, bad = PATTERN_SAMPLES[path]
    regex = node(path)["pattern"]
    for value in good:
        assert matches(regex, value), f"{path} should accept {value!r}"
    for value in bad:
        assert not matches(regex, value), f"{path} should refuse {value!r}"


def test_kid_template_placeholders_and_length() -> None:
    template = node("spec.kid.template")
    assert template["maxLength"] == 100
    assert any(r["rule"] == "self.contains('{n}')" for r in rules(template))


def test_reserved_secret_data_keys() -> None:
    """Keyturn keeps each key's material in the Secret under key.<kid>.pem / key.<kid>.secret."""
    reserved = [r for r in rules(node("spec.secret.items[].key")) if r["rule"].startswith("!self.matches(")]
    assert len(reserved) == 1
    regex = reserved[0]["rule"].removeprefix("!self.matches('").removesuffix("')")
    for name in ["key.k1.pem", "key.20250101_v1_prod.secret", "key.a.b.pem"]:
        assert matches(regex, name), name
    for name in ["key.pem", "JWT_PRIVATE_KEY", "mykey.k1.pem", "key.k1.pem.bak", "key..pem"]:
        assert not matches(regex, name), name


def test_bounds() -> None:
    assert (node("spec.secretLength")["minimum"], node("spec.secretLength")["maximum"]) == (32, 1024)
    assert (node("spec.analysis.count")["minimum"], node("spec.analysis.count")["maximum"]) == (1, 100)
    assert node("spec.analysis.failureLimit")["minimum"] == 0
    assert node("spec.secret.name")["maxLength"] == 253
    assert node("spec.jwks.configMapName")["maxLength"] == 253
    assert node("spec.revokedKids[].reason")["maxLength"] == 128
    assert node("spec.secret.items[].key")["maxLength"] == 253
