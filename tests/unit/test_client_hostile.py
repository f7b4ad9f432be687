"""keyturn.client against hostile input: JWKS documents, HTTP answers and volume layouts.

Whatever a document, a server or a directory holds, the library answers with a named error
(KeySourceError, LeakedKeyError, ValueError for configuration) and never with another exception,
never trusts a key whose private part was published, and never writes outside its mount.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from helpers import wait_for
from keyturn.client import ClientMetrics, JwksVerifier, KeySourceError, ValidationReason, project
from keyturn.client.errors import LeakedKeyError
from keyturn.client.jwks import MAX_DOCUMENT_BYTES, PRIVATE_MEMBERS, parse_jwks
from keyturn.keys.algorithms import is_symmetric
from keyturn.keys.generation import generate
from keyturn.keys.jwk import private_jwk, public_jwk
from keyturn.keys.material import KeyMaterial
from keyturn.keys.signing import sign
from keyturn.keys.thumbprints import thumbprint
from unit.test_client import DEADLINE, claims, jwks_text, kubelet_write, outcome, sample

# ---------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def keys() -> list[tuple[KeyMaterial, str]]:
    made = [generate("ES256") for _ in range(3)]
    return [(k, thumbprint(k)) for k in made]


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def metrics(registry: CollectorRegistry) -> ClientMetrics:
    return ClientMetrics(registry)


def leaked(material: KeyMaterial, kid: str, *members: str) -> dict[str, Any]:
    """The public JWK with private members added (the real ones where the key has them)."""
    private = private_jwk(material, kid) if not is_symmetric(material.algorithm) else {}
    return {**public_jwk(material, kid), **{m: private.get(m, "AQAB") for m in members}}


# ---------------------------------------------------------------------- private material


@pytest.mark.parametrize("member", PRIVATE_MEMBERS)
def test_a_jwks_with_a_private_member_is_refused_as_a_whole(
    member: str, keys: list[tuple[KeyMaterial, str]]
) -> None:
    (a, kid_a), (b, kid_b), _ = keys
    document = {"keys": [public_jwk(a, kid_a), leaked(b, kid_b, member)]}
    with pytest.raises(LeakedKeyError) as info:
        parse_jwks(json.dumps(document))
    assert isinstance(info.value, KeySourceError)
    assert f"kid {kid_b}: {member}" in str(info.value)
    assert kid_b in info.value.ids and thumbprint(b) in info.value.ids and kid_a not in info.value.ids
    private_d = private_jwk(b, kid_b)["d"]
    assert private_d not in str(info.value)


@pytest.mark.parametrize(
    "entry",
    [
        pytest.param({"kty": "oct", "kid": "hs", "alg": "HS256", "k": "c2VjcmV0"}, id="oct with k"),
        pytest.param({"kty": "oct", "kid": "hs"}, id="oct without k"),
        pytest.param({"kty": "RSA", "k": "c2VjcmV0"}, id="k without kid"),
        pytest.param({"d": None}, id="d of any value"),
    ],
)
def test_symmetric_keys_and_stray_private_members_are_leaks_too(entry: dict[str, Any]) -> None:
    with pytest.raises(LeakedKeyError):
        JwksVerifier.from_jwks({"keys": [entry]}, metrics=ClientMetrics(CollectorRegistry()))


def test_a_leak_withdraws_the_key_from_what_was_loaded_before_and_for_good(
    tmp_path: Path, keys: list[tuple[KeyMaterial, str]], metrics: ClientMetrics, registry: CollectorRegistry
) -> None:
    (a, kid_a), (b, kid_b), (c, kid_c) = keys
    mount = tmp_path / "jwks"
    kubelet_write(mount, {"jwks.json": jwks_text((a, kid_a), (b, kid_b))})
    verifier = JwksVerifier.from_file(mount / "jwks.json", check_interval=0, metrics=metrics)
    token_a, token_b = sign(a, claims(), kid_a), sign(b, claims(), kid_b)
    assert verifier.verify(token_a) and verifier.verify(token_b)

    # b's private key is published: the document is refused, and b is no longer trusted even
    # though the keys loaded before (which are kept otherwise) hold its public part.
    leak = {"keys": [public_jwk(c, kid_c), public_jwk(a, kid_a), leaked(b, kid_b, "d")]}
    kubelet_write(mount, {"jwks.json": json.dumps(leak)})
    with pytest.raises(LeakedKeyError):
        verifier.refresh()
    assert outcome(verifier, token_b) is ValidationReason.UNKNOWN_KID
    assert verifier.verify(token_a)["sub"] == "alice"
    assert outcome(verifier, sign(c, claims(), kid_c)) is ValidationReason.UNKNOWN_KID, "doc refused"
    assert registry.get_sample_value("jwt_keys_loaded", {"kid": kid_b}) is None
    assert sample(registry, "jwt_key_reloads_total", source="jwks_file", result="failure") >= 1
    assert f"kid {kid_b} withdrawn" in verifier.describe()

    # A clean document that still lists b (or the same key under another kid) does not bring it back.
    again = {"keys": [public_jwk(c, kid_c), public_jwk(b, kid_b), public_jwk(b, "b-again")]}
    kubelet_write(mount, {"jwks.json": json.dumps(again)})
    wait_for(lambda: verifier.kids == (kid_c,), DEADLINE, 0.02, "the clean document, without b")
    assert outcome(verifier, sign(b, claims(), "b-again")) is ValidationReason.UNKNOWN_KID
    verifier.close()


def test_a_leak_under_another_kid_withdraws_the_same_key(
    keys: list[tuple[KeyMaterial, str]], metrics: ClientMetrics
) -> None:
    """The leaked key is recognised by its thumbprint, whatever kid it was loaded under."""
    (a, kid_a), (b, kid_b), _ = keys
    server = Server()
    try:
        server.body = jwks_text((a, kid_a), (b, kid_b)).encode()
        verifier = JwksVerifier.from_url(server.url("/jwks"), cache_ttl=3600, metrics=metrics)
        server.body = json.dumps({"keys": [leaked(a, "renamed", "d", "p", "q")]}).encode()
        with pytest.raises(LeakedKeyError, match="kid renamed: d, p, q"):
            verifier.refresh()
        assert verifier.kids == (kid_b,)
        assert outcome(verifier, sign(a, claims(), kid_a)) is ValidationReason.UNKNOWN_KID
        verifier.close()
    finally:
        server.close()


# ---------------------------------------------------------------------- hostile documents

DEEP = 200_000


@pytest.mark.parametrize(
    "document",
    [
        pytest.param("[" * DEEP + "]" * DEEP, id="deep arrays"),
        pytest.param('{"keys": ' + "[" * DEEP + "]" * DEEP + "}", id="deep keys"),
        pytest.param('{"keys": [' + '{"a":' * DEEP + "1" + "}" * DEEP + "]}", id="deep entry"),
        pytest.param('{"keys": [{"kid": "k", "n": ' + "9" * 10_000 + "}]}", id="huge integer"),
        pytest.param('{"keys": NaN}', id="NaN"),
        pytest.param(b'{"keys": ["\xff"]}', id="not UTF-8"),
        pytest.param(b"\xef\xbb\xbf{}", id="byte order mark"),
        pytest.param("", id="empty"),
        pytest.param("null", id="null"),
        pytest.param('"keys"', id="a string"),
        pytest.param('{"keys": {"0": {}}}', id="keys an object"),
        pytest.param('{"keys": "' + "x" * 10 + '"}', id="keys a string"),
        pytest.param(" " * (MAX_DOCUMENT_BYTES + 1), id="too large"),
        pytest.param('{"keys": [' + ",".join(["{}"] * 300) + "]}", id="too many keys"),
    ],
)
def test_hostile_documents_are_a_key_source_error(document: str | bytes) -> None:
    with pytest.raises(KeySourceError):
        parse_jwks(document)


def test_wrong_types_at_every_level_are_skipped_and_named(keys: list[tuple[KeyMaterial, str]]) -> None:
    (a, kid_a), _, _ = keys
    good = public_jwk(a, kid_a)
    entries: list[Any] = [
        None,
        [good],
        7,
        {"kid": ["k"]},
        {"kid": "x" * 1000, "kty": "EC"},
        {"kid": "\ud800"},
        {**good, "kid": "alg", "alg": ["ES256"]},
        {**good, "kid": "use", "use": {"sig": True}},
        {**good, "kid": "kty", "kty": None},
        {**good, "kid": "crv", "crv": 1},
        {**good, "kid": "x-int", "x": 12345},
        {**good, "kid": "x-list", "x": [good["x"]]},
        {**good, "kid": "y-null", "y": None},
        {**good, "kid": "x-surrogate", "x": "\udfff"},
        {**good, "kid": "x-infinite", "x": float("inf")},
        {**good, "kid": "rsa-e", "kty": "RSA", "alg": "RS256", "n": "AQAB", "e": "A" * 5000},
        {**good, "kid": "ed448", "kty": "OKP", "alg": "EdDSA", "crv": "Ed448", "x": {"x": 1}},
        good,
    ]
    snapshot = parse_jwks(json.dumps({"keys": entries}))
    assert snapshot.kids == (kid_a,)
    assert len(snapshot.problems) == len(entries) - 1


# ---------------------------------------------------------------------- fuzzing

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**40), max_value=10**40)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
    | st.sampled_from(
        ["RSA", "EC", "OKP", "oct", "sig", "ES256", "RS256", "EdDSA", "P-256", "Ed448", "AQAB"]
    ),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(["kid", "kty", "alg", "use", "crv", "x", "y", "n", "e", "keys", *PRIVATE_MEMBERS])
            | st.text(max_size=4),
            children,
            max_size=6,
        )
    ),
    max_leaves=20,
)


def hostile_documents() -> st.SearchStrategy[Any]:
    entry = st.dictionaries(
        st.sampled_from(["kid", "kty", "alg", "use", "crv", "x", "y", "n", "e", *PRIVATE_MEMBERS]),
        JSON,
        max_size=8,
    )
    as_json = st.one_of(JSON, st.fixed_dictionaries({"keys": st.lists(entry | JSON, max_size=5)}))
    return st.one_of(
        as_json.map(json.dumps),
        as_json.map(lambda doc: json.dumps(doc).encode("utf-16")),
        st.binary(max_size=64),
        st.integers(min_value=1, max_value=5000).map(lambda depth: '{"keys": [' * depth),
        st.integers(min_value=1, max_value=5000).map(lambda digits: '{"keys": [' + "7" * digits + "]}"),
    )


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hostile_documents())
def test_fuzz_only_named_errors_escape_the_jwks_parser(document: str | bytes) -> None:
    try:
        snapshot = parse_jwks(document)
    except KeySourceError:
        return
    assert all(isinstance(kid, str) and kid.isprintable() for kid in snapshot.kids)
    snapshot.describe()


# ---------------------------------------------------------------------- HTTP


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


# ---------------------------------------------------------------------- project()


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A directory next to the mount, with content that must survive whatever project() does."""
    where = tmp_path / "outside"
    where.mkdir()
    (where / "sentinel").write_text("keep me")
    (where / "a").write_text("not yours")
    return where


def tree(path: Path) -> dict[str, str]:
    return {str(p.relative_to(path)): p.read_text() for p in sorted(path.rglob("*")) if p.is_file()}


def mount_in(tmp_path: Path) -> Path:
    mount = tmp_path / "deep" / "er" / "mount"
    project(mount, {"a": "1", "b": "2"})
    return mount


Hostile = Callable[[Path, Path], None]


def data_link(target: str) -> Hostile:
    def make(mount: Path, _outside: Path) -> None:
        os.replace(_link(mount, target), mount / "..data")

    return make


def _link(mount: Path, target: str) -> Path:
    tmp = mount / "..hostile_tmp"
    os.symlink(target, tmp)
    return tmp


def data_link_to_outside(mount: Path, outside: Path) -> None:
    os.replace(_link(mount, str(outside)), mount / "..data")


def data_link_to_relative_outside(mount: Path, outside: Path) -> None:
    os.replace(_link(mount, os.path.relpath(outside, mount)), mount / "..data")


def version_dir_is_a_link_outside(mount: Path, outside: Path) -> None:
    os.symlink(outside, mount / "..2020_01_01_00_00_00.1")
    os.replace(_link(mount, "..2020_01_01_00_00_00.1"), mount / "..data")


def version_dir_holds_links_outside(mount: Path, outside: Path) -> None:
    version = mount / os.readlink(mount / "..data")
    os.symlink(outside, version / "c")
    os.symlink(outside / "sentinel", version / "d")


def visible_items_point_outside(mount: Path, outside: Path) -> None:
    os.replace(_link(mount, str(outside / "a")), mount / "a")
    os.replace(_link(mount, "../../../outside"), mount / "b")


@pytest.mark.parametrize(
    "make_hostile",
    [
        pytest.param(data_link("/"), id="..data to /"),
        pytest.param(data_link(".."), id="..data to the parent"),
        pytest.param(data_link("../.."), id="..data to a grandparent"),
        pytest.param(data_link("..2020_x/../.."), id="..data through a .. component"),
        pytest.param(data_link("."), id="..data to the mount itself"),
        pytest.param(data_link("..data"), id="..data to itself"),
        pytest.param(data_link_to_outside, id="..data to an absolute path outside"),
        pytest.param(data_link_to_relative_outside, id="..data to a relative path outside"),
        pytest.param(version_dir_is_a_link_outside, id="version directory is a link outside"),
        pytest.param(version_dir_holds_links_outside, id="version directory holds links outside"),
        pytest.param(visible_items_point_outside, id="visible items point outside"),
    ],
)
def test_project_never_deletes_or_writes_outside_the_mount(
    tmp_path: Path, outside: Path, make_hostile: Hostile
) -> None:
    mount = mount_in(tmp_path)
    make_hostile(mount, outside)
    before = tree(tmp_path / "deep"), tree(outside)
    project(mount, {"a": "3"})
    assert tree(outside) == before[1] == {"sentinel": "keep me", "a": "not yours"}
    assert (tmp_path / "deep" / "er").is_dir()
    assert (mount / "a").read_text() == "3" and os.readlink(mount / "a") == "..data/a"
    target = os.readlink(mount / "..data")
    assert os.sep not in target and (mount / target).is_dir() and not (mount / target).is_symlink()
    project(mount, {"a": "4"})
    assert (mount / "a").read_text() == "4" and tree(outside) == before[1]


@pytest.mark.parametrize("name", ["..data", "a"])
def test_project_refuses_a_mount_whose_links_are_real_files(tmp_path: Path, name: str) -> None:
    mount = mount_in(tmp_path)
    (mount / name).unlink()
    (mount / name).mkdir()
    (mount / name / "precious").write_text("x")
    with pytest.raises(ValueError, match="is not a symlink"):
        project(mount, {"a": "3"})
    assert (mount / name / "precious").read_text() == "x"


@pytest.mark.parametrize("name", ["", ".", "..", "..data", "..x", "a/b", "/etc/passwd", "a\0b", "x" * 254])
def test_project_refuses_names_that_are_not_item_names(tmp_path: Path, name: str) -> None:
    with pytest.raises(ValueError, match="is not a Secret/ConfigMap item name"):
        project(tmp_path / "mount", {name: "x"})
    assert not (tmp_path / "mount").exists()
