"""The propagation gate with real consumers: from the moment Debian's Prometheus shows every
consumer accepting the next kid to the moment the Secret's `JWT_KID` names it.

N processes of the example app (default 3) verify with the JWKS, each from its own mirror of the
ConfigMap (a kubelet stand-in with the `..data` swap), and export `jwt_keys_loaded`; Prometheus
scrapes them every second; the keyset's gate uses the default query. The last consumer's mirror
is frozen. Each round asks for a rotation, waits until the gate holds it (AwaitingPropagation),
checks a random part of an interval longer that the key does not sign, then lets the frozen
mirror sync once (the consumer loads the key, and only this key) and measures:

- loaded→signs: from the first instant query showing all N consumers with the kid to the first
  read of the Secret naming it (the figure the gate is answerable for: at most one interval
  plus a pass);
- release→signs: from the mirror's sync, adding the consumer's reload and the scrape.

It fails (exit status 1) if the key ever signs while a consumer lacks it: the Secret is read
before Prometheus in each poll, so a key that signs must already show N consumers.

    .venv/bin/python bench/propagation_real.py [--rounds 10] [--interval 5] [--consumers 3]
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import functools
import random
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernetes import client

from common import ROOT, environment, report, say, wait
from keyturn import GROUP, PLURAL, VERSION

sys.path.insert(0, str(ROOT / "tests"))  # Prometheus and the kubelet stand-in of the e2e tests
from e2e.stack import KubeletMirror, Prometheus, free_port

NS = "bench"
NAME = "gated"
SCRAPE_S = 1.0  # e2e.stack.Prometheus


class Violation(Exception):
    """The next key signed while Prometheus showed a consumer without it."""


@dataclass
class Consumer:
    mirror: KubeletMirror
    proc: subprocess.Popen[bytes]
    url: str


@contextlib.contextmanager
def consumers(api: Any, ports: list[int], workdir: Path) -> Iterator[list[Consumer]]:
    """Example apps verifying from their own mirrors of the keyset's JWKS ConfigMap."""
    started: list[Consumer] = []
    try:
        for n, port in enumerate(ports):
            jwks = workdir / f"consumer-{n}"
            mirror = KubeletMirror(api, NS, None, f"{NAME}-jwks", None, jwks)
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
                stderr=(workdir / f"consumer-{n}.log").open("wb"),
            )
            started.append(Consumer(mirror, proc, f"http://127.0.0.1:{port}"))
        for consumer in started:
            wait(functools.partial(_up, consumer.url), 60, f"{consumer.url} listening", interval=0.1)
        yield started
    finally:
        for consumer in started:
            consumer.proc.terminate()
            consumer.mirror.stop_soon()
        for consumer in started:
            consumer.proc.wait(timeout=10)
            consumer.mirror.stop()


@contextlib.contextmanager
def running(prometheus: Prometheus) -> Iterator[Prometheus]:
    try:
        prometheus.start()
        yield prometheus
    finally:
        prometheus.stop()


def _up(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=2) as response:  # noqa: S310 - http://127.0.0.1
            return bool(response.status == 200)
    except OSError:
        return False


class Bench:
    """One keyset behind the gate, its consumers and Prometheus; the rounds."""

    def __init__(self, api: Any, interval: int, ports: list[int], prometheus: Prometheus) -> None:
        self.custom, self.core = client.CustomObjectsApi(api), client.CoreV1Api(api)
        self.interval = interval
        self.every = len(ports)
        self.prometheus = prometheus

    def create(self) -> tuple[str, str]:
        """The keyset, with the gate on the default query; its first (current, next) kids."""
        spec = {
            "algorithm": "ES256",
            "rotation": {"interval": "30d", "publishAhead": "1s", "gracePeriod": "1h", "retention": "2h"},
            "propagation": {
                "prometheus": {"address": self.prometheus.address},
                "interval": f"{self.interval}s",
            },
        }
        body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "JwtKeySet", "metadata": {"name": NAME}}
        self.custom.create_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, {**body, "spec": spec})
        first = wait(lambda: self.status().get("currentKid"), 60, "the first key", interval=0.2)
        return str(first), self.prepared_after(str(first))

    def status(self) -> dict[str, Any]:
        obj = self.custom.get_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, NAME)
        assert isinstance(obj, dict)
        found: dict[str, Any] = obj.get("status") or {}
        return found

    def signing(self) -> str:
        secret = self.core.read_namespaced_secret(NAME, NS)
        return base64.b64decode((secret.data or {}).get("JWT_KID", "")).decode()

    def loaded(self, kid: str) -> int:
        """How many consumers Prometheus shows with `kid` now."""
        return int(self.prometheus.query(f'count(jwt_keys_loaded{{kid="{kid}"}})') or 0)

    def prepared_after(self, kid: str) -> str:
        def fresh() -> str | None:
            nxt = self.status().get("nextKid")
            return nxt if isinstance(nxt, str) and nxt != kid else None

        return wait(fresh, 60, f"a key prepared after {kid}", interval=0.05)

    def rotate(self, token: str) -> None:
        patch = {"metadata": {"annotations": {"keyturn.dev/rotate": token}}}
        self.custom.patch_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, NAME, patch)

    def not_signing(self, kid: str) -> None:
        if self.signing() == kid:
            shown = self.loaded(kid)
            raise Violation(f"{kid} signs while Prometheus shows {shown} of {self.every} consumers with it")

    def held(self, kid: str) -> bool:
        self.not_signing(kid)
        return any(
            c["type"] == "Reconciling" and c["reason"] == "AwaitingPropagation" and kid in c["message"]
            for c in self.status().get("conditions") or ()
        )

    def warm_up(self, lagging: Consumer, first_next: str) -> None:
        """The first prepared key, which every consumer has, signs; from then on the last
        consumer only sees what a round lets it see."""
        wait(lambda: self.loaded(first_next) == self.every, 60, f"every consumer with {first_next}", 0.2)
        lagging.mirror.freeze()
        self.rotate("warm-up")
        wait(lambda: self.signing() == first_next, 30, f"{first_next} signing", interval=0.05)

    def round(self, n: int, lagging: Consumer, current: str) -> tuple[str, float, float]:
        """(the kid, loaded→signs ms, release→signs ms) of one held rotation."""
        kid = self.prepared_after(current)
        wait(lambda: self.loaded(kid) == self.every - 1, 30, f"all but one consumer with {kid}", 0.05)
        self.rotate(f"r{n}")
        wait(lambda: self.held(kid), 30, f"the gate holding {kid}", interval=0.05)
        # Held for a random part of an interval more, so that the release falls anywhere between
        # two questions; the key must not sign meanwhile.
        until = time.monotonic() + random.uniform(0, self.interval)
        while time.monotonic() < until:
            self.not_signing(kid)
            time.sleep(0.05)
        released = time.monotonic()
        lagging.mirror.sync_once(force=True)  # one kubelet sync: this key, not the one after it
        seen_all: float | None = None
        signed_at = 0.0

        def signed() -> bool:
            nonlocal seen_all, signed_at
            signs = self.signing() == kid  # the Secret first: a key that signs must then show N
            at = time.monotonic()
            everyone = self.loaded(kid) == self.every
            if signs and not everyone:
                raise Violation(f"{kid} signs while Prometheus shows a consumer without it")
            if everyone and seen_all is None:
                seen_all = at
            signed_at = at
            return signs

        wait(signed, self.interval + 30, f"{kid} signing", interval=0.02)
        assert seen_all is not None
        return kid, (signed_at - seen_all) * 1000, (signed_at - released) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--interval", type=int, default=5, help="spec.propagation.interval in seconds")
    parser.add_argument("--consumers", type=int, default=3, help="example app processes (at least 2)")
    args = parser.parse_args()
    if args.consumers < 2:
        parser.error("--consumers: at least 2 (one is held back)")
    loaded_ms: list[float] = []
    release_ms: list[float] = []
    with (
        tempfile.TemporaryDirectory(prefix="keyturn-propagation-") as tmp,
        environment(NS) as (_cluster, api),
    ):
        ports = [free_port() for _ in range(args.consumers)]
        prometheus = Prometheus(Path(tmp), [f"127.0.0.1:{port}" for port in ports])
        bench = Bench(api, args.interval, ports, prometheus)
        _first, kid = bench.create()
        with consumers(api, ports, Path(tmp)) as started, running(prometheus):
            lagging = started[-1]
            try:
                bench.warm_up(lagging, kid)
                for n in range(args.rounds):
                    kid, loaded, released = bench.round(n, lagging, kid)
                    loaded_ms.append(loaded)
                    release_ms.append(released)
                    say(
                        f"round {n + 1}: {kid} signed {loaded:.0f} ms after Prometheus showed all "
                        f"{args.consumers} consumers with it ({released:.0f} ms after the held-back "
                        "consumer's volume synced)"
                    )
            except Violation as exc:
                say(f"VIOLATION: {exc}")
                raise SystemExit(1) from exc
    report(
        "propagation-real",
        loaded_ms,
        {
            "measures": "Prometheus shows every consumer with the kid -> the Secret's JWT_KID names it",
            "interval_s": args.interval,
            "scrape_interval_s": SCRAPE_S,
            "consumers": args.consumers,
            "release_to_sign_p50_ms": round(statistics.median(release_ms), 1),
            "release_to_sign_max_ms": round(max(release_ms), 1),
        },
    )


if __name__ == "__main__":
    main()
