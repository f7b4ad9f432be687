"""End to end: real Prometheus scrapes the example app under load while Keyturn rotates.

A healthy rotation passes the analysis. When the app is made to reject tokens of the new kid, the
success rate drops and Keyturn rolls back by itself: the old kid signs again in the Secret, the new
one is `failed` and still in the JWKS, and the condition, Event and history say so.
"""

from __future__ import annotations

import json
import subprocess
import sys
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
QUERY = 'sum(rate(jwt_validations_total{result="success"}[10s])) / sum(rate(jwt_validations_total[10s]))'


@dataclass
class Stack:
    app_url: str
    prometheus: Prometheus
    mirror: KubeletMirror

    def reject(self, kids: list[str]) -> None:
        request = urllib.request.Request(
            f"{self.app_url}/admin/reject-kids",
            data=json.dumps({"kids": kids}).encode(),
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            assert response.status == 200

    def app_kid(self) -> str:
        with urllib.request.urlopen(f"{self.app_url}/token", timeout=5) as response:
            body: dict[str, Any] = json.load(response)
        return str(body["kid"])


@pytest.fixture
def stack(kube: Kube, keyturn: OperatorProcess, tmp_path: Path) -> Iterator[Stack]:
    kube.create_keyset(
        "keys",
        {
            "algorithm": "ES256",
            "rotation": {"interval": "30d", "publishAhead": "0s", "gracePeriod": "7d", "retention": "14d"},
            "analysis": {
                "prometheus": {
                    "address": "http://127.0.0.1:1",
                    "query": QUERY,
                },  # set below, once Prometheus runs
                "successThreshold": "0.9",
                "initialDelay": "6s",
                "interval": "2s",
                "count": 6,
                "failureLimit": 1,
                "onNoData": "Inconclusive",
                "onFailure": "Rollback",
            },
        },
    )
    kube.wait_ready("keys")
    mirror = KubeletMirror(
        kube.api, kube.namespace, "keys", "keys-jwks", tmp_path / "secret", tmp_path / "jwks"
    )
    mirror.start()
    port = free_port()
    app = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "examples/app/app.py"),
            "--secret-dir",
            str(tmp_path / "secret"),
            "--jwks-file",
            str(tmp_path / "jwks" / "jwks.json"),
            "--algorithm",
            "ES256",
            "--port",
            str(port),
            "--enable-admin",
            "--check-interval",
            "0.2",
        ],
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "app.log").open("wb"),
    )
    app_url = f"http://127.0.0.1:{port}"
    prometheus = Prometheus(tmp_path, [f"127.0.0.1:{port}"])
    load: subprocess.Popen[bytes] | None = None
    try:
        wait_for(lambda: _up(f"{app_url}/healthz"), 30, message="example app listening")
        load = subprocess.Popen(
            [
                sys.executable,
                str(ROOT / "examples/app/load.py"),
                "--url",
                app_url,
                "--rps",
                "40",
                "--duration",
                "0",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        prometheus.start()
        kube.patch_keyset("keys", {"spec": {"analysis": {"prometheus": {"address": prometheus.address}}}})
        wait_for(lambda: (prometheus.query(QUERY) or 0) > 0.99, 30, interval=0.5, message="healthy traffic")
        yield Stack(app_url, prometheus, mirror)
    finally:
        for proc in (load, app):
            if proc is not None:
                proc.terminate()
                proc.wait(timeout=10)
        prometheus.stop()
        mirror.stop()


def _up(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def test_a_healthy_rotation_passes_the_analysis(kube: Kube, stack: Stack) -> None:
    before = kube.status("keys")
    kube.patch_keyset("keys", {"metadata": {"annotations": {"keyturn.dev/rotate": "healthy"}}})
    wait_for(lambda: stack.app_kid() == before["nextKid"], 30, message="the app signs with the new key")
    status = kube.wait_status(
        "keys",
        lambda s: (s.get("analysis") or {}).get("phase") in ("Passed", "Failed", "Inconclusive"),
        60,
        "analysis concluded",
    )
    assert status["analysis"]["phase"] == "Passed", status["analysis"]
    assert status["currentKid"] == before["nextKid"]
    assert len(status["analysis"]["measurements"]) == 6
    assert all(m["result"] == "Pass" for m in status["analysis"]["measurements"])
    assert any(h["operation"] == "analysis" and h["result"] == "Passed" for h in status["history"])
    assert kube.condition("keys", "RolledBack")["status"] == "False"  # type: ignore[index]


def test_rejected_tokens_drop_the_success_rate_and_keyturn_rolls_back(
    kube: Kube, stack: Stack, keyturn: OperatorProcess
) -> None:
    before = kube.status("keys")
    old, new = before["currentKid"], before["nextKid"]
    stack.reject([new])  # the app will refuse every token signed with the key about to activate
    kube.patch_keyset("keys", {"metadata": {"annotations": {"keyturn.dev/rotate": "bad"}}})
    status = kube.wait_status(
        "keys",
        lambda s: any(h["operation"] == "rollback" for h in s.get("history", [])),
        90,
        "automatic rollback",
    )
    assert status["currentKid"] == old
    keys = {k["kid"]: k for k in status["keys"]}
    assert keys[new]["state"] == "failed"
    rollback = next(h for h in status["history"] if h["operation"] == "rollback")
    assert rollback["trigger"] == "analysis" and rollback["kids"] == [old, new]
    assert "below threshold" in rollback["reason"]
    assert status["analysis"]["phase"] == "Failed"
    assert any(m["result"] == "Fail" for m in status["analysis"]["measurements"])
    assert (kube.secret("keys") or {})["JWT_KID"] == old
    assert new in [k["kid"] for k in (kube.jwks("keys-jwks") or {})["keys"]]  # tokens were signed with it
    cond = kube.wait_condition("keys", "RolledBack", "True")
    assert cond["reason"] == "RolledBack" and old in cond["message"]
    reasons = {e.reason for e in kube.events() if e.involved_object.name == "keys"}
    assert {"AnalysisFailed", "RolledBack"} <= reasons
    metric = f'keyturn_rollbacks_total{{keyset="keys",namespace="{kube.namespace}",trigger="analysis"}} 1.0'
    assert metric in keyturn.metrics()
    wait_for(lambda: stack.app_kid() == old, 30, message="the app signs with the old key again")
