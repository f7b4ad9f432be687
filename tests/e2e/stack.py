"""The pieces of the end-to-end analysis test that are not Kubernetes: Prometheus and a kubelet stand-in.

Prometheus is Debian's real server, scraping the example app (real local processes). The app reads
its keys from files exactly as a Pod would: a mirror of the Secret and the JWKS ConfigMap, updated
with the kubelet's atomic `..data` symlink swap whenever the objects change. A mirror can be
frozen, like a kubelet that stops syncing a volume, so that its process keeps the keys it has.
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
from datetime import datetime
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
    """`prometheus` on 127.0.0.1 with one scrape job, a 1 s interval and a throwaway TSDB.

    Every query it answers is written to its query log (`queries()`): what Keyturn asked, and when.
    """

    def __init__(self, workdir: Path, targets: list[str]) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.address = f"http://127.0.0.1:{self.port}"
        self.targets = targets
        self.query_log = workdir / "queries.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        binary = shutil.which("prometheus")
        if binary is None:
            raise RuntimeError("Debian's prometheus package is missing: run `make system-deps`")
        config = self.workdir / "prometheus.yml"
        config.write_text(
            json.dumps(
                {  # JSON is YAML
                    "global": {
                        "scrape_interval": "1s",
                        "evaluation_interval": "1s",
                        "query_log_file": str(self.query_log),
                    },
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
        wait_for(
            lambda: self.query("count(up == 1)") == len(self.targets),
            30,
            interval=0.5,
            message="prometheus scraping every target",
        )

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

    def queries(self, containing: str = "") -> list[tuple[float, str]]:
        """(Unix time, expression) of every query answered so far whose expression holds `containing`."""
        found: list[tuple[float, str]] = []
        if not self.query_log.exists():
            return found
        for line in self.query_log.read_text().splitlines():
            try:
                entry = json.loads(line)
                expression, at = str(entry["params"]["query"]), str(entry["ts"])
            except (ValueError, KeyError, TypeError):
                continue  # a line still being written
            if containing in expression:
                found.append((datetime.fromisoformat(at.replace("Z", "+00:00")).timestamp(), expression))
        return found

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


class KubeletMirror:
    """Keeps a Secret and a ConfigMap mirrored into two volume-like directories, like the kubelet.

    Without a Secret (`secret=None`) only the JWKS is mirrored: a process that only verifies.
    """

    def __init__(
        self,
        api: Any,
        namespace: str,
        secret: str | None,
        configmap: str,
        secret_dir: Path | None,
        jwks_dir: Path,
    ) -> None:
        self.core = client.CoreV1Api(api)
        self.namespace, self.secret, self.configmap = namespace, secret, configmap
        self.secret_dir, self.jwks_dir = secret_dir, jwks_dir
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()  # one writer per volume, as with the kubelet
        self._frozen = False
        self.syncs = 0

    def sync_once(self, *, force: bool = False) -> None:
        """Mirror the objects now; a frozen mirror only does so when forced (one step)."""
        with self._lock:
            if force or not self._frozen:
                self._sync()

    def freeze(self) -> None:
        """Stop syncing, like a kubelet that no longer updates the volume: when this returns, the
        directories keep the version they have until `thaw()` or a forced `sync_once`."""
        with self._lock:
            self._frozen = True

    def thaw(self) -> None:
        """Sync again: at once, and on every change from now on."""
        with self._lock:
            self._frozen = False
            self._sync()

    def _sync(self) -> None:
        if self.secret is not None and self.secret_dir is not None:
            secret = self.core.read_namespaced_secret(self.secret, self.namespace)
            data = {k: base64.b64decode(v).decode() for k, v in (secret.data or {}).items()}
            project(self.secret_dir, data)
        cm = self.core.read_namespaced_config_map(self.configmap, self.namespace)
        project(self.jwks_dir, dict(cm.data or {}))
        self.syncs += 1

    def start(self) -> None:
        self.sync_once()
        listers: list[Any] = [self.core.list_namespaced_config_map]
        if self.secret is not None:
            listers.append(self.core.list_namespaced_secret)
        for lister in listers:
            thread = threading.Thread(target=self._follow, args=(lister,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _follow(self, lister: Any) -> None:
        while not self._stop.is_set():
            for _event in watch.Watch().stream(lister, self.namespace, timeout_seconds=5):
                if self._stop.is_set():
                    return
                self.sync_once()

    def stop_soon(self) -> None:
        """Ask the watch threads to end (each within its 5 s watch timeout); `stop` waits for them.
        Several mirrors stop in one timeout when each is asked first."""
        self._stop.set()

    def stop(self) -> None:
        self.stop_soon()
        for thread in self._threads:
            thread.join(timeout=10)
