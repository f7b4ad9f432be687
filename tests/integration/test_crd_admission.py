"""Admission of JwtKeySets by a real kube-apiserver: what the CRD accepts, what it refuses, and that
every refusal carries its human-readable message.

Each invalid case only uses fields the schema declares (checked before it is sent), so the
apiserver cannot be "accepting" it by pruning an unknown field: a 422 here comes from the CRD's
validation, and removing that validation makes these tests fail. Valid objects are sent with
fieldValidation=Strict, so a typo in a field name (here or in examples/) fails too.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from contract import admissible_design_spec

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CRD_PATH = ROOT / "crds" / "keyturn.dev_jwtkeysets.yaml"
GROUP, VERSION, PLURAL, KIND = "keyturn.dev", "v1alpha1", "jwtkeysets", "JwtKeySet"

DURATION = "must be a duration like 90d, 36h, 1d12h, 15m or 30s"
UNSUPPORTED = "Unsupported value"
REQUIRED = "Required value"

DESIGN_SPEC = admissible_design_spec()

PROMETHEUS: dict[str, Any] = {"address": "http://prometheus:9090", "query": "vector(1)"}


# ------------------------------------------------------------------------------------------ helpers
def _schema() -> dict[str, Any]:
    crd = yaml.safe_load(CRD_PATH.read_text())
    schema: dict[str, Any] = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


SCHEMA = _schema()


def assert_declared(value: Any, schema: dict[str, Any], path: str = "") -> None:
    """Every field of value is declared by schema (so the apiserver would not prune it)."""
    if isinstance(value, dict):
        props = schema.get("properties")
        assert props is not None, f"{path or '<root>'} is not an object in the schema"
        for k, v in value.items():
            assert k in props, f"{path}.{k} is not declared in the CRD schema"
            assert_declared(v, props[k], f"{path}.{k}")
    elif isinstance(value, list):
        assert "items" in schema, f"{path} is not a list in the schema"
        for i, v in enumerate(value):
            assert_declared(v, schema["items"], f"{path}[{i}]")


def keyset(name: str, spec: dict[str, Any] | None) -> dict[str, Any]:
    obj: dict[str, Any] = {"apiVersion": f"{GROUP}/{VERSION}", "kind": KIND, "metadata": {"name": name}}
    if spec is not None:
        obj["spec"] = copy.deepcopy(spec)
    return obj


def objects(api: Any) -> Any:
    return client.CustomObjectsApi(api)


def create(api: Any, namespace: str, obj: dict[str, Any]) -> dict[str, Any]:
    created: dict[str, Any] = objects(api).create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, obj, field_validation="Strict"
    )
    return created


def get(api: Any, namespace: str, name: str) -> dict[str, Any]:
    got: dict[str, Any] = objects(api).get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
    return got


def replace(api: Any, namespace: str, obj: dict[str, Any]) -> dict[str, Any]:
    replaced: dict[str, Any] = objects(api).replace_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, obj["metadata"]["name"], obj
    )
    return replaced


def patch_status(api: Any, namespace: str, name: str, status: dict[str, Any]) -> dict[str, Any]:
    patched: dict[str, Any] = objects(api).patch_namespaced_custom_object_status(
        GROUP, VERSION, namespace, PLURAL, name, {"status": status}
    )
    return patched


def message_of(exc: ApiException) -> str:
    try:
        return str(json.loads(exc.body or "")["message"])
    except (TypeError, ValueError, KeyError):
        return str(exc.body)


def rejected(call: Any, *args: Any) -> str:
    """Runs call(*args), which must fail with 422 Unprocessable Entity; returns the message."""
    with pytest.raises(ApiException) as info:
        call(*args)
    msg = message_of(info.value)
    assert info.value.status == 422, f"expected 422 Invalid, got {info.value.status}: {msg}"
    return msg


def create_rejected(api: Any, namespace: str, obj: dict[str, Any]) -> str:
    assert_declared({k: v for k, v in obj.items() if k in ("spec", "status")}, SCHEMA)
    return rejected(objects(api).create_namespaced_custom_object, GROUP, VERSION, namespace, PLURAL, obj)


def at(path: str, value: Any, base: dict[str, Any] | None = None) -> dict[str, Any]:
    """A spec with value at the dotted path, on top of base."""
    spec = copy.deepcopy(base or {})
    node = spec
    *parents, leaf = path.split(".")
    for p in parents:
        node = node.setdefault(p, {})
    node[leaf] = value
    return spec


def analysis(**fields: Any) -> dict[str, Any]:
    return {"analysis": {"prometheus": dict(PROMETHEUS), **fields}}


# ------------------------------------------------------------------------------------ invalid specs
DURATION_FIELDS = [
    "rotation.interval",
    "rotation.publishAhead",
    "rotation.gracePeriod",
    "rotation.retention",
    "tokens.maxLifetime",
    "tokens.verifierCacheTTL",
    "rollout.timeout",
    "rollout.pauseBetween",
    "analysis.initialDelay",
    "analysis.interval",
]
BAD_DURATIONS = ["90days", "", "1h30d", "-1h", "1.5d", "24", "5 m", "10min", "s", "1M", "P1D", "30sec"]

_duration_cases = [
    pytest.param(
        at(field, bad, analysis() if field.startswith("analysis.") else None),
        DURATION,
        id=f"duration-{field}-{bad or 'empty'}",
    )
    for i, field in enumerate(DURATION_FIELDS)
    for bad in (BAD_DURATIONS[i], BAD_DURATIONS[(i + 5) % len(BAD_DURATIONS)])
] + [
    pytest.param({"rotation": {"interval": bad}}, DURATION, id=f"duration-interval-{bad or 'empty'}")
    for bad in BAD_DURATIONS
]

INVALID: list[Any] = [
    # algorithm
    pytest.param({"algorithm": "none"}, f'{UNSUPPORTED}: "none"', id="algorithm-none"),
    pytest.param({"algorithm": "rs256"}, UNSUPPORTED, id="algorithm-lowercase"),
    pytest.param({"algorithm": "ES256K"}, UNSUPPORTED, id="algorithm-unknown"),
    # keySize
    pytest.param({"keySize": 1024}, f"{UNSUPPORTED}: 1024", id="keySize-1024"),
    pytest.param({"keySize": 8192}, UNSUPPORTED, id="keySize-8192"),
    pytest.param(
        {"algorithm": "ES256", "keySize": 2048},
        "keySize applies only to RSA algorithms (RS*/PS*)",
        id="keySize-with-ES256",
    ),
    pytest.param(
        {"algorithm": "EdDSA", "keySize": 4096},
        "keySize applies only to RSA algorithms (RS*/PS*)",
        id="keySize-with-EdDSA",
    ),
    pytest.param(
        {"algorithm": "HS256", "keySize": 2048},
        "keySize applies only to RSA algorithms (RS*/PS*)",
        id="keySize-with-HS256",
    ),
    # secretLength
    pytest.param(
        {"secretLength": 64}, "secretLength applies only to HMAC algorithms (HS*)", id="secretLength-RS256"
    ),
    pytest.param(
        {"algorithm": "ES384", "secretLength": 64},
        "secretLength applies only to HMAC algorithms (HS*)",
        id="secretLength-ES384",
    ),
    pytest.param(
        {"algorithm": "HS512", "secretLength": 48},
        "secretLength must be at least 64 bytes for HS512",
        id="secretLength-HS512-48",
    ),
    pytest.param(
        {"algorithm": "HS384", "secretLength": 40},
        "secretLength must be at least 48 bytes for HS384",
        id="secretLength-HS384-40",
    ),
    pytest.param(
        {"algorithm": "HS256", "secretLength": 16},
        "secretLength must be at least 32 bytes for HS256",
        id="secretLength-HS256-16",
    ),
    pytest.param(
        {"algorithm": "HS256", "secretLength": 2048},
        "should be less than or equal to 1024",
        id="secretLength-too-big",
    ),
    # kid
    pytest.param({"kid": {"strategy": "Random"}}, UNSUPPORTED, id="kid-strategy-unknown"),
    pytest.param(
        {"kid": {"strategy": "Template"}},
        "kid.template is required when kid.strategy is Template",
        id="kid-template-missing",
    ),
    pytest.param(
        {"kid": {"template": "{date}_v{n}"}},
        "kid.template is only used with kid.strategy: Template",
        id="kid-template-with-thumbprint",
    ),
    pytest.param(
        {"kid": {"strategy": "Template", "template": "{date}/v{n}"}},
        "kid.template may contain only letters, digits",
        id="kid-template-slash",
    ),
    pytest.param(
        {"kid": {"strategy": "Template", "template": "{year}-{n}"}},
        "kid.template may contain only letters, digits",
        id="kid-template-unknown-placeholder",
    ),
    pytest.param(
        {"kid": {"strategy": "Template", "template": "{name}-prod"}},
        "kid.template must contain {n}",
        id="kid-template-constant",
    ),
    pytest.param(
        {"kid": {"strategy": "Template", "template": "{date}{time}"}},
        "kid.template must contain {n}",
        id="kid-template-without-n",
    ),
    pytest.param(
        {"kid": {"strategy": "Template", "template": "v{n}" + "x" * 100}},
        "Too long",
        id="kid-template-too-long",
    ),
    # rotation
    *_duration_cases,
    pytest.param({"rotation": {"interval": "3000000d"}}, DURATION, id="interval-7-digits"),
    pytest.param({"rotation": {"publishAhead": "1000000h"}}, DURATION, id="publishAhead-7-digits"),
    pytest.param(analysis(interval="1d1234567s"), DURATION, id="analysis-interval-7-digits"),
    pytest.param(
        {"rotation": {"interval": "0d"}}, "rotation.interval must be greater than zero", id="interval-zero"
    ),
    pytest.param(
        {"rotation": {"interval": "0h0m0s"}},
        "rotation.interval must be greater than zero",
        id="interval-zero-composite",
    ),
    pytest.param(
        {"rollout": {"timeout": "0s"}}, "rollout.timeout must be greater than zero", id="rollout-timeout-zero"
    ),
    pytest.param(
        analysis(interval="0m"), "analysis.interval must be greater than zero", id="analysis-interval-zero"
    ),
    pytest.param(
        {"tokens": {"maxLifetime": "0s"}},
        "tokens.maxLifetime must be greater than zero",
        id="maxLifetime-zero",
    ),
    pytest.param(
        {"rotation": {"interval": "90d", "schedule": "0 2 1 */3 *"}},
        "set either rotation.interval or rotation.schedule, not both",
        id="interval-and-schedule",
    ),
    pytest.param(
        {"rotation": {"schedule": "0 2 * *"}},
        "rotation.schedule must be a cron expression of 5 space-separated fields",
        id="schedule-4-fields",
    ),
    pytest.param(
        {"rotation": {"schedule": "0 0 2 1 */3 *"}},
        "rotation.schedule must be a cron expression of 5 space-separated fields",
        id="schedule-6-fields",
    ),
    pytest.param(
        {"rotation": {"schedule": "@daily"}},
        "rotation.schedule must be a cron expression of 5 space-separated fields",
        id="schedule-macro",
    ),
    pytest.param(
        {"rotation": {"timeZone": "Europe Paris"}},
        "rotation.timeZone must be an IANA time zone name",
        id="timeZone-space",
    ),
    pytest.param(
        {"rotation": {"timeZone": "/Europe/Paris"}},
        "rotation.timeZone must be an IANA time zone name",
        id="timeZone-leading-slash",
    ),
    pytest.param(
        {"rotation": {"window": {"start": "24:00", "end": "04:00"}}},
        'rotation.window.start must be a time "HH:MM" between 00:00 and 23:59',
        id="window-start-24h",
    ),
    pytest.param(
        {"rotation": {"window": {"start": "02:00", "end": "4:00"}}},
        'rotation.window.end must be a time "HH:MM" between 00:00 and 23:59',
        id="window-end-one-digit",
    ),
    pytest.param(
        {"rotation": {"window": {"start": "02:00", "end": "02:00"}}},
        "rotation.window.start and rotation.window.end must differ",
        id="window-empty",
    ),
    pytest.param({"rotation": {"window": {"start": "02:00"}}}, REQUIRED, id="window-no-end"),
    # secret
    pytest.param(
        {"secret": {"name": "API_KEYS"}},
        "secret.name must be a valid Kubernetes object name",
        id="secret-name-uppercase",
    ),
    pytest.param(
        {"secret": {"name": "-keys"}},
        "secret.name must be a valid Kubernetes object name",
        id="secret-name-leading-dash",
    ),
    pytest.param({"secret": {"name": "k" * 254}}, "Too long", id="secret-name-too-long"),
    pytest.param({"secret": {"deletionPolicy": "Orphan"}}, UNSUPPORTED, id="deletionPolicy-unknown"),
    pytest.param(
        {"secret": {"items": [{"key": "A", "format": "kid"}, {"key": "A", "format": "pem"}]}},
        "Duplicate value",
        id="items-duplicate-key",
    ),
    pytest.param(
        {"secret": {"items": [{"key": "JWT KEY", "format": "pem"}]}},
        "secret.items[].key must be a valid Secret/ConfigMap data key",
        id="items-key-space",
    ),
    pytest.param(
        {"secret": {"items": [{"key": "key.k1.pem", "format": "public-pem"}]}},
        "secret.items[].key must not be of the form key.<kid>.pem or key.<kid>.secret",
        id="items-key-reserved",
    ),
    pytest.param(
        {"secret": {"items": [{"key": "K", "format": "der"}]}}, UNSUPPORTED, id="items-format-unknown"
    ),
    pytest.param(
        {"secret": {"items": [{"key": "K", "slot": "oldest", "format": "pem"}]}},
        UNSUPPORTED,
        id="items-slot-unknown",
    ),
    pytest.param({"secret": {"items": [{"key": "K"}]}}, REQUIRED, id="items-format-missing"),
    pytest.param({"secret": {"items": []}}, "secret.items must not be empty; omit it", id="items-empty"),
    pytest.param(
        {"secret": {"items": [{"key": "JWT_SECRET", "format": "raw"}]}},
        "format raw is for HMAC algorithms; use pem or jwk",
        id="items-raw-with-RS256",
    ),
    pytest.param(
        {"algorithm": "EdDSA", "secret": {"items": [{"key": "K", "slot": "next", "format": "raw"}]}},
        "format raw is for HMAC algorithms; use pem or jwk",
        id="items-raw-with-EdDSA",
    ),
    pytest.param(
        {"algorithm": "HS256", "secret": {"items": [{"key": "K", "format": "pem"}]}},
        "HMAC keys have no PEM form; use raw",
        id="items-pem-with-HS256",
    ),
    pytest.param(
        {"algorithm": "HS384", "secret": {"items": [{"key": "K", "format": "public-pem"}]}},
        "HMAC keys have no PEM form; use raw",
        id="items-public-pem-with-HS384",
    ),
    pytest.param(
        {"secret": {"items": [{"key": "keys.json", "slot": "current", "format": "jwks"}]}},
        "a jwks item holds every key of the Secret; do not set slot",
        id="items-jwks-with-slot",
    ),
    pytest.param(
        {
            "algorithm": "HS256",
            "secret": {"encryption": {"passphraseSecretRef": {"name": "pp", "key": "passphrase"}}},
        },
        "encryption applies to PEM private keys; HMAC secrets cannot be encrypted",
        id="encryption-with-HS256",
    ),
    pytest.param(
        {
            "secret": {
                "items": [{"key": "JWT_PRIVATE_JWK", "format": "jwk"}],
                "encryption": {"passphraseSecretRef": {"name": "pp", "key": "passphrase"}},
            }
        },
        "jwk/jwks items would expose the private key unencrypted; use pem",
        id="encryption-with-jwk-item",
    ),
    pytest.param(
        {
            "algorithm": "ES256",
            "secret": {
                "items": [
                    {"key": "JWT_PRIVATE_KEY", "format": "pem"},
                    {"key": "keys.json", "format": "jwks"},
                ],
                "encryption": {"passphraseSecretRef": {"name": "pp", "key": "passphrase"}},
            },
        },
        "jwk/jwks items would expose the private key unencrypted; use pem",
        id="encryption-with-jwks-item",
    ),
    pytest.param(
        {"secret": {"encryption": {"passphraseSecretRef": {"name": "pp"}}}},
        REQUIRED,
        id="encryption-ref-no-key",
    ),
    pytest.param({"secret": {"encryption": {}}}, REQUIRED, id="encryption-no-ref"),
    pytest.param(
        {"secret": {"encryption": {"passphraseSecretRef": {"name": "Pass Phrase", "key": "p"}}}},
        "passphraseSecretRef.name must be a valid Kubernetes object name",
        id="encryption-ref-bad-name",
    ),
    # jwks
    pytest.param(
        {"jwks": {"configMapName": "Api_Keys"}},
        "jwks.configMapName must be a valid Kubernetes object name",
        id="jwks-configMapName-bad",
    ),
    pytest.param(
        {"jwks": {"key": "jwks/json"}},
        "jwks.key must be a valid Secret/ConfigMap data key",
        id="jwks-key-bad",
    ),
    # rollout
    pytest.param({"rollout": {"onFailure": "Ignore"}}, UNSUPPORTED, id="rollout-onFailure-unknown"),
    # analysis
    pytest.param({"analysis": {"count": 5}}, REQUIRED, id="analysis-no-prometheus"),
    pytest.param(
        {"analysis": {"prometheus": {"address": "prometheus:9090", "query": "vector(1)"}}},
        "analysis.prometheus.address must be an http:// or https:// URL",
        id="prometheus-address-no-scheme",
    ),
    *[
        pytest.param(
            {"analysis": {"prometheus": {"address": address, "query": "vector(1)"}}},
            "analysis.prometheus.address must be an http:// or https:// URL without user info, query or "
            "fragment",
            id=f"prometheus-address-{name}",
        )
        for name, address in [
            ("userinfo", "http://user:password@prometheus:9090"),
            ("at-host", "http://prometheus@169.254.169.254"),
            ("query", "http://prometheus:9090/api?x=1"),
            ("fragment", "http://prometheus:9090#x"),
        ]
    ],
    pytest.param(
        {"analysis": {"prometheus": {"address": "http://prom:9090", "query": "   "}}},
        "analysis.prometheus.query must not be empty",
        id="prometheus-query-blank",
    ),
    pytest.param(
        analysis(successThreshold="95%"),
        "analysis.successThreshold must be a decimal number between 0 and 1",
        id="successThreshold-percent",
    ),
    pytest.param(
        analysis(successThreshold="1.5"),
        "analysis.successThreshold must be a decimal number between 0 and 1",
        id="successThreshold-above-1",
    ),
    pytest.param(analysis(successThreshold=0.95), "must be of type string", id="successThreshold-number"),
    pytest.param(analysis(count=0), "should be greater than or equal to 1", id="analysis-count-0"),
    pytest.param(analysis(count=101), "should be less than or equal to 100", id="analysis-count-101"),
    pytest.param(
        analysis(failureLimit=-1), "should be greater than or equal to 0", id="failureLimit-negative"
    ),
    pytest.param(
        analysis(count=10, failureLimit=10),
        "analysis.failureLimit must be less than analysis.count",
        id="failureLimit-equals-count",
    ),
    pytest.param(
        analysis(count=1),
        "analysis.failureLimit must be less than analysis.count",
        id="count-1-with-default-failureLimit",
    ),
    pytest.param(analysis(onNoData="Skip"), UNSUPPORTED, id="onNoData-unknown"),
    pytest.param(analysis(onFailure="Ignore"), UNSUPPORTED, id="analysis-onFailure-unknown"),
    # propagation
    pytest.param(
        {"propagation": {"threshold": "1"}},
        "propagation.prometheus.address is required when analysis is not set",
        id="propagation-without-an-address",
    ),
    pytest.param(
        {"propagation": {"prometheus": {"address": "http://user:pw@prometheus:9090"}}},
        "propagation.prometheus.address must be an http:// or https:// URL",
        id="propagation-address-userinfo",
    ),
    pytest.param(
        {"propagation": {"prometheus": {"address": "http://p:9090"}, "query": "count(up)"}},
        "propagation.query must name the kid",
        id="propagation-query-without-kid",
    ),
    pytest.param(
        {"propagation": {"prometheus": {"address": "http://p:9090"}, "threshold": "1.5"}},
        "propagation.threshold must be a decimal number between 0 and 1",
        id="propagation-threshold-above-1",
    ),
    pytest.param(
        {"propagation": {"prometheus": {"address": "http://p:9090"}, "interval": "0s"}},
        "propagation.interval must be greater than zero",
        id="propagation-interval-0",
    ),
    pytest.param(
        {"propagation": {"prometheus": {"address": "http://p:9090"}, "timeout": "1 h"}},
        "must be a duration like 90d",
        id="propagation-timeout-not-a-duration",
    ),
    # revokedKids
    pytest.param(
        {"revokedKids": [{"kid": "a"}, {"kid": "a", "reason": "again"}]},
        "Duplicate value",
        id="revokedKids-duplicate",
    ),
    pytest.param(
        {"revokedKids": [{"kid": "bad kid!"}]}, "revokedKids[].kid must be a kid", id="revokedKids-bad-kid"
    ),
    pytest.param({"revokedKids": [{"reason": "key_compromise"}]}, REQUIRED, id="revokedKids-no-kid"),
    pytest.param(
        {"revokedKids": [{"kid": "a", "reason": "r" * 129}]}, "Too long", id="revokedKids-long-reason"
    ),
    # suspend
    pytest.param({"suspend": "yes"}, "must be of type boolean", id="suspend-string"),
    # jwks.issuer
    *(
        pytest.param({"jwks": {"issuer": issuer}}, "jwks.issuer must be an https URL", id=f"issuer-{why}")
        for why, issuer in (
            ("http", "http://auth.example.com"),
            ("userinfo", "https://user@auth.example.com"),
            ("query", "https://auth.example.com/?tenant=a"),
            ("fragment", "https://auth.example.com/#a"),
            ("percent", "https://auth.example.com/%2e%2e"),
            ("double-slash", "https://auth.example.com//a"),
            ("no-host", "https:///a"),
        )
    ),
    pytest.param(
        {"jwks": {"issuer": "https://auth.example.com/a/../b"}},
        "jwks.issuer must not contain '.' or '..' path segments",
        id="issuer-dot-segments",
    ),
    pytest.param(
        {"jwks": {"issuer": "https://a.example.com/" + "a" * 240}}, "Too long", id="issuer-too-long"
    ),
    pytest.param(
        {"algorithm": "HS256", "jwks": {"issuer": "https://auth.example.com"}},
        "jwks.issuer is not for HMAC (HS*) keysets",
        id="issuer-on-hmac",
    ),
]


@pytest.mark.parametrize(("spec", "expected"), INVALID)
def test_invalid_spec_is_rejected_with_its_message(
    api: Any, namespace: str, spec: dict[str, Any], expected: str
) -> None:
    msg = create_rejected(api, namespace, keyset("bad", spec))
    assert expected in msg


def test_spec_is_required(api: Any, namespace: str) -> None:
    msg = create_rejected(api, namespace, keyset("no-spec", None))
    assert "spec: Required value" in msg


def test_a_name_is_at_most_a_label_value_long(api: Any, namespace: str) -> None:
    """The keyset's name labels its Secret and ConfigMap (keyturn.dev/keyset): 63 characters at most."""
    msg = create_rejected(api, namespace, keyset("k" * 64, {"jwks": {"configMapName": "short-jwks"}}))
    assert "metadata.name must be at most 63 characters" in msg
    create(api, namespace, keyset("k" * 63, {}))


def test_enough_invalid_cases() -> None:
    assert len(INVALID) >= 20


# -------------------------------------------------------------------------------------- valid specs
ALGORITHM_SPECS: list[Any] = [
    pytest.param({"algorithm": "RS256", "keySize": 2048}, id="RS256"),
    pytest.param({"algorithm": "RS384", "keySize": 3072}, id="RS384"),
    pytest.param({"algorithm": "RS512", "keySize": 4096}, id="RS512"),
    pytest.param(
        {
            "algorithm": "PS256",
            "secret": {
                "items": [
                    {"key": "JWT_PRIVATE_KEY", "format": "pem"},
                    {"key": "JWT_PUBLIC_KEY", "format": "public-pem"},
                    {"key": "JWT_PREVIOUS_PUBLIC_KEY", "slot": "previous", "format": "public-pem"},
                ]
            },
        },
        id="PS256",
    ),
    pytest.param({"algorithm": "PS384", "keySize": 3072}, id="PS384"),
    pytest.param(
        {
            "algorithm": "PS512",
            "keySize": 4096,
            "secret": {
                "items": [{"key": "key.pem", "format": "pem"}],
                "encryption": {"passphraseSecretRef": {"name": "pp", "key": "passphrase"}},
            },
        },
        id="PS512-encrypted",
    ),
    pytest.param(
        {
            "algorithm": "ES256",
            "secret": {
                "items": [{"key": "jwk.json", "format": "jwk"}, {"key": "keys.json", "format": "jwks"}]
            },
        },
        id="ES256",
    ),
    pytest.param({"algorithm": "ES384"}, id="ES384"),
    pytest.param({"algorithm": "ES512", "kid": {"strategy": "Thumbprint"}}, id="ES512"),
    pytest.param(
        {
            "algorithm": "EdDSA",
            "kid": {"strategy": "Template", "template": "{namespace}.{name}.{date}{time}-{n}"},
        },
        id="EdDSA",
    ),
    pytest.param(
        {
            "algorithm": "HS256",
            "secretLength": 32,
            "secret": {
                "items": [
                    {"key": "JWT_SECRET_CURRENT", "slot": "current", "format": "raw"},
                    {"key": "JWT_SECRET_NEW", "slot": "next", "format": "raw"},
                    {"key": "JWT_SECRET_PREVIOUS", "slot": "previous", "format": "raw"},
                ]
            },
            "tokens": {"maxLifetime": "24h"},
        },
        id="HS256",
    ),
    pytest.param(
        {"algorithm": "HS384", "secretLength": 48, "secret": {"items": [{"key": "jwk", "format": "jwk"}]}},
        id="HS384",
    ),
    pytest.param({"algorithm": "HS512", "secretLength": 1024}, id="HS512"),
]

VALID: list[Any] = [
    pytest.param({}, id="empty-spec"),
    pytest.param(DESIGN_SPEC, id="design-example"),
    pytest.param(at("rotation.schedule", "", DESIGN_SPEC), id="design-example-verbatim-with-empty-schedule"),
    *ALGORITHM_SPECS,
    pytest.param(
        {
            "rotation": {
                "schedule": "0 2 1 */3 *",
                "timeZone": "America/Argentina/Buenos_Aires",
                "window": {"start": "22:00", "end": "02:00"},
                "publishAhead": "0s",
                "gracePeriod": "7d",
            }
        },
        id="schedule-window-over-midnight",
    ),
    pytest.param(
        {"rotation": {"schedule": "30 3 * * MON-FRI", "timeZone": "Etc/GMT+5"}}, id="schedule-names"
    ),
    pytest.param(
        {"rotation": {"interval": "1d12h30m15s", "retention": "0s", "gracePeriod": "0s"}}, id="durations"
    ),
    # Admitted (6 digits per unit), then refused by the operator as longer than 100 years.
    pytest.param({"rotation": {"interval": "999999d", "publishAhead": "999999h"}}, id="durations-6-digits"),
    pytest.param(
        analysis(successThreshold="1", count=1, failureLimit=0, onNoData="Fail", onFailure="Pause"),
        id="analysis-strict",
    ),
    pytest.param(analysis(successThreshold="0", count=100, failureLimit=99), id="analysis-lenient"),
    pytest.param(
        {"analysis": {"prometheus": {"address": "https://thanos.example.com/api/prom", "query": "up"}}},
        id="analysis-https",
    ),
    pytest.param({"propagation": {}, "analysis": {"prometheus": PROMETHEUS}}, id="propagation-defaults"),
    pytest.param(
        {
            "algorithm": "HS256",
            "propagation": {
                "prometheus": {"address": "http://prometheus.monitoring:9090"},
                "query": "count(x{kid='$kid'}) / count(up)",
                "threshold": "0",
                "interval": "1s",
                "timeout": "36525d",
            },
        },
        id="propagation-hmac-all-fields",
    ),
    pytest.param(
        {
            "revokedKids": [
                {"kid": "a" * 128, "reason": "key_compromise"},
                {"kid": "NzbLsXh8uDCcd-6MNwXF4W_7noWXF"},
            ],
            "suspend": True,
        },
        id="revokedKids-suspend",
    ),
    pytest.param({"jwks": {"issuer": "https://auth.example.com"}}, id="issuer-host"),
    pytest.param(
        {"jwks": {"issuer": "https://Auth.Example.com:8443/tenants/a_1.v2/"}}, id="issuer-port-path"
    ),
]


@pytest.mark.parametrize("spec", VALID)
def test_valid_spec_is_accepted(api: Any, namespace: str, spec: dict[str, Any]) -> None:
    created = create(api, namespace, keyset("good", spec))
    expected = copy.deepcopy(spec)
    expected.setdefault("algorithm", "RS256")
    if "kid" in expected:
        expected["kid"].setdefault("strategy", "Thumbprint")
    assert created["spec"] == expected  # nothing pruned, only the two schema defaults added


def test_only_algorithm_and_kid_strategy_are_defaulted(api: Any, namespace: str) -> None:
    create(api, namespace, keyset("minimal", {}))
    assert get(api, namespace, "minimal")["spec"] == {"algorithm": "RS256"}
    create(
        api,
        namespace,
        keyset("with-kid", {"kid": {}, "rotation": {}, "analysis": {"prometheus": PROMETHEUS}}),
    )
    assert get(api, namespace, "with-kid")["spec"] == {
        "algorithm": "RS256",
        "kid": {"strategy": "Thumbprint"},
        "rotation": {},
        "analysis": {"prometheus": PROMETHEUS},
    }


# ----------------------------------------------------------------------------------------- examples
def _example_documents() -> list[Any]:
    params: list[Any] = []
    for path in sorted((ROOT / "examples").rglob("*.y*ml")):
        rel = path.relative_to(ROOT)
        try:
            docs = list(yaml.safe_load_all(path.read_text()))
        except yaml.YAMLError as exc:
            params.append(pytest.param(rel, None, str(exc), id=str(rel)))
            continue
        for i, doc in enumerate(docs):
            if isinstance(doc, dict) and doc.get("kind") == KIND:
                params.append(pytest.param(rel, doc, "", id=f"{rel}#{i}"))
    return params


EXAMPLES = _example_documents()


def test_examples_hold_at_least_four_jwtkeysets() -> None:
    assert len(EXAMPLES) >= 4, f"expected >= 4 JwtKeySet documents under examples/, found {len(EXAMPLES)}"


@pytest.mark.parametrize(("path", "doc", "error"), EXAMPLES)
def test_example_is_accepted(
    api: Any, namespace: str, path: Path, doc: dict[str, Any] | None, error: str
) -> None:
    assert doc is not None, f"{path} is not valid YAML: {error}"
    assert doc["apiVersion"] == f"{GROUP}/{VERSION}", path
    obj = copy.deepcopy(doc)
    obj["metadata"].pop("namespace", None)
    create(api, namespace, obj)


# ------------------------------------------------------------------------------------------ updates
def test_secret_name_cannot_change(api: Any, namespace: str) -> None:
    create(api, namespace, keyset("ks", {"secret": {"name": "keys-a"}}))
    obj = get(api, namespace, "ks")
    obj["spec"]["secret"]["name"] = "keys-b"
    msg = rejected(replace, api, namespace, obj)
    assert (
        "secret.name cannot change: the Secret holds every key of this keyset; create a new JwtKeySet" in msg
    )
    # Removing it would switch to the default, metadata.name: a change as well.
    del obj["spec"]["secret"]["name"]
    assert "secret.name cannot change" in rejected(replace, api, namespace, obj)
    # Other secret fields may change.
    obj["spec"]["secret"] = {"name": "keys-a", "deletionPolicy": "Delete"}
    replace(api, namespace, obj)


def test_defaulted_secret_name_cannot_change(api: Any, namespace: str) -> None:
    create(api, namespace, keyset("ks", {}))
    obj = get(api, namespace, "ks")
    obj["spec"]["secret"] = {"name": "other"}
    assert "secret.name cannot change" in rejected(replace, api, namespace, obj)
    # Spelling out the default is no change, and neither is dropping it again.
    obj["spec"]["secret"] = {"name": "ks"}
    obj = replace(api, namespace, obj)
    del obj["spec"]["secret"]
    replace(api, namespace, obj)


@pytest.mark.parametrize(
    ("before", "after"),
    [("RS256", "HS256"), ("HS512", "ES256"), ("EdDSA", "HS384"), ("HS256", "PS256")],
)
def test_switching_between_hmac_and_asymmetric_is_rejected(
    api: Any, namespace: str, before: str, after: str
) -> None:
    create(api, namespace, keyset("ks", {"algorithm": before}))
    obj = get(api, namespace, "ks")
    obj["spec"]["algorithm"] = after
    msg = rejected(replace, api, namespace, obj)
    assert "cannot switch between HMAC (HS*) and asymmetric algorithms; create a new JwtKeySet" in msg


@pytest.mark.parametrize(
    ("before", "after"),
    [("RS256", "ES256"), ("ES256", "EdDSA"), ("PS512", "RS256"), ("HS256", "HS512")],
)
def test_switching_within_a_family_is_accepted(api: Any, namespace: str, before: str, after: str) -> None:
    create(api, namespace, keyset("ks", {"algorithm": before}))
    obj = get(api, namespace, "ks")
    obj["spec"]["algorithm"] = after
    assert replace(api, namespace, obj)["spec"]["algorithm"] == after


def test_update_is_validated_like_create(api: Any, namespace: str) -> None:
    create(api, namespace, keyset("ks", {"algorithm": "HS256"}))
    obj = get(api, namespace, "ks")
    obj["spec"]["secretLength"] = 32
    obj = replace(api, namespace, obj)
    obj["spec"]["algorithm"] = "HS512"
    assert "secretLength must be at least 64 bytes for HS512" in rejected(replace, api, namespace, obj)


# ------------------------------------------------------------------------------------------- status
def test_status_is_a_subresource(api: Any, namespace: str) -> None:
    obj = keyset("ks", {})
    obj["status"] = {"phase": "Ready", "currentKid": "x"}
    create(api, namespace, obj)
    assert "status" not in get(api, namespace, "ks")
    patched = patch_status(api, namespace, "ks", {"phase": "Ready"})
    assert patched["status"] == {"phase": "Ready"}


def test_emergency_without_request_id_is_rejected(api: Any, namespace: str) -> None:
    create(api, namespace, keyset("ks", {}))
    msg = rejected(patch_status, api, namespace, "ks", {"emergency": {"reason": "key_compromise"}})
    assert "status.emergency.requestId is required" in msg


@pytest.mark.parametrize(
    ("emergency", "expected"),
    [
        ({"requestId": "inc 42"}, "status.emergency.requestId must be 1 to 128 letters"),
        ({"requestId": ""}, "status.emergency.requestId must be 1 to 128 letters"),
        (
            {"requestId": "inc-42", "revokeKids": ["k1"], "revokeAll": True},
            "set either status.emergency.revokeKids or status.emergency.revokeAll, not both",
        ),
        ({"requestId": "inc-42", "revokeKids": ["k 1"]}, "status.emergency.revokeKids[] must be a kid"),
        ({"requestId": "inc-42", "revokeKids": ["k1", "k1"]}, "Duplicate value"),
        ({"requestId": "inc-42", "revokeAll": "yes"}, "must be of type boolean"),
        ({"requestId": "inc-42", "handledAt": "yesterday"}, "handledAt in body must be of type date-time"),
    ],
    ids=["space", "empty", "kids-and-all", "bad-kid", "duplicate-kid", "revokeAll-string", "bad-handledAt"],
)
def test_invalid_emergency_is_rejected(
    api: Any, namespace: str, emergency: dict[str, Any], expected: str
) -> None:
    create(api, namespace, keyset("ks", {}))
    assert_declared({"status": {"emergency": emergency}}, SCHEMA)
    assert expected in rejected(patch_status, api, namespace, "ks", {"emergency": emergency})


def test_emergency_with_request_id_is_accepted(api: Any, namespace: str) -> None:
    create(api, namespace, keyset("ks", {}))
    emergency = {"requestId": "inc-2026-042:a.b_c", "reason": "key_compromise", "revokeKids": ["k1", "k2"]}
    assert patch_status(api, namespace, "ks", {"emergency": emergency})["status"]["emergency"] == emergency
    # Keyturn's acknowledgement of the same request.
    ack = {"handledAt": "2026-01-01T00:00:00Z", "result": "Revoked", "newKid": "k3", "message": "done"}
    assert patch_status(api, namespace, "ks", {"emergency": ack})["status"]["emergency"] == emergency | ack


def test_new_emergency_request_must_replace_the_previous_one(api: Any, namespace: str) -> None:
    """A merge patch of a new requestId would inherit the handled request's revokeKids, handledAt..."""
    create(api, namespace, keyset("ks", {}))
    first = {
        "requestId": "inc-1",
        "revokeKids": ["k1"],
        "handledAt": "2026-01-01T00:00:00Z",
        "result": "Revoked",
    }
    patch_status(api, namespace, "ks", {"emergency": first})
    msg = rejected(patch_status, api, namespace, "ks", {"emergency": {"requestId": "inc-2"}})
    assert "a new emergency request (new requestId) must replace status.emergency as a whole" in msg
    # Either clear it first...
    patch_status(api, namespace, "ks", {"emergency": None})
    second = {"requestId": "inc-2", "revokeAll": True}
    assert patch_status(api, namespace, "ks", {"emergency": second})["status"]["emergency"] == second
    patch_status(api, namespace, "ks", {"emergency": {"handledAt": "2026-01-02T00:00:00Z"}})
    # ... or replace it in one JSON patch.
    third = {"requestId": "inc-3", "reason": "key_compromise"}
    replaced = objects(api).patch_namespaced_custom_object_status(
        GROUP,
        VERSION,
        namespace,
        PLURAL,
        "ks",
        [{"op": "add", "path": "/status/emergency", "value": third}],
        _content_type="application/json-patch+json",
    )
    assert replaced["status"]["emergency"] == third


def test_documented_kubectl_emergency_patch(cluster: Any, namespace: str) -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(keyset("api-keys", {})))
    patch = '{"status":{"emergency":{"requestId":"inc-42","reason":"key_compromise"}}}'
    cluster.kubectl(
        "patch", "jwtkeyset", "api-keys", "-n", namespace, "--subresource=status", "--type=merge", "-p", patch
    )
    out = cluster.kubectl("get", "jwtks", "api-keys", "-n", namespace, "-o", "json").stdout
    assert json.loads(out)["status"]["emergency"] == {"requestId": "inc-42", "reason": "key_compromise"}
    bad = cluster.kubectl(
        "patch",
        "jwtkeyset",
        "api-keys",
        "-n",
        namespace,
        "--subresource=status",
        "--type=merge",
        "-p",
        '{"status":{"emergency":{"requestId":null,"reason":"key_compromise"}}}',
        check=False,
    )
    assert bad.returncode != 0
    assert "status.emergency.requestId is required" in bad.stderr


FULL_STATUS: dict[str, Any] = {
    "observedGeneration": 3,
    "conditions": [
        {
            "type": "Ready",
            "status": "True",
            "reason": "KeyActive",
            "message": "key k2 signs",
            "lastTransitionTime": "2026-01-01T02:00:00Z",
            "observedGeneration": 3,
        },
        {
            "type": "Reconciling",
            "status": "False",
            "reason": "Idle",
            "message": "",
            "lastTransitionTime": "2026-01-01T02:00:00Z",
        },
    ],
    "phase": "Ready",
    "currentKid": "k2",
    "nextKid": "k3",
    "nextRotationAt": "2026-04-01T02:00:00Z",
    "lastRotationAt": "2026-01-01T02:00:00Z",
    "lastHandledRotate": "token-1",
    "lastHandledRollback": "token-0",
    "keys": [
        {
            "kid": "k3",
            "state": "next",
            "algorithm": "RS256",
            "createdAt": "2026-01-01T02:00:01Z",
            "publishedAt": "2026-01-01T02:00:01Z",
        },
        {
            "kid": "k2",
            "state": "current",
            "algorithm": "RS256",
            "createdAt": "2025-12-31T01:00:00Z",
            "publishedAt": "2025-12-31T01:00:00Z",
            "activatedAt": "2026-01-01T02:00:00Z",
        },
        {
            "kid": "k1",
            "state": "previous",
            "algorithm": "RS256",
            "createdAt": "2025-10-01T01:00:00Z",
            "activatedAt": "2025-10-01T02:00:00Z",
            "demotedAt": "2026-01-01T02:00:00Z",
            "removeFromJwksAt": "2026-01-31T02:00:00Z",
            "purgeAt": "2026-07-30T02:00:00Z",
        },
        {
            "kid": "k0",
            "state": "revoked",
            "algorithm": "RS256",
            "createdAt": "2025-07-01T01:00:00Z",
            "revokedAt": "2025-08-01T00:00:00.123456+00:00",
            "reason": "key_compromise",
        },
    ],
    "rollout": {
        "revision": "abc123",
        "targets": [
            {"name": "api", "role": "signer", "state": "Healthy", "message": ""},
            {"name": "gateway", "role": "verifier", "state": "Healthy"},
        ],
    },
    "analysis": {
        "phase": "Successful",
        "successRate": "0.998",
        "measurements": [{"at": "2026-01-01T02:01:00Z", "value": "0.998", "result": "Successful"}],
    },
    "history": [
        {
            "at": "2026-01-01T02:00:00Z",
            "operation": "Activate",
            "kids": ["k2"],
            "trigger": "Schedule",
            "reason": "IntervalElapsed",
            "result": "Succeeded",
        },
    ],
    "emergency": {
        "requestId": "inc-1",
        "reason": "key_compromise",
        "revokeKids": ["k0"],
        "revokeAll": False,
        "handledAt": "2025-08-01T00:00:01Z",
        "result": "Revoked",
        "newKid": "k1",
        "message": "k0 revoked; k1 signs",
    },
}


def test_full_operator_status_is_accepted_and_printed(api: Any, cluster: Any, namespace: str) -> None:
    create(api, namespace, keyset("api-keys", {"algorithm": "ES256"}))
    assert_declared({"status": FULL_STATUS}, SCHEMA)
    patched = objects(api).patch_namespaced_custom_object_status(
        GROUP, VERSION, namespace, PLURAL, "api-keys", {"status": FULL_STATUS}, field_validation="Strict"
    )
    assert patched["status"]["keys"] == FULL_STATUS["keys"]
    out = cluster.kubectl("get", "jwtks", "-n", namespace).stdout
    header, row = out.splitlines()[:2]
    assert header.split() == ["NAME", "ALGORITHM", "CURRENT", "KID", "READY", "NEXT", "ROTATION", "AGE"]
    assert row.split()[:5] == ["api-keys", "ES256", "k2", "True", "2026-04-01T02:00:00Z"]
    assert "api-keys" in cluster.kubectl("get", "keyturn", "-n", namespace).stdout  # category


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ({"phase": "Done"}, UNSUPPORTED),
        ({"keys": [{"kid": "k1", "state": "compromised"}]}, UNSUPPORTED),
        ({"keys": [{"kid": "k1", "state": "current"}, {"kid": "k1", "state": "next"}]}, "Duplicate value"),
        ({"nextRotationAt": "next tuesday"}, "must be of type date-time"),
        (
            {
                "conditions": [
                    {
                        "type": "Ready",
                        "status": "Maybe",
                        "reason": "R",
                        "message": "",
                        "lastTransitionTime": "2026-01-01T00:00:00Z",
                    }
                ]
            },
            UNSUPPORTED,
        ),
        ({"history": [{"operation": "Activate"}] * 21}, "must have at most 20 items"),
        ({"rollout": {"targets": [{"name": "api", "role": "writer"}]}}, UNSUPPORTED),
    ],
    ids=["phase", "key-state", "duplicate-kid", "date-time", "condition-status", "history-21", "target-role"],
)
def test_invalid_operator_status_is_rejected(
    api: Any, namespace: str, status: dict[str, Any], expected: str
) -> None:
    create(api, namespace, keyset("ks", {}))
    assert_declared({"status": status}, SCHEMA)
    assert expected in rejected(patch_status, api, namespace, "ks", status)
