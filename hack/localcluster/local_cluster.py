"""``LocalCluster``: the library API of the local control plane (start, stop, restart, logs)."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

from localcluster import exit_handlers
from localcluster.admin_api import AdminAPI
from localcluster.binaries import check_binaries, ensure_binaries
from localcluster.cluster import Cluster
from localcluster.components import (
    API,
    CONTROLLERS,
    STORAGE,
    Context,
    FlagEdits,
    by_name,
    identities,
    needed_files,
    port_names,
)
from localcluster.control_plane import ControlPlane
from localcluster.credentials import issue_credentials, write_kubeconfig
from localcluster.errors import ClusterError
from localcluster.log import Log, quiet, stderr_log
from localcluster.network import LOOPBACK, free_ports
from localcluster.nodes import is_ready_and_untainted, node_manifest, node_names
from localcluster.process import Deadline
from localcluster.workdir import prepare_workdir, remove_workdir


class _Laps:
    """Records how long each start-up phase took, for the "control plane ready" line."""

    def __init__(self, into: dict[str, float]) -> None:
        self._into = into
        self._last = time.monotonic()

    def lap(self, phase: str) -> None:
        now = time.monotonic()
        self._into[phase] = now - self._last
        self._last = now


def _flag_edits(
    extra_args: Mapping[str, Sequence[str]], drop_args: Mapping[str, Sequence[str]]
) -> dict[str, FlagEdits]:
    unknown = sorted({*extra_args, *drop_args} - set(by_name()))
    if unknown:
        raise ValueError(f"no component named {', '.join(unknown)}; the table has {', '.join(by_name())}")
    return {
        name: FlagEdits(tuple(extra_args.get(name, ())), frozenset(drop_args.get(name, ())))
        for name in {*extra_args, *drop_args}
    }


class LocalCluster(Cluster):
    """etcd, kube-apiserver, kube-controller-manager, kube-scheduler and KWOK on 127.0.0.1.

    The components and their flags are the table in components.py. ``nodes`` is how many KWOK
    Nodes to register. Per component name, ``extra_args`` appends flags (a repeated scalar flag
    overrides the table's value) and ``drop_args`` removes flags of the table by name (for a
    flag that excludes another). Every component logs to ``<workdir>/logs/<name>.log``; a
    start failure raises ClusterError quoting the end of the responsible log, because "timed
    out" alone never helps.
    """

    has_kwok = True

    def __init__(
        self,
        workdir: Path | str | None = None,
        *,
        bin_dir: Path | str | None = None,
        keep: bool = False,
        timeout: float = 120.0,
        log: Log | None = stderr_log,
        progress: Log | None = stderr_log,
        nodes: int = 1,
        extra_args: Mapping[str, Sequence[str]] | None = None,
        drop_args: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        if nodes < 1:
            raise ValueError(f"a LocalCluster needs at least one KWOK Node, not {nodes}")
        self._edits = _flag_edits(extra_args or {}, drop_args or {})
        self._requested_dir = Path(workdir).resolve() if workdir is not None else None
        self._bin_dir = Path(bin_dir) if bin_dir is not None else None
        self.keep = keep
        self.timeout = timeout
        self._log = log or quiet
        self._progress = progress
        self.node_names = node_names(nodes)
        self.workdir = self._requested_dir or Path()
        self.kubeconfig = Path()
        self.kubectl_path = None
        self.ports: dict[str, int] = {}
        self.timings: dict[str, float] = {}
        self.startup_seconds: float | None = None
        self._plane: ControlPlane | None = None
        self._admin: AdminAPI | None = None
        self._made_dir = False
        self._started = False
        self._lock = threading.Lock()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def bin_dir(self) -> Path:
        if self._bin_dir is None:
            self._bin_dir = ensure_binaries(self._progress)
        return self._bin_dir

    @property
    def server(self) -> str:
        assert self.ports, "cluster not started"
        return f"https://{LOOPBACK}:{self.ports[API]}"

    def start(self) -> None:
        """Starts every component; if any step fails, stops what was started and raises."""
        if self._started:
            return
        exit_handlers.install_exit_handlers()
        began = time.monotonic()
        bin_dir = self.bin_dir  # may build for many minutes: not part of the startup deadline
        check_binaries(bin_dir, needed_files())
        self.kubectl_path = bin_dir / "kubectl"
        self._started = True
        exit_handlers.register(self)
        try:
            self._start(bin_dir)
        except ClusterError as e:
            self._stop(keep_logs=True)
            raise ClusterError(f"{e}\n(all logs: {self.workdir / 'logs'})") from None
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - began
        phases = ", ".join(f"{k} {v:.1f}s" for k, v in self.timings.items())
        self._log(f"control plane ready in {self.startup_seconds:.1f}s ({phases}); logs: {self.workdir}/logs")

    def _start(self, bin_dir: Path) -> None:
        laps = _Laps(self.timings)
        self.workdir, self._made_dir = prepare_workdir(self._requested_dir)
        self.ports = free_ports(port_names())
        context = Context(self.workdir, bin_dir, self.ports)
        plane = self._plane = ControlPlane(context, deadline=Deadline.after(self.timeout), edits=self._edits)
        plane.launch(STORAGE)  # first: etcd's start-up overlaps with making the certificates
        self._issue_credentials(context)
        laps.lap("certificates")
        plane.await_ready(STORAGE)
        laps.lap("etcd")
        plane.start(API)
        laps.lap("kube-apiserver")
        plane.launch(CONTROLLERS)
        self._register_nodes()
        plane.await_ready(CONTROLLERS)
        laps.lap("controllers")
        plane.wait(
            f"Node {', '.join(self.node_names)} Ready and untainted",
            self._nodes_ready,
            blame=("kwok", "kube-controller-manager"),
        )
        laps.lap("node")
        plane.wait(
            "ServiceAccount default/default",
            lambda: self._api.status("/api/v1/namespaces/default/serviceaccounts/default") == 200,
            blame=("kube-controller-manager",),
        )
        laps.lap("serviceaccount")

    def stop(self, grace: float = 5.0) -> None:
        """Ends every component (whole process groups, so no grandchild survives) and the dir."""
        self._stop(grace)

    def restart(
        self,
        component: str,
        extra_args: Sequence[str] = (),
        drop_args: Sequence[str] = (),
        grace: float = 1.0,
    ) -> None:
        """Stops one component and starts it again with the table's flags, edited as in __init__.

        The edits replace the ones that component had (from the constructor or an earlier
        restart). Returns once its health check passes. The short ``grace``: an apiserver whose
        clients hold watches never finishes a graceful shutdown, so waiting longer only delays
        the SIGKILL. Call it from the thread that started the cluster: Linux ties the
        parent-death signal to the thread that launched a process.
        """
        with self._lock:
            if self._plane is None:
                raise ClusterError("the cluster is not running")
            edits = _flag_edits({component: extra_args}, {component: drop_args})[component]
            self._plane.restart(component, edits, grace)
            self._edits[component] = edits

    def logs(self) -> dict[str, Path]:
        processes = self._plane.processes if self._plane else {}
        return {name: proc.log for name, proc in processes.items()}

    def tail(self, component: str, lines: int = 40) -> str:
        proc = self._plane.processes.get(component) if self._plane else None
        return proc.tail(lines) if proc else "(not running)"

    def dead_components(self) -> list[str]:
        return self._plane.dead() if self._plane else []

    def _stop(self, grace: float = 5.0, *, keep_logs: bool = False) -> None:
        with self._lock:
            if not self._started:
                return
            self._started = False
            if self._plane is not None:
                self._plane.stop(grace)
                self._plane = None
            if not self.keep:
                remove_workdir(self.workdir, made=self._made_dir, keep_logs=keep_logs)
            exit_handlers.unregister(self)

    def _issue_credentials(self, context: Context) -> None:
        creds = context.credentials = issue_credentials(self.workdir / "pki", identities())
        self.kubeconfig = self.workdir / "kubeconfig"
        write_kubeconfig(self.kubeconfig, context.server, creds.ca.cert, creds.admin, "admin")
        for name, pair in creds.clients.items():
            write_kubeconfig(context.kubeconfig(name), context.server, creds.ca.cert, pair, name)
        self._admin = AdminAPI(self.ports[API], creds.admin_tls())

    @property
    def _api(self) -> AdminAPI:
        assert self._admin is not None, "credentials not issued yet"
        return self._admin

    def _register_nodes(self) -> None:
        for name in self.node_names:
            status, data = self._api.call("POST", "/api/v1/nodes", node_manifest(name))
            if status != 201:
                detail = data.decode(errors="replace")
                raise ClusterError(f"creating Node {name} failed: HTTP {status} {detail}")

    def _nodes_ready(self) -> bool:
        nodes = (self._api.get_json(f"/api/v1/nodes/{name}") for name in self.node_names)
        return all(node is not None and is_ready_and_untainted(node) for node in nodes)

    def _kubectl_extra(self) -> tuple[str, ...]:
        # Discovery cache inside the work dir: nothing of a throwaway cluster lands in ~/.kube.
        return (f"--cache-dir={self.workdir / 'kube-cache'}",)
