"""Everything one reconcile pass reads, gathered into one value before anything is decided.

Each input is either its value or the named problem met while reading it (a `Violation`), so a
fault in one input never stops the pass: the checks in `policies` decide what it holds back.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from keyturn.domain.annotations import KEYSET_LABEL, STATE_ANNOTATION
from keyturn.domain.model import AnalysisResult, Ring
from keyturn.domain.propagation import Share
from keyturn.domain.reasons import Violation
from keyturn.domain.requests import Requests
from keyturn.domain.spec import Spec


@dataclass(frozen=True)
class SecretSnapshot:
    """The keyset's Secret as read. Item values are never part of its repr."""

    name: str
    data: Mapping[str, str] = field(repr=False)
    annotations: Mapping[str, str] = field(repr=False)
    labels: Mapping[str, str]
    owner_uids: tuple[str, ...]
    resource_version: str
    # Items whose bytes are not UTF-8 text: Keyturn never wrote them. Their raw base64 is kept so a
    # write can carry them over unchanged.
    binary: Mapping[str, str] = field(default_factory=dict, repr=False)

    @property
    def record(self) -> str | None:
        return self.annotations.get(STATE_ANNOTATION)

    def managed_for(self, keyset: str) -> bool:
        return self.labels.get(KEYSET_LABEL) == keyset and self.record is not None

    def owner(self) -> str | None:
        return self.labels.get(KEYSET_LABEL)


@dataclass(frozen=True)
class ConfigMapSnapshot:
    data: Mapping[str, str]
    labels: Mapping[str, str]
    owner_uids: tuple[str, ...]
    resource_version: str
    annotations: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Observations:
    """What the executor saw in the cluster that decisions depend on."""

    # Every verifier target serves the current verification set (no targets: True).
    verifiers_ready: bool = True
    # Every signer target signs with the current key (no targets: True).
    signers_ready: bool = True
    # Whether any target signs: without one, a new key's signer wave is over the moment it activates.
    signer_targets: bool = False
    # A signer target failed while rolling to the current key: the message names it.
    signer_failure: str | None = None
    # The concluded verdict of the current key's analysis, when there is one.
    analysis: AnalysisResult | None = None
    analysis_message: str = ""
    # Kids whose private material is missing from the Secret: such a key is never promoted.
    unusable: frozenset[str] = frozenset()
    # The propagation gate's answers of this pass, by kid (the next kid while its activation is
    # due, the one an emergency promotes, the current kid during its signer wave). A kid without
    # an entry was not asked about: the gate holds its activation as if it had no data.
    propagation: Mapping[str, Share] = field(default_factory=dict)


@dataclass(frozen=True)
class Inputs:
    """One pass's reading of the world. `spec` is None exactly when `spec_problem` says why."""

    namespace: str
    name: str
    generation: int
    requests: Requests
    spec: Spec | None
    spec_problem: Violation | None
    # What the emergency path acts with: the spec, or what can be salvaged of it (see salvage).
    acting: Spec
    secret: SecretSnapshot | Violation | None
    # The record from the Secret: a Ring (empty when there is no Secret yet) or why it cannot be read.
    ring: Ring | Violation
    jwks: ConfigMapSnapshot | Violation | None
    passphrase: bytes | Violation | None = field(default=None, repr=False)
    # Kids whose stored material does not load or is not the recorded key (edited by hand): why.
    damaged: Mapping[str, str] = field(default_factory=dict)
    observations: Observations = field(default_factory=Observations)
    # Problems met while observing targets and the analysis: they degrade, never block.
    degraded: tuple[Violation, ...] = ()
    # The status as read, for the emergency request already acknowledged there.
    status: Mapping[str, object] = field(default_factory=dict, repr=False)
    # Another keyset (namespace/name) that claimed spec.jwks.issuer first, when there is one.
    issuer_rival: str | None = None
