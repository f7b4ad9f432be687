"""parse_spec, field by field: what it refuses (with the field's path first in the message) and what
it makes of valid input. The first rows are the findings of the "total input handling" issue.

Then Hypothesis: any JSON value gives a Spec or a SpecError naming a field, and every spec the CRD
admits either parses or is refused, and once parsed survives planner passes at any clock a record
can hold (no overflow, no crash, a record that reads back)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import available_timezones

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from hostile import FULL_SPEC, SPEC_FIELD_NAMES, admitted_specs, json_values, one_field_hostile
from keyturn.domain import analysis as gate
from keyturn.domain import record
from keyturn.domain.cron import cron_problem
from keyturn.domain.durations import MAX_DURATION
from keyturn.domain.model import AnalysisResult, Ring
from keyturn.domain.planner import Emergency, Observations, Requests
from keyturn.domain.propagation import Share
from keyturn.domain.spec import (
    DeletionPolicy,
    ItemFormat,
    KidStrategy,
    OnFailure,
    OnNoData,
    PropagationSpec,
    Slot,
    Spec,
    SpecError,
)
from keyturn.domain.spec_parser import parse_spec
from keyturn.domain.targets import Role, Target, decide, revisions
from planning import step

PROMETHEUS = {"address": "http://prometheus:9090", "query": "up"}


def analysis(**fields: Any) -> dict[str, Any]:
    return {"analysis": {"prometheus": dict(PROMETHEUS), **fields}}


def address(value: str) -> dict[str, Any]:
    return {"analysis": {"prometheus": {"address": value, "query": "up"}}}


def propagation(**fields: Any) -> dict[str, Any]:
    return {"propagation": {"prometheus": {"address": "http://gate:9090"}, **fields}}


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
    # The propagation gate: an address of its own or the analysis's, a query that names the kid in a
    # string, a share for a threshold, bounded positive durations.
    ({"propagation": {}}, "spec.propagation.prometheus.address: is required when spec.analysis"),
    ({"propagation": []}, "spec.propagation: must be an object, not a list"),
    (propagation(prometheus="http://p"), "spec.propagation.prometheus: must be an object, not a string"),
    (propagation(prometheus={"address": "ftp://p"}), "spec.propagation.prometheus.address: must be an http"),
    (
        propagation(prometheus={"address": "http://u:hunter2@p"}),
        "spec.propagation.prometheus.address: must not contain user info",
    ),
    (propagation(query=" "), "spec.propagation.query: must not be empty"),
    (propagation(query=7), "spec.propagation.query: must be a string, not a number"),
    (propagation(query="count(up)"), "spec.propagation.query: does not name the kid"),
    (propagation(query="count(x{kid=$kid})"), "spec.propagation.query: $kid stands in no string"),
    (propagation(query="count(x{kid=`$kid`})"), "spec.propagation.query: $kid stands in a `…` raw string"),
    (propagation(query='x{kid="$kid"}' + " " * 4096), "spec.propagation.query: longer than 4096 characters"),
    (propagation(threshold="1.5"), "spec.propagation.threshold: must be between 0 and 1"),
    (propagation(threshold="NaN"), "spec.propagation.threshold: must be between 0 and 1"),
    (propagation(threshold="all"), "spec.propagation.threshold: 'all' is not a number"),
    (propagation(threshold=True), "spec.propagation.threshold: must be a decimal number written as a string"),
    (propagation(interval="0s"), "spec.propagation.interval: must be longer than 0s"),
    (propagation(interval="999999d"), "spec.propagation.interval: 999999d is longer than 100 years"),
    (propagation(timeout="0s"), "spec.propagation.timeout: must be longer than 0s"),
    (propagation(timeout="1 h"), "spec.propagation.timeout: '1 h' is not a duration"),
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


def test_the_propagation_gate_and_its_defaults() -> None:
    assert parse_spec("keys", "ns", {}).propagation is None
    gate = parse_spec("keys", "ns", propagation()).propagation
    assert gate == PropagationSpec(
        address="http://gate:9090",
        query='count(jwt_keys_loaded{kid="$kid"}) / count(count by (instance) (jwt_keys_loaded))',
        threshold=1.0,
        interval=timedelta(seconds=15),
        timeout=timedelta(hours=1),
    )
    chosen = parse_spec(
        "keys",
        "ns",
        propagation(query="count(x{kid='$kid'})", threshold="0.9", interval="1m", timeout="2h"),
    ).propagation
    assert chosen is not None
    assert (chosen.query, chosen.threshold) == ("count(x{kid='$kid'})", 0.9)
    assert (chosen.interval, chosen.timeout) == (timedelta(minutes=1), timedelta(hours=2))


def test_the_gate_asks_the_analysis_s_prometheus_unless_it_names_its_own() -> None:
    spec = parse_spec("keys", "ns", {**address("http://analysis:9090/"), "propagation": {}})
    assert spec.propagation is not None and spec.propagation.address == "http://analysis:9090"
    own = parse_spec("keys", "ns", {**address("http://analysis:9090"), **propagation(), "algorithm": "HS256"})
    assert own.propagation is not None and own.propagation.address == "http://gate:9090"


def test_the_address_is_kept_without_its_trailing_slash() -> None:
    spec = parse_spec("keys", "ns", address("https://thanos.example.com/api/prom/"))
    assert spec.analysis is not None
    assert spec.analysis.address == "https://thanos.example.com/api/prom"


FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# The latest clock whose "now + the longest span" a record still holds.
LAST_CLOCK = record.LATEST - MAX_DURATION - timedelta(seconds=1)
clocks = st.sampled_from([record.EARLIEST, datetime(2026, 5, 1, tzinfo=UTC), LAST_CLOCK]) | st.datetimes(
    min_value=record.EARLIEST.replace(tzinfo=None),
    max_value=LAST_CLOCK.replace(tzinfo=None),
    timezones=st.just(UTC),
)

jumps = st.sampled_from(
    [
        timedelta(0),
        timedelta(seconds=1),
        timedelta(days=1),
        timedelta(days=90),
        MAX_DURATION,
        timedelta(days=10**6),
    ]
) | st.timedeltas(min_value=timedelta(0), max_value=MAX_DURATION)


def parse(raw: object) -> Spec | None:
    """The spec, or None when refused; a refusal must name a field of the spec."""
    try:
        return parse_spec("keys", "ns", raw)
    except SpecError as exc:
        message = str(exc)
    assert message.startswith("spec"), message
    assert len(message) < 1000  # a message for a condition, not a dump of the input
    return None


@FAST
@given(json_values(SPEC_FIELD_NAMES))
def test_any_json_value_parses_or_is_a_spec_error(raw: Any) -> None:
    parse(raw)


@FAST
@given(st.dictionaries(st.sampled_from(SPEC_FIELD_NAMES), json_values(SPEC_FIELD_NAMES, max_leaves=10)))
def test_any_object_of_spec_fields_parses_or_is_a_spec_error(raw: dict[str, Any]) -> None:
    parse(raw)


@FAST
@given(one_field_hostile(FULL_SPEC, SPEC_FIELD_NAMES))
def test_one_hostile_field_in_a_valid_spec(case: tuple[tuple[Any, ...], Any]) -> None:
    _, raw = case
    parse(raw)


def test_the_full_spec_is_valid() -> None:
    """So that the hostile-field test above starts from a spec that parses."""
    assert parse(FULL_SPEC) is not None


@dataclass(frozen=True)
class Pass:
    requests: Requests
    observed: Observations
    jump: timedelta


ANSWERED = datetime(2026, 5, 1, tzinfo=UTC)
passes = st.builds(
    Pass,
    st.sampled_from(
        [
            Requests(),
            Requests(rotate="r"),
            Requests(rollback="b"),
            Requests(emergency=Emergency("e")),
            Requests(emergency=Emergency("all", revoke_all=True)),
        ]
    ),
    st.sampled_from(
        [
            Observations(),
            Observations(signers_ready=False, signer_targets=True),
            Observations(signer_failure="api: rollout timed out", signer_targets=True),
            Observations(verifiers_ready=False),
            *(Observations(analysis=verdict) for verdict in AnalysisResult),
            # The propagation gate's answers, for every kid a few passes can make.
            *(
                Observations(propagation={f"k{i}": Share(ANSWERED, value) for i in range(1, 12)})
                for value in (0.5, 1.0, None)
            ),
        ]
    ),
    jumps,
)


def check_times(spec: Spec, ring: Ring, now: datetime) -> None:
    """Everything computed from the ring and the spec at this clock is a time, not an overflow."""
    for key in ring.keys:
        for moment in (key.created_at, key.activated_at, key.remove_from_jwks_at, key.purge_at):
            if moment is not None:
                assert record.EARLIEST <= moment < record.LATEST
    current = ring.current
    if spec.analysis is not None and current is not None and current.signers_ready_at is not None:
        times = gate.schedule(spec.analysis, current.signers_ready_at)
        assert times[-1] - current.signers_ready_at <= MAX_DURATION
        gate.assess(spec.analysis, current.signers_ready_at, now, {})
    for stamped in (now, record.LATEST - timedelta(seconds=1)):
        target = Target("api", Role.SIGNER, 0, "old", stamped, False, False, "0/1 updated")
        decide([target], revisions(ring), now, spec.rollout, {})


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(admitted_specs(), clocks, st.lists(passes, min_size=1, max_size=5))
def test_admitted_specs_parse_or_refuse_and_then_plan_at_any_clock(
    raw: dict[str, Any], start: datetime, steps: list[Pass]
) -> None:
    spec = parse(raw)
    event("refused" if spec is None else "planned")
    if spec is None:
        return
    rotation = spec.rotation
    for span in (rotation.interval, rotation.publish_ahead, rotation.grace_period, rotation.retention):
        assert span is None or timedelta(0) <= span <= MAX_DURATION
    assert spec.analysis is None or spec.analysis.window <= MAX_DURATION
    ring, now = Ring(), start
    for i, the_pass in enumerate(steps):
        requests = the_pass.requests
        if requests.rotate:
            requests = Requests(rotate=f"{requests.rotate}{i}")
        result = step(spec, ring, now, requests, the_pass.observed)
        if result.requeue:
            result = step(spec, result.ring, now, requests, the_pass.observed)
        for moment in (result.wake_at, result.next_rotation_at):
            if moment is not None:
                record.timestamp(moment)  # the status can show it
                assert moment > now or moment == result.next_rotation_at
        ring = record.loads(record.dumps(result.ring))  # what was written reads back
        check_times(spec, ring, now)
        now += min(the_pass.jump, LAST_CLOCK - now)
