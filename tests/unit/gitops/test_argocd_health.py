"""The Argo CD health check for JwtKeySet, run by a real Lua interpreter against sample objects.

Reading Lua is not testing it: a typo in a branch nobody exercised only shows up in Argo CD, as
"Unknown" health on every key set. So each sample is turned into a Lua table literal, the script is
run with `lua5.4` exactly as Argo CD calls it (the object in the global `obj`, the result a table
returned by the chunk), and the verdict is compared. lua5.4 comes from Debian (`make system-deps`);
without it these tests fail rather than skip, since a skipped check is no check.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[3]
HEALTH_LUA = ROOT / "gitops" / "argocd" / "health.lua"
GITOPS_DOC = ROOT / "docs" / "gitops.md"
ARGO_STATUSES = {"Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown"}


def lua_literal(value: Any) -> str:
    """A Lua expression for a JSON-like value (what Argo CD hands the script, as a Lua table)."""
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        # Decimal escapes for every byte outside printable ASCII: no quoting or encoding surprises.
        escaped = "".join(
            ch if 32 <= b < 127 and ch not in '"\\' else f"\\{b:03d}"
            for ch, b in ((chr(b), b) for b in value.encode())
        )
        return f'"{escaped}"'
    if isinstance(value, list | tuple):
        return "{" + ", ".join(lua_literal(v) for v in value) + "}"
    if isinstance(value, dict):
        return "{" + ", ".join(f"[{lua_literal(str(k))}] = {lua_literal(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"no Lua literal for {type(value).__name__}")


def lua() -> str:
    found = shutil.which("lua5.4")
    assert found, "lua5.4 is not installed: run `make system-deps` (Debian package lua5.4)"
    return found


def run_health(obj: dict[str, Any]) -> tuple[str, str]:
    """(status, message) as Argo CD would get them from the script."""
    wrapper = (
        f"obj = {lua_literal(obj)}\n"
        f"local hs = dofile({lua_literal(str(HEALTH_LUA))})\n"
        'assert(type(hs) == "table", "the health script must return a table")\n'
        'assert(type(hs.status) == "string", "hs.status must be a string")\n'
        'assert(type(hs.message) == "string", "hs.message must be a string")\n'
        'io.write(hs.status, "\\n", hs.message)\n'
    )
    result = subprocess.run([lua(), "-"], input=wrapper, capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"lua failed:\n{result.stderr}"
    status, _, message = result.stdout.partition("\n")
    assert status in ARGO_STATUSES
    return status, message


def condition(kind: str, status: str, reason: str, message: str = "") -> dict[str, Any]:
    return {
        "type": kind,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": "2026-01-01T00:00:00Z",
        "observedGeneration": 3,
    }


def keyset(status: dict[str, Any] | None, generation: int = 3) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "keyturn.dev/v1alpha1",
        "kind": "JwtKeySet",
        "metadata": {"name": "api-keys", "namespace": "auth", "generation": generation},
        "spec": {"algorithm": "RS256"},
    }
    if status is not None:
        obj["status"] = status
    return obj


def reconciled(*conditions: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"observedGeneration": 3, "conditions": list(conditions), **fields}


READY = condition("Ready", "True", "Ready", "kid-2 signs")
NOT_RECONCILING = condition("Reconciling", "False", "Ready", "kid-2 signs")
NOT_STALLED = condition("Stalled", "False", "Ready", "kid-2 signs")
NO_ROLLBACK = condition("RolledBack", "False", "Ready", "no rollback in effect")
NOT_DEGRADED = condition("Degraded", "False", "Ready", "all keys and targets healthy")
QUIET = (NOT_RECONCILING, NOT_STALLED, NO_ROLLBACK, NOT_DEGRADED)

CASES: list[tuple[str, dict[str, Any], str, str]] = [
    ("no status yet", keyset(None), "Progressing", "Waiting for Keyturn"),
    (
        "ready",
        keyset(reconciled(READY, *QUIET, phase="Ready", currentKid="kid-2")),
        "Healthy",
        "Signing with kid-2",
    ),
    (
        "ready without a current kid shows the condition",
        keyset(reconciled(READY, *QUIET)),
        "Healthy",
        "Ready: kid-2 signs",
    ),
    (
        "reconciling: rolling out",
        keyset(
            reconciled(
                condition("Ready", "False", "RolloutProgressing", "rolling api (Rolling)"),
                condition("Reconciling", "True", "RolloutProgressing", "rolling api (Rolling)"),
                NOT_STALLED,
                NO_ROLLBACK,
                NOT_DEGRADED,
                phase="RollingOut",
            )
        ),
        "Progressing",
        "RolloutProgressing: rolling api (Rolling)",
    ),
    (
        "stalled, with its message",
        keyset(
            reconciled(
                condition("Ready", "False", "GracePeriodTooShort", "gracePeriod 1h < maxLifetime 24h + 5m"),
                condition("Reconciling", "False", "GracePeriodTooShort", "gracePeriod 1h < 24h + 5m"),
                condition("Stalled", "True", "GracePeriodTooShort", "gracePeriod 1h < maxLifetime 24h + 5m"),
                NO_ROLLBACK,
                NOT_DEGRADED,
                phase="Failed",
            )
        ),
        "Degraded",
        "GracePeriodTooShort: gracePeriod 1h < maxLifetime 24h + 5m",
    ),
    (
        "rolled back, even though the previous key signs again (Ready)",
        keyset(
            reconciled(
                READY,
                NOT_RECONCILING,
                NOT_STALLED,
                condition("RolledBack", "True", "RolledBack", "rolled back to kid-1: validation 0.41 < 0.95"),
                NOT_DEGRADED,
                phase="Ready",
                currentKid="kid-1",
            )
        ),
        "Degraded",
        "RolledBack: rolled back to kid-1: validation 0.41 < 0.95",
    ),
    (
        "degraded target",
        keyset(
            reconciled(
                READY,
                NOT_RECONCILING,
                NOT_STALLED,
                NO_ROLLBACK,
                condition("Degraded", "True", "TargetUnhealthy", "api: health URL answered 503"),
            )
        ),
        "Degraded",
        "TargetUnhealthy: api: health URL answered 503",
    ),
    (
        "status of an older generation: the spec changed since",
        keyset(reconciled(READY, *QUIET, currentKid="kid-2"), generation=4),
        "Progressing",
        "observe generation 4",
    ),
    (
        "a stale Stalled says nothing about the new spec (it may fix it)",
        keyset(
            reconciled(
                condition("Ready", "False", "UnknownKid", "revokedKids: kid-x unknown"),
                condition("Stalled", "True", "UnknownKid", "revokedKids: kid-x unknown"),
            ),
            generation=4,
        ),
        "Progressing",
        "observe generation 4",
    ),
    (
        "status without observedGeneration",
        keyset({"phase": "Pending"}),
        "Progressing",
        "observe generation 3",
    ),
    (
        "reconciled, but no condition yet",
        keyset(reconciled()),
        "Progressing",
        "Waiting for the Ready condition",
    ),
    (
        "paused for a person (Stalled, e.g. analysis inconclusive)",
        keyset(
            reconciled(
                condition("Ready", "False", "AnalysisInconclusive", "no data for 5m"),
                condition("Reconciling", "False", "AnalysisInconclusive", "no data for 5m"),
                condition("Stalled", "True", "AnalysisInconclusive", "no data for 5m"),
                NO_ROLLBACK,
                condition("Degraded", "True", "AnalysisInconclusive", "no data for 5m"),
                phase="Paused",
            )
        ),
        "Degraded",
        "AnalysisInconclusive: no data for 5m",
    ),
    (
        "messages pass through unchanged (quotes, newline, non-ASCII)",
        keyset(
            reconciled(
                condition(
                    "Stalled", "True", "InvalidSpec", 'rotation.timeZone "Mars/Olympus" unknown\n— fix it'
                ),
            )
        ),
        "Degraded",
        'InvalidSpec: rotation.timeZone "Mars/Olympus" unknown\n— fix it',
    ),
]


LUA = pytest.mark.debian("lua5.4")


@LUA
@pytest.mark.parametrize(("obj", "status", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_health(obj: dict[str, Any], status: str, message: str) -> None:
    got_status, got_message = run_health(obj)
    assert got_status == status, got_message
    assert message in got_message


@LUA
def test_the_literal_converter_round_trips_through_lua() -> None:
    """The harness itself: a value written as a Lua literal reads back the same."""
    value = {"a": [1, 2.5, True, False], "s": 'q"uo\\te\n\tä€', "n": {"deep": ["x"]}}
    script = (
        f"local v = {lua_literal(value)}\n"
        'io.write(v.a[1], " ", v.a[2], " ", tostring(v.a[3]), " ", tostring(v.a[4]), "\\n")\n'
        'io.write(v.s, "\\n", v.n.deep[1])\n'
    )
    out = subprocess.run([lua(), "-"], input=script, capture_output=True, text=True, check=True).stdout
    assert out == '1 2.5 true false\nq"uo\\te\n\tä€\nx'


def test_docs_embed_the_script_verbatim() -> None:
    """docs/gitops.md shows the argocd-cm entry; a copy that drifted would be the one people paste."""
    script = HEALTH_LUA.read_text()
    doc = GITOPS_DOC.read_text()
    indented = "".join(f"    {line}" if line.strip() else line for line in script.splitlines(keepends=True))
    assert indented in doc, "docs/gitops.md must embed gitops/argocd/health.lua (indented 4 spaces)"
    assert "resource.customizations.health.keyturn.dev_JwtKeySet" in doc


def test_sample_objects_are_json() -> None:
    """Argo CD hands the script decoded JSON: the samples must be representable as such."""
    for _, obj, _, _ in CASES:
        assert json.loads(json.dumps(obj)) == obj
