"""Helpers shared by the client tests: volume swaps, tokens, JWKS documents, metric samples and a
local HTTP server that serves what a test tells it to.

Volumes are changed the way the kubelet changes them (`kubelet_write` below, written
independently of keyturn.client.mounts): a new timestamped directory, a temporary symlink renamed
over `..data`, visible items as `NAME -> ..data/NAME`. Tokens are also produced and checked
with jwcrypto, a second JOSE implementation, so the verifier is not only tested against itself.
Waiting is on conditions with deadlines (helpers.wait_for), never on fixed sleeps.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import shutil
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from keyturn.client import ClientMetrics, HmacVerifier, JwksVerifier, ValidationReason, VerificationError
from keyturn.keys.jwk import public_jwk
from keyturn.keys.material import KeyMaterial

DEADLINE = 10.0
Keys = list[tuple[KeyMaterial, str]]


def kubelet_write(mount: Path, files: Mapping[str, str]) -> None:
    """Replace the volume's content exactly like the kubelet's AtomicWriter does."""
    mount.mkdir(parents=True, exist_ok=True)
    stamp = f"..{datetime.now(UTC):%Y_%m_%d_%H_%M_%S.%f}{secrets.token_hex(3)}"
    fresh = mount / stamp
    fresh.mkdir()
    for name, content in files.items():
        (fresh / name).write_text(content)
    data = mount / "..data"
    old = os.readlink(data) if data.is_symlink() else None
    tmp = mount / "..data_tmp"
    os.symlink(stamp, tmp)
    os.rename(tmp, data)  # the atomic step
    for name in files:
        if not (mount / name).is_symlink():
            os.symlink(f"..data/{name}", mount / name)
    if old is not None:
        gone = [n for n in os.listdir(mount / old) if n not in files]
        shutil.rmtree(mount / old)
        for name in gone:
            (mount / name).unlink()


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims(**extra: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"sub": "alice", "iat": now, "exp": now + 300, **extra}


def jwks_text(*keys: tuple[KeyMaterial, str]) -> str:
    return json.dumps({"keys": [public_jwk(m, kid) for m, kid in keys]})


def outcome(verifier: JwksVerifier | HmacVerifier, token: str, **kwargs: Any) -> ValidationReason | None:
    """None if the token verifies, else the reason it was refused for."""
    try:
        verifier.verify(token, **kwargs)
    except VerificationError as exc:
        return exc.reason
    return None


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


def validations(registry: CollectorRegistry, reason: str, kid: str) -> float:
    result = "success" if reason == "ok" else "failure"
    return sample(registry, "jwt_validations_total", result=result, reason=reason, kid=kid)


def forge(header: dict[str, Any], payload: dict[str, Any], key: bytes, digest: str = "sha256") -> str:
    """A JWS built by hand, so a test can make what PyJWT refuses to make."""
    signing_input = (
        b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(payload).encode())
    ).encode()
    signature = hmac.new(key, signing_input, getattr(hashlib, digest)).digest() if key else b""
    return signing_input.decode() + "." + b64url(signature)


class JwksMount:
    """A test's `<keyset>-jwks` ConfigMap volume: rewritten like the kubelet does, read by
    JwksVerifier.from_file the way a pod reads it."""

    def __init__(self, directory: Path, metrics: ClientMetrics, closing: Callable[[Any], Any]) -> None:
        self.directory = directory
        self.metrics = metrics
        self.closing = closing

    def publish(self, *keys: tuple[KeyMaterial, str]) -> None:
        self.write(jwks_text(*keys))

    def write(self, text: str) -> None:
        kubelet_write(self.directory, {"jwks.json": text})

    def verifier(self, check_interval: float) -> JwksVerifier:
        file = self.directory / "jwks.json"
        verifier: JwksVerifier = self.closing(
            JwksVerifier.from_file(file, check_interval=check_interval, metrics=self.metrics)
        )
        return verifier


class Server:
    """A local HTTP server whose answer each test scripts: body, status, headers, pace."""

    def __init__(self) -> None:
        self.body = b'{"keys": []}'
        self.status = 200
        self.headers: dict[str, str] = {}
        self.trickle: float | None = None  # seconds between body bytes
        self.paths: list[str] = []
        self.etags: list[str | None] = []  # If-None-Match of each request
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with server.lock:
                    server.paths.append(self.path)
                    server.etags.append(self.headers.get("If-None-Match"))
                self.send_response(server.status)
                for name, value in server.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(server.body)))
                self.end_headers()
                try:
                    if server.trickle is None:
                        self.wfile.write(server.body)
                        return
                    for i in range(len(server.body)):
                        self.wfile.write(server.body[i : i + 1])
                        self.wfile.flush()
                        time.sleep(server.trickle)  # the hostile pace under test, not a wait
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        # A short poll interval makes shutdown() quick; it is not a wait in any test.
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_port}{path}"

    def requested(self) -> list[str]:
        with self.lock:
            return list(self.paths)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
