"""The operator's log formats: text lines are escaped, JSON lines are escaped by json itself."""

from __future__ import annotations

import json
import logging

import pytest

from keyturn import logs

HOSTILE = "\x1b]0;owned\x07\x1b[2J"


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        pytest.param("kid-1.a_b", "kid-1.a_b", id="printable unchanged"),
        pytest.param("naïve ключ", "naïve ключ", id="non-ASCII letters unchanged"),
        pytest.param("\x1b[31mred", "\\x1b[31mred", id="escape sequence"),
        pytest.param("a\nb\r\tc", "a\\nb\\r\\tc", id="line breaks and tabs"),
        pytest.param("\x00\x7f\x9b", "\\x00\\x7f\\x9b", id="NUL, DEL and C1 CSI"),
        pytest.param("abc\u202efed", "abc\\u202efed", id="bidi override"),
        pytest.param("\u2028", "\\u2028", id="line separator"),
        pytest.param("\U000e0041", "\\U000e0041", id="tag character"),
        pytest.param("\\x1b", "\\x1b", id="an escape already written out stays as it is"),
    ],
)
def test_escape(text: str, shown: str) -> None:
    assert logs.escape(text) == shown
    assert logs.escape(shown) == shown


def test_escape_can_keep_line_breaks_only() -> None:
    assert logs.escape("one\x1b\ntwo\r", keep_newlines=True) == "one\\x1b\ntwo\\r"


def record(message: str, *args: object, **extra: object) -> logging.LogRecord:
    rec = logging.LogRecord("keyturn", logging.WARNING, __file__, 1, message, args, None)
    for key, value in extra.items():
        setattr(rec, key, value)
    return rec


def test_text_lines_escape_everything_that_came_from_outside() -> None:
    rec = record(
        "emergency %s: %s",
        "inc-1",
        f"revoked{HOSTILE}\n2026-01-01T00:00:00Z INFO    forged line",
        namespace="auth",
        keyset="api\x1b",
        kid=f"k{HOSTILE}",
        reason="a\nb",
    )
    line = logs.TextFormatter().format(rec)
    assert line.isprintable(), line
    assert "revoked\\x1b]0;owned\\x07\\x1b[2J\\n2026-01-01T00:00:00Z INFO    forged line" in line
    assert "[auth/api\\x1b]" in line and "kid=k\\x1b]0;owned" in line and "reason=a\\nb" in line


def test_json_lines_carry_the_same_text_escaped_by_json() -> None:
    message = f"revoked{HOSTILE}\nforged"
    line = logs.JsonFormatter().format(record("%s", message, kid=HOSTILE))
    assert line.isprintable() and "\n" not in line
    doc = json.loads(line)
    assert doc["message"] == message and doc["kid"] == HOSTILE
