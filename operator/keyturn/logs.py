"""Log setup: one line per decision, text or JSON, with namespace, name, kid and reason fields."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

FIELDS = ("namespace", "keyset", "kid", "reason", "purged")


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
        text = f"{base}[{ref}] {record.getMessage()}" if ref else f"{base}{record.getMessage()}"
        return f"{text} {extras}".rstrip()


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
