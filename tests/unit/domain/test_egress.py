"""domain/egress.py, the egress guard: which health URLs and Prometheus addresses the operator may request."""

from __future__ import annotations

import pytest

from keyturn.domain.egress import (
    MAX_URL,
    EgressPolicy,
    Refused,
    health_url,
    parse_pattern,
    prometheus_query_url,
    shorten,
)

OPEN = EgressPolicy()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://api.auth:8000/health/jwt", "http://api.auth:8000/health/jwt"),
        ("https://api.auth.svc.cluster.local/health", "https://api.auth.svc.cluster.local/health"),
        ("http://api.auth:8000/health?check=jwt", "http://api.auth:8000/health?check=jwt"),
        ("http://127.0.0.1:8000/h", "http://127.0.0.1:8000/h"),
        ("http://[::1]:8000/h", "http://[::1]:8000/h"),
        ("http://API.Auth:8000/h", "http://api.auth:8000/h"),
        ("http://bücher.example/h", "http://xn--bcher-kva.example/h"),
        ("  http://api.auth/h  ", "http://api.auth/h"),
    ],
    ids=["service", "https", "query kept", "ipv4", "ipv6", "upper case", "idna", "surrounding spaces"],
)
def test_health_urls_accepted(url: str, expected: str) -> None:
    assert str(health_url(url, OPEN)) == expected


@pytest.mark.parametrize(
    ("url", "rule"),
    [
        ("", "Unparseable"),
        ("api.auth:8000/health", "Scheme"),
        ("ftp://api.auth/h", "Scheme"),
        ("file:///etc/passwd", "Scheme"),
        ("gopher://api.auth/", "Scheme"),
        ("http:///health", "Unparseable"),
        ("http://user:secret@api.auth/h", "UserInfo"),
        ("http://user@api.auth/h", "UserInfo"),
        ("http://api.auth/h#frag", "Fragment"),
        ("http://api.auth/h#", "Fragment"),
        ("http://" + "a" * 64 + ".auth/h", "Host"),
        ("http://" + ".".join(["a" * 60] * 5) + "/h", "Host"),
        ("http://api..auth/h", "Host"),
        ("http://-api.auth/h", "Host"),
        ("http://%41pi.auth/h", "Host"),
        ("http://api auth/h", "Unparseable"),
        ("http://api.auth/h\x07x", "Unparseable"),
        ("http://api.auth:99999/h", "Unparseable"),
        ("http://[zz]/h", "Unparseable"),
        ("http://2130706433/h", "Host"),
        ("http://0x7f000001/h", "Host"),
        ("http://127.1/h", "Host"),
        ("http://010.0.0.1/h", "Host"),
        ("http://169.254.169.254/latest/meta-data", "LinkLocal"),
        ("http://[fe80::1]/h", "LinkLocal"),
        ("http://[::ffff:169.254.169.254]/h", "LinkLocal"),
        ("http://api.auth/" + "x" * MAX_URL, "TooLong"),
    ],
    ids=[
        "empty",
        "no scheme",
        "ftp",
        "file",
        "gopher",
        "no host",
        "user and password",
        "user",
        "fragment",
        "empty fragment",
        "host label over 63 characters",
        "host name over 253 characters",
        "empty label",
        "label starts with a hyphen",
        "percent in host",
        "space in host",
        "control character",
        "port out of range",
        "bad ipv6",
        "decimal ipv4",
        "hex ipv4",
        "short ipv4",
        "octal ipv4",
        "cloud metadata",
        "ipv6 link-local",
        "ipv4-mapped link-local",
        "huge",
    ],
)
def test_health_urls_refused(url: str, rule: str) -> None:
    with pytest.raises(Refused) as refused:
        health_url(url, OPEN)
    assert refused.value.rule == rule
    assert len(str(refused.value)) < 400  # never the whole hostile URL


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("http://prometheus.monitoring:9090", "http://prometheus.monitoring:9090/api/v1/query"),
        ("http://prometheus.monitoring:9090/", "http://prometheus.monitoring:9090/api/v1/query"),
        ("https://mon.example/prometheus", "https://mon.example/prometheus/api/v1/query"),
        ("https://mon.example/prometheus/", "https://mon.example/prometheus/api/v1/query"),
    ],
    ids=["bare", "trailing slash", "path prefix", "path prefix with slash"],
)
def test_the_query_path_is_joined_to_the_address(address: str, expected: str) -> None:
    assert str(prometheus_query_url(address, OPEN)) == expected


@pytest.mark.parametrize(
    ("address", "rule"),
    [
        ("http://evil.example/steal?x=", "Query"),
        ("http://evil.example/steal?", "Query"),
        ("http://evil.example/steal#", "Fragment"),
        ("http://u:p@prometheus:9090", "UserInfo"),
        ("unix:///var/run/prom.sock", "Scheme"),
    ],
    ids=["query swallows the suffix", "empty query", "fragment swallows the suffix", "user info", "unix"],
)
def test_analysis_addresses_refused(address: str, rule: str) -> None:
    with pytest.raises(Refused) as refused:
        prometheus_query_url(address, OPEN)
    assert refused.value.rule == rule


ALLOW = EgressPolicy.from_patterns(
    ["*.monitoring.svc,prometheus.monitoring:9090", "10.0.0.0/8", "[::1]:8000"]
)


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("http://prom.monitoring.svc/h", True),
        ("http://prom.monitoring.svc:1234/h", True),
        ("http://a.b.monitoring.svc/h", True),
        ("http://monitoring.svc/h", False),
        ("http://prom.monitoring.svc.evil.example/h", False),
        ("http://prometheus.monitoring:9090/h", True),
        ("http://prometheus.monitoring:9091/h", False),
        ("http://prometheus.monitoring/h", False),  # port 80
        ("http://10.1.2.3/h", True),
        ("http://11.1.2.3/h", False),
        ("http://[::1]:8000/h", True),
        ("http://[::1]:8001/h", False),
        ("http://api.auth/h", False),
        ("http://169.254.169.254/h", False),
    ],
    ids=[
        "glob",
        "glob any port",
        "glob spans dots",
        "bare parent domain",
        "suffix trick",
        "host and port",
        "other port",
        "default port",
        "in cidr",
        "outside cidr",
        "ipv6 and port",
        "ipv6 other port",
        "unlisted",
        "metadata not listed",
    ],
)
def test_allow_list(url: str, allowed: bool) -> None:
    if allowed:
        assert health_url(url, ALLOW).host
    else:
        with pytest.raises(Refused) as refused:
            health_url(url, ALLOW)
        assert refused.value.rule in ("NotAllowed", "LinkLocal")
        assert "allow" in str(refused.value)


def test_a_link_local_address_named_by_a_pattern_is_allowed() -> None:
    assert health_url("http://169.254.10.1/h", EgressPolicy.from_patterns(["169.254.0.0/16"])).host


@pytest.mark.parametrize(
    "pattern",
    ["a b", "host:port", "host:0", "host:70000", "10.0.0.0/33", "[::1]x", "exa$mple.com", " "],
    ids=[
        "space",
        "port not a number",
        "port 0",
        "port too big",
        "bad prefix",
        "junk after ipv6",
        "dollar",
        "empty",
    ],
)
def test_bad_patterns_are_refused_with_their_text(pattern: str) -> None:
    with pytest.raises(ValueError, match=r"pattern"):
        parse_pattern(pattern)


def test_from_patterns_splits_commas_and_describes_itself() -> None:
    policy = EgressPolicy.from_patterns(["a.example, b.example:80", ""])
    assert [p.text for p in policy.patterns] == ["a.example", "b.example:80"]
    assert policy.describe() == "a.example, b.example:80"
    assert EgressPolicy().describe() == "any host"


def test_shorten_bounds_and_cleans() -> None:
    assert shorten("x" * 1000, 50) == "x" * 49 + "…"
    assert shorten("a\nb") == "a?b"
    assert shorten("short") == "short"
