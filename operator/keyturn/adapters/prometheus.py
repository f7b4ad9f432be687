"""Prometheus instant queries over the HTTP API, evaluated at a given time."""

from __future__ import annotations

import math
from datetime import datetime

import aiohttp

from keyturn.domain.analysis import Sample

TIMEOUT = aiohttp.ClientTimeout(total=10)


async def query(address: str, expression: str, at: datetime) -> Sample:
    """A scalar or a one-element vector; an empty answer is no data, an error is no data too."""
    params = {"query": expression, "time": f"{at.timestamp():.3f}"}
    try:
        async with (
            aiohttp.ClientSession(timeout=TIMEOUT) as session,
            session.get(f"{address}/api/v1/query", params=params) as response,
        ):
            body = await response.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        return Sample(None, f"prometheus unreachable: {type(exc).__name__}")
    if body.get("status") != "success":
        return Sample(None, f"query failed: {body.get('error', 'unknown error')}")
    data = body.get("data", {})
    result = data.get("result")
    if data.get("resultType") == "scalar" and result:
        value = float(result[1])
    elif data.get("resultType") == "vector" and result:
        if len(result) != 1:
            return Sample(None, f"query returned {len(result)} series; it must return one")
        value = float(result[0]["value"][1])
    else:
        return Sample(None, "no data")
    return Sample(None if math.isnan(value) else value, "" if not math.isnan(value) else "NaN")
