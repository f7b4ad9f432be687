"""The Go and Node consumers of examples/consumers keep the contract of docs/consumers.md.

Each example is built (Go) or installed (npm) once into the cache, started on a JWKS laid out as
the kubelet does, and asked to verify tokens signed at test time. Every verdict is also asked of
the Python client (keyturn.client, the reference), and the two metrics the gates read are
compared series by series with the Python client's after every step: same names, labels and
values, so a gate cannot tell one consumer's language from another's.

Needs Go (CI requires it) and Node.js 20+ with npm (`make system-deps` installs them from Debian
when missing); a test skips, with the reason, only when its toolchain is absent.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from helpers import wait_for
from integration.consumer_support import (
    EXAMPLES,
    Consumer,
    KeyPair,
    build_go,
    forged,
    go_env,
    install_node,
    loaded_kids,
    new_key,
    publish,
    publish_raw,
    running,
    validations,
    with_header,
)
from keyturn.client import ClientMetrics, JwksVerifier, VerificationError

AUDIENCE = "consumer-tests"
ISSUER = "https://issuer.keyturn.test"
RELOAD_INTERVAL_S = 0.1


@dataclass(frozen=True)
class Launcher:
    """How to start one example on a JWKS file."""

    name: str
    argv: Callable[[Path], list[str]]
    cwd: Path

    def start(self, jwks: Path) -> AbstractContextManager[Consumer]:
        return running(self.argv(jwks), self.cwd)


def _go(tmp: Path) -> Launcher:
    go = shutil.which("go")
    if go is None:
        pytest.skip("Go is not installed (CI requires it; see .ci/run)")
    binary = build_go(go)
    return Launcher(
        "go",
        lambda jwks: [
            str(binary), "-jwks", str(jwks), "-listen", "127.0.0.1:0", f"-interval={RELOAD_INTERVAL_S}s",
            "-audience", AUDIENCE, "-issuer", ISSUER,
        ],
        tmp,
    )  # fmt: skip


def _node(tmp: Path) -> Launcher:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("Node.js or npm is not installed: run `make system-deps`")
    version = subprocess.run([node, "--version"], capture_output=True, text=True, check=True).stdout.strip()
    found = re.match(r"v(\d+)", version)
    major = int(found.group(1)) if found else 0
    if major < 20:
        pytest.skip(f"Node.js {version} is too old: the example (jose 6) needs Node.js 20 or later")
    modules = install_node(npm, version)
    app = tmp / "node-app"
    app.mkdir()
    for name in ("server.mjs", "package.json"):
        shutil.copyfile(EXAMPLES / "node" / name, app / name)
    (app / "node_modules").symlink_to(modules, target_is_directory=True)
    return Launcher(
        "node",
        lambda jwks: [
            node, str(app / "server.mjs"), "--jwks", str(jwks), "--listen", "127.0.0.1:0",
            "--interval", str(RELOAD_INTERVAL_S), "--audience", AUDIENCE, "--issuer", ISSUER,
        ],
        app,
    )  # fmt: skip


@pytest.fixture(scope="module", params=["go", "node"])
def launcher(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Launcher:
    tmp = tmp_path_factory.mktemp(request.param)
    return _go(tmp) if request.param == "go" else _node(tmp)


@dataclass(frozen=True)
class Keys:
    rsa: KeyPair
    ec: KeyPair
    ed: KeyPair
    stranger: KeyPair  # never published
    newer: KeyPair  # published by the reload tests


@pytest.fixture(scope="module")
def keys() -> Keys:
    return Keys(
        rsa=new_key("rsa-1", "RS256"),
        ec=new_key("ec-1", "ES256"),
        ed=new_key("ed-1", "EdDSA"),
        stranger=new_key("stranger", "RS256"),
        newer=new_key("ec-2", "ES256"),
    )


def claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"aud": AUDIENCE, "iss": ISSUER, "iat": now, "exp": now + 300, **changes}


class Reference:
    """The Python client on the same file, with a private registry: what the consumer must match."""

    def __init__(self, jwks: Path) -> None:
        self.registry = CollectorRegistry()
        self.verifier = JwksVerifier.from_file(
            jwks, metrics=ClientMetrics(self.registry), audience=AUDIENCE, issuer=ISSUER, check_interval=0
        )

    def reason(self, token: str) -> str:
        try:
            self.verifier.verify(token)
        except VerificationError as exc:
            return exc.reason.value
        return "ok"

    def metrics(self) -> str:
        self.verifier.refresh()  # follows the file as the consumer's watcher does
        return generate_latest(self.registry).decode()

    def close(self) -> None:
        self.verifier.close()


def same_metrics(consumer: Consumer, reference: Reference) -> None:
    """Both gate metrics, series by series (labels and values), as the Python client has them."""
    theirs, ours = consumer.metrics(), reference.metrics()
    assert loaded_kids(theirs) == loaded_kids(ours), consumer.output()
    assert validations(theirs) == validations(ours), consumer.output()


# ------------------------------------------------------------------------------------ verdicts


@dataclass(frozen=True)
class Case:
    token: Callable[[Keys], str]
    reason: str


CASES = {
    "RS256 by its kid": Case(lambda k: k.rsa.token(**claims()), "ok"),
    "ES256 by its kid": Case(lambda k: k.ec.token(**claims()), "ok"),
    "EdDSA by its kid": Case(lambda k: k.ed.token(**claims()), "ok"),
    "a kid the JWKS does not hold": Case(lambda k: k.stranger.token(**claims()), "unknown_kid"),
    "another key under a published kid": Case(
        lambda k: k.stranger.token(kid="rsa-1", **claims()), "bad_signature"
    ),
    "expired beyond the leeway": Case(
        lambda k: k.rsa.token(**claims(iat=int(time.time()) - 600, exp=int(time.time()) - 60)), "expired"
    ),
    "nbf in the future": Case(lambda k: k.rsa.token(**claims(nbf=int(time.time()) + 600)), "not_yet_valid"),
    "no exp": Case(lambda k: k.rsa.token(**claims(exp=None)), "missing_claim"),
    "another audience": Case(lambda k: k.ec.token(**claims(aud="someone-else")), "bad_audience"),
    "another issuer": Case(lambda k: k.ec.token(**claims(iss="https://elsewhere.test")), "bad_issuer"),
    "no kid in the header": Case(lambda k: with_header(k.rsa.token(**claims()), kid=None), "missing_kid"),
    "alg none": Case(lambda k: forged({"alg": "none", "kid": "rsa-1"}, claims(), b""), "wrong_alg"),
    "alg NoNe": Case(lambda k: forged({"alg": "NoNe", "kid": "rsa-1"}, claims(), b""), "wrong_alg"),
    "PS256 against a key pinned to RS256": Case(
        lambda k: with_header(k.rsa.token(**claims()), alg="PS256"), "wrong_alg"
    ),
    "HS256 with the public key as secret": Case(
        lambda k: forged({"alg": "HS256", "kid": "rsa-1"}, claims()), "wrong_alg"
    ),
    "a kid that is not a string": Case(lambda k: with_header(k.rsa.token(**claims()), kid=7), "malformed"),
    "not a JWS": Case(lambda k: "not-a-token", "malformed"),
    "a header that is not JSON": Case(lambda k: "bm90IGpzb24.e30.c2ln", "malformed"),
}


@pytest.fixture(scope="module")
def served(
    launcher: Launcher, keys: Keys, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Consumer, Reference]]:
    mount = tmp_path_factory.mktemp(f"{launcher.name}-jwks")
    jwks = publish(mount, [keys.rsa.jwk(), keys.ec.jwk(), keys.ed.jwk()])
    reference = Reference(jwks)
    try:
        with launcher.start(jwks) as consumer:
            yield consumer, reference
    finally:
        reference.close()


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_verdict_and_metrics_match_the_python_client(
    case: Case, served: tuple[Consumer, Reference], keys: Keys
) -> None:
    consumer, reference = served
    token = case.token(keys)
    answer = consumer.verify(token)
    assert reference.reason(token) == case.reason  # the table states what the reference does
    expected_status = 200 if case.reason == "ok" else 401
    assert (answer.status, answer.body.get("reason", "ok")) == (expected_status, case.reason), (
        consumer.output()
    )
    same_metrics(consumer, reference)


# ------------------------------------------------------------------------------------ reloads


def test_follows_the_kubelet_swap_and_drops_removed_kids(
    launcher: Launcher, keys: Keys, tmp_path: Path
) -> None:
    jwks = publish(tmp_path / "mount", [keys.rsa.jwk(), keys.ec.jwk()])
    reference = Reference(jwks)
    with launcher.start(jwks) as consumer, contextlib.closing(reference):
        # Loaded at start: one series per kid, value 1, and each kid's success series at 0.
        assert loaded_kids(consumer.metrics()) == {"rsa-1": 1, "ec-1": 1}
        assert validations(consumer.metrics()) == {
            ("success", "ok", "rsa-1"): 0,
            ("success", "ok", "ec-1"): 0,
        }
        same_metrics(consumer, reference)
        for token, status in ((keys.rsa.token(**claims()), 200), (keys.ec.token(**claims()), 200)):
            assert consumer.verify(token).status == status
            reference.reason(token)
        early = keys.newer.token(**claims())  # ec-2 is not published yet
        assert consumer.verify(early).body["reason"] == reference.reason(early) == "unknown_kid"

        publish(tmp_path / "mount", [keys.newer.jwk(), keys.rsa.jwk()])  # ec-1 retired, ec-2 published
        wait_for(
            lambda: loaded_kids(consumer.metrics()) == {"ec-2": 1, "rsa-1": 1},
            timeout=10,
            message=f"{launcher.name} to load the new JWKS",
        )
        removed, added = (
            consumer.verify(keys.ec.token(**claims())),
            consumer.verify(keys.newer.token(**claims())),
        )
        assert (removed.status, removed.body["reason"]) == (401, "unknown_kid")
        assert added.status == 200
        for token in (keys.ec.token(**claims()), keys.newer.token(**claims())):
            reference.reason(token)
        assert validations(consumer.metrics()) == {
            ("success", "ok", "rsa-1"): 1,
            ("success", "ok", "ec-1"): 1,  # a counter keeps its history after its kid is dropped
            ("success", "ok", "ec-2"): 1,
            ("failure", "unknown_kid", "ec-2"): 1,
            ("failure", "unknown_kid", "ec-1"): 1,
        }
        same_metrics(consumer, reference)

        # A document that does not parse keeps the last good keys.
        publish_raw(tmp_path / "mount", '{"keys": [')
        wait_for(
            lambda: any("not reloaded" in line for line in consumer.lines),
            timeout=10,
            message=f"{launcher.name} to read the broken JWKS",
        )
        assert consumer.verify(keys.newer.token(**claims())).status == 200
        assert loaded_kids(consumer.metrics()) == {"ec-2": 1, "rsa-1": 1}


def test_a_published_private_key_is_withdrawn_for_good(
    launcher: Launcher, keys: Keys, tmp_path: Path
) -> None:
    jwks = publish(tmp_path / "mount", [keys.rsa.jwk(), keys.ec.jwk()])
    with launcher.start(jwks) as consumer:
        leaked = {**keys.ec.jwk(), "d": "AAAA"}  # the member's presence is the leak; its value is junk
        publish(tmp_path / "mount", [keys.rsa.jwk(), leaked, keys.newer.jwk()])
        wait_for(
            lambda: loaded_kids(consumer.metrics()) == {"rsa-1": 1},
            timeout=10,
            message=f"{launcher.name} to withdraw ec-1 (and not to take ec-2 from the refused document)",
        )
        assert consumer.verify(keys.ec.token(**claims())).body["reason"] == "unknown_kid"

        publish(tmp_path / "mount", [keys.rsa.jwk(), keys.ec.jwk(), keys.newer.jwk()])  # clean again
        wait_for(
            lambda: "ec-2" in loaded_kids(consumer.metrics()),
            timeout=10,
            message=f"{launcher.name} to load the clean JWKS",
        )
        assert loaded_kids(consumer.metrics()) == {"rsa-1": 1, "ec-2": 1}  # ec-1 never again
        assert consumer.verify(keys.ec.token(**claims())).body["reason"] == "unknown_kid"


def test_go_example_is_vet_and_gofmt_clean() -> None:
    go, gofmt = shutil.which("go"), shutil.which("gofmt")
    if go is None or gofmt is None:
        pytest.skip("Go is not installed (CI requires it; see .ci/run)")
    source = EXAMPLES / "go"
    vet = subprocess.run(
        [go, "vet", "./..."], cwd=source, env=go_env(), capture_output=True, text=True, check=False
    )
    assert vet.returncode == 0, vet.stdout + vet.stderr
    unformatted = subprocess.run([gofmt, "-l", "."], cwd=source, capture_output=True, text=True, check=True)
    assert unformatted.stdout == ""
