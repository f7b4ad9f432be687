"""Log setup: one line per decision, text or JSON, with namespace, name, kid and reason fields.

Much of what gets logged comes from outside (kids and reasons in status, messages of API
errors, JWKS problems), so the text format escapes every character that is not printable: an
escape sequence must never reach a terminal and a newline must never start a forged log line.
JSON needs nothing more than json.dumps, which escapes them itself.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Final

FIELDS = ("namespace", "keyset", "kid", "reason", "purged")

_NAMED_ESCAPES: Final = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def escape(text: str, *, keep_newlines: bool = False) -> str:
    """`text` with each non-printable character written as its Python escape (`\\x1b`, `\\n`,
    `\\u202e`), so that it shows on one line, as itself, and cannot drive a terminal.

    `keep_newlines` keeps line breaks as they are, for text that is several lines on purpose
    (a CLI message with a hint line); every other control character is still escaped.
    """
    if text.isprintable():
        return text
    if keep_newlines:
        return "\n".join(escape(line) for line in text.split("\n"))
    out: list[str] = []
    for ch in text:
        if ch.isprintable():
            out.append(ch)
        elif ch in _NAMED_ESCAPES:
            out.append(_NAMED_ESCAPES[ch])
        else:
            code = ord(ch)
            out.append(
                f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"
            )
    return "".join(out)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in FIELDS:
            value = getattr(record, name, None)
            if value not in (None, "", []):
                out[name] = value
        if record.exc_info:
            out["error"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        base = f"{datetime.fromtimestamp(record.created, UTC):%Y-%m-%dT%H:%M:%S}Z {record.levelname:<7} "
        ref = "/".join(str(getattr(record, k)) for k in ("namespace", "keyset") if getattr(record, k, None))
        extras = " ".join(f"{k}={getattr(record, k)}" for k in ("kid", "reason") if getattr(record, k, None))
        message = record.getMessage()
        text = f"{base}[{ref}] {message}" if ref else f"{base}{message}"
        return escape(f"{text} {extras}".rstrip())


def setup(fmt: str = "text", verbose: bool = False) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    # kopf is chatty at INFO about every handler; keep its warnings and errors.
    logging.getLogger("kopf").setLevel(logging.DEBUG if verbose else logging.WARNING)
    logging.getLogger("kubernetes").setLevel(logging.WARNING)
    logging.getLogger("urllib3").setLevel(logging.WARNING)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
