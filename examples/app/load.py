"""Steady token traffic against examples/app: issue a token, verify it, at a fixed rate.

This is the traffic Keyturn's analysis gate measures after an activation: every /verify the app
answers moves `jwt_validations_total`. It stops at --duration or on SIGINT/SIGTERM, waits for
requests in flight, and prints a summary (a JSON line with --json):

    python examples/app/load.py --url http://127.0.0.1:8000 --rps 20 --duration 60

With --verify-url, tokens issued by the app at --url (a signer) are verified by another one (a
verifier holding only the JWKS), as between two services.

Exit status: 0, or 1 when --min-success-rate is given and not met.
"""

from __future__ import annotations

import argparse
import http.client
import json
import queue
import signal
import sys
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import FrameType
from typing import Any


@dataclass
class Tally:
    """Counts shared by the workers (guarded by `lock`)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    issued: int = 0
    issue_failed: int = 0
    verified: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    kids: Counter[str] = field(default_factory=Counter)

    def summary(self, elapsed: float) -> dict[str, Any]:
        with self.lock:
            checked = self.verified + sum(self.rejected.values())
            return {
                "elapsed_s": round(elapsed, 3),
                "tokens_issued": self.issued,
                "issue_failures": self.issue_failed,
                "verifications": checked,
                "verified": self.verified,
                "rejected": dict(self.rejected),
                "errors": dict(self.errors),
                "kids": dict(self.kids),
                "success_rate": round(self.verified / checked, 6) if checked else None,
                "rate_per_s": round(checked / elapsed, 3) if elapsed > 0 else None,
            }


class Client:
    """One keep-alive connection per worker; reconnects after any error."""

    def __init__(self, url: str, timeout: float) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"--url must be http(s)://host:port, not {url!r}")
        self.https = parts.scheme == "https"
        self.host = parts.hostname
        self.port = parts.port
        self.prefix = parts.path.rstrip("/")
        self.timeout = timeout
        self.conn: http.client.HTTPConnection | None = None

    def post(self, path: str, body: dict[str, Any], headers: dict[str, str] | None = None) -> tuple[int, Any]:
        if self.conn is None:
            factory = http.client.HTTPSConnection if self.https else http.client.HTTPConnection
            self.conn = factory(self.host, self.port, timeout=self.timeout)
        data = json.dumps(body).encode()
        all_headers = {"Content-Type": "application/json", **(headers or {})}
        try:
            self.conn.request("POST", self.prefix + path, body=data, headers=all_headers)
            response = self.conn.getresponse()
            payload = response.read()
        except (OSError, http.client.HTTPException):
            self.close()
            raise
        try:
            return response.status, json.loads(payload)
        except json.JSONDecodeError:
            return response.status, None

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def one_round(client: Client, tally: Tally, verifier: Client | None = None) -> None:
    """Issue a fresh token and verify it (at `verifier`, default the same app), as a client
    logging in and calling an API would."""
    try:
        status, body = client.post("/token", {"sub": "load"})
    except (OSError, http.client.HTTPException) as exc:
        with tally.lock:
            tally.errors[f"token:{type(exc).__name__}"] += 1
        return
    if status != 200 or not isinstance(body, dict) or "token" not in body:
        with tally.lock:
            tally.issue_failed += 1
        return
    with tally.lock:
        tally.issued += 1
        tally.kids[str(body.get("kid"))] += 1
    try:
        status, result = (verifier or client).post(
            "/verify", {}, {"Authorization": f"Bearer {body['token']}"}
        )
    except (OSError, http.client.HTTPException) as exc:
        with tally.lock:
            tally.errors[f"verify:{type(exc).__name__}"] += 1
        return
    with tally.lock:
        if status == 200:
            tally.verified += 1
        elif status == 401 and isinstance(result, dict):
            tally.rejected[str(result.get("reason"))] += 1
        else:
            tally.errors[f"verify:http_{status}"] += 1


def run(
    url: str,
    rps: float,
    duration: float,
    concurrency: int,
    timeout: float,
    stop: threading.Event,
    verify_url: str | None = None,
) -> Tally:
    tally = Tally()
    ticks: queue.Queue[int] = queue.Queue(maxsize=concurrency * 2)
    done = threading.Event()

    def worker() -> None:
        client = Client(url, timeout)
        verifier = Client(verify_url, timeout) if verify_url else None
        try:
            while True:
                try:
                    ticks.get(timeout=0.1)
                except queue.Empty:
                    if done.is_set():
                        return
                    continue
                one_round(client, tally, verifier)
        finally:
            client.close()
            if verifier is not None:
                verifier.close()

    workers = [threading.Thread(target=worker, name=f"load-{i}", daemon=True) for i in range(concurrency)]
    for thread in workers:
        thread.start()
    start = time.monotonic()
    n = 0
    # Ticks are scheduled from the start time, not from the previous tick, so slow rounds do
    # not lower the rate unless the server really cannot keep up (then the queue blocks).
    while not stop.is_set():
        due = start + n / rps
        if duration > 0 and due >= start + duration:
            break
        if stop.wait(max(0.0, due - time.monotonic())):
            break
        while not stop.is_set():
            try:
                ticks.put(n, timeout=0.1)
                break
            except queue.Full:
                continue
        n += 1
    done.set()
    for thread in workers:
        thread.join()
    return tally


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="load.py", description="Token traffic against examples/app.")
    p.add_argument("--url", default="http://127.0.0.1:8000", help="the app that issues tokens")
    p.add_argument("--verify-url", default=None, help="the app that verifies them (default: --url)")
    p.add_argument("--rps", type=float, default=20.0, help="rounds (issue + verify) per second")
    p.add_argument("--duration", type=float, default=60.0, help="seconds; 0 runs until SIGINT")
    p.add_argument("--concurrency", type=int, default=4)
    p.add_argument("--timeout", type=float, default=5.0, help="per request, seconds")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON line")
    p.add_argument("--min-success-rate", type=float, default=None, help="exit 1 below this (0..1)")
    args = p.parse_args(argv)
    if args.rps <= 0 or args.concurrency < 1:
        p.error("--rps must be positive and --concurrency at least 1")
    for url in (args.url, args.verify_url or args.url):
        Client(url, args.timeout)  # validates the URLs before any thread starts

    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    if not args.json:
        print(
            f"load: {args.rps:g} rps against {args.url}"
            f"{f' (verified at {args.verify_url})' if args.verify_url else ''} for {args.duration:g}s",
            file=sys.stderr,
            flush=True,
        )
    started = time.monotonic()
    tally = run(
        args.url, args.rps, args.duration, args.concurrency, args.timeout, stop, verify_url=args.verify_url
    )
    summary = tally.summary(time.monotonic() - started)
    summary["interrupted"] = stop.is_set()
    if args.json:
        print(json.dumps(summary, sort_keys=True), flush=True)
    else:
        rate = summary["success_rate"]
        print(
            f"issued {summary['tokens_issued']} tokens ({summary['issue_failures']} failed), "
            f"verified {summary['verified']}/{summary['verifications']}"
            f" (success rate {'n/a' if rate is None else f'{rate:.4f}'}), "
            f"rejected {summary['rejected']}, errors {summary['errors']}, kids {summary['kids']}, "
            f"{summary['elapsed_s']}s{' (interrupted)' if summary['interrupted'] else ''}",
            flush=True,
        )
    if args.min_success_rate is not None:
        rate = summary["success_rate"]
        if rate is None or rate < args.min_success_rate:
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
