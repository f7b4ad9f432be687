"""Prometheus instant queries over the HTTP API, evaluated at a given time or at Prometheus's own now.

Total: every answer is a Sample, a number or no data with a short reason. The address passes the
egress guard, redirects are not followed, at most MAX_ANSWER bytes are read, and the reason never
quotes more than a few words of what the server sent (the reason ends up in status and Events).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import aiohttp

from keyturn.adapters.health import describe
from keyturn.domain.analysis import Sample
from keyturn.domain.egress import EgressPolicy, Refused, prometheus_query_url, shorten

TIMEOUT = aiohttp.ClientTimeout(total=10)
MAX_ANSWER = 1 << 20  # one number needs a few hundred bytes; a megabyte is a generous bound
log = logging.getLogger("keyturn")


async def query(
    address: str,
    expression: str,
    at: datetime | None,
    policy: EgressPolicy | None = None,
    client_timeout: aiohttp.ClientTimeout = TIMEOUT,
    what: str = "analysis.prometheus.address",
) -> Sample:
    """A scalar or a one-element vector; anything else, or any failure, is no data with a reason.

    `what` names the address's field in the reason of a refusal. `at=None` sends no `time`:
    Prometheus evaluates at its own clock, the one that stamped its samples, so the answer
    includes the latest scrape whatever the caller's clock says.
    """
    try:
        url = prometheus_query_url(address, policy or EgressPolicy(), what)
    except Refused as exc:
        return Sample(None, f"refused: {exc}")
    try:
        params = {"query": expression}
        if at is not None:
            params["time"] = f"{at.timestamp():.3f}"
        async with (
            aiohttp.ClientSession(timeout=client_timeout) as session,
            session.get(url, params=params, allow_redirects=False) as response,
        ):
            status = response.status
            body = await _read_at_most(response.content, MAX_ANSWER + 1)
    except Exception as exc:  # aiohttp, yarl, idna and the OS raise many kinds; all mean "unreachable"
        log.debug("prometheus query failed", exc_info=True)
        return Sample(None, f"prometheus unreachable: {describe(exc)}")
    return parse_answer(status, body)


async def _read_at_most(content: aiohttp.StreamReader, limit: int) -> bytes:
    """Up to `limit` bytes of the body: enough to tell an answer from one that is too large."""
    chunks: list[bytes] = []
    size = 0
    while size < limit:
        chunk = await content.read(limit - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def parse_answer(status: int, body: bytes) -> Sample:
    """The pure half of `query`: an HTTP status and at most MAX_ANSWER + 1 bytes, read totally."""
    if 300 <= status < 400:
        return Sample(
            None, f"prometheus answered HTTP {status} (a redirect; Keyturn never follows redirects)"
        )
    if len(body) > MAX_ANSWER:
        return Sample(None, f"prometheus answer larger than {MAX_ANSWER} bytes")
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):  # not JSON, bad UTF-8, absurd numbers, absurd nesting
        return Sample(None, f"prometheus answered HTTP {status} without a JSON body")
    if not isinstance(document, Mapping):
        return Sample(None, f"prometheus answered HTTP {status} with JSON that is not an API answer")
    if document.get("status") != "success":
        error = document.get("error")
        why = shorten(error, 160) if isinstance(error, str) and error else "unknown error"
        http = "" if 200 <= status < 300 else f" (HTTP {status})"
        return Sample(None, f"query failed{http}: {why}")
    if not 200 <= status < 300:
        return Sample(None, f"prometheus answered HTTP {status}")
    data = document.get("data")
    if not isinstance(data, Mapping):
        return Sample(None, "prometheus answer has no data object")
    kind, result = data.get("resultType"), data.get("result")
    if kind == "scalar":
        return _number(result, "the scalar")
    if kind == "vector":
        if not isinstance(result, list):
            return Sample(None, "prometheus answer: the vector is not a list")
        if not result:
            return Sample(None, "no data")
        if len(result) != 1:
            return Sample(None, f"query returned {len(result)} series; it must return one")
        series = result[0]
        if not isinstance(series, Mapping):
            return Sample(None, "prometheus answer: the series is not an object")
        return _number(series.get("value"), "the series' value")
    if isinstance(kind, str):
        return Sample(None, f"query returned a {shorten(kind, 20)}; it must return a scalar or one series")
    return Sample(None, "prometheus answer has no resultType")


def _number(pair: Any, what: str) -> Sample:
    """[<time>, "<value>"]: Prometheus writes values as strings ("NaN", "+Inf" included)."""
    if not isinstance(pair, list) or len(pair) != 2:
        return Sample(None, f"prometheus answer: {what} is not a [time, value] pair")
    raw = pair[1]
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        return Sample(None, f"prometheus answer: {what} is not a number")
    try:
        if isinstance(raw, str) and len(raw) > 64:
            raise ValueError("too long for a number")
        value = float(raw)
    except (ValueError, OverflowError):
        return Sample(None, f"prometheus answer: {what} is not a number")
    if math.isnan(value):
        return Sample(None, "NaN")
    if math.isinf(value):
        return Sample(None, f"{'+' if value > 0 else '-'}Inf: not a finite number")
    return Sample(value)
