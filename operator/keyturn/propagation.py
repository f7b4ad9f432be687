"""The propagation gate's questions to Prometheus: the share of consumers that accept a kid.

Each keyset's kids are asked about at most once per `spec.propagation.interval`: the last answers
and their times are kept in memory (a restart just asks again). The decisions are the pure
functions of domain.propagation; this module only asks. Total: a refused address, an unreachable
or slow Prometheus, an answer of any shape all become a Share without data, never an exception.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import aiohttp

from keyturn.adapters import prometheus
from keyturn.adapters.health import describe
from keyturn.domain.analysis import Sample
from keyturn.domain.egress import EgressPolicy
from keyturn.domain.propagation import QueryError, Share, render, share_of
from keyturn.domain.schedule import later
from keyturn.domain.spec import PropagationSpec, Spec

log = logging.getLogger("keyturn")

QUERY_TIMEOUT = 10.0  # seconds: like the analysis's queries
# An emergency never waits for the gate: its acknowledgement says "unknown" rather than wait longer.
EMERGENCY_TIMEOUT = 1.0
WHAT = "propagation.prometheus.address"

_egress = EgressPolicy()


def configure_egress(policy: EgressPolicy) -> None:
    """Set once at start (with rollout.configure_egress): the hosts the gate may ask."""
    global _egress  # noqa: PLW0603 - one process-wide setting, written before any keyset runs
    _egress = policy


@dataclass
class _Asked:
    """One keyset's last answers, valid for the address and query they were asked with."""

    address: str
    query: str
    answers: dict[str, Share] = field(default_factory=dict)


class PropagationGate:
    def __init__(self, egress: EgressPolicy | None = None) -> None:
        self._egress = egress
        self._asked: dict[tuple[str, str], _Asked] = {}

    @property
    def egress(self) -> EgressPolicy:
        return self._egress if self._egress is not None else _egress

    async def ask(
        self, spec: Spec, kids: Sequence[str], now: datetime, *, within: float = QUERY_TIMEOUT
    ) -> dict[str, Share]:
        """The share for each kid: the answer of less than one interval ago, else a new question.

        Only the kids asked about now are remembered, so a keyset holds a few answers at most.
        """
        gate = spec.propagation
        key = (spec.namespace, spec.name)
        if gate is None or not kids:
            self._asked.pop(key, None)
            return {}
        previous = self._asked.get(key)
        known = (
            previous.answers
            if previous
            and (previous.address, previous.query)
            == (
                gate.address,
                gate.query,
            )
            else {}
        )
        answers: dict[str, Share] = {}
        stale: list[str] = []
        for kid in dict.fromkeys(kids):
            share = known.get(kid)
            if share is not None and share.at <= now < later(share.at, gate.interval):
                answers[kid] = share
            else:
                stale.append(kid)
        if stale:
            fresh = await asyncio.gather(*(self._query(spec, gate, kid, now, within) for kid in stale))
            answers.update(zip(stale, fresh, strict=True))
        self._asked[key] = _Asked(gate.address, gate.query, answers)
        return answers

    def forget(self, namespace: str, name: str) -> None:
        self._asked.pop((namespace, name), None)

    async def _query(
        self, spec: Spec, gate: PropagationSpec, kid: str, now: datetime, within: float
    ) -> Share:
        try:
            expression = render(gate.query, kid=kid, namespace=spec.namespace, keyset=spec.name)
        except QueryError as exc:  # parse_spec refuses such templates; never a crash all the same
            return Share(now, None, f"the query cannot be written for this kid: {exc}")
        # No `time`: Prometheus answers at its own now. The pass's `now` has whole seconds (and the
        # operator's clock may lag Prometheus's): asked at it, Prometheus could leave out the scrape
        # that shows the last consumer with the kid, and the key would wait one interval more.
        try:
            sample = await asyncio.wait_for(
                prometheus.query(
                    gate.address,
                    expression,
                    None,
                    self.egress,
                    aiohttp.ClientTimeout(total=within),
                    what=WHAT,
                ),
                within + 1,
            )
        except TimeoutError:
            sample = Sample(None, f"prometheus did not answer within {within:g}s")
        except Exception as exc:  # prometheus.query is total; this is the last line of defence
            log.warning(
                "asking the propagation gate failed",
                exc_info=True,
                extra={"namespace": spec.namespace, "keyset": spec.name},
            )
            sample = Sample(None, f"query failed: {describe(exc)}")
        return share_of(sample, now)
