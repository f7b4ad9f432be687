"""keyturn.keys.kid_templates: placeholders, UTC, and every output a valid kid or a named error."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keyturn.keys.kid_templates import render_kid_template

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def render(template: str, **overrides: Any) -> str:
    args: dict[str, Any] = {"now": NOW, "n": 3, "name": "api-keys", "namespace": "auth"}
    args.update(overrides)
    return render_kid_template(template, **args)


def test_kid_template_example_from_the_contract() -> None:
    assert render("{date}_v{n}_prod") == "20260102_v3_prod"


def test_kid_template_all_placeholders() -> None:
    assert render("{namespace}.{name}-{date}T{time}-{n}") == "auth.api-keys-20260102T030405-3"
    assert render("v{n:03d}") == "v003"
    assert render("static") == "static"


def test_kid_template_uses_the_utc_date() -> None:
    plus5 = timezone(timedelta(hours=5))
    assert render("{date}{time}", now=datetime(2026, 1, 2, 1, 0, 0, tzinfo=plus5)) == "20260101200000"


def test_kid_template_requires_an_aware_datetime() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        render("{date}", now=datetime(2026, 1, 2))


@pytest.mark.parametrize(
    ("template", "overrides", "bad"),
    [
        ("{name}/{n}", {}, "'/'"),
        ("{name}", {"name": "api keys"}, "' '"),
        ("kid:{n}", {}, "':'"),
        ("{date}é", {}, "'é'"),
        ("a\nb", {}, "'\\n'"),
    ],
)
def test_kid_template_rejects_bad_characters(template: str, overrides: dict[str, Any], bad: str) -> None:
    with pytest.raises(ValueError, match="not allowed") as excinfo:
        render(template, **overrides)
    assert bad in str(excinfo.value)


@pytest.mark.parametrize(
    "template", ["{foo}", "{0}", "{}", "{name.upper}", "{name[0]}", "{DATE}", "{date}{uid}"]
)
def test_kid_template_rejects_unknown_placeholders(template: str) -> None:
    with pytest.raises(ValueError, match="unknown placeholder"):
        render(template)


@pytest.mark.parametrize("template", ["{date", "date}", "{name!r}", "{n:q}", ""])
def test_kid_template_rejects_malformed_templates(template: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - several distinct messages
        render(template)


def test_kid_template_length_limit() -> None:
    assert len(render("x" * 128)) == 128
    with pytest.raises(ValueError, match="at most 128"):
        render("x" * 129)


@settings(max_examples=200, deadline=None)
@given(template=st.text(max_size=40), n=st.integers(min_value=0, max_value=10**6))
def test_kid_template_output_is_always_a_valid_kid_or_an_error(template: str, n: int) -> None:
    try:
        kid = render(template, n=n)
    except ValueError:
        return
    assert 1 <= len(kid) <= 128
    assert all(ch.isascii() and (ch.isalnum() or ch in "._-") for ch in kid)
