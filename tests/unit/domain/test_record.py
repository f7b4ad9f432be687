"""record.loads against damaged annotations: any text gives a Ring or a RecordError naming the field;
the records the planner writes, and those earlier versions wrote, read back unchanged."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hostile import json_values, one_field_hostile, replaced
from keyturn.domain import record
from keyturn.domain.model import AnalysisResult, Ring
from keyturn.domain.planner import Emergency, Observations, Requests
from keyturn.domain.propagation import Share
from keyturn.domain.record import RecordError
from planning import spec, step

FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
RECORD_NAMES = [
    *("version", "serial", "keys", "revokedKids", "handled", "history", "rotate", "rollback"),
    *("emergencies", "requestId", "handledAt", "result", "newKid", "message", "kid", "state"),
    *("algorithm", "createdAt", "publishedAt", "activatedAt", "demotedAt", "removeFromJwksAt"),
    *("purgeAt", "revokedAt", "reason", "activation", "activatedBy", "signersReadyAt"),
    *("analysisResult", "fingerprint", "publicJwk", "at", "operation", "kids", "trigger"),
    *("propagationHeldAt", "propagationWarnedAt"),
]

# A record as Keyturn 0.1.0 (commit 5982402) wrote it: a rotation, an analysis, an emergency.
EARLIER_TEXT = (
    '{"handled":{"emergencies":[{"handledAt":"2026-01-02T03:00:00Z","message":"revoked k2; k3 signs n'
    'ow","newKid":"k3","requestId":"inc-1","result":"Revoked"}],"rotate":"t1"},"history":[{"at":"2026'
    '-01-01T00:00:00Z","kids":["k1"],"operation":"generate","reason":"published as current","result":'
    '"Succeeded","trigger":"initial"},{"at":"2026-01-01T00:00:00Z","kids":["k2"],"operation":"generat'
    'e","reason":"published as next","result":"Succeeded","trigger":"initial"},{"at":"2026-01-02T01:0'
    '0:00Z","kids":["k2","k1"],"operation":"rotate","reason":"rotation","result":"Succeeded","trigger'
    '":"manual"},{"at":"2026-01-02T01:00:00Z","kids":["k3"],"operation":"generate","reason":"publishe'
    'd as next","result":"Succeeded","trigger":"manual"},{"at":"2026-01-02T02:00:00Z","kids":["k2"],"'
    'operation":"analysis","reason":"analysis of k2: Passed","result":"Passed","trigger":"analysis"},'
    '{"at":"2026-01-02T03:00:00Z","kids":["k2"],"operation":"revoke","reason":"key_compromise","resul'
    't":"Revoked","trigger":"emergency"},{"at":"2026-01-02T03:00:00Z","kids":["k3"],"operation":"rota'
    'te","reason":"promoted after revocation","result":"Succeeded","trigger":"emergency"},{"at":"2026'
    '-01-02T03:00:00Z","kids":["k4"],"operation":"generate","reason":"published as next","result":"Su'
    'cceeded","trigger":"scheduled"}],"keys":[{"algorithm":"RS256","createdAt":"2026-01-02T03:00:00Z"'
    ',"fingerprint":"f4","kid":"k4","publicJwk":{"e":"AQAB","kid":"k4","kty":"RSA","n":"n4"},"publish'
    'edAt":"2026-01-02T03:00:00Z","serial":4,"state":"next"},{"activatedAt":"2026-01-02T03:00:00Z","a'
    'ctivatedBy":"emergency","activation":"revoke","algorithm":"RS256","createdAt":"2026-01-02T01:00:'
    '00Z","fingerprint":"f3","kid":"k3","publicJwk":{"e":"AQAB","kid":"k3","kty":"RSA","n":"n3"},"pub'
    'lishedAt":"2026-01-02T01:00:00Z","serial":3,"signersReadyAt":"2026-01-02T03:00:00Z","state":"cur'
    'rent"},{"activatedAt":"2026-01-02T01:00:00Z","activatedBy":"manual","activation":"rotate","algor'
    'ithm":"RS256","analysisResult":"Passed","createdAt":"2026-01-01T00:00:00Z","fingerprint":"f2","k'
    'id":"k2","publicJwk":{"e":"AQAB","kid":"k2","kty":"RSA","n":"n2"},"publishedAt":"2026-01-01T00:0'
    '0:00Z","purgeAt":"2026-01-02T03:00:00Z","reason":"key_compromise","removeFromJwksAt":"2026-01-02'
    'T03:00:00Z","revokedAt":"2026-01-02T03:00:00Z","serial":2,"signersReadyAt":"2026-01-02T01:00:00Z'
    '","state":"revoked"},{"activatedAt":"2026-01-01T00:00:00Z","activatedBy":"initial","activation":'
    '"generate","algorithm":"RS256","createdAt":"2026-01-01T00:00:00Z","demotedAt":"2026-01-02T01:00:'
    '00Z","fingerprint":"f1","kid":"k1","publicJwk":{"e":"AQAB","kid":"k1","kty":"RSA","n":"n1"},"pub'
    'lishedAt":"2026-01-01T00:00:00Z","purgeAt":"2026-01-05T01:00:00Z","removeFromJwksAt":"2026-01-04'
    'T01:00:00Z","serial":1,"signersReadyAt":"2026-01-01T00:00:00Z","state":"previous"}],"revokedKids'
    '":["k2"],"serial":4,"version":1}'
)
EARLIER: dict[str, Any] = json.loads(EARLIER_TEXT)


def load(text: str) -> Ring | None:
    """The ring, or None for a RecordError, whose message must stay short."""
    try:
        ring = record.loads(text)
    except RecordError as exc:
        message = str(exc)
    else:
        return check(ring)
    assert len(message) < 400, message
    return None


def check(ring: Ring) -> Ring:
    for key in ring.keys:
        assert record.EARLIEST <= key.created_at < record.LATEST
    again = record.dumps(ring)
    assert record.dumps(record.loads(again)) == again  # what loads accepts, it writes back the same
    return ring


def test_a_record_written_by_an_earlier_version_loads_and_writes_back_the_same() -> None:
    ring = record.loads(EARLIER_TEXT)
    assert ring.current is not None and ring.current.kid == "k3"
    assert ring.handled.emergency("inc-1") is not None
    assert record.dumps(ring) == EARLIER_TEXT


@FAST
@given(st.text())
def test_any_text(text: str) -> None:
    load(text)


@FAST
@given(json_values(RECORD_NAMES), st.booleans())
def test_any_json_value(value: Any, versioned: bool) -> None:
    if versioned and isinstance(value, dict):
        value["version"] = 1  # past the version check, into the fields
    load(json.dumps(value))


@FAST
@given(one_field_hostile(EARLIER, RECORD_NAMES))
def test_one_hostile_field_in_a_valid_record(case: tuple[tuple[Any, ...], Any]) -> None:
    _, value = case
    load(json.dumps(value))


@FAST
@given(st.data())
def test_a_truncated_record(data: st.DataObject) -> None:
    cut = data.draw(st.integers(0, len(EARLIER_TEXT) - 1))
    with pytest.raises(RecordError):
        record.loads(EARLIER_TEXT[:cut])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[" * 100_000, "the key record is not JSON: nested too deeply"),
        ('{"version":1,"keys":' + "[" * 100_000, "the key record is not JSON: nested too deeply"),
        ("", "the key record is not JSON"),
        ("null", "the key record must be a JSON object, not null"),
        ("1e999", "the key record must be a JSON object, not a number"),
        ('{"version":1e999}', "unsupported record version a number"),
        ('{"version":true}', "unsupported record version a boolean"),
        ('{"version":"1"}', "unsupported record version a string"),
        ('{"version":2}', "unsupported record version 2"),
        ('{"version":1,"serial":1e999}', "serial: must be an integer"),
        ('{"version":1,"serial":-1}', "serial: must be an integer"),
        ('{"version":1,"serial":true}', "serial: must be an integer"),
        ('{"version":1,"keys":{}}', "keys: must be a list, not an object"),
        ('{"version":1,"keys":["k1"]}', "keys[0]: must be an object, not a string"),
        ('{"version":1,"handled":[]}', "handled: must be an object, not a list"),
        ('{"version":1,"handled":{"emergencies":{}}}', "handled.emergencies: must be a list"),
        ('{"version":1,"handled":{"rotate":7}}', "handled.rotate: must be a string, not a number"),
        ('{"version":1,"revokedKids":"k1"}', "revokedKids: must be a list, not a string"),
        ('{"version":1,"revokedKids":[1]}', "revokedKids[0]: must be a string, not a number"),
        ('{"version":1,"history":[{"at":"2026-01-01T00:00:00Z"}]}', "history[0].operation: is missing"),
    ],
    ids=lambda v: v[:40] if isinstance(v, str) and v.startswith(("{", "[", "n", "1")) else None,
)
def test_damaged_records_are_named(text: str, expected: str) -> None:
    with pytest.raises(RecordError) as info:
        record.loads(text)
    assert str(info.value).startswith(expected), str(info.value)


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        (
            ("keys", 0, "createdAt"),
            "yesterday",
            "keys[0].createdAt: 'yesterday' is not an RFC 3339 timestamp",
        ),
        (
            ("keys", 0, "createdAt"),
            "9999-12-31T23:59:59Z",
            "keys[0].createdAt: time '9999-12-31T23:59:59Z' is",
        ),
        (
            ("keys", 0, "createdAt"),
            "1969-12-31T23:59:59Z",
            "keys[0].createdAt: time '1969-12-31T23:59:59Z' is",
        ),
        (
            ("keys", 0, "createdAt"),
            "0001-01-01T00:00:00+01:00",
            "keys[0].createdAt: '0001-01-01T00:00:00+01:00'",
        ),
        (
            ("keys", 0, "createdAt"),
            "2026-01-01T00:00:00",
            "keys[0].createdAt: time '2026-01-01T00:00:00' has no",
        ),
        (("keys", 0, "createdAt"), 1767225600, "keys[0].createdAt: a time must be a string, not a number"),
        (("keys", 1, "activatedAt"), ["2026"], "keys[1].activatedAt: a time must be a string, not a list"),
        (("keys", 0, "kid"), "../../x", "keys[0].kid: is not a kid"),
        (("keys", 0, "kid"), "k3", "keys: kid k3 appears more than once"),
        (("keys", 0, "kid"), None, "keys[0].kid: is missing"),
        (("keys", 0, "state"), "compromised", "keys[0].state: 'compromised' is not one of next, current"),
        (("keys", 0, "algorithm"), "none", "keys[0].algorithm: 'none' is not an algorithm Keyturn knows"),
        (("keys", 0, "serial"), 2**64, "keys[0].serial: must be an integer from 0"),
        (("keys", 0, "serial"), 1.5, "keys[0].serial: must be an integer from 0"),
        (("keys", 0, "reason"), {"why": 1}, "keys[0].reason: must be a string, not an object"),
        (("keys", 0, "publicJwk"), "jwk", "keys[0].publicJwk: must be an object, not a string"),
        (("keys", 0, "publicJwk", "n"), 7, "keys[0].publicJwk.n: must be a string, not a number"),
        (("keys", 1, "activation"), "explode", "keys[1].activation: 'explode' is not one of generate"),
        (("keys", 0, "propagationHeldAt"), "soon", "keys[0].propagationHeldAt: 'soon' is not an RFC 3339"),
        (("keys", 0, "propagationWarnedAt"), 0, "keys[0].propagationWarnedAt: a time must be a string"),
        (("history", 0, "kids"), "k1", "history[0].kids: must be a list, not a string"),
        (("history", 0, "trigger"), "whim", "history[0].trigger: 'whim' is not one of initial"),
        (("handled", "emergencies", 0, "handledAt"), None, "handled.emergencies[0].handledAt: is missing"),
        (
            ("handled", "emergencies", 0, "requestId"),
            42,
            "handled.emergencies[0].requestId: must be a string",
        ),
    ],
    ids=lambda v: ".".join(map(str, v)) if isinstance(v, tuple) else None,
)
def test_a_damaged_field_is_named(path: tuple[Any, ...], value: Any, expected: str) -> None:
    with pytest.raises(RecordError) as info:
        record.loads(json.dumps(replaced(EARLIER, path, value)))
    assert str(info.value).startswith(expected), str(info.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-01-01T00:00:00Z", datetime(2026, 1, 1, tzinfo=UTC)),
        ("2026-01-01T01:00:00+01:00", datetime(2026, 1, 1, tzinfo=UTC)),
        ("2025-08-01T00:00:00.123456+00:00", datetime(2025, 8, 1, 0, 0, 0, 123456, tzinfo=UTC)),
        ("1970-01-01T00:00:00Z", record.EARLIEST),
        ("8999-12-31T23:59:59Z", record.LATEST - timedelta(seconds=1)),
    ],
)
def test_timestamps_in_range(text: str, expected: datetime) -> None:
    assert record.parse_timestamp(text) == expected


HALF = Share(datetime(2026, 1, 1, tzinfo=UTC), 0.5)
ALL = Share(datetime(2026, 1, 1, tzinfo=UTC), 1.0)
actions = st.lists(
    st.sampled_from(
        [
            ("wait", Requests(), Observations()),
            ("rotate", Requests(rotate="r"), Observations()),
            ("rollback", Requests(rollback="b"), Observations()),
            ("emergency", Requests(emergency=Emergency("e")), Observations()),
            ("verdict", Requests(), Observations(analysis=AnalysisResult.FAILED)),
            ("held", Requests(), Observations(propagation={f"k{i}": HALF for i in range(1, 20)})),
            ("passed", Requests(), Observations(propagation={f"k{i}": ALL for i in range(1, 20)})),
        ]
    ),
    max_size=8,
)


@settings(max_examples=100, deadline=None)
@given(actions, st.integers(0, 10**6))
def test_records_the_planner_writes_read_back_as_the_same_ring(
    steps: list[tuple[str, Requests, Observations]], seconds: int
) -> None:
    the_spec = spec(
        analysis={"prometheus": {"address": "http://p:9090", "query": "up"}},
        propagation={"timeout": "1d"},
    )
    ring, now = Ring(), datetime(2026, 1, 1, tzinfo=UTC)
    for i, (name, drawn, observed) in enumerate(steps):
        requests = {
            "rotate": Requests(rotate=f"r{i}"),
            "rollback": Requests(rollback=f"b{i}"),
            "emergency": Requests(emergency=Emergency(f"e{i}")),
        }.get(name, drawn)
        ring = step(the_spec, ring, now, requests, observed).ring
        text = record.dumps(ring)
        assert record.loads(text) == ring
        assert record.dumps(record.loads(text)) == text
        now += timedelta(seconds=seconds)


def test_the_propagation_gate_s_times_are_kept_with_the_next_key() -> None:
    """When the gate first held a key and when it warned: the timeout and the single Warning
    survive a restart because they are in the Secret."""
    the_spec = spec(propagation={"prometheus": {"address": "http://p:9090"}, "timeout": "1h"})
    start = datetime(2026, 1, 1, tzinfo=UTC)
    ring = step(the_spec, Ring(), start).ring
    assert ring.next is not None
    held = Observations(propagation={ring.next.kid: Share(start, 0.5)})
    for hours in (24, 25):
        ring = step(the_spec, ring, start + timedelta(hours=hours), observed=held).ring
    text = record.dumps(ring)
    assert '"propagationHeldAt":"2026-01-02T00:00:00Z"' in text
    assert '"propagationWarnedAt":"2026-01-02T01:00:00Z"' in text
    loaded = record.loads(text)
    assert loaded.next is not None and loaded.next.propagation_held_at == start + timedelta(hours=24)
    assert loaded.next.propagation_warned_at == start + timedelta(hours=25)
