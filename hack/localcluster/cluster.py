"""What tests need from any cluster, local or not: a kubeconfig, kubectl, an API client, CRDs."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from localcluster.errors import ClusterError

if TYPE_CHECKING:
    from kubernetes.client import ApiClient


class KubectlError(subprocess.CalledProcessError):
    """A kubectl failure whose str() shows kubectl's own explanation, not just the exit code."""

    def __str__(self) -> str:
        return f"{super().__str__()}\nstdout:\n{self.stdout}\nstderr:\n{self.stderr}"


class Cluster:
    """What tests need from any cluster: a kubeconfig, a kubectl and an API client."""

    kubeconfig: Path
    kubectl_path: Path | None
    has_kwok: bool = False

    def _kubectl_extra(self) -> tuple[str, ...]:
        return ()

    def api_client(self) -> ApiClient:
        """A fresh client each call: clients own thread pools, and callers close their own."""
        from kubernetes import client, config  # noqa: PLC0415 - heavy import, only for API users

        cfg = client.Configuration()
        config.load_kube_config(
            config_file=str(self.kubeconfig), client_configuration=cfg, persist_config=False
        )
        return client.ApiClient(cfg)

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        if self.kubectl_path is None:
            raise ClusterError("no kubectl: put one on PATH or set KEYTURN_BIN_DIR")
        argv = [str(self.kubectl_path), f"--kubeconfig={self.kubeconfig}", *self._kubectl_extra(), *args]
        result = subprocess.run(
            argv, input=input, capture_output=True, text=True, timeout=timeout, check=False
        )
        if check and result.returncode != 0:
            raise KubectlError(result.returncode, argv, result.stdout, result.stderr)
        return result

    def apply_crds(self, paths: Iterable[Path | str], timeout: float = 60) -> list[str]:
        """Applies CRD manifests and returns only once their APIs are served (Established).

        Server-side apply, so re-applying an edited CRD to a long-lived cluster just works.
        """
        names: list[str] = []
        for f in _manifest_files(paths):
            out = self.kubectl(
                "apply",
                "--server-side",
                "--force-conflicts",
                "--field-manager=keyturn-tests",
                "-o",
                "name",
                "-f",
                str(f),
            ).stdout
            names += [n for n in out.split() if n.startswith("customresourcedefinition")]
        if names:
            self.kubectl(
                "wait",
                "--for=condition=Established",
                f"--timeout={int(timeout)}s",
                *names,
                timeout=timeout + 30,
            )
        return names


class ExistingCluster(Cluster):
    """A cluster someone else runs (e.g. kind): used as is, never started or stopped here."""

    def __init__(self, kubeconfig: Path | str) -> None:
        self.kubeconfig = Path(kubeconfig)
        if not self.kubeconfig.is_file():
            raise ClusterError(f"kubeconfig {self.kubeconfig} does not exist")
        found = shutil.which("kubectl")
        bin_dir = os.environ.get("KEYTURN_BIN_DIR")
        if found:
            self.kubectl_path = Path(found)
        elif bin_dir and (Path(bin_dir) / "kubectl").exists():
            self.kubectl_path = Path(bin_dir) / "kubectl"
        else:
            self.kubectl_path = None


def _manifest_files(paths: Iterable[Path | str]) -> list[Path]:
    """The files named, and the YAML files of the directories named, in name order."""
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files += sorted(f for f in p.iterdir() if f.suffix in {".yaml", ".yml"})
        else:
            files.append(p)
    return files
