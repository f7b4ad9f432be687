"""client/http_source.py: a JWKS URL is cached, refetched with a rate limit, and its answers are hostile.

Redirects are never followed, answers are bounded in size and time, and neither credentials in the
URL nor a server's ETag reach a message unchecked."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from helpers import wait_for
from keyturn.client import ClientMetrics, JwksVerifier, KeySourceError, ValidationReason
from keyturn.client.jwks import MAX_DOCUMENT_BYTES
from keyturn.keys.material import KeyMaterial
from keyturn.keys.signing import sign
from unit.client.support import DEADLINE, Keys, Server, claims, jwks_text, outcome, sample


class JwksServer:
    """A local JWKS endpoint that counts its requests and can be told to fail."""

    def __init__(self, document: str) -> None:
        self.document = document
        self.requests = 0
        self.not_modified = 0
        self.fail = False
        self.lock = threading.Lock()
        server_self = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with server_self.lock:
                    server_self.requests += 1
                    body, fail = server_self.document.encode(), server_self.fail
                etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
                if fail:
                    self.send_response(503)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if self.headers.get("If-None-Match") == etag:
                    with server_self.lock:
                        server_self.not_modified += 1
                    self.send_response(304)
                    self.send_header("ETag", etag)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("ETag", etag)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/.well-known/jwks.json"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def count(self) -> int:
        with self.lock:
            return self.requests

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def jwks_server(rsa_keys: Keys) -> Iterator[JwksServer]:
    (a, kid_a), _, _ = rsa_keys
    server = JwksServer(jwks_text((a, kid_a)))
    yield server
    server.close()


def test_jwks_url_is_cached_for_the_ttl_then_refetched(
    jwks_server: JwksServer, rsa_keys: Keys, metrics: ClientMetrics, registry: CollectorRegistry, closing: Any
) -> None:
    (a, kid_a), (b, kid_b), _ = rsa_keys
    verifier = closing(
        JwksVerifier.from_url(jwks_server.url, cache_ttl=0.3, min_refetch_interval=0.1, metrics=metrics)
    )
    token_a = sign(a, claims(), kid_a)
    started = time.monotonic()
    for _ in range(20):
        verifier.verify(token_a)
    if time.monotonic() - started < 0.3:  # all within the TTL: served from the cache
        assert jwks_server.count() == 1
    jwks_server.document = jwks_text((b, kid_b))
    wait_for(
        lambda: outcome(verifier, token_a) is ValidationReason.UNKNOWN_KID,
        DEADLINE,
        0.05,
        "the TTL to expire and the new document to replace the old",
    )
    assert verifier.verify(sign(b, claims(), kid_b))["sub"] == "alice"
    assert sample(registry, "jwt_key_reloads_total", source="jwks_url", result="success") >= 2


def test_jwks_url_unknown_kid_refetch_is_rate_limited(
    jwks_server: JwksServer, rsa_keys: Keys, metrics: ClientMetrics
) -> None:
    (a, kid_a), (b, kid_b), _ = rsa_keys
    verifier = JwksVerifier.from_url(
        jwks_server.url, cache_ttl=3600, min_refetch_interval=0.5, metrics=metrics
    )
    assert jwks_server.count() == 1
    jwks_server.document = jwks_text((b, kid_b), (a, kid_a))
    token_b = sign(b, claims(), kid_b)
    # Right after a fetch an unknown kid does not trigger another one ...
    burst_started = time.monotonic()
    refused = [outcome(verifier, sign(b, claims(), f"forged-{i}")) for i in range(50)]
    if time.monotonic() - burst_started < 0.5:
        assert jwks_server.count() == 1
    assert set(refused) == {ValidationReason.UNKNOWN_KID}
    # ... but once the interval has passed the kid that just appeared is fetched and accepted.
    wait_for(lambda: outcome(verifier, token_b) is None, DEADLINE, 0.05, "refetch")
    fetched = jwks_server.count()
    for i in range(50):
        outcome(verifier, sign(b, claims(), f"forged-{i}"))
    assert jwks_server.count() - fetched <= 1 + int((time.monotonic() - burst_started) / 0.5)


def test_jwks_url_keeps_serving_cached_keys_when_the_endpoint_fails(
    jwks_server: JwksServer, rsa_keys: Keys, metrics: ClientMetrics, registry: CollectorRegistry
) -> None:
    (a, kid_a), _, _ = rsa_keys
    verifier = JwksVerifier.from_url(
        jwks_server.url, cache_ttl=0.05, min_refetch_interval=0.05, metrics=metrics
    )
    jwks_server.fail = True
    token_a = sign(a, claims(), kid_a)

    def verifies_through_failed_refetches() -> bool:
        assert verifier.verify(token_a)["sub"] == "alice"
        return sample(registry, "jwt_key_reloads_total", source="jwks_url", result="failure") >= 2

    wait_for(verifies_through_failed_refetches, DEADLINE, 0.05, "failed refetches")
    with pytest.raises(KeySourceError, match="HTTP 503"):
        verifier.refresh()
    jwks_server.fail = False
    verifier.refresh()

    # Unchanged document: refetches are conditional (ETag) and answered 304, keys stay.
    def revalidated() -> bool:
        assert verifier.verify(token_a)["sub"] == "alice"
        return jwks_server.not_modified > 0

    wait_for(revalidated, DEADLINE, 0.05, "a 304 revalidation")
    with pytest.raises(KeySourceError):
        JwksVerifier.from_url("http://127.0.0.1:9/jwks.json", timeout=0.5, metrics=metrics)
    with pytest.raises(ValueError, match="http or https"):
        JwksVerifier.from_url("file:///etc/passwd", metrics=metrics)


@pytest.fixture
def server() -> Iterator[Server]:
    running = Server()
    yield running
    running.close()


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
@pytest.mark.parametrize(
    "location",
    [
        pytest.param("/elsewhere", id="same host"),
        pytest.param("http://169.254.169.254/latest/meta-data/", id="another host"),
        pytest.param("file:///etc/passwd", id="another scheme"),
    ],
)
def test_redirects_are_never_followed(
    server: Server, metrics: ClientMetrics, status: int, location: str
) -> None:
    server.status, server.headers = status, {"Location": location}
    with pytest.raises(KeySourceError, match=f"HTTP {status}; redirects are never followed"):
        JwksVerifier.from_url(server.url("/jwks"), metrics=metrics)
    assert server.requested() == ["/jwks"]


def test_an_answer_over_the_size_limit_is_refused(server: Server, metrics: ClientMetrics) -> None:
    server.body = b'{"keys": []}' + b" " * MAX_DOCUMENT_BYTES
    with pytest.raises(KeySourceError, match="sent more than"):
        JwksVerifier.from_url(server.url("/jwks"), metrics=metrics)


def test_the_timeout_bounds_the_whole_fetch_not_each_read(server: Server, metrics: ClientMetrics) -> None:
    server.body = b'{"keys": []}' + b" " * 200
    server.trickle = 0.02  # each byte well within the socket timeout; the whole body 4 s
    started = time.monotonic()
    with pytest.raises(KeySourceError, match=r"took longer than 0\.5s"):
        JwksVerifier.from_url(server.url("/jwks"), timeout=0.5, metrics=metrics)
    assert time.monotonic() - started < 2.5


def test_a_server_chosen_etag_is_only_echoed_when_it_is_plain(
    server: Server, metrics: ClientMetrics, keys: list[tuple[KeyMaterial, str]]
) -> None:
    (a, kid_a), _, _ = keys
    server.body = jwks_text((a, kid_a)).encode()
    server.headers = {"ETag": '"v1"\x7f'}
    verifier = JwksVerifier.from_url(
        server.url("/jwks"), cache_ttl=0.001, min_refetch_interval=0, metrics=metrics
    )

    def refetch() -> None:
        """One more request: past the TTL, each use of the verifier fetches once."""
        count = len(server.requested())
        wait_for(lambda: verifier.kids and len(server.requested()) > count, DEADLINE, 0.002, "a refetch")

    refetch()
    server.headers = {"ETag": '"v2"'}
    refetch()
    refetch()
    assert server.etags == [None, None, None, '"v2"']
    verifier.close()


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("file:///etc/passwd", "http or https"),
        ("ftp://example.com/jwks", "http or https"),
        ("data:application/json,{}", "http or https"),
        ("//example.com/jwks", "http or https"),
        ("https:///jwks", "name a host"),
        ("https://example.com:99999/jwks", "invalid port"),
        ("https://example.com/jwks\r\nX-Injected: 1", "control characters"),
        ("https://example.com/a b", "spaces"),
    ],
)
def test_urls_other_than_plain_http_are_configuration_errors(
    url: str, fragment: str, metrics: ClientMetrics
) -> None:
    with pytest.raises(ValueError, match=fragment):
        JwksVerifier.from_url(url, metrics=metrics)


def test_credentials_in_the_url_never_reach_a_message(server: Server, metrics: ClientMetrics) -> None:
    server.status = 500
    with pytest.raises(KeySourceError) as info:
        JwksVerifier.from_url(server.url("/jwks?token=s3cr3t#s3cr3t"), metrics=metrics)
    assert "HTTP 500" in str(info.value) and "s3cr3t" not in str(info.value)
    with pytest.raises(KeySourceError) as info:
        JwksVerifier.from_url(server.url("/jwks").replace("//", "//user:s3cr3t@"), metrics=metrics)
    assert "s3cr3t" not in str(info.value)
