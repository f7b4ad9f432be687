"""End to end: the propagation gate reads Debian's real Prometheus scraping three real consumers.

Three processes of the example app verify tokens with the JWKS, each from its own mirror of the
ConfigMap (a kubelet stand-in with the `..data` swap), and export `jwt_keys_loaded`. One mirror is
frozen, so its process never sees the next key: a requested rotation is held (AwaitingPropagation,
2 of 3 consumers), the key never signs while it is, an emergency during the hold is answered at
once, and once the frozen consumer loads the key it signs within one gate interval of Prometheus
showing it. 25–30 s on the shared 2-core machine, the control plane's start included (the test
itself 8–10 s, set-up 13 s).
"""

from __future__ import annotations

import functools
import itertools
import json
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from e2e.stack import KubeletMirror, Prometheus, free_port
from helpers import wait_for
from kubetools import Kube, OperatorProcess

pytestmark = [pytest.mark.integration, pytest.mark.debian("prometheus")]
ROOT = Path(__file__).resolve().parents[2]
NAME = "keys"
CONSUMERS = 3
INTERVAL = 2.0  # spec.propagation.interval, in seconds
SCRAPE = 1.0  # Prometheus's scrape interval (stack.Prometheus)
# The operator's clock has whole seconds: two questions can be up to a second closer than the
# interval.
CLOCK_GRAIN = 1.1
# A pass, the API server and this test's polling, on a loaded machine. The gate asks at
# Prometheus's own time, so what this test sees in Prometheus the next question sees too.
SLACK = 2.0
QUESTIONS = 3  # gate questions about the held key before the test lets it go
ACK_TIMEOUT = 5.0
# The gate's question, told apart from this test's own queries in Prometheus's query log.
GATE_QUERY = "count by (instance)"


@dataclass
class Consumer:
    url: str
    mirror: KubeletMirror
    proc: subprocess.Popen[bytes]

    def kids(self) -> list[str]:
        """The kids this process accepts right now (its health endpoint, not Prometheus)."""
        with urllib.request.urlopen(f"{self.url}/health/jwt", timeout=5) as response:
            body: dict[str, Any] = json.load(response)
        return [str(kid) for kid in body.get("verifier_kids", [])]


@dataclass
class Stack:
    prometheus: Prometheus
    consumers: list[Consumer]

    def loaded(self, kid: str) -> int:
        """How many consumers Prometheus shows accepting `kid` now."""
        return int(self.prometheus.query(f'count(jwt_keys_loaded{{kid="{kid}"}})') or 0)

    def questions(self, kid: str) -> list[float]:
        """When the gate asked Prometheus about `kid` (Unix times, from the query log)."""
        return [at for at, query in self.prometheus.queries(f'kid="{kid}"') if GATE_QUERY in query]


@pytest.fixture
def stack(kube: Kube, keyturn: OperatorProcess, tmp_path: Path) -> Iterator[Stack]:
    ports = [free_port() for _ in range(CONSUMERS)]
    prometheus = Prometheus(tmp_path, [f"127.0.0.1:{port}" for port in ports])
    kube.create_keyset(
        NAME,
        {
            "algorithm": "ES256",
            "rotation": {"interval": "30d", "publishAhead": "1s", "gracePeriod": "1h", "retention": "2h"},
            "propagation": {
                "prometheus": {"address": prometheus.address},  # the default query
                "interval": f"{INTERVAL:g}s",
                "timeout": "10m",
            },
        },
    )
    kube.wait_ready(NAME)
    consumers: list[Consumer] = []
    try:
        for n, port in enumerate(ports):
            jwks = tmp_path / f"consumer-{n}" / "jwks"
            mirror = KubeletMirror(kube.api, kube.namespace, None, f"{NAME}-jwks", None, jwks)
            mirror.start()
            proc = subprocess.Popen(
                [
                    sys.executable,
                    str(ROOT / "examples/app/app.py"),
                    "--jwks-file",
                    str(jwks / "jwks.json"),
                    "--algorithm",
                    "ES256",
                    "--port",
                    str(port),
                    "--check-interval",
                    "0.2",
                ],
                stdout=subprocess.DEVNULL,
                stderr=(tmp_path / f"consumer-{n}.log").open("wb"),
            )
            consumers.append(Consumer(f"http://127.0.0.1:{port}", mirror, proc))
        for consumer in consumers:
            wait_for(
                functools.partial(_up, f"{consumer.url}/healthz"), 30, message=f"{consumer.url} listening"
            )
        prometheus.start()
        yield Stack(prometheus, consumers)
    finally:
        for consumer in consumers:
            consumer.proc.terminate()
            consumer.mirror.stop_soon()
        prometheus.stop()
        for consumer in consumers:
            consumer.proc.wait(timeout=10)
            consumer.mirror.stop()


def _up(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def rotate(kube: Kube, token: str) -> None:
    kube.patch_keyset(NAME, {"metadata": {"annotations": {"keyturn.dev/rotate": token}}})


def held(kube: Kube, kid: str, share: str, timeout: float) -> dict[str, Any]:
    """The Reconciling condition once it holds `kid` with `share` (an earlier answer, asked while
    the consumers were still loading it, may say less for up to an interval)."""

    def waiting() -> dict[str, Any] | None:
        assert_not_signing(kube, kid)
        cond = kube.condition(NAME, "Reconciling")
        if (
            cond
            and cond["status"] == "True"
            and cond["reason"] == "AwaitingPropagation"
            and f"{share} of consumers accept {kid}" in cond["message"]
        ):
            return cond
        return None

    return wait_for(waiting, timeout, message=f"the activation of {kid} held by the gate at {share}")


def prepared_after(kube: Kube, kid: str) -> str:
    """The next kid once it is no longer `kid`."""

    def fresh() -> str | None:
        nxt = kube.status(NAME).get("nextKid")
        return str(nxt) if nxt and nxt != kid else None

    return wait_for(fresh, 15, message=f"a key prepared after {kid}")


def assert_not_signing(kube: Kube, kid: str) -> None:
    """`kid` has signed at no point: not in the Secret, not current, never rotated to."""
    assert (kube.secret(NAME) or {}).get("JWT_KID") != kid, f"{kid} signs before every consumer accepts it"
    status = kube.status(NAME)
    assert status.get("currentKid") != kid, status
    rotations = [
        h for h in status.get("history") or () if h["operation"] == "rotate" and h["kids"][:1] == [kid]
    ]
    assert not rotations, rotations


def test_the_gate_holds_a_key_one_consumer_lacks_and_releases_it_once_prometheus_shows_it(
    kube: Kube, stack: Stack
) -> None:
    started = time.monotonic()
    lagging = stack.consumers[-1]
    status = kube.status(NAME)
    first, second = status["currentKid"], status["nextKid"]
    wait_for(lambda: stack.loaded(second) == CONSUMERS, 30, message=f"every consumer accepting {second}")

    # ---- the last consumer's kubelet stops syncing; the key every consumer has activates at once
    lagging.mirror.freeze()
    rotate(kube, "r1")
    status = kube.wait_status(NAME, lambda s: s.get("currentKid") == second, 15, f"{second} signs")
    assert [h["kids"] for h in status["history"] if h["operation"] == "rotate"] == [[second, first]]
    third = prepared_after(kube, second)
    wait_for(lambda: stack.loaded(third) == CONSUMERS - 1, 30, message=f"two consumers accepting {third}")
    assert third not in lagging.kids()

    # ---- a rotation is requested: the gate holds it with the measured share, 2 of 3
    rotate(kube, "r2")
    held(kube, third, "66.6%", 30)
    status = kube.status(NAME)
    assert status["phase"] == "Publishing" and status["currentKid"] == second
    assert status["propagation"]["kid"] == third and status["propagation"]["result"] == "Below"
    assert status["propagation"]["share"] == "0.6667", status["propagation"]

    def asked_enough() -> bool:
        assert_not_signing(kube, third)  # at every poll, not only at the end
        return len(stack.questions(third)) >= QUESTIONS

    wait_for(asked_enough, QUESTIONS * INTERVAL + 15, message=f"{QUESTIONS} gate questions about {third}")
    assert_not_signing(kube, third)
    assert third not in lagging.kids()
    gaps = [b - a for a, b in itertools.pairwise(stack.questions(third))]
    assert min(gaps) >= INTERVAL - CLOCK_GRAIN, f"asked more often than once per interval: {gaps}"

    # ---- an emergency during the hold is answered at once, with the share Prometheus measured
    kube.patch_status(NAME, [{"op": "add", "path": "/status/emergency", "value": {"requestId": "inc-1"}}])
    asked_at = time.monotonic()
    acked = kube.wait_status(
        NAME, lambda s: (s.get("emergency") or {}).get("result"), ACK_TIMEOUT, "the emergency answered"
    )
    print(f"[propagation-e2e] emergency answered {time.monotonic() - asked_at:.2f}s after it was asked")
    ack = acked["emergency"]
    assert (ack["result"], ack["newKid"]) == ("Revoked", third), ack
    assert f"66.6% of consumers already accepted {third}" in ack["message"], ack
    wait_for(lambda: (kube.secret(NAME) or {}).get("JWT_KID") == third, 5, message=f"{third} in the Secret")

    # ---- the key prepared after it is held in turn, until the frozen consumer loads it
    fourth = prepared_after(kube, third)
    wait_for(lambda: stack.loaded(fourth) == CONSUMERS - 1, 30, message=f"two consumers accepting {fourth}")
    rotate(kube, "r3")
    held(kube, fourth, "66.6%", 30)
    assert fourth not in lagging.kids()
    assert_not_signing(kube, fourth)

    lagging.mirror.thaw()
    loaded_at: float | None = None
    signed_at: float | None = None

    def signed() -> bool:
        nonlocal loaded_at, signed_at
        # The Secret first, Prometheus after: a key that signs is one the gate saw every consumer
        # accept, so Prometheus, asked later, must show it too.
        signs = (kube.secret(NAME) or {}).get("JWT_KID") == fourth
        now = time.monotonic()
        everyone = stack.loaded(fourth) == CONSUMERS
        assert everyone or not signs, f"{fourth} signs before Prometheus shows every consumer accepting it"
        if everyone and loaded_at is None:
            loaded_at = now
        if signs:
            signed_at = now
        return signs

    wait_for(signed, 30, interval=0.05, message=f"{fourth} signs once every consumer accepts it")
    assert loaded_at is not None and signed_at is not None
    delay = signed_at - loaded_at
    print(
        f"[propagation-e2e] {fourth} signed {delay:.2f}s after Prometheus showed every consumer accepting it "
        f"(interval {INTERVAL:g}s, scrape {SCRAPE:g}s); the test took {time.monotonic() - started:.0f}s"
    )
    assert delay <= INTERVAL + SLACK, f"{delay:.2f}s: more than one interval ({INTERVAL:g}s) and a pass"
    assert fourth in lagging.kids()
    status = kube.wait_status(NAME, lambda s: s.get("currentKid") == fourth, 5, f"{fourth} current")
    rotation = next(h for h in status["history"] if h["operation"] == "rotate" and h["kids"][:1] == [fourth])
    assert rotation["trigger"] == "manual" and rotation["kids"] == [fourth, third]
    after = kube.condition(NAME, "Reconciling")
    assert after is None or after["reason"] != "AwaitingPropagation", after
