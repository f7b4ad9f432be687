"""domain/propagation.py: the propagation gate's query for a kid, what an answer means, which kids a
pass asks about, what `reload: none` targets have loaded, and status.propagation.

The escaping is checked twice: against a reference reader of PromQL strings written here from the
PromQL lexer's rules (every value, hostile ones included, reads back as itself and nothing after
the string changes), and against the real PromQL engine (promtool) with the values that would
inject a query if they were pasted unescaped.
"""

from __future__ import annotations

import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from keyturn.adapters.prometheus import parse_answer
from keyturn.domain.analysis import Sample
from keyturn.domain.inputs import Observations
from keyturn.domain.model import AnalysisResult, Key, KeyState, Operation, Ring
from keyturn.domain.propagation import (
    QueryError,
    Result,
    Share,
    accepted,
    activation_due,
    escape,
    kids_to_ask,
    loaded,
    next_question,
    percent,
    reached,
    render,
    share_of,
    template_problem,
    view,
    waiting_message,
)
from keyturn.domain.spec import DEFAULT_PROPAGATION_QUERY, PropagationSpec
from keyturn.domain.targets import Role
from planning import T0, initialized, spec, step

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
GATE = PropagationSpec(
    address="http://prometheus:9090",
    query=DEFAULT_PROPAGATION_QUERY,
    threshold=1.0,
    interval=timedelta(seconds=15),
    timeout=HOUR,
)
GATED = {"propagation": {"prometheus": {"address": "http://prometheus:9090"}}}

# Values that would change the query if they were pasted into it unescaped.
HOSTILE = [
    'a"} or vector(1) #',
    "a'} or vector(1) #",
    "a\\",
    'a\\"',
    "a\nb",
    "a\rb\tc",
    "k\x00\x07\x1b[31m",
    "\u202ereversed",
    "\u2028line",
    "ключ",
    "🔑",
    "$kid",
    "`",
    "",
]


# ------------------------------------------------------------------------------------ the template
@pytest.mark.parametrize(
    ("template", "problem"),
    [
        (DEFAULT_PROPAGATION_QUERY, None),
        ("count(x{kid='$kid'}) / count(up)", None),
        ('count(x{kid="$kid", namespace="$namespace", keyset="$keyset"})', None),
        ('count(x{kid="$kid"}) # $namespace in a comment is never evaluated', None),
        ('count(x{kid=~"$kid|other"})', None),
        ('label_replace(x{kid="$kid"}, "a", "$1", "b", "(.*)")', None),
        ("count(x{kid=$kid})", "$kid stands in no string"),
        ("count(x{kid=`$kid`})", "$kid stands in a `…` raw string"),
        ('count(x{kid="$kid"}) / count(y{namespace=$namespace})', "$namespace stands in no string"),
        ("count(up)", "does not name the kid"),
        ('count(up) # {kid="$kid"}', "does not name the kid"),
        ('count(x{kid="$kidney"})', "does not name the kid"),
        ('count(x{kid="\\"$kid"})', None),
        ('count(x{kid="\\\\"} + $kid)', "$kid stands in no string"),
    ],
    ids=[
        "default",
        "single-quoted",
        "all-three",
        "in-a-comment",
        "in-a-regex",
        "dollar-one-is-not-a-placeholder",
        "bare",
        "raw-string",
        "bare-namespace",
        "no-kid",
        "kid-only-in-a-comment",
        "a-longer-name",
        "after-an-escaped-quote",
        "after-an-escaped-backslash",
    ],
)
def test_template_problem(template: str, problem: str | None) -> None:
    found = template_problem(template)
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found


def test_render_substitutes_every_placeholder_and_leaves_comments() -> None:
    template = 'count(x{kid="$kid", ns=\'$namespace\', set="$keyset"}) # "$kid"\n/ count(up)'
    assert render(template, kid="k1", namespace="auth", keyset="api-keys") == (
        'count(x{kid="k1", ns=\'auth\', set="api-keys"}) # "$kid"\n/ count(up)'
    )


def test_render_refuses_a_template_parse_spec_refuses() -> None:
    with pytest.raises(QueryError):
        render("count(x{kid=$kid})", kid="k1", namespace="n", keyset="k")


SIMPLE = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\"}


def read_string(text: str, start: int) -> tuple[str, int]:
    """A PromQL "…" or '…' literal at `start`, read the way the PromQL lexer and Go's unquote do:
    the value and the index after its closing quote. A raw newline, an unknown escape or a missing
    end raise."""
    quote = text[start]
    out: list[str] = []
    i = start + 1
    while True:
        char = text[i]  # IndexError: the string never ends
        if char == quote:
            return "".join(out), i + 1
        if char == "\n":
            raise ValueError("a newline inside a string")
        if char != "\\":
            out.append(char)
            i += 1
            continue
        code = text[i + 1]
        if code in SIMPLE:
            out.append(SIMPLE[code])
            i += 2
        elif code == quote:
            out.append(code)
            i += 2
        elif code in "uU":
            width = 4 if code == "u" else 8
            value = int(text[i + 2 : i + 2 + width], 16)
            if 0xD800 <= value <= 0xDFFF or value > 0x10FFFF:
                raise ValueError("not a character")
            out.append(chr(value))
            i += 2 + width
        else:
            raise ValueError(f"unknown escape \\{code}")


def roundtrip(kid: str, quote: str) -> str:
    template = f"count(x{{kid={quote}$kid{quote}}}) / count(up)"
    rendered = render(template, kid=kid, namespace="n", keyset="k")
    head = "count(x{kid="
    assert rendered.startswith(head)
    value, end = read_string(rendered, len(head))
    assert rendered[end:] == "}) / count(up)", "the value ended the string early"
    return value


@pytest.mark.parametrize("quote", ['"', "'"])
@pytest.mark.parametrize("kid", HOSTILE)
def test_a_hostile_value_reads_back_as_itself(kid: str, quote: str) -> None:
    assert roundtrip(kid, quote) == kid


@given(st.text(), st.sampled_from(['"', "'"]))
def test_any_text_reads_back_as_itself(kid: str, quote: str) -> None:
    assert roundtrip(kid, quote) == kid


def test_a_lone_surrogate_becomes_the_replacement_character() -> None:
    assert roundtrip("a\ud800b", '"') == "a\ufffdb"


def test_only_the_opening_quote_is_escaped() -> None:
    # The PromQL lexer refuses \' in "…" and \" in '…': each may stand there as it is.
    assert escape("a'b\"c", '"') == "a'b\\\"c"
    assert escape("a'b\"c", "'") == "a\\'b\"c"


@pytest.mark.debian("prometheus", command="promtool")
@pytest.mark.parametrize("kid", ['a"} or vector(1) #', 'k1"} or vector(1) or x{a="', "k1\\", "k1\n"])
def test_the_real_promql_engine_reads_an_escaped_value_as_one_label_value(kid: str, tmp_path: Path) -> None:
    """Three instances accept k1. Pasted unescaped, each kid would make the query answer 1 (or
    fail to parse); escaped, it asks for a kid no instance has, and gets no sample."""
    rules = {
        "groups": [
            {
                "name": "gate",
                "rules": [
                    {
                        "record": "share_hostile",
                        "expr": render(DEFAULT_PROPAGATION_QUERY, kid=kid, namespace="n", keyset="k"),
                    },
                    {
                        "record": "share_k1",
                        "expr": render(DEFAULT_PROPAGATION_QUERY, kid="k1", namespace="n", keyset="k"),
                    },
                ],
            }
        ]
    }
    tests = {
        "rule_files": ["rules.yaml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    {"series": f'jwt_keys_loaded{{kid="k1", instance="{i}"}}', "values": "1x5"}
                    for i in ("a", "b", "c")
                ],
                "promql_expr_test": [
                    {
                        "expr": "share_k1",
                        "eval_time": "2m",
                        "exp_samples": [{"labels": "share_k1", "value": 1}],
                    },
                    {"expr": "share_hostile", "eval_time": "2m", "exp_samples": []},
                ],
            }
        ],
    }
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(rules))
    (tmp_path / "tests.yaml").write_text(yaml.safe_dump(tests))
    result = subprocess.run(
        ["promtool", "test", "rules", "tests.yaml"], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


# ------------------------------------------------------------------------------------------ answers
def answer(body: str, status: int = 200) -> Sample:
    return parse_answer(status, body.encode())


def vector(value: str) -> str:
    series = f'{{"metric":{{}},"value":[1,"{value}"]}}'
    return f'{{"status":"success","data":{{"resultType":"vector","result":[{series}]}}}}'


@pytest.mark.parametrize(
    ("sample", "value", "why"),
    [
        (answer(vector("1")), 1.0, ""),
        (answer(vector("0.6667")), 0.6667, ""),
        (answer(vector("0")), 0.0, ""),
        (answer('{"status":"success","data":{"resultType":"scalar","result":[1,"0.5"]}}'), 0.5, ""),
        (answer(vector("1.5")), None, "not a share between 0 and 1"),
        (answer(vector("-0.1")), None, "not a share between 0 and 1"),
        (answer(vector("NaN")), None, "NaN"),
        (answer(vector("+Inf")), None, "Inf"),
        (answer('{"status":"success","data":{"resultType":"vector","result":[]}}'), None, "no data"),
        (answer('{"status":"error","error":"parse error"}', 400), None, "parse error"),
        (answer("[1, 2, 3]"), None, "not an API answer"),
        (answer("<html>", 502), None, "without a JSON body"),
        (answer("", 302), None, "redirect"),
        (Sample(None), None, "no data"),
    ],
    ids=[
        "one",
        "two-thirds",
        "zero",
        "scalar",
        "above-one",
        "negative",
        "nan",
        "inf",
        "empty-vector",
        "query-error",
        "garbage",
        "html",
        "redirect",
        "no-reason",
    ],
)
def test_an_answer_as_a_share(sample: Sample, value: float | None, why: str) -> None:
    share = share_of(sample, T0)
    assert share.at == T0
    assert share.value == value
    assert why in share.error
    assert reached(share, 0.0) is (value is not None)  # no data never passes, not even a 0 threshold


@pytest.mark.parametrize(
    ("share", "threshold", "passes"),
    [
        (Share(T0, 1.0), 1.0, True),
        (Share(T0, 0.999), 1.0, False),
        (Share(T0, 0.9), 0.9, True),
        (Share(T0, 0.0), 0.0, True),
        (Share(T0, None, "prometheus unreachable"), 0.0, False),
        (None, 0.0, False),
    ],
    ids=["all", "nearly-all", "at-threshold", "zero-of-zero", "no-data", "not-asked"],
)
def test_reached(share: Share | None, threshold: float, passes: bool) -> None:
    assert reached(share, threshold) is passes


@pytest.mark.parametrize(
    ("value", "text"),
    [(1.0, "100%"), (0.0, "0%"), (2 / 3, "66.6%"), (0.9995, "99.9%"), (0.5, "50%"), (0.123, "12.3%")],
)
def test_percent_rounds_down(value: float, text: str) -> None:
    assert percent(value) == text


def test_the_messages_name_the_share_or_why_it_is_unknown() -> None:
    assert accepted("k2", Share(T0, 2 / 3)) == "66.6% of consumers accept k2"
    assert accepted("k2", Share(T0, None, "prometheus unreachable: timed out")) == (
        "the share of consumers that accept k2 is unknown (prometheus unreachable: timed out)"
    )
    assert "unknown (not measured)" in accepted("k2", None)
    assert accepted("k2", Share(T0, 1.0), "already accepted") == "100% of consumers already accepted k2"
    message = waiting_message("k2", Share(T0, 0.5), GATE)
    assert "50% of consumers accept k2" in message and "100%" in message and "15s" in message
    # The same answer at another time reads the same: the condition does not change on every pass.
    assert waiting_message("k2", Share(T0 + HOUR, 0.5), GATE) == message


# ---------------------------------------------------------------------------------------- questions
@pytest.mark.parametrize(
    ("raw", "hours", "manual", "due", "kids"),
    [
        (GATED, 1, False, False, ()),
        (GATED, 24, False, True, ("next",)),
        (GATED, 30, False, True, ("next",)),
        (GATED, 2, True, True, ("next",)),
        (GATED, 0.5, True, False, ()),
        ({}, 24, False, True, ()),
        ({**GATED, "suspend": True}, 48, False, False, ()),
        ({**GATED, "suspend": True}, 48, True, True, ("next",)),
        (
            {**GATED, "rotation": {"interval": "1d", "window": {"start": "02:00", "end": "03:00"}}},
            24,
            False,
            False,
            (),
        ),
    ],
    ids=[
        "not-due",
        "due",
        "overdue",
        "manual",
        "manual-before-publish-ahead",
        "no-gate",
        "suspended",
        "suspended-but-manual",
        "outside-the-window",
    ],
)
def test_the_next_kid_is_asked_about_while_its_activation_is_due(
    raw: dict[str, object], hours: float, manual: bool, due: bool, kids: tuple[str, ...]
) -> None:
    the_spec, ring = initialized(spec(**raw))
    now = T0 + timedelta(hours=hours)
    assert ring.next is not None
    assert activation_due(the_spec, ring, now, manual=manual) is due
    expected = tuple(ring.next.kid if k == "next" else k for k in kids)
    assert kids_to_ask(the_spec, ring, now, manual=manual) == expected


def test_a_stored_verdict_that_pauses_rotations_holds_the_questions() -> None:
    the_spec, ring = initialized(spec(**GATED))
    current = ring.current
    assert current is not None
    paused = ring.evolve(
        keys=tuple(
            k.evolve(analysis_result=AnalysisResult.INCONCLUSIVE) if k.kid == current.kid else k
            for k in ring.keys
        )
    )
    assert kids_to_ask(the_spec, paused, T0 + 2 * DAY, manual=False) == ()


def test_the_current_kid_is_asked_about_during_its_signer_wave() -> None:
    the_spec = spec(**GATED)
    key = Key("k1", KeyState.CURRENT, "RS256", 1, T0, T0, T0, activation=Operation.ROTATE)
    nxt = Key("k2", KeyState.NEXT, "RS256", 2, T0, T0)
    assert kids_to_ask(the_spec, Ring(keys=(key, nxt)), T0 + HOUR, manual=False) == ("k1",)
    over = key.evolve(signers_ready_at=T0)
    assert kids_to_ask(the_spec, Ring(keys=(over, nxt)), T0 + HOUR, manual=False) == ()


# ------------------------------------------------------------------------------ reload: none targets
def two_keys() -> Ring:
    current = Key("k1", KeyState.CURRENT, "RS256", 1, T0, T0, T0, signers_ready_at=T0)
    return Ring(keys=(current, Key("k2", KeyState.NEXT, "RS256", 2, T0, T0)))


@pytest.mark.parametrize(
    ("shares", "verifiers", "expected"),
    [
        ({}, True, {Role.VERIFIER: True, Role.SIGNER: True, Role.BOTH: True}),
        ({"k2": Share(T0, 1.0)}, True, {Role.VERIFIER: True, Role.SIGNER: True, Role.BOTH: True}),
        ({"k2": Share(T0, 0.5)}, True, {Role.VERIFIER: False, Role.SIGNER: True, Role.BOTH: False}),
        ({"k2": Share(T0, None, "down")}, True, {Role.VERIFIER: False, Role.SIGNER: True, Role.BOTH: False}),
        ({"k2": Share(T0, 0.5)}, False, {Role.VERIFIER: True, Role.SIGNER: True, Role.BOTH: True}),
        ({"k1": Share(T0, 0.5)}, True, {Role.VERIFIER: True, Role.SIGNER: False, Role.BOTH: False}),
        ({"k1": Share(T0, 0.5)}, False, {Role.VERIFIER: True, Role.SIGNER: False, Role.BOTH: False}),
    ],
    ids=[
        "nothing-asked",
        "next-accepted",
        "next-below",
        "next-without-data",
        "next-below-left-to-the-gate",
        "current-below",
        "current-below-for-the-planner",
    ],
)
def test_what_reload_none_targets_have_loaded(
    shares: dict[str, Share], verifiers: bool, expected: dict[Role, bool]
) -> None:
    assert loaded(GATE, two_keys(), shares, verifiers=verifiers) == expected


def test_without_a_gate_reload_none_targets_are_ready_at_once() -> None:
    assert loaded(None, two_keys(), {"k2": Share(T0, 0.0)}) is None


def test_the_next_question_comes_one_interval_after_an_answer_below_the_threshold() -> None:
    shares = {"k2": Share(T0, 0.5), "k1": Share(T0 + timedelta(seconds=5), 1.0)}
    assert next_question(GATE, shares, T0 + timedelta(seconds=1)) == T0 + timedelta(seconds=15)
    assert next_question(GATE, {"k1": Share(T0, 1.0)}, T0) is None  # nothing to wait for
    assert next_question(None, shares, T0) is None
    # An answer from long ago (a clock jump) never asks for a wake-up in the past.
    assert next_question(GATE, shares, T0 + HOUR) == T0 + HOUR + timedelta(seconds=1)


# -------------------------------------------------------------------------------------------- status
def test_the_view_shows_the_next_kid_only_while_it_is_asked_about() -> None:
    ring = two_keys()
    assert view(GATE, ring, {}) is None
    assert view(None, ring, {"k2": Share(T0, 1.0)}) is None
    assert view(GATE, ring, {"k1": Share(T0, 1.0)}) is None  # the current kid is not shown
    below = view(GATE, ring, {"k2": Share(T0, 0.5)})
    assert below is not None
    assert (below.kid, below.share, below.threshold, below.result) == ("k2", 0.5, 1.0, Result.BELOW)
    assert below.message == "50% of consumers accept k2"
    no_data = view(GATE, ring, {"k2": Share(T0, None, "prometheus unreachable")})
    assert no_data is not None and no_data.result is Result.NO_DATA and no_data.share is None
    assert "prometheus unreachable" in no_data.message
    passed = view(GATE, ring, {"k2": Share(T0, 1.0)})
    assert passed is not None and passed.result is Result.REACHED


def test_the_view_says_since_when_the_gate_holds_the_key() -> None:
    the_spec, ring = initialized(spec(**GATED))
    assert ring.next is not None
    now = T0 + DAY
    observed = Observations(propagation={ring.next.kid: Share(now, 0.5)})
    held = step(the_spec, ring, now, observed=observed).ring
    shown = view(the_spec.propagation, held, {ring.next.kid: Share(now, 0.5)})
    assert shown is not None and shown.held_since == now
