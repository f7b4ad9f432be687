"""keyturn.client: what an application needs to live with keys Keyturn rotates.

- `JwksVerifier` verifies RS*/PS*/ES*/EdDSA tokens against the `<keyset>-jwks` ConfigMap (a
  mounted file, reloaded when the kubelet swaps it) or a JWKS URL (cached, refetched on an
  unknown kid);
- `HmacVerifier` verifies HS* tokens against the accept-list current/next/previous from the
  keyset's Secret (a mounted directory, reloaded; or environment variables);
- `Signer` signs with the current key and kid from the Secret, reloaded likewise;
- every verification is counted in `jwt_validations_total{result,reason,kid}`, the metric the
  JwtKeySet's analysis gate reads after each activation (see `keyturn.client.metrics`).

Only `cryptography`, PyJWT and prometheus-client are needed (plus keyturn.keys, which needs no more);
nothing here talks to Kubernetes. All objects are thread-safe. Key material never appears in a repr, a log
line, an exception or a metric. Guide: docs/client.md.
"""

from typing import TypeAlias

from keyturn.client.errors import KeySourceError, VerificationError
from keyturn.client.hmac_verifier import HmacVerifier
from keyturn.client.jwks_verifier import JwksVerifier
from keyturn.client.metrics import ClientMetrics, default_metrics
from keyturn.client.mounts import project
from keyturn.client.reasons import ValidationReason
from keyturn.client.signer import Signer

Verifier: TypeAlias = JwksVerifier | HmacVerifier

__all__ = [
    "ClientMetrics",
    "HmacVerifier",
    "JwksVerifier",
    "KeySourceError",
    "Signer",
    "ValidationReason",
    "VerificationError",
    "Verifier",
    "default_metrics",
    "project",
]
