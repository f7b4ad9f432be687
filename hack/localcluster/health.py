"""Health checks: an HTTP(S) URL that answers 200 with an expected word once a component is ready."""

from __future__ import annotations

import http.client
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass(frozen=True)
class HealthCheck:
    """Ready when ``url`` answers 200 with ``expect`` in its body.

    ``tls`` is the client context for https URLs: the cluster CA, plus the admin's certificate
    where the endpoint wants an authenticated caller.
    """

    url: str
    expect: str = "ok"
    tls: ssl.SSLContext | None = None
    poll_interval: float = 0.1

    @property
    def path(self) -> str:
        return urlsplit(self.url).path

    def passes(self) -> bool:
        parts = urlsplit(self.url)
        host, port = parts.hostname or "", parts.port
        conn: http.client.HTTPConnection
        if parts.scheme == "https":
            conn = http.client.HTTPSConnection(host, port, context=self.tls, timeout=2)
        else:
            conn = http.client.HTTPConnection(host, port, timeout=2)
        try:
            conn.request("GET", parts.path or "/")
            resp = conn.getresponse()
            return resp.status == 200 and self.expect in resp.read().decode(errors="replace")
        except (OSError, http.client.HTTPException):
            return False
        finally:
            conn.close()
