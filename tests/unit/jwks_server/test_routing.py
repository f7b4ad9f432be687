"""What each request names, or why it is refused: method, path shape and Host, nothing else."""

from __future__ import annotations

import pytest

from keyturn.jwks_server.routing import Kind, parse_host, route

JWKS = "/.well-known/jwks.json"
ROUTES = {
    # (method, path, host) -> (kind, status, keyset, prefix)
    "a keyset's document": (
        ("GET", f"/auth/api-keys{JWKS}", "h"),
        (Kind.JWKS, 200, ("auth", "api-keys"), "/auth/api-keys"),
    ),
    "HEAD": (
        ("HEAD", f"/auth/api-keys{JWKS}", "h"),
        (Kind.JWKS, 200, ("auth", "api-keys"), "/auth/api-keys"),
    ),
    "a dotted keyset name": (("GET", f"/a/k.v2{JWKS}", "h"), (Kind.JWKS, 200, ("a", "k.v2"), "/a/k.v2")),
    "an issuer's root": (("GET", JWKS, "auth.example.com"), (Kind.JWKS, 200, None, "")),
    "an issuer's path": (("GET", f"/tenants/a{JWKS}", "h"), (Kind.JWKS, 200, ("tenants", "a"), "/tenants/a")),
    "a deep issuer path": (("GET", f"/x/y/z{JWKS}", "h"), (Kind.JWKS, 200, None, "/x/y/z")),
    "discovery": (
        ("GET", "/t/.well-known/openid-configuration", "h"),
        (Kind.DISCOVERY, 200, None, "/t"),
    ),
    "health": (("GET", "/healthz", "h"), (Kind.HEALTH, 200, None, "")),
    "health, probed over IPv6": (("GET", "/healthz", "[fd00::1]:8080"), (Kind.HEALTH, 200, None, "")),
    "ready": (("GET", "/readyz", "h"), (Kind.READY, 200, None, "")),
    "metrics": (("GET", "/metrics", "h"), (Kind.METRICS, 200, None, "")),
    "POST": (("POST", f"/a/b{JWKS}", "h"), (Kind.REFUSED, 405, None, "")),
    "OPTIONS": (("OPTIONS", "*", "h"), (Kind.REFUSED, 405, None, "")),
    "no Host": (("GET", f"/a/b{JWKS}", None), (Kind.REFUSED, 400, None, "")),
    "an empty Host": (("GET", "/healthz", ""), (Kind.REFUSED, 400, None, "")),
    "a Host with a path": (("GET", "/healthz", "h/x"), (Kind.REFUSED, 400, None, "")),
    "dot-dot": (("GET", f"/a/../b{JWKS}", "h"), (Kind.REFUSED, 400, None, "")),
    "dot": (("GET", f"/a/./b{JWKS}", "h"), (Kind.REFUSED, 400, None, "")),
    "percent-encoded dots": (("GET", f"/a/%2e%2e/b{JWKS}", "h"), (Kind.REFUSED, 400, None, "")),
    "a double slash": (("GET", f"/a//b{JWKS}", "h"), (Kind.REFUSED, 400, None, "")),
    "a backslash": (("GET", f"/a\\..\\b{JWKS}", "h"), (Kind.REFUSED, 400, None, "")),
    "a query-looking character": (("GET", f"/a/b{JWKS}?x", "h"), (Kind.REFUSED, 400, None, "")),
    "a NUL": (("GET", f"/a/b\x00{JWKS}", "h"), (Kind.REFUSED, 400, None, "")),
    "ends in dot-dot": (("GET", "/a/..", "h"), (Kind.REFUSED, 400, None, "")),
    "a relative path": (("GET", "a/b", "h"), (Kind.REFUSED, 400, None, "")),
    "a huge path": (("GET", "/" + "a" * 2000, "h"), (Kind.REFUSED, 414, None, "")),
    "another file": (("GET", "/etc/passwd", "h"), (Kind.REFUSED, 404, None, "")),
    "the root": (("GET", "/", "h"), (Kind.REFUSED, 404, None, "")),
    "another well-known file": (("GET", "/a/b/.well-known/security.txt", "h"), (Kind.REFUSED, 404, None, "")),
}


@pytest.mark.parametrize(("request_", "expected"), ROUTES.values(), ids=ROUTES.keys())
def test_route(
    request_: tuple[str, str, str | None], expected: tuple[Kind, int, tuple[str, str] | None, str]
) -> None:
    found = route(*request_)
    assert (found.kind, found.status, found.keyset, found.prefix) == expected


HOSTS = {
    "a name": ("auth.example.com", ("auth.example.com", None)),
    "upper case": ("Auth.Example.COM", ("auth.example.com", None)),
    "a port": ("auth.example.com:8443", ("auth.example.com", 8443)),
    "an address": ("127.0.0.1:8080", ("127.0.0.1", 8080)),
    "an IPv6 address (a kubelet probe)": ("[fd00::1]:8080", ("[fd00::1]", 8080)),
    "an unclosed IPv6 bracket": ("[fd00::1:8080", None),
    "absent": (None, None),
    "user info": ("u@h", None),
    "a space": ("a b", None),
    "too long": ("a" * 300, None),
    "a bad port": ("h:x", None),
}


@pytest.mark.parametrize(("header", "expected"), HOSTS.values(), ids=HOSTS.keys())
def test_parse_host(header: str | None, expected: tuple[str, int | None] | None) -> None:
    assert parse_host(header) == expected
