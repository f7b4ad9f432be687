"""Failover: how long the operator is headless when its leader dies, and what leader election costs.

Two replicas run as the chart runs them (`keyturn run --lease keyturn --lease-duration 10`). Each
round SIGKILLs the replica holding the Lease, patches an emergency revocation right after the
kill, and measures from the kill until (a) the Lease names another holder and (b) the emergency
is acknowledged in status (the new leader's first pass acted). The kill comes 1 to 3 s (at random)
after the standby is seen standing by, so that it falls at any phase of the 2 s renewals. A fresh
replica then joins as the next standby. Clean stops (SIGTERM: the leader releases the Lease) are
measured the same way. Last, the cost: Lease updates per minute (a watch on the Lease) and the API
server's requests on leases per minute, less those of the control plane itself (measured first,
before any replica).

    .venv/bin/python bench/failover.py [--kills 6] [--clean-stops 3] [--others 20] [--cost-seconds 60]
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import random
import re
import signal
import statistics
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubernetes import client, watch
from kubernetes.client import ApiClient, ApiException

from common import ROOT, keyturn_run, say, stop, wait
from keyturn import GROUP, PLURAL, VERSION

# isort: split
import localcluster  # in hack/, which importing common put on the path

NS = "bench"
LEASE = "keyturn"
LEASE_DURATION = 10
SLOW = {"interval": "30d", "publishAhead": "1h", "gracePeriod": "7d", "retention": "14d"}
LEASE_REQUESTS = re.compile(
    r'^apiserver_request_total\{(?=[^}]*resource="leases")(?=[^}]*verb="(?P<verb>[A-Z]+)")[^}]*\} (?P<n>\S+)$'
)


@dataclass
class Replica:
    """`keyturn run` as the chart's Pod `pod` would run it (POD_NAME, POD_NAMESPACE, the lease flags)."""

    pod: str
    kubeconfig: Path
    log: Path
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self) -> None:
        with self.log.open("ab") as handle:
            self.proc = subprocess.Popen(
                keyturn_run(NS, f"--lease={LEASE}", f"--lease-duration={LEASE_DURATION}", "--metrics-port=0"),
                env={
                    **os.environ,
                    "KUBECONFIG": str(self.kubeconfig),
                    "POD_NAME": self.pod,
                    "POD_NAMESPACE": NS,
                },
                stdout=handle,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
            )

    def signal(self, sig: signal.Signals) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def stop(self) -> None:
        stop(self.proc)

    def reasons(self) -> list[str]:
        out = []
        for line in self.log.read_text(errors="replace").splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and record.get("reason"):
                out.append(f"{record['reason']}: {record.get('message', '')}")
        return out


class Bench:
    def __init__(self, cluster: localcluster.LocalCluster, api: ApiClient) -> None:
        self.cluster, self.api = cluster, api
        self.custom = client.CustomObjectsApi(api)
        self.leases = client.CoordinationV1Api(api)
        self.replicas: list[Replica] = []

    def replica(self) -> Replica:
        pod = f"keyturn-{len(self.replicas)}"
        r = Replica(pod, Path(self.cluster.kubeconfig), self.cluster.workdir / f"{pod}.log")
        self.replicas.append(r)
        r.start()
        return r

    def holder(self) -> str:
        try:
            lease = self.leases.read_namespaced_lease(LEASE, NS)
        except ApiException as exc:
            if exc.status == 404:
                return ""
            raise
        return str((lease.spec and lease.spec.holder_identity) or "")

    def leader(self) -> Replica:
        holder = wait(self.holder, 60, "a Lease holder", interval=0.05)
        return next(r for r in self.replicas if holder.startswith(f"{r.pod}-"))

    def standing_by(self, r: Replica, leader: Replica) -> bool:
        return any(line.startswith("LeaderElsewhere:") and f" {leader.pod}-" in line for line in r.reasons())

    def status(self, name: str) -> dict[str, Any]:
        obj = self.custom.get_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, name)
        assert isinstance(obj, dict)
        status: dict[str, Any] = obj.get("status") or {}
        return status

    def ready(self, name: str) -> bool:
        status = self.status(name)
        return any(c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions") or ())

    def create(self, name: str) -> None:
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "JwtKeySet",
            "metadata": {"name": name},
            "spec": {"algorithm": "ES256", "rotation": SLOW},
        }
        self.custom.create_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, body)

    def emergency(self, request: str) -> None:
        value = {"requestId": request, "reason": "key_compromise"}
        self.custom.patch_namespaced_custom_object_status(
            GROUP,
            VERSION,
            NS,
            PLURAL,
            "target",
            [{"op": "add", "path": "/status/emergency", "value": value}],
            _content_type="application/json-patch+json",
        )

    def failover(self, n: int, sig: signal.Signals) -> dict[str, float]:
        """One round: the leader gets `sig`, an emergency follows at once; seconds until each effect."""
        wait(lambda: self.ready("target"), 60, "target Ready", interval=0.05)
        leader = self.leader()
        standby = next(r for r in self.replicas if r is not leader and r.proc and r.proc.poll() is None)
        wait(lambda: self.standing_by(standby, leader), 60, f"{standby.pod} standing by", interval=0.05)
        # Deaths come at any moment: a random phase against the 2 s rhythm of renewals and looks
        # (killing right after the standby's first look would always measure the same 10 s).
        time.sleep(random.uniform(1.0, 3.0))
        before = self.holder()
        request = f"failover-{sig.name.lower()}-{n}-{time.time_ns()}"
        leader.signal(sig)
        t0 = time.perf_counter()
        self.emergency(request)
        took_over = acknowledged = None
        while took_over is None or acknowledged is None:
            now = time.perf_counter() - t0
            if now > 60:
                raise SystemExit(f"round {n}: no takeover within 60 s ({standby.reasons()[-5:]})")
            if took_over is None and self.holder() not in ("", before):
                took_over = time.perf_counter() - t0
            emergency = self.status("target").get("emergency") or {}
            if acknowledged is None and emergency.get("requestId") == request and emergency.get("handledAt"):
                acknowledged = time.perf_counter() - t0
            time.sleep(0.005)
        assert leader.proc is not None
        leader.proc.wait(timeout=30)
        say(
            f"{sig.name} {n}: Lease taken over after {took_over:.2f} s, "
            f"emergency acknowledged after {acknowledged:.2f} s"
        )
        self.replica()  # the next standby
        return {"takeover_s": took_over, "acknowledged_s": acknowledged}

    def lease_requests(self) -> dict[str, float]:
        """The API server's request counters on leases, by verb."""
        totals: dict[str, float] = {}
        for line in self.cluster.kubectl("get", "--raw", "/metrics").stdout.splitlines():
            m = LEASE_REQUESTS.match(line)
            if m:
                totals[m["verb"]] = totals.get(m["verb"], 0.0) + float(m["n"])
        return totals

    def requests_per_minute(self, during: Callable[[], object]) -> dict[str, float]:
        """The API server's requests on leases per minute, by verb, while `during` runs."""
        before, t0 = self.lease_requests(), time.monotonic()
        during()
        after, elapsed = self.lease_requests(), time.monotonic() - t0
        return {verb: (after[verb] - before.get(verb, 0.0)) * 60 / elapsed for verb in after}

    def lease_updates_per_minute(self, seconds: float) -> float:
        """MODIFIED events of our Lease, counted over a watch of `seconds`."""
        start = self.leases.read_namespaced_lease(LEASE, NS)
        assert start.metadata is not None
        events = 0
        t0 = time.monotonic()
        stream: Iterator[dict[str, Any]] = watch.Watch().stream(
            self.leases.list_namespaced_lease,
            NS,
            field_selector=f"metadata.name={LEASE}",
            resource_version=start.metadata.resource_version,
            timeout_seconds=int(seconds),
        )
        for event in stream:
            if event["type"] == "MODIFIED":
                events += 1
        return events * 60 / (time.monotonic() - t0)


def idle(seconds: float) -> None:
    """A fixed window with nothing of ours running: the control plane's own rate is the measurement."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))


def summary(values: list[float]) -> dict[str, float]:
    return {
        "p50_s": round(statistics.median(values), 2),
        "max_s": round(max(values), 2),
        "min_s": round(min(values), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--kills", type=int, default=6, help="SIGKILLs of the leader (at least 5)")
    parser.add_argument("--clean-stops", type=int, default=3, help="SIGTERMs of the leader")
    parser.add_argument("--others", type=int, default=20, help="other keysets the new leader also takes up")
    parser.add_argument("--cost-seconds", type=float, default=60.0, help="window of the cost measurement")
    args = parser.parse_args()
    with localcluster.LocalCluster(log=say, progress=say) as cluster:
        cluster.apply_crds([ROOT / "crds"])
        cluster.kubectl("create", "namespace", NS)
        bench = Bench(cluster, cluster.api_client())
        say(f"the control plane's own requests on leases, {args.cost_seconds:g} s")
        baseline = bench.requests_per_minute(lambda: idle(args.cost_seconds))
        try:
            first = bench.replica()
            wait(
                lambda: bench.holder().startswith(f"{first.pod}-"),
                60,
                "the first replica leading",
                interval=0.05,
            )
            bench.replica()
            for i in range(args.others):
                bench.create(f"other-{i:03d}")
            bench.create("target")
            for i in range(args.others):
                wait(
                    functools.partial(bench.ready, f"other-{i:03d}"),
                    120,
                    f"other-{i:03d} Ready",
                    interval=0.05,
                )
            kills = [bench.failover(n + 1, signal.SIGKILL) for n in range(args.kills)]
            stops = [bench.failover(n + 1, signal.SIGTERM) for n in range(args.clean_stops)]
            leader = bench.leader()
            standby = next(r for r in bench.replicas if r is not leader and r.proc and r.proc.poll() is None)
            wait(lambda: bench.standing_by(standby, leader), 60, "a standby", interval=0.05)
            say(f"cost with a leader and a standby, {args.cost_seconds:g} s")
            counted: list[float] = []
            requests = bench.requests_per_minute(
                lambda: counted.append(bench.lease_updates_per_minute(args.cost_seconds))
            )
            (updates,) = counted
        finally:
            for r in bench.replicas:
                r.stop()
    ours = {verb: round(requests.get(verb, 0.0) - baseline.get(verb, 0.0), 1) for verb in requests}
    print(
        json.dumps(
            {
                "benchmark": "failover",
                "lease_duration_s": LEASE_DURATION,
                "other_keysets": args.others,
                "sigkill": {
                    "n": len(kills),
                    "lease_taken_over": summary([k["takeover_s"] for k in kills]),
                    "emergency_acknowledged": summary([k["acknowledged_s"] for k in kills]),
                    "acknowledged_after_takeover": summary(
                        [k["acknowledged_s"] - k["takeover_s"] for k in kills]
                    ),
                },
                "sigterm": {
                    "n": len(stops),
                    "lease_taken_over": summary([s["takeover_s"] for s in stops]) if stops else None,
                    "emergency_acknowledged": summary([s["acknowledged_s"] for s in stops])
                    if stops
                    else None,
                },
                "cost_per_minute": {
                    "lease_updates": round(updates, 1),
                    "lease_requests_by_verb_two_replicas": ours,
                },
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
