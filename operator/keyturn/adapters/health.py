"""HTTP health gates of targets (keyturn.dev/health-url): a 2xx answer means healthy."""

from __future__ import annotations

import aiohttp

from keyturn.domain.targets import Health

TIMEOUT = aiohttp.ClientTimeout(total=5)


async def probe(url: str) -> Health:
    try:
        async with aiohttp.ClientSession(timeout=TIMEOUT) as session, session.get(url) as response:
            if 200 <= response.status < 300:
                return Health(True, f"HTTP {response.status}")
            return Health(False, f"answered HTTP {response.status}")
    except (aiohttp.ClientError, TimeoutError) as exc:
        return Health(False, f"unreachable: {type(exc).__name__}")
