"""The propagation gate: which kids to ask about, the query for a kid, and what an answer means.

A due activation (scheduled or manual) waits until the share of consumers that accept the next
kid reaches `spec.propagation.threshold`. The share is a Prometheus instant query over the metric
every consumer exports (`jwt_keys_loaded{kid}`, docs/consumers.md). This module writes the query
for a kid (the placeholders escaped for the PromQL string they stand in), reads an answer into a
`Share`, and says what the gate holds; `keyturn.propagation` does the asking.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from keyturn.domain.analysis import Sample
from keyturn.domain.egress import shorten
from keyturn.domain.model import AnalysisResult, Key, Ring
from keyturn.domain.schedule import activation_time, later
from keyturn.domain.spec import PropagationSpec, Spec
from keyturn.domain.targets import Role

PLACEHOLDERS = ("kid", "namespace", "keyset")
# `$kid` but not `$kidney`: a placeholder ends where a name could not go on.
_PLACEHOLDER = re.compile(r"\$(kid|namespace|keyset)(?![A-Za-z0-9_])")
# Where a character of a query stands: outside any string, in a comment, or in a string opened
# by this quote.
_OUTSIDE, _COMMENT = "", "#"
_QUOTES = ('"', "'", "`")
# However an answer's time reads, the gate never asks again sooner than this.
MIN_RECHECK = timedelta(seconds=1)


class QueryError(ValueError):
    """A query template whose placeholders cannot be substituted safely; the message says where."""


def _contexts(template: str) -> Iterator[tuple[int, str]]:
    """(index, context) of every character, the way the PromQL lexer reads strings and comments.

    In "…" and '…' a backslash escapes the next character; `…` has no escapes; `#` outside a
    string starts a comment up to the end of the line.
    """
    state = _OUTSIDE
    escaped = False
    for index, char in enumerate(template):
        yield index, state
        if state == _COMMENT:
            if char == "\n":
                state = _OUTSIDE
        elif state == _OUTSIDE:
            if char in _QUOTES:
                state = char
            elif char == "#":
                state = _COMMENT
        elif escaped:
            escaped = False
        elif char == "\\" and state != "`":
            escaped = True
        elif char == state:
            state = _OUTSIDE


def _placements(template: str) -> list[tuple[re.Match[str], str]]:
    """Each placeholder and the context its `$` stands in."""
    contexts = dict(_contexts(template))
    return [(match, contexts[match.start()]) for match in _PLACEHOLDER.finditer(template)]


def template_problem(template: str) -> str | None:
    """Why the template cannot be used (for spec_parser), or None.

    A placeholder is substituted only inside a "…" or '…' string, where its value can be escaped;
    outside one (or in a `…` raw string) a hostile kid or name could change the query itself.
    """
    placements = _placements(template)
    for match, context in placements:
        if context in (_OUTSIDE, "`"):
            where = "a `…` raw string" if context == "`" else "no string"
            return (
                f"{match.group(0)} stands in {where}: write it inside double quotes, e.g. "
                f'{{kid="$kid"}}, so that its value can be escaped'
            )
    if not any(m.group(1) == "kid" and c in ('"', "'") for m, c in placements):
        return 'does not name the kid: use $kid inside a label matcher, e.g. {kid="$kid"}'
    return None


def escape(value: str, quote: str = '"') -> str:
    """`value` as the contents of a PromQL string opened by `quote`, whatever characters it holds.

    The lexer reads Go's escapes: a backslash, the quote itself and every character that is not
    printable are escaped, so the value can neither end the string nor span a line. A lone
    surrogate (which no valid escape can express) becomes U+FFFD.
    """
    out: list[str] = []
    for char in value:
        code = ord(char)
        if char in ("\\", quote):
            out.append("\\" + char)
        elif char == "\n":
            out.append("\\n")
        elif char == "\r":
            out.append("\\r")
        elif char == "\t":
            out.append("\\t")
        elif 0xD800 <= code <= 0xDFFF:
            out.append("\\ufffd")
        elif not char.isprintable():
            out.append(f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}")
        else:
            out.append(char)
    return "".join(out)


def render(template: str, *, kid: str, namespace: str, keyset: str) -> str:
    """The query for one kid; QueryError for a template that template_problem refuses.

    Placeholders in comments are left as they are: a comment is never evaluated.
    """
    values = {"kid": kid, "namespace": namespace, "keyset": keyset}
    out: list[str] = []
    last = 0
    for match, context in _placements(template):
        if context == _COMMENT:
            continue
        if context not in ('"', "'"):
            raise QueryError(f"{match.group(0)} is not inside a quoted string")
        out.append(template[last : match.start()])
        out.append(escape(values[match.group(1)], context))
        last = match.end()
    out.append(template[last:])
    return "".join(out)


# ------------------------------------------------------------------------------------------ answers
@dataclass(frozen=True)
class Share:
    """One answer for a kid: the share of consumers that accept it, or None (no data) and why."""

    at: datetime  # when it was asked (the pass's clock): the next question comes one interval later
    value: float | None
    error: str = ""


def share_of(sample: Sample, at: datetime) -> Share:
    """A Prometheus answer as a share: a number outside [0, 1] is a wrong query, so no data."""
    if sample.value is None or math.isnan(sample.value):
        return Share(at, None, sample.error or "no data")
    if not 0.0 <= sample.value <= 1.0:
        return Share(at, None, f"the query answered {sample.value:.6g}, not a share between 0 and 1")
    return Share(at, sample.value)


def reached(share: Share | None, threshold: float) -> bool:
    """Only a number counts: no data never reaches the threshold."""
    return share is not None and share.value is not None and share.value >= threshold


def percent(value: float) -> str:
    """0.6666 -> '66.6%': rounded down, so a share below the threshold never reads as reaching it."""
    tenths = math.floor(value * 1000 + 1e-9) / 10
    return f"{tenths:.1f}".removesuffix(".0") + "%"


def accepted(kid: str, share: Share | None, verb: str = "accept") -> str:
    """'66.6% of consumers accept k2', or why that is unknown."""
    if share is None:
        return f"the share of consumers that {verb} {kid} is unknown (not measured)"
    if share.value is None:
        return f"the share of consumers that {verb} {kid} is unknown ({shorten(share.error, 200)})"
    return f"{percent(share.value)} of consumers {verb} {kid}"


def waiting_message(kid: str, share: Share | None, gate: PropagationSpec) -> str:
    """The Reconciling message while the gate holds; it changes only when the answer does."""
    return (
        f"{accepted(kid, share)}; it signs once {percent(gate.threshold)} do "
        "(spec.propagation; asked again every "
        f"{int(gate.interval.total_seconds())}s)"
    )


# ---------------------------------------------------------------------------------------- questions
def activation_due(spec: Spec, ring: Ring, now: datetime, *, manual: bool) -> bool:
    """Whether the next key's activation is due now, as far as the record and the spec tell.

    The planner decides for real; this only says when asking Prometheus is worth it. A verdict
    that pauses rotations (a stored analysis verdict) holds it like the planner does; a rollout
    failure is not known here, so a paused keyset may be asked about once per interval.
    """
    current, nxt = ring.current, ring.next
    if current is None or nxt is None:
        return False
    held = (
        spec.suspend
        or (spec.analysis is not None and current.awaits_analysis)
        or current.analysis_result in (AnalysisResult.INCONCLUSIVE, AnalysisResult.FAILED)
    )
    at, allowed_now = activation_time(spec.rotation, current, nxt, now, manual=manual, held=held)
    return at is not None and at <= now and allowed_now


def kids_to_ask(spec: Spec, ring: Ring, now: datetime, *, manual: bool) -> tuple[str, ...]:
    """The kids whose share this pass needs: the next kid while its activation is due, and the
    current kid while its signer wave is open (`reload: none` signers count once they accept it)."""
    if spec.propagation is None or ring.current is None:
        return ()
    kids: list[str] = []
    if ring.next is not None and activation_due(spec, ring, now, manual=manual):
        kids.append(ring.next.kid)
    if ring.current.signers_ready_at is None:
        kids.append(ring.current.kid)
    return tuple(kids)


def loaded(
    gate: PropagationSpec | None, ring: Ring, shares: Mapping[str, Share], *, verifiers: bool = True
) -> dict[Role, bool] | None:
    """What `reload: none` targets have loaded, per role, for domain.targets.decide.

    Verifiers need the next kid, signers the current one; a kid not asked about this pass is not
    in question (None without a gate: such targets are ready at once). `verifiers=False` leaves
    the verifier side to the gate itself (the planner holds the activation with its own reason).
    """
    if gate is None:
        return None

    def ok(key: Key | None) -> bool:
        return key is None or key.kid not in shares or reached(shares[key.kid], gate.threshold)

    verify = ok(ring.next) if verifiers else True
    sign = ok(ring.current)
    return {Role.VERIFIER: verify, Role.SIGNER: sign, Role.BOTH: verify and sign}


def next_question(
    gate: PropagationSpec | None, shares: Mapping[str, Share], now: datetime
) -> datetime | None:
    """While an answer is below the threshold, when to ask again: one interval after it."""
    if gate is None:
        return None
    due = [
        max(later(share.at, gate.interval), later(now, MIN_RECHECK))
        for share in shares.values()
        if not reached(share, gate.threshold)
    ]
    return min(due, default=None)


# ------------------------------------------------------------------------------------------- status
class Result(StrEnum):
    """status.propagation.result."""

    REACHED = "Reached"
    BELOW = "Below"
    NO_DATA = "NoData"


@dataclass(frozen=True)
class View:
    """status.propagation: the latest answer about the kid that signs next, while it is asked."""

    kid: str
    share: float | None
    threshold: float
    result: Result
    message: str
    held_since: datetime | None = None


def view(gate: PropagationSpec | None, ring: Ring, shares: Mapping[str, Share]) -> View | None:
    nxt = ring.next
    if gate is None or nxt is None or nxt.kid not in shares:
        return None
    share = shares[nxt.kid]
    if share.value is None:
        result = Result.NO_DATA
    else:
        result = Result.REACHED if reached(share, gate.threshold) else Result.BELOW
    return View(
        kid=nxt.kid,
        share=share.value,
        threshold=gate.threshold,
        result=result,
        message=accepted(nxt.kid, share),
        held_since=nxt.propagation_held_at,
    )
