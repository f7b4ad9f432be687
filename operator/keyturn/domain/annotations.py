"""Every annotation, label and finalizer name Keyturn reads or writes, in one place.

The names are API: people, GitOps tools and `kubectl keyturn` write the requests and the target
annotations, dashboards select on the labels, and docs/api.md and docs/rollouts.md list them all.
Keeping them here means a name is spelled once and every reader and writer agrees on it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Final

# ---------------------------------------------------------------------------- on a JwtKeySet
# Requests from people: the value is a fresh token; Keyturn echoes it in status.lastHandledRotate /
# status.lastHandledRollback once the request is handled.
ROTATE_ANNOTATION: Final = "keyturn.dev/rotate"
ROLLBACK_ANNOTATION: Final = "keyturn.dev/rollback"
# The finalizer Keyturn 0.1 (through kopf) put on every JwtKeySet: now only ever removed.
FINALIZER: Final = "keyturn.dev/finalizer"

# -------------------------------------------------------------------- on the Secret and ConfigMap
# The record of a keyset's keys, on its Secret: the source of truth (domain.record).
STATE_ANNOTATION: Final = "keyturn.dev/state"
# Which keyset a Secret or JWKS ConfigMap belongs to.
KEYSET_LABEL: Final = "keyturn.dev/keyset"
# On both too: Keyturn watches the Secrets and ConfigMaps that carry it.
MANAGED_BY: Final[Mapping[str, str]] = {"app.kubernetes.io/managed-by": "keyturn"}

# ------------------------------------------------------ on the JWKS ConfigMap, for `keyturn serve-jwks`
# What the JWKS server needs besides the document, so that it needs no planner and no JwtKeySet access.
# spec.jwks.issuer, when set (and not claimed by an older keyset).
ISSUER_ANNOTATION: Final = "keyturn.dev/issuer"
# RFC 3339 UTC instant at which the published document is next due to change (absent: nothing is
# scheduled); HTTP max-age never reaches past it.
NEXT_CHANGE_ANNOTATION: Final = "keyturn.dev/next-change"
# tokens.verifierCacheTTL in whole seconds, when set: HTTP max-age never exceeds it.
CACHE_TTL_ANNOTATION: Final = "keyturn.dev/cache-ttl"
JWKS_ANNOTATIONS: Final = (ISSUER_ANNOTATION, NEXT_CHANGE_ANNOTATION, CACHE_TTL_ANNOTATION)

# ---------------------------------- on a target workload (Deployment, StatefulSet, DaemonSet), by people
# The keyset(s) whose keys the workload loads (comma-separated).
KEYSET_ANNOTATION: Final = "keyturn.dev/keyset"
ROLE_ANNOTATION: Final = "keyturn.dev/role"  # verifier, signer or both (the default)
HEALTH_ANNOTATION: Final = "keyturn.dev/health-url"  # checked after each restart
ORDER_ANNOTATION: Final = "keyturn.dev/order"  # lower restarts first
RELOAD_ANNOTATION: Final = "keyturn.dev/reload"  # restart (the default) or none (it hot-reloads)

# ------------------------------------------------------- on a target workload, written by Keyturn
# On the pod template: the revision of the keys the Pods were started for (changing it restarts them).
REVISION_PREFIX: Final = "keyturn.dev/rev-"
# On the workload's metadata (no restart): when Keyturn stamped it, and which revision passed the gate.
STAMPED_PREFIX: Final = "keyturn.dev/stamped-"
VERIFIED_PREFIX: Final = "keyturn.dev/ready-"


def keysets_of(annotations: Mapping[str, str]) -> list[str]:
    """The keysets a Deployment's keyset annotation names."""
    return [k.strip() for k in annotations.get(KEYSET_ANNOTATION, "").split(",") if k.strip()]


def annotation_suffix(keyset: str) -> str:
    """Annotation names are at most 63 characters after the prefix; long keyset names are hashed."""
    room = 63 - len("stamped-")
    if len(keyset) <= room:
        return keyset
    digest = hashlib.sha256(keyset.encode()).hexdigest()[:10]
    return f"{keyset[: room - 11]}-{digest}"


def revision_annotation(keyset: str) -> str:
    return f"{REVISION_PREFIX}{annotation_suffix(keyset)}"


def stamped_annotation(keyset: str) -> str:
    return f"{STAMPED_PREFIX}{annotation_suffix(keyset)}"


def verified_annotation(keyset: str) -> str:
    return f"{VERIFIED_PREFIX}{annotation_suffix(keyset)}"
