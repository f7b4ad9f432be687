"""Plain HTTPS calls to the apiserver as the cluster admin, for start-up steps and probes.

The kubernetes client would do, but it is a heavy import that the CLI and the start-up path
do not otherwise need.
"""

from __future__ import annotations

import http.client
import json
import ssl
from typing import Any

from localcluster.network import LOOPBACK


class AdminAPI:
    def __init__(self, port: int, tls: ssl.SSLContext) -> None:
        self._port = port
        self._tls = tls

    def call(self, method: str, path: str, body: object = None) -> tuple[int, bytes]:
        """(HTTP status, body); raises OSError or HTTPException when the apiserver cannot answer."""
        conn = http.client.HTTPSConnection(LOOPBACK, self._port, context=self._tls, timeout=5)
        try:
            data = json.dumps(body).encode() if body is not None else None
            conn.request(
                method,
                path,
                body=data,
                headers={"Content-Type": "application/json", "Accept": "application/json"},
            )
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()

    def status(self, path: str) -> int:
        """The status of a GET, 0 when the apiserver cannot answer."""
        try:
            return self.call("GET", path)[0]
        except (OSError, http.client.HTTPException):
            return 0

    def get_json(self, path: str) -> dict[str, Any] | None:
        """The object at ``path``, or None when it is missing or the apiserver cannot answer."""
        try:
            status, data = self.call("GET", path)
        except (OSError, http.client.HTTPException):
            return None
        if status != 200:
            return None
        obj: dict[str, Any] = json.loads(data)
        return obj
