"""adapters/prometheus.py: every Prometheus answer is a Sample: a number, or no data with a short reason."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import web

from keyturn.adapters.prometheus import MAX_ANSWER, parse_answer, query
from keyturn.domain.analysis import Sample
from keyturn.domain.egress import EgressPolicy


def answer(data: Any, status: str = "success") -> bytes:
    return json.dumps({"status": status, "data": data}).encode()


def vector(*values: Any) -> bytes:
    return answer({"resultType": "vector", "result": [{"metric": {}, "value": [1.0, v]} for v in values]})


@pytest.mark.parametrize(
    ("status", "body", "value"),
    [
        (200, vector("0.97"), 0.97),
        (200, answer({"resultType": "scalar", "result": [1.0, "1"]}), 1.0),
        (200, vector(0.5), 0.5),  # a JSON number, although Prometheus writes strings
        (200, vector("1e-3"), 0.001),
    ],
    ids=["vector", "scalar", "json number", "exponent"],
)
def test_numbers(status: int, body: bytes, value: float) -> None:
    assert parse_answer(status, body) == Sample(value)


@pytest.mark.parametrize(
    ("status", "body", "reason"),
    [
        (200, b"<html>hello</html>", "without a JSON body"),
        (200, b"", "without a JSON body"),
        (200, b"\xff\xfe", "without a JSON body"),
        (200, b"[" * 100_000, "without a JSON body"),
        (200, b"1" * 10_000, "without a JSON body"),
        (200, b"[]", "not an API answer"),
        (200, b'"success"', "not an API answer"),
        (200, b"null", "not an API answer"),
        (200, json.dumps({"status": "success", "data": []}).encode(), "no data object"),
        (200, json.dumps({"status": "success"}).encode(), "no data object"),
        (200, answer({"result": []}), "no resultType"),
        (200, answer({"resultType": 7, "result": []}), "no resultType"),
        (200, answer({"resultType": "vector", "result": "0.9"}), "not a list"),
        (200, answer({"resultType": "vector", "result": []}), "no data"),
        (200, answer({"resultType": "vector", "result": ["x"]}), "not an object"),
        (200, answer({"resultType": "vector", "result": [{"value": "0.9"}]}), "not a [time, value] pair"),
        (200, answer({"resultType": "vector", "result": [{"value": [1]}]}), "not a [time, value] pair"),
        (200, answer({"resultType": "vector", "result": [{}]}), "not a [time, value] pair"),
        (200, vector("abc"), "not a number"),
        (200, vector(None), "not a number"),
        (200, vector(True), "not a number"),
        (200, vector({"v": 1}), "not a number"),
        (200, vector("9" * 100_000), "not a number"),
        (200, vector(10**400), "not a number"),
        (200, vector("NaN"), "NaN"),
        (200, vector("+Inf"), "+Inf"),
        (200, vector("-Inf"), "-Inf"),
        (200, vector("0.9", "0.8"), "2 series"),
        (200, answer({"resultType": "matrix", "result": []}), "a matrix"),
        (200, answer({"resultType": "x" * 10_000, "result": []}), "must return a scalar"),
        (200, answer({"resultType": "scalar", "result": "1"}), "not a [time, value] pair"),
        (200, answer({"resultType": "scalar", "result": None}), "not a [time, value] pair"),
        (400, json.dumps({"status": "error", "error": "parse error"}).encode(), "parse error"),
        (200, json.dumps({"status": "error", "error": "E" * 100_000}).encode(), "query failed"),
        (200, json.dumps({"status": "error", "error": 42}).encode(), "unknown error"),
        (500, b"internal error", "HTTP 500"),
        (503, vector("0.99"), "HTTP 503"),
        (302, b"", "redirect"),
        (301, vector("0.99"), "redirect"),
        (200, b" " * (MAX_ANSWER + 1), "larger than"),
    ],
    ids=[
        "html",
        "empty body",
        "bad utf-8",
        "deep nesting",
        "huge integer",
        "list",
        "string",
        "null",
        "data is a list",
        "no data",
        "no result type",
        "result type not a string",
        "vector is a string",
        "empty vector",
        "series is a string",
        "value is a string",
        "value pair too short",
        "series without value",
        "value not numeric",
        "value null",
        "value boolean",
        "value object",
        "value huge string",
        "value huge number",
        "NaN",
        "+Inf",
        "-Inf",
        "several series",
        "matrix",
        "huge result type",
        "scalar is a string",
        "scalar is null",
        "query error",
        "huge error",
        "error not a string",
        "5xx text",
        "5xx with a value",
        "redirect",
        "redirect with a value",
        "too large",
    ],
)
def test_no_data(status: int, body: bytes, reason: str) -> None:
    sample = parse_answer(status, body)
    assert sample.value is None
    assert reason in sample.error
    assert len(sample.error) < 250  # never the answer's body


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@asynccontextmanager
async def server(handler: Handler) -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


AT = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def test_query_sends_the_expression_and_time_to_the_joined_path() -> None:
    seen: list[web.Request] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append(request)
        return web.Response(body=vector("0.93"))

    async def run() -> Sample:
        async with server(handler) as address:
            return await query(address + "/prefix/", "up == 1", AT)

    assert asyncio.run(run()) == Sample(0.93)
    assert seen[0].path == "/prefix/api/v1/query"
    assert seen[0].query["query"] == "up == 1" and seen[0].query["time"] == f"{AT.timestamp():.3f}"


def test_query_without_a_time_is_evaluated_at_prometheus_own_time() -> None:
    seen: list[web.Request] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append(request)
        return web.Response(body=vector("1"))

    async def run() -> Sample:
        async with server(handler) as address:
            return await query(address, "up == 1", None)

    assert asyncio.run(run()) == Sample(1.0)
    assert dict(seen[0].query) == {"query": "up == 1"}


def test_query_does_not_follow_a_redirect() -> None:
    followed: list[str] = []

    async def handler(request: web.Request) -> web.StreamResponse:
        if request.path.startswith("/elsewhere"):
            followed.append(request.path)
            return web.Response(body=vector("1"))
        raise web.HTTPFound("/elsewhere")

    async def run() -> Sample:
        async with server(handler) as address:
            return await query(address, "q", AT)

    sample = asyncio.run(run())
    assert sample.value is None and "redirect" in sample.error and followed == []


def test_query_reads_a_bounded_answer() -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        chunk = b" " * 65536
        for _ in range(MAX_ANSWER // len(chunk) + 8):
            await response.write(chunk)
        return response

    async def run() -> Sample:
        async with server(handler) as address:
            return await query(address, "q", AT)

    sample = asyncio.run(run())
    assert sample.value is None and "larger than" in sample.error


def test_query_refuses_an_address_outside_the_allow_list_without_a_request() -> None:
    asked: list[str] = []

    async def handler(request: web.Request) -> web.Response:
        asked.append(request.path)
        return web.Response(body=vector("1"))

    async def run() -> Sample:
        async with server(handler) as address:
            return await query(address, "q", AT, EgressPolicy.from_patterns(["*.monitoring.svc"]))

    sample = asyncio.run(run())
    assert sample.value is None and "allow-list" in sample.error and asked == []


def test_query_of_an_unreachable_prometheus_is_no_data() -> None:
    async def handler(request: web.Request) -> web.Response:
        return web.Response()

    async def run() -> Sample:
        async with server(handler) as address:
            pass  # the server is gone again: its port refuses connections
        return await query(address, "q", AT)

    sample = asyncio.run(run())
    assert sample.value is None and "unreachable" in sample.error
