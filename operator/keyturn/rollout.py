"""Rolling reloads of annotated Deployments and the analysis gate (seam; filled by the rollout work)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from keyturn.domain.model import AnalysisResult, Ring
from keyturn.domain.policies import Reason
from keyturn.domain.spec import Spec
from keyturn.domain.status import AnalysisView, RolloutView


@dataclass(frozen=True)
class RolloutEvent:
    reason: Reason
    message: str
    warning: bool = False


@dataclass
class RolloutResult:
    verifiers_ready: bool = True
    signers_ready: bool = True
    signer_failure: str | None = None
    analysis_verdict: AnalysisResult | None = None
    analysis_message: str = ""
    view: RolloutView = field(default_factory=RolloutView)
    analysis: AnalysisView | None = None
    degraded: tuple[Reason, str] | None = None
    events: list[RolloutEvent] = field(default_factory=list)
    wake_at: datetime | None = None


class Rollouts:
    def __init__(self, api: Any) -> None:
        self._api = api

    async def observe(self, obj: Mapping[str, Any], spec: Spec, ring: Ring, now: datetime) -> RolloutResult:
        return RolloutResult()

    async def advance(
        self, obj: Mapping[str, Any], spec: Spec, ring: Ring, now: datetime, prior: RolloutResult
    ) -> RolloutResult:
        return prior
