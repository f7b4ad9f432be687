"""HTTP health gates of targets (keyturn.dev/health-url): a 2xx answer means healthy.

Total: whatever the URL or the server does, the answer is a Health with a short message, never an
exception. The URL passes the egress guard first, redirects are not followed (a 3xx is unhealthy)
and the body is never read, so a hostile endpoint can neither steer the request elsewhere nor
flood the operator.
"""

from __future__ import annotations

import logging

import aiohttp

from keyturn.domain.egress import EgressPolicy, Refused, health_url, shorten
from keyturn.domain.targets import Health

TIMEOUT = aiohttp.ClientTimeout(total=5)
log = logging.getLogger("keyturn")


async def probe(
    url: str, policy: EgressPolicy | None = None, client_timeout: aiohttp.ClientTimeout = TIMEOUT
) -> Health:
    try:
        checked = health_url(url, policy or EgressPolicy())
    except Refused as exc:
        return Health(False, f"refused: {exc}")
    try:
        async with (
            aiohttp.ClientSession(timeout=client_timeout) as session,
            session.get(checked, allow_redirects=False) as response,
        ):
            status = response.status
    except Exception as exc:  # aiohttp, yarl, idna and the OS raise many kinds; all mean "unreachable"
        log.debug("health probe failed", exc_info=True)
        return Health(False, f"unreachable: {describe(exc)}")
    if 200 <= status < 300:
        return Health(True, f"HTTP {status}")
    if 300 <= status < 400:
        return Health(False, f"answered HTTP {status} (a redirect; Keyturn never follows redirects)")
    return Health(False, f"answered HTTP {status}")


def describe(exc: BaseException) -> str:
    """The error's kind, and for a connection error the OS's reason: short, and never a body."""
    name = type(exc).__name__
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, aiohttp.ClientConnectorError) and exc.os_error.strerror:
        return f"{name} ({shorten(exc.os_error.strerror, 80)})"
    return name
