"""parse_spec, field by field: what it refuses (with the field's path first in the message) and what
it makes of valid input. The first rows are the findings of the "total input handling" issue."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any
from zoneinfo import available_timezones

import pytest

from hostile import DURATION_PATTERN
from keyturn.domain.cron import cron_problem
from keyturn.domain.durations import MAX_DURATION, format_duration, parse_duration
from keyturn.domain.spec import DeletionPolicy, ItemFormat, KidStrategy, OnFailure, OnNoData, Slot, SpecError
from keyturn.domain.spec_parser import parse_spec

PROMETHEUS = {"address": "http://prometheus:9090", "query": "up"}


def analysis(**fields: Any) -> dict[str, Any]:
    return {"analysis": {"prometheus": dict(PROMETHEUS), **fields}}


def address(value: str) -> dict[str, Any]:
    return {"analysis": {"prometheus": {"address": value, "query": "up"}}}


INVALID = [
    # The findings: each of these crashed the planner or escaped parse_spec unnamed.
    ({"rotation": {"interval": "3000000d"}}, "spec.rotation.interval: '3000000d' is not a duration"),
    ({"rotation": {"interval": "999999d"}}, "spec.rotation.interval: 999999d is longer than 100 years"),
    ({"rotation": {"timeZone": "America"}}, "spec.rotation.timeZone: 'America' is not an IANA time zone"),
    ({"rotation": {"schedule": "0 0 30 2 *"}}, "spec.rotation.schedule: '0 0 30 2 *' does not fire"),
    ({"rotation": {"publishAhead": "999999h"}}, "spec.rotation.publishAhead: 999999h is longer than 100"),
    ([], "spec: must be an object, not a list"),
    ("spec", "spec: must be an object, not a string"),
    ({"kid": "Thumbprint"}, "spec.kid: must be an object, not a string"),
    ({"secret": {"items": {"key": "K"}}}, "spec.secret.items: must be a list, not an object"),
    ({"secret": {"items": ["K"]}}, "spec.secret.items[0]: must be an object, not a string"),
    ({"rotation": {"window": "02:00-04:00"}}, "spec.rotation.window: must be an object"),
    # Types: booleans are not integers, numbers are not strings.
    ({"algorithm": 256}, "spec.algorithm: must be a string, not a number"),
    ({"keySize": True}, "spec.keySize: must be an integer, not a boolean"),
    ({"keySize": "2048"}, "spec.keySize: must be an integer, not a string"),
    ({"keySize": 2048.0}, "spec.keySize: must be an integer, not a number"),
    ({"keySize": 10**400}, "spec.keySize: an integer of 1329 bits is not one of 2048, 3072, 4096"),
    ({"keySize": -(10**5000)}, "spec.keySize: an integer of 16610 bits is not one of"),
    ({"algorithm": "HS256", "secretLength": 10**9}, "spec.secretLength: must be at least 32 bytes"),
    ({"algorithm": "HS256", "secretLength": 16}, "spec.secretLength: must be at least 32 bytes for HS256"),
    ({"rotation": {"interval": 90}}, "spec.rotation.interval: must be a string, not a number"),
    ({"suspend": "yes"}, "spec.suspend: must be true or false, not a string"),
    ({"revokedKids": [{"reason": "key_compromise"}]}, "spec.revokedKids[0].kid: is required"),
    ({"revokedKids": [{"kid": ["k1"]}]}, "spec.revokedKids[0].kid: must be a string, not a list"),
    # Choices.
    ({"algorithm": "none"}, "spec.algorithm: 'none' is not one of ES256, ES384"),
    ({"kid": {"strategy": "Random"}}, "spec.kid.strategy: 'Random' is not one of Thumbprint, Template"),
    ({"kid": {"strategy": "Template"}}, "spec.kid.template: is required when spec.kid.strategy is Template"),
    ({"secret": {"deletionPolicy": "Orphan"}}, "spec.secret.deletionPolicy: 'Orphan' is not one of Retain"),
    ({"secret": {"items": [{"key": "K"}]}}, "spec.secret.items[0].format: is required"),
    ({"secret": {"items": [{"key": "K", "format": "der"}]}}, "spec.secret.items[0].format: 'der' is not"),
    (
        {"secret": {"items": [{"key": "K", "format": "pem", "slot": "oldest"}]}},
        "spec.secret.items[0].slot: 'oldest' is not one of current, previous, next",
    ),
    ({"secret": {"encryption": {}}}, "spec.secret.encryption.passphraseSecretRef.name: is required"),
    ({"rollout": {"onFailure": "Ignore"}}, "spec.rollout.onFailure: 'Ignore' is not one of Rollback, Pause"),
    (analysis(onNoData="Skip"), "spec.analysis.onNoData: 'Skip' is not one of Pass, Fail, Inconclusive"),
    # Durations: the notation, ASCII digits only, > 0 where it must be, at most 100 years.
    ({"rotation": {"interval": "36526d"}}, "spec.rotation.interval: 36526d is longer than 100 years"),
    ({"rotation": {"retention": "36525d1s"}}, "spec.rotation.retention: 36525d1s is longer than 100 years"),
    ({"rotation": {"interval": "\u0661\u0662d"}}, "spec.rotation.interval: '١٢d' is not a duration"),
    ({"rotation": {"interval": "90d\n1s"}}, "spec.rotation.interval: '90d\\n1s' is not a duration"),
    ({"rotation": {"interval": "9" * 5000 + "d"}}, "spec.rotation.interval: '9999"),
    ({"rotation": {"interval": "0h0m0s"}}, "spec.rotation.interval: must be longer than 0s"),
    ({"tokens": {"maxLifetime": "0s"}}, "spec.tokens.maxLifetime: must be longer than 0s"),
    ({"rollout": {"timeout": "0m"}}, "spec.rollout.timeout: must be longer than 0s"),
    (analysis(interval="0s"), "spec.analysis.interval: must be longer than 0s"),
    # Time zones: names of the database only.
    ({"rotation": {"timeZone": "Mars/Olympus"}}, "spec.rotation.timeZone: 'Mars/Olympus' is not an IANA"),
    ({"rotation": {"timeZone": "../../etc/passwd"}}, "spec.rotation.timeZone: '../../etc/passwd' is not"),
    ({"rotation": {"timeZone": "localtime"}}, "spec.rotation.timeZone: 'localtime' is not an IANA"),
    ({"rotation": {"timeZone": "right/UTC"}}, "spec.rotation.timeZone: 'right/UTC' is not an IANA"),
    ({"rotation": {"timeZone": "Etc"}}, "spec.rotation.timeZone: 'Etc' is not an IANA time zone"),
    ({"rotation": {"timeZone": "Europe/Paris\x00"}}, "spec.rotation.timeZone: 'Europe/Paris\\x00' is not"),
    # Schedules: 5 fields croniter accepts, firing at least every 5 years.
    ({"rotation": {"schedule": "0 0 29 2 *"}}, "spec.rotation.schedule: '0 0 29 2 *' does not fire at"),
    ({"rotation": {"schedule": "0 0 31 4 *"}}, "spec.rotation.schedule: '0 0 31 4 *' does not fire at"),
    ({"rotation": {"schedule": "0 0 * 2 1#5"}}, "spec.rotation.schedule: '0 0 * 2 1#5' does not fire"),
    ({"rotation": {"schedule": "61 0 * * *"}}, "spec.rotation.schedule: '61 0 * * *' is not a cron"),
    ({"rotation": {"schedule": "@daily"}}, "spec.rotation.schedule: '@daily' is not a cron expression"),
    ({"rotation": {"schedule": "0 0 * * * *"}}, "spec.rotation.schedule: '0 0 * * * *' is not a cron"),
    ({"rotation": {"schedule": "* " * 100}}, "spec.rotation.schedule: longer than 128 characters"),
    (
        {"rotation": {"schedule": "0 2 * * *", "interval": "1d"}},
        "spec.rotation: set either spec.rotation.interval or spec.rotation.schedule, not both",
    ),
    # Windows.
    ({"rotation": {"window": {"start": "24:00", "end": "02:00"}}}, "spec.rotation.window.start: '24:00'"),
    ({"rotation": {"window": {"start": "\u00b2:00", "end": "02:00"}}}, "spec.rotation.window.start: '²:00'"),
    ({"rotation": {"window": {"start": "02:00"}}}, "spec.rotation.window.end: is required"),
    ({"rotation": {"window": {"start": "02:00", "end": "02:00"}}}, "spec.rotation.window: start and end"),
    # The analysis gate: a base URL only, finite thresholds, bounded counts and window.
    (address("ftp://prometheus:21"), "spec.analysis.prometheus.address: must be an http:// or https://"),
    (address("http:///api"), "spec.analysis.prometheus.address: must be an http:// or https:// URL with"),
    (address("http://prometheus@169.254.169.254"), "spec.analysis.prometheus.address: must not contain user"),
    (address("http://prometheus:9090/?x=1"), "spec.analysis.prometheus.address: must not contain a query"),
    (address("http://prometheus:9090/api#f"), "spec.analysis.prometheus.address: must not contain a query"),
    (address("http://[::1"), "spec.analysis.prometheus.address: is not a URL"),
    (address("http://prometheus:99999"), "spec.analysis.prometheus.address: is not a URL"),
    (address("http://prometheus:0"), "spec.analysis.prometheus.address: port 0 is not a port"),
    (address("http://prom etheus"), "spec.analysis.prometheus.address: must not contain spaces"),
    ({"analysis": {"prometheus": {"address": "http://p"}}}, "spec.analysis.prometheus: needs both address"),
    ({"analysis": {"prometheus": "http://p"}}, "spec.analysis.prometheus: must be an object"),
    ({"analysis": {"prometheus": {**PROMETHEUS, "query": " "}}}, "spec.analysis.prometheus.query: must not"),
    (analysis(successThreshold="NaN"), "spec.analysis.successThreshold: must be between 0 and 1"),
    (analysis(successThreshold="inf"), "spec.analysis.successThreshold: must be between 0 and 1"),
    (analysis(successThreshold="1e999"), "spec.analysis.successThreshold: must be between 0 and 1"),
    (analysis(successThreshold=10**400), "spec.analysis.successThreshold: an integer of 1329 bits is not a"),
    (analysis(successThreshold=10**5000), "spec.analysis.successThreshold: an integer of 16610 bits is not"),
    (analysis(count=10**5000), "spec.analysis.count: must be between 1 and 100, not an integer of 16610"),
    (analysis(failureLimit=10**5000), "spec.analysis.failureLimit: must be at least 0 and less than count"),
    (analysis(successThreshold="1.5"), "spec.analysis.successThreshold: must be between 0 and 1"),
    (analysis(successThreshold="95%"), "spec.analysis.successThreshold: '95%' is not a number"),
    (analysis(successThreshold=True), "spec.analysis.successThreshold: must be a decimal number written"),
    (analysis(count=0), "spec.analysis.count: must be between 1 and 100, not 0"),
    (analysis(count=101), "spec.analysis.count: must be between 1 and 100, not 101"),
    (analysis(count=True), "spec.analysis.count: must be an integer, not a boolean"),
    (analysis(count=5, failureLimit=5), "spec.analysis.failureLimit: must be at least 0 and less than count"),
    (analysis(failureLimit=-1), "spec.analysis.failureLimit: must be at least 0 and less than count (10)"),
    (
        analysis(interval="36525d", count=2, failureLimit=0),
        "spec.analysis: initialDelay + interval × count is 73050d1m, longer than 100 years (36525d)",
    ),
    (analysis(initialDelay="36525d"), "spec.analysis: initialDelay + interval × count is 36525d5m, longer"),
]


@pytest.mark.parametrize(
    ("raw", "expected"), INVALID, ids=[f"{i:02d}-{e.split(':')[0]}" for i, (_, e) in enumerate(INVALID)]
)
def test_invalid_spec_is_refused_naming_the_field(raw: Any, expected: str) -> None:
    with pytest.raises(SpecError) as info:
        parse_spec("keys", "ns", raw)
    assert str(info.value).startswith(expected), str(info.value)


@pytest.mark.parametrize(
    "url",
    ["http://admin:hunter2@prometheus:9090", "https://:hunter2@prometheus", "http://hunter2@prometheus"],
)
def test_an_address_with_credentials_is_refused_without_quoting_them(url: str) -> None:
    with pytest.raises(SpecError) as info:
        parse_spec("keys", "ns", address(url))
    assert "user info" in str(info.value)
    assert "hunter2" not in str(info.value)


def test_defaults_and_typed_choices() -> None:
    empties: list[object] = [
        None,
        {},
        {"rotation": None, "kid": None, "secret": {"items": []}, "analysis": {}},
    ]
    for raw in empties:
        spec = parse_spec("keys", "ns", raw)
        assert spec.algorithm == "RS256"
        assert spec.key_size == 2048
        assert spec.kid_strategy is KidStrategy.THUMBPRINT
        assert spec.rotation.interval == timedelta(days=90)
        assert spec.rotation.schedule is None
        assert str(spec.rotation.time_zone) == "UTC"
        assert spec.secret.deletion_policy is DeletionPolicy.RETAIN
        assert [(i.format, i.slot) for i in spec.secret.items] == [
            (ItemFormat.PEM, Slot.CURRENT),
            (ItemFormat.PUBLIC_PEM, Slot.CURRENT),
            (ItemFormat.KID, Slot.CURRENT),
        ]
        assert spec.rollout.on_failure is OnFailure.ROLLBACK
        assert spec.analysis is None
        assert spec.suspend is False


def test_choices_are_enums_equal_to_their_strings() -> None:
    spec = parse_spec(
        "keys",
        "ns",
        {
            "kid": {"strategy": "Template", "template": "k{n}"},
            "secret": {"deletionPolicy": "Delete", "items": [{"key": "K", "format": "jwks"}]},
            "rollout": {"onFailure": "Pause"},
            **analysis(onNoData="Fail", onFailure="Pause", successThreshold="1"),
        },
    )
    assert (spec.kid_strategy, spec.secret.items[0].format) == ("Template", "jwks")
    assert spec.kid_strategy is KidStrategy.TEMPLATE
    assert spec.secret.deletion_policy is DeletionPolicy.DELETE
    assert spec.secret.items[0].format is ItemFormat.JWKS
    assert spec.rollout.on_failure is OnFailure.PAUSE
    assert spec.analysis is not None
    assert spec.analysis.on_no_data is OnNoData.FAIL
    assert spec.analysis.on_failure is OnFailure.PAUSE
    assert spec.analysis.success_threshold == 1.0


def test_the_longest_durations_accepted() -> None:
    spec = parse_spec(
        "keys",
        "ns",
        {
            "rotation": {"interval": "36525d", "publishAhead": "876600h", "gracePeriod": "36525d"},
            **analysis(initialDelay="36524d", interval="12h", count=2, failureLimit=1),
        },
    )
    assert spec.rotation.interval == spec.rotation.publish_ahead == MAX_DURATION
    assert spec.analysis is not None
    assert spec.analysis.window == MAX_DURATION


def test_the_crd_pattern_and_the_parser_bound_meet() -> None:
    """Everything the parser accepts passes the CRD; what the CRD lets through beyond it is a SpecError."""
    longest = format_duration(MAX_DURATION)
    assert re.fullmatch(DURATION_PATTERN.strip("^$"), longest)
    assert parse_duration(longest) == MAX_DURATION
    widest = "999999d999999h999999m999999s"
    assert re.fullmatch(DURATION_PATTERN.strip("^$"), widest)
    with pytest.raises(ValueError, match="longer than 100 years"):
        parse_duration(widest)
    assert not re.fullmatch(DURATION_PATTERN.strip("^$"), "1000000s")
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration("1000000s")


def test_every_zone_of_the_database_is_accepted() -> None:
    zones = sorted(available_timezones() - {"localtime"})
    assert "Europe/Paris" in zones
    for zone in zones:
        spec = parse_spec("keys", "ns", {"rotation": {"timeZone": zone, "schedule": "0 2 * * *"}})
        assert str(spec.rotation.time_zone) == zone


@pytest.mark.parametrize(
    ("schedule", "fires"),
    [
        ("0 2 1 */3 *", True),
        ("30 3 * * MON-FRI", True),
        ("0 0 L * *", True),
        ("0 0 29 2 MON", True),  # day-of-month OR day-of-week: every Monday of February too
        ("0 0 * 2 1#4", True),
        ("59 23 31 12 *", True),
        ("0 0 29 2 *", False),  # 2096-02-29, then 2104-02-29: 8 years
        ("0 0 30 2 *", False),
        ("0 0 31 2,4,6,9,11 *", False),
        ("0 0 * 2 1#5", False),  # a fifth Monday in February: 2044, 2072, 2112...
    ],
)
def test_a_schedule_must_fire_at_least_every_5_years(schedule: str, fires: bool) -> None:
    assert (cron_problem(schedule) is None) is fires
    if fires:
        assert parse_spec("keys", "ns", {"rotation": {"schedule": schedule}}).rotation.schedule == schedule


def test_an_empty_schedule_means_not_set() -> None:
    spec = parse_spec("keys", "ns", {"rotation": {"schedule": "", "interval": "1d"}})
    assert (spec.rotation.schedule, spec.rotation.interval) == (None, timedelta(days=1))


def test_the_address_is_kept_without_its_trailing_slash() -> None:
    spec = parse_spec("keys", "ns", address("https://thanos.example.com/api/prom/"))
    assert spec.analysis is not None
    assert spec.analysis.address == "https://thanos.example.com/api/prom"
