"""adapters/health.py: the health probe against a real local HTTP server; every outcome is a Health,
never an exception."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import aiohttp
import pytest
from aiohttp import web

from keyturn.adapters.health import probe
from keyturn.domain.egress import EgressPolicy
from keyturn.domain.targets import Health

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
SHORT = aiohttp.ClientTimeout(total=0.5)


@asynccontextmanager
async def server(handler: Handler) -> AsyncIterator[tuple[str, list[str]]]:
    """The base URL, and the paths asked so far."""
    asked: list[str] = []

    async def record(request: web.Request) -> web.StreamResponse:
        asked.append(request.path)
        return await handler(request)

    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", record)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}", asked
    finally:
        await runner.cleanup()


def answer(status: int) -> Handler:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(status=status)

    return handler


async def redirect(request: web.Request) -> web.Response:
    if request.path == "/elsewhere":
        return web.Response(status=200)
    raise web.HTTPFound("/elsewhere")


async def slow(request: web.Request) -> web.Response:
    await asyncio.Event().wait()  # never answers; the probe's timeout must end it
    return web.Response()


async def huge(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(status=200)
    await response.prepare(request)
    for _ in range(10_000):  # ~640 MB if anybody read it
        await response.write(b"x" * 65536)
    return response


def run_probe(
    handler: Handler | None, path: str = "/health", policy: EgressPolicy | None = None
) -> tuple[Health, list[str]]:
    async def go() -> tuple[Health, list[str]]:
        async with server(handler or answer(200)) as (base, asked):
            return await probe(base + path, policy, SHORT), asked

    return asyncio.run(go())


@pytest.mark.parametrize(
    ("status", "ok"),
    [(200, True), (204, True), (299, True), (404, False), (500, False), (503, False), (304, False)],
    ids=["200", "204", "299", "404", "500", "503", "304"],
)
def test_status_codes(status: int, ok: bool) -> None:
    health, asked = run_probe(answer(status))
    assert health.ok is ok and str(status) in health.message and asked == ["/health"]


def test_a_redirect_is_not_followed() -> None:
    health, asked = run_probe(redirect)
    assert not health.ok and "redirect" in health.message
    assert asked == ["/health"]  # never /elsewhere


def test_a_slow_endpoint_times_out() -> None:
    health, _ = run_probe(slow)
    assert health == Health(False, "unreachable: timed out")


def test_a_huge_body_is_never_read() -> None:
    health, _ = run_probe(huge)
    assert health == Health(True, "HTTP 200")


def test_a_host_outside_the_allow_list_is_not_asked() -> None:
    health, asked = run_probe(None, policy=EgressPolicy.from_patterns(["*.auth.svc"]))
    assert not health.ok and "allow-list" in health.message and asked == []


@pytest.mark.parametrize(
    "url",
    [
        "http://" + "a" * 64 + ".example/health",
        "http://bad host/health",
        "http://[::1/health",
        "http://xn--/health",
        "http://" + "é" * 100 + ".example/health",
        "ftp://example/health",
        "http://127.0.0.1:1/health",  # nothing listens on port 1
        "http://nonexistent.invalid/health",
        "not a url at all",
        "",
        "http://" + "a." * 2000 + "example/",
    ],
    ids=[
        "label over 63",
        "space",
        "unclosed ipv6",
        "bad punycode",
        "idna label too long",
        "ftp",
        "refused",
        "no such host",
        "garbage",
        "empty",
        "huge",
    ],
)
def test_any_url_gives_an_unhealthy_answer(url: str) -> None:
    health = asyncio.run(probe(url, None, SHORT))
    assert not health.ok and health.message and len(health.message) < 400
