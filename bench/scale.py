"""Keyturn at scale: N keysets on one operator, from a cold start to a restart under emergencies.

For each N (a fresh control plane each time), with the operator process of bench/common.py:
  - cold start: N keysets exist before the operator starts; seconds until all are Ready, and the
    passes, writes and API requests it took (from the operator's own /metrics);
  - RSS once settled; idle: writes and operator CPU seconds over `--idle` seconds with nothing due;
  - time to revoke at rest: emergencies on random keysets, from the status patch until the JWKS no
    longer lists the kid and the Secret's JWT_KID names another key;
  - restart: the operator stopped and started again; seconds until every keyset had a pass, and
    the writes it made (should be 0);
  - time to revoke during a restart: another restart, with emergencies patched 0.5 to 4 s after
    the process started.
Prints one JSON document.

    .venv/bin/python bench/scale.py --keysets 100,1000 [--idle 120] [--revocations 20]
"""

from __future__ import annotations

import argparse
import base64
import concurrent.futures
import json
import os
import random
import re
import statistics
import subprocess
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from kubernetes import client

from common import ROOT, keyturn_run, percentile, say, stop, wait
from keyturn import GROUP, PLURAL, VERSION

# isort: split
import localcluster  # in hack/, which importing common put on the path

NS = "scale"
SLOW = {"interval": "30d", "publishAhead": "1h", "gracePeriod": "7d", "retention": "14d"}
WRITES = re.compile(r"^(create|replace|patch|delete)_")


class Operator:
    """`keyturn run` for the namespace, with its /metrics read for passes, writes and requests."""

    def __init__(self, cluster: localcluster.LocalCluster, workers: int) -> None:
        self.cluster, self.workers = cluster, workers
        self.port = _free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> float:
        with (self.cluster.workdir / "operator.log").open("ab") as log:  # the child keeps its own copy
            self.proc = subprocess.Popen(
                keyturn_run(NS, "--standalone", f"--workers={self.workers}", f"--metrics-port={self.port}"),
                env={**os.environ, "KUBECONFIG": str(self.cluster.kubeconfig)},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        return time.monotonic()

    def stop(self) -> None:
        stop(self.proc, timeout=30)

    def metrics(self) -> dict[str, float]:
        """Pass count, write count and request count, from the operator's own exposition."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=5) as answer:
                text = answer.read().decode()
        except OSError:
            return {}
        out = {"passes": 0.0, "requests": 0.0, "writes": 0.0}
        for line in text.splitlines():
            if line.startswith("keyturn_reconcile_duration_seconds_count"):
                out["passes"] = float(line.split()[-1])
            match = re.match(r'keyturn_api_requests_total\{operation="([^"]+)"\} (\S+)', line)
            if match:
                out["requests"] += float(match.group(2))
                if WRITES.match(match.group(1)):
                    out["writes"] += float(match.group(2))
        return out

    def rss_mib(self) -> float:
        assert self.proc is not None
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
        return 0.0

    def cpu_seconds(self) -> float:
        assert self.proc is not None
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _free_port() -> int:
    import socket  # noqa: PLC0415 - only here

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def keyset(name: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "JwtKeySet",
        "metadata": {"name": name},
        "spec": {"algorithm": "ES256", "rotation": SLOW},
    }


def is_ready(obj: dict[str, Any]) -> bool:
    status = obj.get("status") or {}
    return bool(status.get("nextKid")) and any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or ()
    )


def until_all_ready(custom: client.CustomObjectsApi, count: int, timeout: float) -> float:
    """Monotonic time at which all `count` keysets were Ready, seen from one list and a watch: a
    list of thousands of keysets every half second would take a good part of the two cores the
    operator and the API server share (each list of 1,000 is 4 MB of JSON)."""
    deadline = time.monotonic() + timeout
    listing: Any = custom.list_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, _preload_content=False)
    body = json.loads(listing.data)
    ready = {obj["metadata"]["name"] for obj in body["items"] if is_ready(obj)}
    version = body["metadata"]["resourceVersion"]
    while len(ready) < count:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"{len(ready)} of {count} keysets Ready after {timeout:.0f} s")
        stream: Any = custom.list_namespaced_custom_object(
            GROUP, VERSION, NS, PLURAL, resource_version=version, watch=True, allow_watch_bookmarks=True,
            timeout_seconds=max(1, int(left)), _preload_content=False, _request_timeout=(10, left + 10),
        )  # fmt: skip
        raw: Any = getattr(stream, "response", stream)
        try:
            for line in raw:
                event = json.loads(line)
                obj = event["object"]
                if event["type"] == "ERROR":
                    raise RuntimeError(f"watching the keysets: {obj.get('message')}")
                version = obj["metadata"]["resourceVersion"]
                if event["type"] != "BOOKMARK":
                    name = obj["metadata"]["name"]
                    (ready.add if event["type"] != "DELETED" and is_ready(obj) else ready.discard)(name)
                if len(ready) == count:
                    break
        finally:
            raw.release_conn()
    return time.monotonic()


def revoke(custom: client.CustomObjectsApi, core: client.CoreV1Api, name: str, tag: str) -> float:
    """Milliseconds from the status.emergency patch until the kid is out of the JWKS and no longer signs.

    The JWKS ConfigMap is watched, not polled: twenty probes polling every few milliseconds would
    load the API server they measure, and on this machine the operator's CPU with it. Keyturn
    writes the Secret before the JWKS, so the Secret is read once the JWKS has changed."""
    obj: dict[str, Any] = custom.get_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, name)  # type: ignore[assignment]
    old = (obj.get("status") or {})["currentKid"]
    cm_name = f"{name}-jwks"
    selector = f"metadata.name={cm_name}"
    answer: Any = core.list_namespaced_config_map(NS, field_selector=selector, _preload_content=False)
    listed = json.loads(answer.data)
    stream: Any = core.list_namespaced_config_map(
        NS,
        field_selector=selector,
        resource_version=listed["metadata"]["resourceVersion"],
        watch=True,
        timeout_seconds=60,
        _preload_content=False,
        _request_timeout=(10, 70),
    )
    patch = [{"op": "add", "path": "/status/emergency", "value": {"requestId": f"{tag}-{time.time_ns()}"}}]
    start = time.perf_counter()
    custom.patch_namespaced_custom_object_status(
        GROUP, VERSION, NS, PLURAL, name, patch, _content_type="application/json-patch+json"
    )
    raw: Any = getattr(stream, "response", stream)
    try:
        for line in raw:
            cm = json.loads(line)["object"]
            if not any(k["kid"] == old for k in json.loads((cm.get("data") or {})["jwks.json"])["keys"]):
                break
        else:
            raise TimeoutError(f"{name}: the JWKS still lists {old} after 60 s")
    finally:
        raw.release_conn()

    def signs_another() -> bool:
        secret = core.read_namespaced_secret(name, NS)
        return bool(base64.b64decode((secret.data or {})["JWT_KID"]).decode() != old)

    wait(signs_another, 60, f"{name}: revocation", interval=0.005)
    return (time.perf_counter() - start) * 1000


def summary(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    return {
        "n": len(values),
        "p50_ms": round(statistics.median(values), 1),
        "p99_ms": round(percentile(values, 99), 1),
        "max_ms": round(max(values), 1),
    }


def create_all(custom: client.CustomObjectsApi, names: list[str]) -> None:
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        list(
            pool.map(
                lambda n: custom.create_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, keyset(n)), names
            )
        )


def measure(count: int, args: argparse.Namespace) -> dict[str, Any]:
    with localcluster.LocalCluster(log=say, progress=say) as cluster:
        cluster.apply_crds([ROOT / "crds"])
        cluster.kubectl("create", "namespace", NS)
        api = cluster.api_client()
        custom, core = client.CustomObjectsApi(api), client.CoreV1Api(api)
        names = [f"ks-{i:05d}" for i in range(count)]
        created = time.monotonic()
        create_all(custom, names)
        say(f"{count} keysets created in {time.monotonic() - created:.1f}s")
        out: dict[str, Any] = {"keysets": count}

        operator = Operator(cluster, args.workers)
        started = operator.start()
        cold = until_all_ready(custom, count, args.timeout) - started
        wait(lambda: operator.metrics().get("passes") or None, 30, "metrics")
        settled = operator.metrics()
        out["cold_start"] = {
            "seconds": round(cold, 1),
            "passes_per_keyset": round(settled["passes"] / count, 2),
            "writes_per_keyset": round(settled["writes"] / count, 2),
            "api_requests_per_keyset": round(settled["requests"] / count, 2),
        }
        say(f"cold start: {out['cold_start']}")

        before, cpu = operator.metrics(), operator.cpu_seconds()
        time.sleep(args.idle)  # the measurement itself: what an idle operator does in this time
        after = operator.metrics()
        out["idle"] = {
            "seconds": args.idle,
            "writes": after["writes"] - before["writes"],
            "passes": after["passes"] - before["passes"],
            "cpu_seconds": round(operator.cpu_seconds() - cpu, 2),
        }
        out["rss_mib"] = operator.rss_mib()
        say(f"idle: {out['idle']}, rss {out['rss_mib']} MiB")

        chosen = random.sample(names, min(args.revocations, count))
        out["revoke_at_rest"] = summary([revoke(custom, core, name, "rest") for name in chosen])
        say(f"revoke at rest: {out['revoke_at_rest']}")

        until_all_ready(custom, count, args.timeout)
        operator.stop()

        # A restart with nothing to do: every keyset gets a pass, none should write.
        quiet = Operator(cluster, args.workers)
        began = quiet.start()
        wait(
            lambda: (quiet.metrics().get("passes", 0) >= count) or None,
            args.timeout,
            "a pass for every keyset",
            interval=0.25,
        )
        reconciled = time.monotonic() - began
        seen = quiet.metrics()
        out["restart"] = {
            "seconds_until_every_keyset_passed": round(reconciled, 1),
            "passes": seen["passes"],
            "writes": seen["writes"],
            "api_requests_per_keyset": round(seen["requests"] / count, 2),
        }
        say(f"restart: {out['restart']}")
        quiet.stop()

        # Another restart, with emergencies patched at fixed offsets from the process start.
        restart = Operator(cluster, args.workers)
        restarted = restart.start()
        samples: list[float] = []
        during = [n for n in names if n not in chosen]
        random.shuffle(during)
        offsets = [0.5, 1.0, 2.0, 3.0, 4.0][: max(1, min(5, len(during)))]
        threads = []
        lock = threading.Lock()

        by_offset: dict[float, list[float]] = {}
        milestones: dict[str, float] = {}

        def later(name: str, offset: float) -> None:
            time.sleep(max(0.0, restarted + offset - time.monotonic()))  # the schedule of the probe
            value = revoke(custom, core, name, "restart")
            with lock:
                samples.append(value)
                by_offset.setdefault(offset, []).append(value)

        def watch_start() -> None:
            """When the restarted operator answered /metrics, and when its first pass ended."""
            while "first_pass" not in milestones and time.monotonic() - restarted < args.timeout:
                seen = restart.metrics()
                if seen:
                    milestones.setdefault("metrics_up", time.monotonic() - restarted)
                if seen.get("passes"):
                    milestones["first_pass"] = time.monotonic() - restarted
                time.sleep(0.1)  # the probe's own sampling period: /metrics costs the operator CPU

        threads.append(threading.Thread(target=watch_start))
        threads[-1].start()

        per_offset = max(1, args.revocations // len(offsets))
        for i, offset in enumerate(offsets):
            for name in during[i * per_offset : (i + 1) * per_offset]:
                thread = threading.Thread(target=later, args=(name, offset))
                thread.start()
                threads.append(thread)
        for thread in threads:
            thread.join()
        out["revoke_during_restart"] = summary(samples)
        # Each patch's offset from the restart, with its times: what the process start itself costs.
        out["revoke_during_restart"]["by_offset_ms"] = {
            str(offset): sorted(round(v) for v in values) for offset, values in sorted(by_offset.items())
        }
        out["revoke_during_restart"].update({f"{k}_s": round(v, 2) for k, v in milestones.items()})
        say(f"revoke during restart: {out['revoke_during_restart']}")
        restart.stop()
        api.close()
        return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--keysets", default="100,1000", help="comma-separated counts")
    parser.add_argument("--idle", type=float, default=120.0, help="seconds of idle measurement")
    parser.add_argument("--revocations", type=int, default=20)
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--timeout", type=float, default=900.0)
    args = parser.parse_args()
    results = [measure(int(n), args) for n in args.keysets.split(",")]
    print(json.dumps({"benchmark": "scale", "workers": args.workers, "results": results}, indent=2))


if __name__ == "__main__":
    main()
