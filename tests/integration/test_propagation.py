"""The propagation gate end to end: the real operator process, the real kube-apiserver, and a local
HTTP server that answers the Prometheus query API with the share of consumers the test sets.

A scheduled activation is held (AwaitingPropagation, the measured share in the message, asked
once per interval, PropagationTimeout once it lasts), happens within one interval of the share
reaching the threshold, and an emergency during the hold is answered at once with the share that
already accepted the promoted key.
"""

from __future__ import annotations

import http.server
import itertools
import json
import re
import threading
import time
import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from helpers import wait_for
from kubetools import Kube, OperatorProcess

pytestmark = pytest.mark.integration

NAME = "gated"
INTERVAL = 2.0  # spec.propagation.interval, in seconds
# The operator's clock has whole seconds, so two questions can be up to a second closer than the
# interval; a pass, the API server and this test's polling add a little more to the release.
CLOCK_GRAIN = 1.1
SLACK = 3.0
ACK_TIMEOUT = 5.0


class Consumers:
    """The share of consumers that accept each kid, as a Prometheus server would answer it."""

    def __init__(self, default: float) -> None:
        self.default = default
        self.shares: dict[str, float] = {}
        self.asked: list[tuple[str, float]] = []  # (kid, time.monotonic()) of every query
        self.lock = threading.Lock()

    def answer(self, query: str) -> bytes:
        match = re.search(r'kid="([^"\\]*)"', query)
        kid = match.group(1) if match else ""
        with self.lock:
            self.asked.append((kid, time.monotonic()))
            share = self.shares.get(kid, self.default)
        result = [{"metric": {}, "value": [time.time(), repr(share)]}]
        return json.dumps({"status": "success", "data": {"resultType": "vector", "result": result}}).encode()

    def times(self, kid: str) -> list[float]:
        with self.lock:
            return [at for asked, at in self.asked if asked == kid]


@pytest.fixture
def consumers() -> Iterator[tuple[Consumers, str]]:
    state = Consumers(default=0.5)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urllib.parse.urlsplit(self.path)
            if url.path != "/api/v1/query":
                self.send_error(404)
                return
            body = state.answer(urllib.parse.parse_qs(url.query).get("query", [""])[0])
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def held(kube: Kube, kid: str, timeout: float) -> dict[str, Any]:
    def waiting() -> dict[str, Any] | None:
        cond = kube.condition(NAME, "Reconciling")
        if (
            cond
            and cond["status"] == "True"
            and cond["reason"] == "AwaitingPropagation"
            and kid in cond["message"]
        ):
            return cond
        return None

    return wait_for(waiting, timeout, message=f"the activation of {kid} held by the gate")


def ratio(exposition: str, namespace: str, kid: str) -> float | None:
    """keyturn_propagation_ratio of the test's keyset and `kid`, as the operator exports it."""
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            wanted = {"namespace": namespace, "keyset": NAME, "kid": kid}
            if sample.name == "keyturn_propagation_ratio" and sample.labels == wanted:
                return float(sample.value)
    return None


def test_an_activation_waits_for_the_share_and_an_emergency_does_not(
    kube: Kube, keyturn: OperatorProcess, consumers: tuple[Consumers, str]
) -> None:
    state, address = consumers
    kube.create_keyset(
        NAME,
        {
            "algorithm": "ES256",
            "rotation": {"interval": "8s", "publishAhead": "1s", "gracePeriod": "1h", "retention": "2h"},
            "propagation": {
                "prometheus": {"address": address},
                "interval": f"{INTERVAL:g}s",
                "timeout": "4s",
            },
        },
    )
    status = kube.wait_ready(NAME)
    first, nxt = status["currentKid"], status["nextKid"]

    # ---- held: half of the consumers accept the next key
    cond = held(kube, nxt, 30)
    assert f"50% of consumers accept {nxt}" in cond["message"]
    status = kube.status(NAME)
    assert status["phase"] == "Publishing" and status["currentKid"] == first
    assert status["propagation"]["kid"] == nxt and status["propagation"]["share"] == "0.5000"
    wait_for(lambda: len(state.times(nxt)) >= 4, 30, message=f"four questions about {nxt}")
    assert kube.status(NAME)["currentKid"] == first, "the key signed before its consumers accepted it"
    times = state.times(nxt)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert min(gaps) >= INTERVAL - CLOCK_GRAIN, f"asked more often than once per interval: {gaps}"
    assert ratio(keyturn.metrics(), kube.namespace, nxt) == 0.5

    # ---- past spec.propagation.timeout: one Warning, Degraded, and still no activation
    wait_for(
        lambda: [e for e in kube.events() if e.reason == "PropagationTimeout" and e.type == "Warning"],
        30,
        message="a PropagationTimeout Warning",
    )
    kube.wait_status(
        NAME,
        lambda s: any(
            c["type"] == "Degraded" and c["reason"] == "PropagationTimeout" for c in s.get("conditions") or ()
        ),
        10,
        "Degraded with PropagationTimeout",
    )
    assert kube.status(NAME)["currentKid"] == first

    # ---- every consumer accepts it: it signs within one interval
    with state.lock:
        state.shares[nxt] = 1.0
    loaded_at = time.monotonic()
    status = kube.wait_status(NAME, lambda s: s.get("currentKid") == nxt, INTERVAL + SLACK, f"{nxt} signs")
    delay = time.monotonic() - loaded_at
    print(f"[propagation] {nxt} signed {delay:.2f}s after its consumers accepted it (interval {INTERVAL:g}s)")
    assert kube.secret(NAME)["JWT_KID"] == nxt  # type: ignore[index]
    assert len([e for e in kube.events() if e.reason == "PropagationTimeout"]) == 1
    third = status["nextKid"]

    # ---- the next rotation is held again; an emergency during the hold is not delayed
    held(kube, third, 30)
    assert kube.status(NAME)["currentKid"] == nxt
    kube.patch_status(NAME, [{"op": "add", "path": "/status/emergency", "value": {"requestId": "inc-9"}}])
    asked_at = time.monotonic()
    acked = kube.wait_status(
        NAME, lambda s: (s.get("emergency") or {}).get("result"), ACK_TIMEOUT, "the emergency answered"
    )
    print(f"[propagation] emergency answered {time.monotonic() - asked_at:.2f}s after it was asked")
    ack = acked["emergency"]
    assert (ack["result"], ack["newKid"]) == ("Revoked", third), ack
    assert f"50% of consumers already accepted {third}" in ack["message"]
    assert kube.status(NAME)["currentKid"] == third
