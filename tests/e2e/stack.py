"""The pieces of the end-to-end analysis test that are not Kubernetes: Prometheus and a kubelet stand-in.

Prometheus is Debian's real server, scraping the example app (a real local process). The app reads
its keys from files exactly as a Pod would: a mirror of the Secret and the JWKS ConfigMap, updated
with the kubelet's atomic `..data` symlink swap whenever the objects change.
"""

from __future__ import annotations

import base64
import json
import shutil
import socket
import subprocess
import threading
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from kubernetes import client, watch

from helpers import wait_for
from keyturn.client import project


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Prometheus:
    """`prometheus` on 127.0.0.1 with one scrape job, a 1 s interval and a throwaway TSDB."""

    def __init__(self, workdir: Path, targets: list[str]) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.address = f"http://127.0.0.1:{self.port}"
        self.targets = targets
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        binary = shutil.which("prometheus")
        if binary is None:
            raise RuntimeError("Debian's prometheus package is missing: run `make system-deps`")
        config = self.workdir / "prometheus.yml"
        config.write_text(
            json.dumps(
                {  # JSON is YAML
                    "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                    "scrape_configs": [{"job_name": "app", "static_configs": [{"targets": self.targets}]}],
                }
            )
        )
        log = (self.workdir / "prometheus.log").open("wb")
        self.proc = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={self.workdir / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--storage.tsdb.retention.time=1h",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        wait_for(self._ready, 30, interval=0.2, message="prometheus /-/ready")
        wait_for(lambda: self.query("up") == 1.0, 30, interval=0.5, message="prometheus scraping the app")

    def _ready(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"prometheus exited: {(self.workdir / 'prometheus.log').read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{self.address}/-/ready", timeout=2) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    def query(self, expression: str) -> float | None:
        url = f"{self.address}/api/v1/query?" + urllib.parse.urlencode({"query": expression})
        with urllib.request.urlopen(url, timeout=5) as response:
            body: dict[str, Any] = json.load(response)
        result = body["data"]["result"]
        return float(result[0]["value"][1]) if result else None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


class KubeletMirror:
    """Keeps a Secret and a ConfigMap mirrored into two volume-like directories, like the kubelet."""

    def __init__(
        self, api: Any, namespace: str, secret: str, configmap: str, secret_dir: Path, jwks_dir: Path
    ) -> None:
        self.core = client.CoreV1Api(api)
        self.namespace, self.secret, self.configmap = namespace, secret, configmap
        self.secret_dir, self.jwks_dir = secret_dir, jwks_dir
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()  # one writer per volume, as with the kubelet
        self.syncs = 0

    def sync_once(self) -> None:
        with self._lock:
            self._sync()

    def _sync(self) -> None:
        secret = self.core.read_namespaced_secret(self.secret, self.namespace)
        data = {k: base64.b64decode(v).decode() for k, v in (secret.data or {}).items()}
        project(self.secret_dir, data)
        cm = self.core.read_namespaced_config_map(self.configmap, self.namespace)
        project(self.jwks_dir, dict(cm.data or {}))
        self.syncs += 1

    def start(self) -> None:
        self.sync_once()
        for lister in (self.core.list_namespaced_secret, self.core.list_namespaced_config_map):
            thread = threading.Thread(target=self._follow, args=(lister,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _follow(self, lister: Any) -> None:
        while not self._stop.is_set():
            for _event in watch.Watch().stream(lister, self.namespace, timeout_seconds=5):
                if self._stop.is_set():
                    return
                self.sync_once()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)
