"""Shared set-up for the benchmarks: a local control plane, the CRD and the operator process."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "hack"))

import localcluster  # noqa: E402 - lives in hack/, put on the path above

T = TypeVar("T")


def say(line: str) -> None:
    print(f"[bench] {line}", file=sys.stderr, flush=True)


def keyturn_run(namespace: str, *flags: str) -> list[str]:
    """The command of the operator the benchmarks measure: `keyturn run` for one namespace, with
    JSON logs and no health port."""
    return [sys.executable, "-m", "keyturn", "run", "--namespace", namespace, "--health-port=0",
            "--log-format=json", *flags]  # fmt: skip


def stop(proc: subprocess.Popen[bytes] | None, timeout: float = 20) -> None:
    """SIGTERM, as a Pod's stop; SIGKILL if the process has not exited within `timeout`."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextlib.contextmanager
def environment(namespace: str = "bench") -> Iterator[tuple[localcluster.LocalCluster, Any]]:
    """A fresh control plane with the CRD and a running operator; everything stopped on exit."""
    with localcluster.LocalCluster(log=say, progress=say) as cluster:
        cluster.apply_crds([ROOT / "crds"])
        cluster.kubectl("create", "namespace", namespace)
        log = cluster.workdir / "operator.log"
        with log.open("wb") as handle:
            operator = subprocess.Popen(
                keyturn_run(namespace, "--standalone", "--metrics-port=0"),
                env={**os.environ, "KUBECONFIG": str(cluster.kubeconfig)},
                stdout=handle,
                stderr=subprocess.STDOUT,
            )
        try:
            yield cluster, cluster.api_client()
        finally:
            stop(operator)


def wait(predicate: Callable[[], T | None], timeout: float, what: str, interval: float = 0.002) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise SystemExit(f"timed out waiting for {what}")


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def report(name: str, values_ms: list[float], extra: dict[str, Any] | None = None) -> None:
    summary = {
        "benchmark": name,
        "n": len(values_ms),
        "p50_ms": round(statistics.median(values_ms), 1),
        "p99_ms": round(percentile(values_ms, 99), 1),
        "max_ms": round(max(values_ms), 1),
        "mean_ms": round(statistics.fmean(values_ms), 1),
        **(extra or {}),
    }
    print(json.dumps(summary, indent=2))
