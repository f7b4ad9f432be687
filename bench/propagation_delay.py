"""The propagation gate's delay: from the moment Prometheus answers that every consumer accepts the
next kid to the moment the Secret signs with it, for rotations the gate held.

A local HTTP server plays Prometheus (the query API) with a share the script controls. Each round
asks for a rotation while the share is 0.5, waits until the gate holds it (AwaitingPropagation),
waits a random part of an interval (so the release falls anywhere between two questions), sets
the share to 1 and measures until `JWT_KID` in the Secret names the next kid. The delay is at most
one `interval` plus a pass; in a real cluster add the scrape interval that brings a consumer's
reload into Prometheus.

    .venv/bin/python bench/propagation_delay.py [--rounds 10] [--interval 5]
"""

from __future__ import annotations

import argparse
import base64
import functools
import http.server
import json
import random
import re
import threading
import time
import urllib.parse
from typing import Any

from kubernetes import client

from common import environment, report, say, wait
from keyturn import GROUP, PLURAL, VERSION

NS = "bench"
NAME = "gated"


class Prometheus(http.server.ThreadingHTTPServer):
    """Answers every query for a kid with `shares[kid]` (default 0.5)."""

    shares: dict[str, float]


class Handler(http.server.BaseHTTPRequestHandler):
    server: Prometheus

    def do_GET(self) -> None:
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query).get("query", [""])[0]
        match = re.search(r'kid="([^"\\]*)"', query)
        share = self.server.shares.get(match.group(1) if match else "", 0.5)
        result = [{"metric": {}, "value": [time.time(), repr(share)]}]
        body = json.dumps({"status": "success", "data": {"resultType": "vector", "result": result}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: Any) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--interval", type=int, default=5, help="spec.propagation.interval in seconds")
    args = parser.parse_args()
    prometheus = Prometheus(("127.0.0.1", 0), Handler)
    prometheus.shares = {}
    threading.Thread(target=prometheus.serve_forever, daemon=True).start()
    address = f"http://127.0.0.1:{prometheus.server_address[1]}"
    with environment(NS) as (_cluster, api):
        custom, core = client.CustomObjectsApi(api), client.CoreV1Api(api)
        spec = {
            "algorithm": "ES256",
            "rotation": {"interval": "30d", "publishAhead": "1s", "gracePeriod": "1h", "retention": "2h"},
            "propagation": {"prometheus": {"address": address}, "interval": f"{args.interval}s"},
        }
        body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "JwtKeySet", "metadata": {"name": NAME}}
        custom.create_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, {**body, "spec": spec})

        def status() -> dict[str, Any]:
            obj = custom.get_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, NAME)
            assert isinstance(obj, dict)
            found: dict[str, Any] = obj.get("status") or {}
            return found

        def held(kid: str) -> bool:
            return any(
                c["type"] == "Reconciling" and c["reason"] == "AwaitingPropagation" and kid in c["message"]
                for c in status().get("conditions") or ()
            )

        def signs(kid: str) -> bool:
            secret = core.read_namespaced_secret(NAME, NS)
            return base64.b64decode((secret.data or {}).get("JWT_KID", "")).decode() == kid

        def prepared(after: str) -> str | None:
            kid = status().get("nextKid")
            return kid if isinstance(kid, str) and kid != after else None

        samples: list[float] = []
        nxt = ""
        for n in range(args.rounds):
            nxt = wait(functools.partial(prepared, nxt), 60, "a new prepared key", interval=0.05)
            time.sleep(1.5)  # publishAhead (1s) must have passed, or the rotation waits for it instead
            custom.patch_namespaced_custom_object(
                GROUP,
                VERSION,
                NS,
                PLURAL,
                NAME,
                {"metadata": {"annotations": {"keyturn.dev/rotate": f"r{n}"}}},
            )
            wait(functools.partial(held, nxt), 60, f"the gate holding {nxt}", interval=0.05)
            time.sleep(random.uniform(0, args.interval))
            prometheus.shares[nxt] = 1.0
            t0 = time.perf_counter()
            wait(functools.partial(signs, nxt), args.interval + 30, f"{nxt} signing", interval=0.01)
            samples.append((time.perf_counter() - t0) * 1000)
            say(f"round {n + 1}: {nxt} signed {samples[-1]:.0f} ms after every consumer accepted it")
        report("propagation-delay", samples, {"interval_s": args.interval})
    prometheus.shutdown()


if __name__ == "__main__":
    main()
