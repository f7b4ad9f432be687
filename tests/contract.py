"""The contract's own values (DESIGN.md section 1), shared by the tests that check against it."""

from __future__ import annotations

import copy
from typing import Any

# DESIGN.md section 1's example, verbatim apart from the placeholders ("...") made concrete.
DESIGN_SPEC: dict[str, Any] = {
    "algorithm": "RS256",
    "keySize": 2048,
    "secretLength": 64,
    "kid": {"strategy": "Thumbprint", "template": "{date}_v{n}_prod"},
    "rotation": {
        "interval": "90d",
        "schedule": "",
        "timeZone": "UTC",
        "window": {"start": "02:00", "end": "04:00"},
        "publishAhead": "1h",
        "gracePeriod": "30d",
        "retention": "180d",
    },
    "tokens": {"maxLifetime": "24h", "verifierCacheTTL": "5m"},
    "secret": {
        "name": "api-keys",
        "deletionPolicy": "Retain",
        "items": [
            {"key": "JWT_PRIVATE_KEY", "slot": "current", "format": "pem"},
            {"key": "JWT_PUBLIC_KEY", "slot": "current", "format": "public-pem"},
            {"key": "JWT_KID", "slot": "current", "format": "kid"},
            {"key": "keys.json", "format": "jwks"},
        ],
        "encryption": {"passphraseSecretRef": {"name": "jwt-key-passphrase", "key": "passphrase"}},
    },
    "jwks": {"configMapName": "api-keys-jwks", "key": "jwks.json", "issuer": "https://auth.example.com"},
    "propagation": {
        "prometheus": {"address": "http://prometheus.monitoring:9090"},
        "query": 'count(jwt_keys_loaded{kid="$kid"}) / count(count by (instance) (jwt_keys_loaded))',
        "threshold": "1",
        "interval": "15s",
        "timeout": "1h",
    },
    "rollout": {"timeout": "10m", "pauseBetween": "10s", "onFailure": "Rollback"},
    "analysis": {
        "prometheus": {
            "address": "http://prometheus.monitoring:9090",
            "query": 'sum(rate(jwt_validations_total{result="success"}[2m])) '
            "/ sum(rate(jwt_validations_total[2m]))",
        },
        "successThreshold": "0.95",
        "initialDelay": "1m",
        "interval": "30s",
        "count": 10,
        "failureLimit": 1,
        "onNoData": "Inconclusive",
        "onFailure": "Rollback",
    },
    "revokedKids": [{"kid": "k0", "reason": "key_compromise"}],
    "suspend": False,
}


def admissible_design_spec() -> dict[str, Any]:
    """The example as one valid object: interval only (interval and schedule exclude each other),
    Template kids (a template is only allowed with that strategy), and no jwks item (it would
    expose the encrypted keys); the example's other choices are kept."""
    spec = copy.deepcopy(DESIGN_SPEC)
    del spec["secretLength"]  # HMAC only
    spec["kid"]["strategy"] = "Template"
    del spec["rotation"]["schedule"]
    spec["secret"]["items"] = [i for i in spec["secret"]["items"] if i["format"] != "jwks"]
    spec["revokedKids"] = [{"kid": "20250101_v1_prod", "reason": "key_compromise"}]
    spec["suspend"] = False
    return spec


ALGORITHMS = [
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "ES512",
    "EdDSA",
    "HS256",
    "HS384",
    "HS512",
]
