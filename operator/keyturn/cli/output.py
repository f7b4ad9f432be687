"""What the CLI prints: ages like kubectl's, aligned tables, the status view of a keyset, JSON/YAML,
and the three ways a command prints (`emit` a result, `note` progress, `shown` a value).

Pure functions of dicts and a clock, so that every line the terminal shows is unit-testable.
Everything shown comes from status, which anyone allowed to patch the status subresource can
write: every value is escaped (logs.escape) before it reaches the terminal, newlines included, so a
kid or a reason can neither drive the terminal nor add a line of its own. JSON and YAML escape
control characters themselves.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import yaml

from keyturn.domain.propagation import percent
from keyturn.domain.spec import DEFAULT_ALGORITHM
from keyturn.logs import escape

CONDITION_ORDER = ("Ready", "Reconciling", "Stalled")
# Extra condition types shown only while True: they carry news, not the steady state.
NOTABLE_CONDITIONS = ("Degraded", "RolledBack")
KEY_COLUMNS = ("KID", "STATE", "AGE", "ACTIVATED", "EVENT", "REASON")


def human_duration(delta: timedelta) -> str:
    """A duration the way kubectl prints ages: 45s, 5m30s, 12m, 5h30m, 30h, 3d4h, 120d, 2y30d."""
    seconds = int(delta.total_seconds())
    if seconds < -1:
        return "<invalid>"
    if seconds < 0:
        return "0s"
    if seconds < 120:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 10:
        rest = seconds % 60
        return f"{minutes}m{rest}s" if rest else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h{rest}m" if rest else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        rest = hours % 24
        return f"{hours // 24}d{rest}h" if rest else f"{hours // 24}d"
    days = hours // 24
    if days < 365 * 2:
        return f"{days}d"
    if days < 365 * 8:
        rest = days % 365
        return f"{days // 365}y{rest}d" if rest else f"{days // 365}y"
    return f"{days // 365}y"


def parse_time(text: object) -> datetime | None:
    """An RFC 3339 time from status, or None for anything else (status is anyone's to write)."""
    if not text:
        return None
    try:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00")).astimezone(UTC)
    except (ValueError, OverflowError):  # OverflowError: year 1 with a positive offset
        return None


def age(text: str | None, now: datetime) -> str:
    """Time since an RFC 3339 timestamp, or "-"."""
    at = parse_time(text)
    return "-" if at is None else human_duration(max(now - at, timedelta(0)))


def relative(text: str | None, now: datetime) -> str:
    """'in 29d23h' for the future, '12m ago' for the past, 'now' within a second, '-' for nothing."""
    at = parse_time(text)
    if at is None:
        return "-"
    delta = at - now
    if abs(delta) < timedelta(seconds=1):
        return "now"
    if delta > timedelta(0):
        return f"in {human_duration(delta)}"
    return f"{human_duration(-delta)} ago"


def stamp(text: str | None, now: datetime) -> str:
    """An absolute timestamp with its relative form: 2026-06-01T02:00:00Z (in 9d)."""
    return "-" if not text else f"{text} ({relative(text, now)})"


def table(headers: Sequence[str], rows: Iterable[Sequence[str]], indent: str = "") -> str:
    """Columns padded to their widest cell, two spaces apart, like kubectl get."""
    body = [[escape(str(cell)) for cell in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in body:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    lines = []
    for row in [list(headers), *body]:
        line = "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row))
        lines.append(indent + line.rstrip())
    return "\n".join(lines)


def _key_event(key: Mapping[str, Any], status: Mapping[str, Any], now: datetime) -> str:
    """The event that matters for a key in its state: the coming one, or its revocation."""
    state = key.get("state")
    if state in ("current", "next"):
        when = status.get("nextRotationAt")
        at = parse_time(when)
        if at is None:
            return "-"
        if at <= now:  # held back: outside the window, verifiers rolling, or Keyturn not running
            return f"rotation due {relative(when, now)}"
        return f"{'replaced' if state == 'current' else 'signs'} {relative(when, now)}"
    if state in ("previous", "failed"):
        return f"leaves JWKS {relative(key.get('removeFromJwksAt'), now)}"
    if state == "retired":
        return f"purged {relative(key.get('purgeAt'), now)}"
    if state == "revoked":
        return f"revoked {relative(key.get('revokedAt'), now)}"
    return "-"


def key_rows(status: Mapping[str, Any], now: datetime) -> list[list[str]]:
    rows = []
    for key in status.get("keys") or ():
        rows.append(
            [
                str(key.get("kid", "")),
                str(key.get("state", "")),
                age(key.get("createdAt"), now),
                relative(key.get("activatedAt"), now),
                _key_event(key, status, now),
                str(key.get("reason") or "-"),
            ]
        )
    return rows


def conditions_by_type(status: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    return {str(c.get("type")): c for c in status.get("conditions") or () if isinstance(c, Mapping)}


def conditions_summary(status: Mapping[str, Any]) -> str:
    """'Ready=True Reconciling=False Stalled=False; Ready: abc signs' — the state and why."""
    found = conditions_by_type(status)
    if not found:
        return "none yet"
    flags = " ".join(
        f"{kind}={found[kind].get('status', 'Unknown')}" for kind in CONDITION_ORDER if kind in found
    )
    # The condition that explains the state best: a stall, else progress, else readiness.
    lead = next(
        (found[k] for k in ("Stalled", "Reconciling") if found.get(k, {}).get("status") == "True"),
        found.get("Ready"),
    )
    if lead is None:
        return escape(flags)
    why = str(lead.get("reason") or "")
    if lead.get("message"):
        why = f"{why}: {lead['message']}" if why else str(lead["message"])
    return escape(f"{flags}; {why}" if why else flags)


def notable_conditions(status: Mapping[str, Any]) -> list[str]:
    found = conditions_by_type(status)
    out = []
    for kind in NOTABLE_CONDITIONS:
        cond = found.get(kind)
        if cond is not None and cond.get("status") == "True":
            reason = cond.get("reason") or ""
            label = kind if reason in ("", kind) else f"{kind} ({reason})"
            out.append(f"{label}: {cond.get('message') or '-'}")
    return out


def render_keyset(obj: Mapping[str, Any], now: datetime) -> str:
    """The `status` view of one JwtKeySet: a header of facts, then a table of its keys."""
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    facts: list[tuple[str, str]] = [
        ("JwtKeySet", f"{meta.get('namespace', '')}/{meta.get('name', '')}"),
        (
            "Algorithm",
            str(spec.get("algorithm") or DEFAULT_ALGORITHM)
            + ("  (suspended)" if spec.get("suspend") else ""),
        ),
    ]
    if not status:
        facts.append(("Phase", "- (no status yet: Keyturn has not reconciled this keyset; is it running?)"))
        return _facts(facts)
    facts += [
        ("Phase", str(status.get("phase") or "-")),
        ("Conditions", conditions_summary(status)),
    ]
    facts += [("", line) for line in notable_conditions(status)]
    observed, generation = status.get("observedGeneration"), meta.get("generation")
    if observed is not None and generation is not None and int(observed) < int(generation):
        facts.append(("", f"status is of generation {observed}; the spec is at {generation} (catching up)"))
    facts += [
        ("Current kid", str(status.get("currentKid") or "-")),
        ("Next rotation", stamp(status.get("nextRotationAt"), now)),
    ]
    gate = propagation_summary(status, now)
    if gate is not None:
        facts.append(("Propagation", gate))
    facts += [
        ("Last rotation", stamp(status.get("lastRotationAt"), now)),
    ]
    emergency = status.get("emergency") or {}
    if emergency.get("requestId"):
        if emergency.get("handledAt"):
            ack = f"{emergency.get('result')} {relative(emergency['handledAt'], now)}"
            if emergency.get("newKid"):
                ack += f", {emergency['newKid']} signs"
        else:
            ack = "pending (not acknowledged by Keyturn yet)"
        facts.append(("Emergency", f"{emergency['requestId']}: {ack}"))
    rows = key_rows(status, now)
    keys = table(KEY_COLUMNS, rows) if rows else "No keys yet."
    return f"{_facts(facts)}\n\n{keys}"


def _fraction(text: object) -> float | None:
    """A share from status as a number in [0, 1], or None (status is anyone's to write)."""
    if not isinstance(text, str) or len(text) > 32:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if 0.0 <= value <= 1.0 else None


def propagation_summary(status: Mapping[str, Any], now: datetime) -> str | None:
    """'k3: 66.6% of consumers accept it, 100% needed; held 12m' from status.propagation."""
    gate = status.get("propagation")
    if not isinstance(gate, Mapping) or not gate.get("kid"):
        return None
    kid = str(gate["kid"])
    share, needed = _fraction(gate.get("share")), _fraction(gate.get("threshold"))
    if share is None:
        text = f"{kid}: share of consumers that accept it unknown ({gate.get('message') or 'no data'})"
    else:
        text = f"{kid}: {percent(share)} of consumers accept it"
    if needed is not None:
        text += f", {percent(needed)} needed"
    if gate.get("heldSince"):
        text += f"; activation held {age(str(gate['heldSince']), now)}"
    return text


def _facts(facts: Sequence[tuple[str, str]]) -> str:
    """'Label:' in a column of its own, values aligned after it; an empty label continues a fact."""
    width = max(len(label) for label, _ in facts) + 2
    return "\n".join(f"{label + ':' if label else '':<{width}}{escape(value)}" for label, value in facts)


def render_keysets(objs: Sequence[Mapping[str, Any]], now: datetime) -> str:
    return "\n\n".join(render_keyset(o, now) for o in objs)


def keyset_data(obj: Mapping[str, Any]) -> dict[str, Any]:
    """The machine-readable form of `status`: identity, algorithm and the status as Keyturn wrote it."""
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    return {
        "namespace": meta.get("namespace"),
        "name": meta.get("name"),
        "algorithm": spec.get("algorithm") or DEFAULT_ALGORITHM,
        "generation": meta.get("generation"),
        "status": dict(obj.get("status") or {}),
    }


def jwks_table(doc: Mapping[str, Any]) -> str:
    rows = [
        [
            str(k.get("kid", "")),
            str(k.get("kty", "")),
            str(k.get("alg", "")),
            str(k.get("use", "")),
            str(k.get("crv", "") or "-"),
        ]
        for k in doc.get("keys") or ()
    ]
    return table(("KID", "KTY", "ALG", "USE", "CRV"), rows)


def dump(data: Any, fmt: str) -> str:
    """JSON (indented, stable key order) or YAML of plain data."""
    if fmt == "yaml":
        return yaml.safe_dump(data, sort_keys=False, default_flow_style=False).rstrip("\n")
    return json.dumps(data, indent=2)


def emit(data: Any, fmt: str | None, text: str) -> None:
    """Print `text` for the human formats, `data` for json/yaml."""
    print(dump(data, fmt) if fmt in ("json", "yaml") else escape(text, keep_newlines=True))


def note(message: str) -> None:
    """Progress and warnings go to stderr, so stdout holds only the result."""
    print(escape(message, keep_newlines=True), file=sys.stderr)


def shown(value: object) -> str:
    """A value from status (or the API server) as one line of printable text: status is writable
    by anyone allowed to patch it, so its kids and reasons may hold escape sequences or newlines."""
    return escape(str(value))
