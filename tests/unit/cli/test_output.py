"""cli/output.py: ages, tables, the status view and JSON/YAML, and the escaping of what status holds."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
import yaml

from keyturn.cli import output
from unit.cli.samples import (
    CURRENT,
    FORGED_LINE,
    GONE,
    HOSTILE,
    NEXT,
    NOW,
    OLD,
    STATUS,
    D,
    H,
    condition,
    keyset,
    no_control_characters,
    ts,
)


@pytest.mark.parametrize(
    ("delta", "text"),
    [
        (timedelta(seconds=0), "0s"),
        (timedelta(seconds=-1), "0s"),  # clock skew of a second is "now"
        (timedelta(seconds=-5), "<invalid>"),
        (timedelta(seconds=45), "45s"),
        (timedelta(seconds=119), "119s"),
        (timedelta(minutes=5, seconds=30), "5m30s"),
        (timedelta(minutes=5), "5m"),
        (timedelta(minutes=12, seconds=59), "12m"),
        (timedelta(hours=5, minutes=30), "5h30m"),
        (timedelta(hours=30, minutes=10), "30h"),
        (3 * D + 4 * H, "3d4h"),
        (3 * D, "3d"),
        (120 * D + 5 * H, "120d"),
        (2 * 365 * D + 30 * D, "2y30d"),
        (9 * 365 * D, "9y"),
    ],
)
def test_ages_read_like_kubectl(delta: timedelta, text: str) -> None:
    assert output.human_duration(delta) == text


def test_relative_times() -> None:
    assert output.relative(ts(29 * D + 23 * H), NOW) == "in 29d"
    assert output.relative(ts(5 * H + 30 * timedelta(minutes=1)), NOW) == "in 5h30m"
    assert output.relative(ts(-timedelta(minutes=12)), NOW) == "12m ago"
    assert output.relative(ts(timedelta(0)), NOW) == "now"
    assert output.relative(None, NOW) == "-"
    assert output.relative("not a time", NOW) == "-"


def columns(line: str) -> list[int]:
    """Start offsets of the cells of a table line (cells are separated by 2+ spaces)."""
    return [m.start() for m in re.finditer(r"(?:^|(?<=  ))\S", line)]


def test_status_view_of_a_keyset() -> None:
    text = output.render_keyset(keyset(status=STATUS), NOW)
    lines = text.splitlines()
    assert lines[0].split() == ["JwtKeySet:", "auth/api-keys"]
    assert "Phase:" in text and re.search(r"^Phase:\s+Ready$", text, re.MULTILINE)
    assert re.search(
        rf"^Conditions:\s+Ready=True Reconciling=False Stalled=False; KeysReady: {CURRENT} signs$",
        text,
        re.MULTILINE,
    )
    assert re.search(r"^Next rotation:\s+\S+ \(in 29d\)$", text, re.MULTILINE)
    assert re.search(r"^Last rotation:\s+\S+ \(12m ago\)$", text, re.MULTILINE)
    assert "RolledBack" not in text  # False extra conditions are not news
    # the key table: a header and one row per key, every column aligned under its header
    start = lines.index(next(line for line in lines if line.startswith("KID")))
    header, rows = lines[start], lines[start + 1 :]
    assert header.split("  ")[0] == "KID" and columns(header)[:3] == columns(rows[0])[:3]
    cells = {row.split()[0]: re.split(r"\s{2,}", row) for row in rows}
    assert cells[NEXT][1:4] == ["next", "12m", "-"]
    assert cells[NEXT][4] == "signs in 29d"
    assert cells[CURRENT][1:5] == ["current", "3d4h", "12m ago", "replaced in 29d"]
    assert cells[OLD][1:5] == ["previous", "40d", "-", "leaves JWKS in 7d"]
    assert cells[GONE][1:] == ["revoked", "100d", "-", "revoked 2d ago", "key_compromise"]
    for row in rows:
        state_at = header.index("STATE")
        assert row[state_at - 2 : state_at] == "  " and row[state_at] != " "


def test_an_overdue_rotation_reads_as_due() -> None:
    text = output.render_keyset(keyset(status={**STATUS, "nextRotationAt": ts(-timedelta(minutes=5))}), NOW)
    assert re.search(rf"^{CURRENT}\s+current\s+3d4h\s+12m ago\s+rotation due 5m ago", text, re.MULTILINE)


def test_status_view_explains_a_stall_and_a_pending_emergency() -> None:
    status = {
        **STATUS,
        "phase": "Failed",
        "conditions": [
            condition("Ready", "False", "GracePeriodTooShort", "raise gracePeriod to at least 2h5m"),
            condition("Reconciling", "False", "GracePeriodTooShort", "raise gracePeriod to at least 2h5m"),
            condition("Stalled", "True", "GracePeriodTooShort", "raise gracePeriod to at least 2h5m"),
            condition("Degraded", "True", "RolloutPaused", "web (Failed)"),
        ],
        "emergency": {"requestId": "inc-42", "reason": "key_compromise"},
    }
    text = output.render_keyset(keyset(status=status), NOW)
    assert "Stalled=True; GracePeriodTooShort: raise gracePeriod to at least 2h5m" in text
    assert "Degraded (RolloutPaused): web (Failed)" in text
    assert re.search(r"^Emergency:\s+inc-42: pending", text, re.MULTILINE)


HELD = ts(-timedelta(minutes=12))


@pytest.mark.parametrize(
    ("gate", "line"),
    [
        (
            {"kid": "k3", "share": "0.6667", "threshold": "1", "result": "Below"},
            "k3: 66.6% of consumers accept it, 100% needed",
        ),
        (
            {"kid": "k3", "share": "0.5", "threshold": "0.9", "heldSince": HELD},
            "k3: 50% of consumers accept it, 90% needed; activation held 12m",
        ),
        (
            {"kid": "k3", "threshold": "1", "result": "NoData", "message": "prometheus unreachable"},
            "k3: share of consumers that accept it unknown (prometheus unreachable), 100% needed",
        ),
        (
            {"kid": "k3", "share": "1e400", "threshold": "-3"},
            "k3: share of consumers that accept it unknown (no data)",
        ),
    ],
    ids=["below", "held", "no-data", "nonsense-in-status"],
)
def test_status_view_shows_the_share_of_the_next_key(gate: dict[str, str], line: str) -> None:
    text = output.render_keyset(keyset(status={**STATUS, "propagation": gate}), NOW)
    assert re.search(rf"^Propagation:\s+{re.escape(line)}$", text, re.MULTILINE), text


def test_status_view_without_the_gate_has_no_propagation_line() -> None:
    assert "Propagation:" not in output.render_keyset(keyset(status=STATUS), NOW)


def test_status_view_of_a_keyset_keyturn_has_not_seen() -> None:
    text = output.render_keyset(keyset(), NOW)
    assert "no status yet" in text and "KID" not in text


def test_machine_readable_status_is_the_status_as_written() -> None:
    data = output.keyset_data(keyset(status=STATUS))
    assert data == {
        "namespace": "auth",
        "name": "api-keys",
        "algorithm": "RS256",
        "generation": 2,
        "status": STATUS,
    }
    assert yaml.safe_load(output.dump(data, "yaml")) == json.loads(output.dump(data, "json"))


def test_status_view_escapes_what_anyone_who_patches_status_wrote() -> None:
    status = {
        **STATUS,
        "phase": "Failed",
        "currentKid": f"kid{HOSTILE}",
        "conditions": [
            condition("Ready", "False", "Stalled", "-"),
            {**condition("Stalled", "True", "Bad", "-"), "message": f"stop{HOSTILE}\n{FORGED_LINE}"},
            {**condition("Degraded", "True", "Paused", "-"), "message": FORGED_LINE},
        ],
        "keys": [{**k, "kid": f"{k['kid']}{HOSTILE}", "reason": FORGED_LINE} for k in STATUS["keys"]],
        "emergency": {
            "requestId": "inc-1",
            "handledAt": ts(-H),
            "result": f"Revoked{HOSTILE}",
            "newKid": HOSTILE,
        },
    }
    plain = output.render_keyset(keyset(status=STATUS), NOW)
    text = output.render_keyset(keyset(status=status), NOW)
    assert no_control_characters(text)
    assert "\\x1b]0;owned\\x07\\x1b[2J" in text and "ok\\nPhase:" in text
    # one line per fact and per key, as without the hostile values (plus the Degraded line)
    assert len(text.splitlines()) == len(plain.splitlines()) + 2
    assert len(re.findall(r"^Phase:", text, re.MULTILINE)) == 1
    assert no_control_characters(output.conditions_summary(status))
    assert no_control_characters(output.jwks_table({"keys": [{"kid": HOSTILE, "kty": FORGED_LINE}]}))


def test_machine_readable_output_escapes_control_characters_itself() -> None:
    data = output.keyset_data(keyset(status={**STATUS, "currentKid": HOSTILE + FORGED_LINE}))
    for fmt in ("json", "yaml"):
        dumped = output.dump(data, fmt)
        assert "\x1b" not in dumped and "\x07" not in dumped
    assert json.loads(output.dump(data, "json"))["status"]["currentKid"] == HOSTILE + FORGED_LINE
    assert yaml.safe_load(output.dump(data, "yaml"))["status"]["currentKid"] == HOSTILE + FORGED_LINE
