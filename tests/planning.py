"""Test helpers for the pure planner: fake fresh keys and a one-call plan that satisfies them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from keyturn.domain import policies
from keyturn.domain.inputs import Inputs
from keyturn.domain.model import FreshKey, Ring
from keyturn.domain.planner import Observations, Plan, Requests, plan
from keyturn.domain.reasons import Violation
from keyturn.domain.spec import Spec
from keyturn.domain.spec_parser import parse_spec


def spec(**overrides: Any) -> Spec:
    raw: dict[str, Any] = {
        "rotation": {"interval": "1d", "publishAhead": "1h", "gracePeriod": "2d", "retention": "3d"},
    }
    raw.update(overrides)
    return parse_spec("keys", "ns", raw)


def fresh_keys(ring: Ring, count: int, algorithm: str = "RS256") -> list[FreshKey]:
    out = []
    for serial in range(ring.serial + 1, ring.serial + 1 + count):
        kid = f"k{serial}"
        jwk = (
            None if algorithm.startswith("HS") else {"kty": "RSA", "kid": kid, "n": f"n{serial}", "e": "AQAB"}
        )
        out.append(
            FreshKey(kid=kid, algorithm=algorithm, serial=serial, public_jwk=jwk, fingerprint=f"f{serial}")
        )
    return out


NO_REQUESTS = Requests()
ALL_READY = Observations()
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)  # the first pass of the planner's tables


def step(
    the_spec: Spec,
    ring: Ring,
    now: datetime,
    requests: Requests = NO_REQUESTS,
    observed: Observations = ALL_READY,
) -> Plan:
    """plan(), and again with as many fresh keys as it asked for, like the executor does."""
    first = plan(the_spec, ring, now, requests, observed)
    if not first.needs_fresh:
        return first
    second = plan(
        the_spec, ring, now, requests, observed, fresh_keys(ring, first.needs_fresh, the_spec.algorithm)
    )
    assert second.needs_fresh == 0, "the planner must count every fresh key it needs in one pass"
    return second


def initialized(the_spec: Spec | None = None) -> tuple[Spec, Ring]:
    """A new keyset after its first pass at T0 (no targets: its signer wave ends as it activates)."""
    the_spec = the_spec or spec()
    ring = step(the_spec, Ring(), T0).ring
    assert ring.current is not None and ring.current.signers_ready_at == T0
    return the_spec, ring


def inputs(the_spec: Spec, ring: Ring, **overrides: Any) -> Inputs:
    """The Inputs of a pass that read `the_spec` and `ring` and met no problem anywhere else."""
    fields: dict[str, Any] = {
        "namespace": the_spec.namespace,
        "name": the_spec.name,
        "generation": 1,
        "requests": NO_REQUESTS,
        "spec": the_spec,
        "spec_problem": None,
        "acting": the_spec,
        "secret": None,
        "ring": ring,
        "jwks": None,
    }
    fields.update(overrides)
    return Inputs(**fields)


def violations(the_spec: Spec, ring: Ring) -> list[Violation]:
    """What the checks of a pass would hold the keyset Stalled for."""
    return list(policies.evaluate(inputs(the_spec, ring)).violations)
