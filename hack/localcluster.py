#!/usr/bin/env python3
"""A real, throwaway Kubernetes control plane on 127.0.0.1 for Keyturn's tests and demo.

Keyturn's behaviour depends on what the apiserver really does (RBAC, TokenRequest, rollouts
driven by the Deployment and ReplicaSet controllers), which fakes and envtest-style "apiserver
only" setups cannot show. So this runs the genuine binaries built by hack/build-binaries.sh:
etcd, kube-apiserver, kube-controller-manager and kube-scheduler, with KWOK standing in for the
kubelet of one Node so that Pods are scheduled and become Ready without a container runtime.

Usable as a library (``LocalCluster``, a context manager) and as a CLI::

    python hack/localcluster.py up --dir .keyturn/cluster [--crds crds/]
    python hack/localcluster.py env
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import ctypes
import datetime as dt
import http.client
import ipaddress
import json
import os
import queue
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType, TracebackType
from typing import TYPE_CHECKING, Any, Self

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

HACK_DIR = Path(__file__).resolve().parent
BUILD_SCRIPT = HACK_DIR / "build-binaries.sh"
VERSIONS_FILE = HACK_DIR / "versions.env"

LOOPBACK = "127.0.0.1"
# Kept away from KWOK's pod CIDR so a Pod IP can never be mistaken for a Service IP.
SERVICE_CIDR = "10.96.0.0/12"
POD_CIDR = "10.244.0.0/16"
SA_ISSUER = "https://kubernetes.default.svc.cluster.local"
KWOK_NODE = "kwok-node-0"
KWOK_NODE_ANNOTATION = ("kwok.x-k8s.io/node", "fake")
# The work dir holds etcd's data: only a dir this module made may be wiped and reused.
MARKER = ".keyturn-localcluster"
TEMP_PREFIX = "keyturn-cluster-"

Log = Callable[[str], None]


class ClusterError(RuntimeError):
    """The control plane could not be started or used; the message carries the evidence."""


class KubectlError(subprocess.CalledProcessError):
    """A kubectl failure whose str() shows kubectl's own explanation, not just the exit code."""

    def __str__(self) -> str:
        return f"{super().__str__()}\nstdout:\n{self.stdout}\nstderr:\n{self.stderr}"


def _stderr_log(line: str) -> None:
    print(f"[keyturn] {line}", file=sys.stderr, flush=True)


def versions() -> dict[str, str]:
    """The pinned versions, read from the file the build script itself sources."""
    pins: dict[str, str] = {}
    for raw in VERSIONS_FILE.read_text().splitlines():
        line = raw.strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            pins[key.strip()] = value.strip()
    return pins


def ensure_binaries(progress: Log | None = None) -> Path:
    """Returns the bin dir of the control-plane binaries, building them on a machine's first run.

    A cold build takes tens of minutes and is silent between binaries, so when a build (rather
    than a cache hit) is under way its log lines are forwarded to ``progress`` together with a
    periodic "still building" line: a newcomer must not mistake it for a hang.
    KEYTURN_BIN_DIR, when set, names a ready bin dir and skips the script entirely.
    """
    override = os.environ.get("KEYTURN_BIN_DIR")
    if override:
        return Path(override)
    emit = progress or (lambda _line: None)
    proc = subprocess.Popen(
        ["bash", str(BUILD_SCRIPT)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # so an interrupt can stop the go builds too, not just bash
    )
    started = time.monotonic()
    try:
        building, seen, out = _follow_build(proc, emit)
    except BaseException:
        _signal_group(proc, signal.SIGTERM)
        proc.wait()
        raise
    if proc.returncode != 0 or not out:
        tail = "\n".join(seen[-40:])
        raise ClusterError(f"{BUILD_SCRIPT} failed (exit {proc.returncode}); its last output:\n{tail}")
    if building:
        emit(f"binaries ready after {time.monotonic() - started:.0f}s")
    return Path(out[-1])


def _follow_build(proc: subprocess.Popen[str], emit: Log) -> tuple[bool, list[str], list[str]]:
    """Relays the build's stderr until it exits: (whether it built anything, stderr, stdout)."""
    assert proc.stdout is not None
    assert proc.stderr is not None
    stdout, stderr = proc.stdout, proc.stderr
    stdout_chunks: list[str] = []
    out_reader = threading.Thread(target=lambda: stdout_chunks.append(stdout.read()), daemon=True)
    out_reader.start()
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        for line in stderr:
            lines.put(line.rstrip("\n"))
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    seen: list[str] = []
    building = False
    started = time.monotonic()
    while True:
        try:
            line = lines.get(timeout=60)
        except queue.Empty:
            if building:
                emit(f"  ... still building ({(time.monotonic() - started) / 60:.0f} min elapsed)")
            continue
        if line is None:
            break
        seen.append(line)
        if not building and ": building" in line:
            building = True
            emit("building control plane binaries (first run only; a cold build takes 20-40 min)...")
        if building:
            emit(f"  {line}")
    proc.wait()
    out_reader.join()
    return building, seen, "".join(stdout_chunks).strip().splitlines()


# --------------------------------------------------------------------------------------------
# PKI


@dataclass(frozen=True)
class _KeyPair:
    cert: Path
    key: Path


def _name(common_name: str, org: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if org:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    return x509.Name(attrs)


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)


def _write_service_account_keys(directory: Path) -> _KeyPair:
    """The key pair signing ServiceAccount tokens; ``cert`` holds the public key.

    RSA, the algorithm every TokenRequest consumer (including PyJWT in Keyturn's tests) supports.
    """
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pair = _KeyPair(directory / "sa.pub", directory / "sa.key")
    _write_key(pair.key, key)
    pair.cert.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return pair


class _PKI:
    """A private CA and the certificates it issues. EC P-256 keeps generation instant."""

    def __init__(self, directory: Path, stem: str, common_name: str) -> None:
        self.dir = directory
        directory.mkdir(parents=True, exist_ok=True)
        self._now = dt.datetime.now(dt.UTC)
        self._ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = _name(common_name)
        self._ca_cert = (
            x509.CertificateBuilder()
            .subject_name(ca_name)
            .issuer_name(ca_name)
            .public_key(self._ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(self._now - dt.timedelta(hours=1))
            .not_valid_after(self._now + dt.timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(self._ca_key.public_key()), critical=False
            )
            .sign(self._ca_key, hashes.SHA256())
        )
        self.ca = _KeyPair(directory / f"{stem}.crt", directory / f"{stem}.key")
        self.ca.cert.write_bytes(self._ca_cert.public_bytes(serialization.Encoding.PEM))
        _write_key(self.ca.key, self._ca_key)

    def issue(
        self,
        stem: str,
        common_name: str,
        *,
        org: str | None = None,
        server: bool = False,
        client: bool = False,
        dns: Sequence[str] = (),
        ips: Sequence[str] = (),
    ) -> _KeyPair:
        key = ec.generate_private_key(ec.SECP256R1())
        usages = ([ExtendedKeyUsageOID.SERVER_AUTH] if server else []) + (
            [ExtendedKeyUsageOID.CLIENT_AUTH] if client else []
        )
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name, org))
            .issuer_name(self._ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(self._now - dt.timedelta(hours=1))
            .not_valid_after(self._now + dt.timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._ca_key.public_key()), critical=False
            )
        )
        if dns or ips:
            names: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
            names += [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        cert = builder.sign(self._ca_key, hashes.SHA256())
        pair = _KeyPair(self.dir / f"{stem}.crt", self.dir / f"{stem}.key")
        pair.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        _write_key(pair.key, key)
        return pair


# --------------------------------------------------------------------------------------------
# Processes


def _free_ports(count: int) -> list[int]:
    """Ports the kernel just handed out; all held open together so none is handed out twice."""
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) for _ in range(count)]
        for s in socks:
            s.bind((LOOPBACK, 0))
        return [int(s.getsockname()[1]) for s in socks]


def _parent_death_killer() -> Callable[[], None] | None:
    """A preexec hook asking Linux to SIGKILL the child when its parent dies.

    atexit and signal handlers cannot run when the test process is SIGKILLed (CI timeouts,
    OOM); without this an apiserver and etcd would outlive it. Resolved in the parent, so the
    forked child only makes one syscall. The kernel ties this to the *thread* that forked, so
    components are always started from the thread calling ``start()``.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    pr_set_pdeathsig = 1

    def hook() -> None:
        prctl(pr_set_pdeathsig, signal.SIGKILL)

    return hook


_PREEXEC = _parent_death_killer()


@dataclass
class _Component:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path
    argv: list[str] = field(default_factory=list)

    def tail(self, lines: int = 40) -> str:
        try:
            text = self.log.read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return "\n".join(text[-lines:])

    def evidence(self) -> str:
        """The first error lines and the end of the log.

        A component that rejects a flag prints the reason first and pages of usage after it,
        so the tail alone would hide the one line that matters.
        """
        try:
            text = self.log.read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        errors = [ln for ln in text[1:] if _ERROR_LINE.search(ln)][:10]
        head = ["first error lines:", *errors, "last lines:"] if errors else []
        return "\n".join([*head, *text[-30:]])


# klog's E/F prefix, cobra's "Error:", zap/slog JSON levels.
_ERROR_LINE = re.compile(r'^[EF]\d{4} |^Error:|"level":"(error|fatal|panic|ERROR)"')


_LIVE: set[LocalCluster] = set()
_LIVE_LOCK = threading.Lock()
_HANDLERS_INSTALLED = False


def _stop_all_live() -> None:
    with _LIVE_LOCK:
        live = list(_LIVE)
    for cluster in live:
        cluster.stop()


def _install_exit_handlers() -> None:
    """Makes SIGTERM/SIGHUP unwind like Ctrl-C does, so `with` blocks and atexit clean up.

    KeyboardInterrupt rather than SystemExit because that is what pytest treats as "stop the
    session" (running fixture teardown); a SystemExit would just fail the current test. Only
    where nobody installed a handler already: overriding someone else's would break theirs.
    """
    global _HANDLERS_INSTALLED  # noqa: PLW0603 - one-time process-wide registration
    if _HANDLERS_INSTALLED:
        return
    _HANDLERS_INSTALLED = True
    atexit.register(_stop_all_live)
    if threading.current_thread() is not threading.main_thread():
        return

    def interrupt(signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")

    for sig in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(sig) == signal.SIG_DFL:
            signal.signal(sig, interrupt)


# --------------------------------------------------------------------------------------------
# Cluster access shared by the local control plane and an existing cluster


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
        files: list[Path] = []
        for p in map(Path, paths):
            if p.is_dir():
                files += sorted(f for f in p.iterdir() if f.suffix in {".yaml", ".yml"})
            else:
                files.append(p)
        names: list[str] = []
        for f in files:
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


# --------------------------------------------------------------------------------------------
# The local control plane


@dataclass(frozen=True)
class Ports:
    etcd_client: int
    etcd_peer: int
    apiserver: int
    controller_manager: int
    scheduler: int
    kwok: int


class LocalCluster(Cluster):
    """etcd, kube-apiserver, kube-controller-manager, kube-scheduler and KWOK on 127.0.0.1.

    Every component logs to ``<workdir>/logs/<name>.log``; a start failure raises ClusterError
    quoting the end of the responsible log, because "timed out" alone never helps.
    """

    has_kwok = True

    def __init__(
        self,
        workdir: Path | str | None = None,
        *,
        bin_dir: Path | str | None = None,
        keep: bool = False,
        timeout: float = 120.0,
        log: Log | None = _stderr_log,
        progress: Log | None = _stderr_log,
    ) -> None:
        self._requested_dir = Path(workdir).resolve() if workdir is not None else None
        self._bin_dir = Path(bin_dir) if bin_dir is not None else None
        self.keep = keep
        self.timeout = timeout
        self._log = log or (lambda _line: None)
        self._progress = progress
        self.workdir = self._requested_dir or Path()
        self.kubeconfig = Path()
        self.kubectl_path = None
        self.ports: Ports | None = None
        self.timings: dict[str, float] = {}
        self.startup_seconds: float | None = None
        self._components: dict[str, _Component] = {}
        self._made_dir = False
        self._started = False
        self._lock = threading.Lock()
        self._deadline = 0.0
        self._admin_ssl: ssl.SSLContext | None = None
        self._ca_ssl: ssl.SSLContext | None = None

    # -- context manager -------------------------------------------------------------------

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- public ------------------------------------------------------------------------------

    @property
    def bin_dir(self) -> Path:
        if self._bin_dir is None:
            self._bin_dir = ensure_binaries(self._progress)
        return self._bin_dir

    @property
    def server(self) -> str:
        assert self.ports is not None, "cluster not started"
        return f"https://{LOOPBACK}:{self.ports.apiserver}"

    def start(self) -> None:
        if self._started:
            return
        _install_exit_handlers()
        began = time.monotonic()
        bin_dir = self.bin_dir  # may build for many minutes: not part of the startup deadline
        self._check_binaries(bin_dir)
        self.kubectl_path = bin_dir / "kubectl"
        self._started = True
        with _LIVE_LOCK:
            _LIVE.add(self)
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

    def stop(self, grace: float = 5.0) -> None:
        """Ends every component (whole process groups, so no grandchild survives) and the dir.

        Clients first, then the apiserver, then etcd: a server that still has clients
        connected drains them gracefully, which for etcd with the apiserver's watches open
        means waiting out its whole grace period.
        """
        self._stop(grace)

    def _stop(self, grace: float = 5.0, *, keep_logs: bool = False) -> None:
        with self._lock:
            if not self._started:
                return
            self._started = False
            comps = self._components
            self._components = {}
            servers = ("kube-apiserver", "etcd")
            clients = [c for name, c in comps.items() if name not in servers]
            for stage in (clients, *([comps[s]] for s in servers if s in comps)):
                _terminate(stage, grace)
            if not self.keep:
                self._remove_workdir(keep_logs=keep_logs)
            with _LIVE_LOCK:
                _LIVE.discard(self)

    def logs(self) -> dict[str, Path]:
        return {name: c.log for name, c in self._components.items()}

    def tail(self, component: str, lines: int = 40) -> str:
        comp = self._components.get(component)
        return comp.tail(lines) if comp else "(not running)"

    def dead_components(self) -> list[str]:
        return [name for name, c in self._components.items() if c.proc.poll() is not None]

    # -- start-up ------------------------------------------------------------------------------

    def _check_binaries(self, bin_dir: Path) -> None:
        needed = [
            "etcd",
            "kube-apiserver",
            "kube-controller-manager",
            "kube-scheduler",
            "kubectl",
            "kwok",
            "stages.yaml",
        ]
        missing = [n for n in needed if not (bin_dir / n).exists()]
        if missing:
            raise ClusterError(f"{bin_dir} lacks {', '.join(missing)}; run {BUILD_SCRIPT}")

    def _prepare_workdir(self) -> Path:
        if self._requested_dir is None:
            _reap_orphaned_tempdirs()
            self._made_dir = True
            return Path(tempfile.mkdtemp(prefix=TEMP_PREFIX))
        d = self._requested_dir
        if d.exists():
            entries = list(d.iterdir())
            if entries and not (d / MARKER).exists():
                raise ClusterError(f"{d} is not empty and was not made by localcluster; refusing to use it")
            for e in entries:  # a previous run's leftovers (kept, or killed before cleanup)
                if e.is_dir() and not e.is_symlink():
                    shutil.rmtree(e)
                else:
                    e.unlink()
        else:
            d.mkdir(parents=True)
            self._made_dir = True
        return d

    def _remove_workdir(self, *, keep_logs: bool = False) -> None:
        """Removes the work dir, or with ``keep_logs`` all but the logs of a failed start.

        Those kept in a temp dir are reaped by a later run once this process has exited.
        """
        d = self.workdir
        if not (d / MARKER).exists():
            return
        if self._made_dir and not keep_logs:
            shutil.rmtree(d, ignore_errors=True)
            return
        for e in d.iterdir():
            if keep_logs and e.name in {"logs", MARKER}:
                continue
            if e.is_dir() and not e.is_symlink():
                shutil.rmtree(e, ignore_errors=True)
            else:
                e.unlink(missing_ok=True)

    def _phase(self, name: str, since: float) -> float:
        now = time.monotonic()
        self.timings[name] = now - since
        return now

    def _start(self, bin_dir: Path) -> None:
        t = time.monotonic()
        self._deadline = t + self.timeout
        wd = self.workdir = self._prepare_workdir()
        (wd / MARKER).write_text(f"{os.getpid()}\n")
        (wd / "logs").mkdir()
        p = self.ports = Ports(*_free_ports(6))

        # etcd first: its startup overlaps with certificate generation.
        self._spawn(
            "etcd",
            [
                str(bin_dir / "etcd"),
                "--name=keyturn",
                f"--data-dir={wd / 'etcd'}",
                f"--listen-client-urls=http://{LOOPBACK}:{p.etcd_client}",
                f"--advertise-client-urls=http://{LOOPBACK}:{p.etcd_client}",
                f"--listen-peer-urls=http://{LOOPBACK}:{p.etcd_peer}",
                f"--initial-advertise-peer-urls=http://{LOOPBACK}:{p.etcd_peer}",
                f"--initial-cluster=keyturn=http://{LOOPBACK}:{p.etcd_peer}",
                "--unsafe-no-fsync",
                "--log-level=warn",
            ],
        )
        pki = self._write_pki(wd)
        t = self._phase("certificates", t)
        etcd_health = f"http://{LOOPBACK}:{p.etcd_client}/health"
        self._wait("etcd /health", lambda: self._http_ok(etcd_health, '"health":"true"'), blame="etcd")
        t = self._phase("etcd", t)

        self._spawn(
            "kube-apiserver",
            [
                str(bin_dir / "kube-apiserver"),
                f"--etcd-servers=http://{LOOPBACK}:{p.etcd_client}",
                f"--bind-address={LOOPBACK}",
                f"--advertise-address={LOOPBACK}",
                f"--secure-port={p.apiserver}",
                "--endpoint-reconciler-type=none",
                "--authorization-mode=Node,RBAC",
                f"--client-ca-file={pki['ca'].cert}",
                f"--tls-cert-file={pki['apiserver'].cert}",
                f"--tls-private-key-file={pki['apiserver'].key}",
                f"--service-account-issuer={SA_ISSUER}",
                f"--service-account-key-file={pki['sa-pub'].cert}",
                f"--service-account-signing-key-file={pki['sa-pub'].key}",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                f"--requestheader-client-ca-file={pki['front-proxy-ca'].cert}",
                "--requestheader-allowed-names=front-proxy-client",
                "--requestheader-username-headers=X-Remote-User",
                "--requestheader-group-headers=X-Remote-Group",
                "--requestheader-extra-headers-prefix=X-Remote-Extra-",
                f"--proxy-client-cert-file={pki['front-proxy-client'].cert}",
                f"--proxy-client-key-file={pki['front-proxy-client'].key}",
                "--allow-privileged=true",
                f"--cert-dir={wd / 'apiserver-certs'}",
                "--profiling=false",
            ],
        )
        self._wait("kube-apiserver /readyz", lambda: self._api_text("/readyz") == "ok")
        t = self._phase("kube-apiserver", t)

        kc = self._component_kubeconfigs(wd, pki)
        self._spawn(
            "kube-controller-manager",
            [
                str(bin_dir / "kube-controller-manager"),
                f"--kubeconfig={kc['kube-controller-manager']}",
                f"--authentication-kubeconfig={kc['kube-controller-manager']}",
                f"--authorization-kubeconfig={kc['kube-controller-manager']}",
                f"--bind-address={LOOPBACK}",
                f"--secure-port={p.controller_manager}",
                f"--tls-cert-file={pki['serving'].cert}",
                f"--tls-private-key-file={pki['serving'].key}",
                "--leader-elect=false",
                "--controllers=*",
                # One identity for all controllers instead of a minted token per controller, which
                # costs ~4s of start-up; that identity is therefore in system:masters (below).
                "--use-service-account-credentials=false",
                f"--service-account-private-key-file={pki['sa-pub'].key}",
                f"--root-ca-file={pki['ca'].cert}",
                f"--cluster-signing-cert-file={pki['ca'].cert}",
                f"--cluster-signing-key-file={pki['ca'].key}",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--profiling=false",
            ],
        )
        sched_cfg = wd / "kube-scheduler.yaml"
        sched_cfg.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "kubescheduler.config.k8s.io/v1",
                    "kind": "KubeSchedulerConfiguration",
                    "clientConnection": {"kubeconfig": str(kc["kube-scheduler"])},
                    "leaderElection": {"leaderElect": False},
                }
            )
        )
        self._spawn(
            "kube-scheduler",
            [
                str(bin_dir / "kube-scheduler"),
                f"--config={sched_cfg}",
                f"--authentication-kubeconfig={kc['kube-scheduler']}",
                f"--authorization-kubeconfig={kc['kube-scheduler']}",
                f"--bind-address={LOOPBACK}",
                f"--secure-port={p.scheduler}",
                f"--tls-cert-file={pki['serving'].cert}",
                f"--tls-private-key-file={pki['serving'].key}",
            ],
        )
        key, value = KWOK_NODE_ANNOTATION
        self._spawn(
            "kwok",
            [
                str(bin_dir / "kwok"),
                f"--kubeconfig={kc['kwok']}",
                f"--config={bin_dir / 'stages.yaml'}",
                "--manage-all-nodes=false",
                f"--manage-nodes-with-annotation-selector={key}={value}",
                f"--server-address={LOOPBACK}:{p.kwok}",
                f"--cidr={POD_CIDR}",
                f"--node-ip={LOOPBACK}",
                # Leases are how the node-lifecycle controller sees a live Node (the stage set only
                # refreshes status every ~10 min); v0.8 defaults this flag to 0, i.e. no leases.
                "--node-lease-duration-seconds=40",
            ],
            env={"KWOK_WORKDIR": str(wd / "kwok")},
        )  # else kwok also reads ~/.kwok/kwok.yaml
        self._create_node()
        self._wait(
            "kube-controller-manager /healthz",
            lambda: self._serving_ok(p.controller_manager),
            blame="kube-controller-manager",
        )
        self._wait("kube-scheduler /healthz", lambda: self._serving_ok(p.scheduler), blame="kube-scheduler")
        self._wait(
            "kwok /healthz", lambda: self._http_ok(f"http://{LOOPBACK}:{p.kwok}/healthz", "ok"), blame="kwok"
        )
        t = self._phase("controllers", t)
        # Ready comes from KWOK; the not-ready taint that admission put on the new Node is only
        # lifted by the node-lifecycle controller, and Pods would stay Pending until then.
        self._wait(
            f"Node {KWOK_NODE} Ready and untainted",
            self._node_ready,
            blame="kwok",
            also=("kube-controller-manager",),
        )
        t = self._phase("node", t)
        self._wait(
            "ServiceAccount default/default",
            lambda: self._api_status("/api/v1/namespaces/default/serviceaccounts/default") == 200,
            blame="kube-controller-manager",
        )
        self._phase("serviceaccount", t)

    def _write_pki(self, wd: Path) -> dict[str, _KeyPair]:
        pki = _PKI(wd / "pki", "ca", "keyturn-local-ca")
        # The apiserver's authenticating-proxy CA. Nothing proxies here, but without it every
        # component's delegated authentication logs an error per second about the missing
        # bundle, burying real failures in the logs.
        front_proxy = _PKI(wd / "pki", "front-proxy-ca", "keyturn-front-proxy-ca")
        service_ip = str(next(ipaddress.ip_network(SERVICE_CIDR).hosts()))
        pairs = {
            "ca": pki.ca,
            "sa-pub": _write_service_account_keys(wd / "pki"),
            "front-proxy-ca": front_proxy.ca,
            "front-proxy-client": front_proxy.issue("front-proxy-client", "front-proxy-client", client=True),
            "apiserver": pki.issue(
                "apiserver",
                "kube-apiserver",
                server=True,
                dns=[
                    "localhost",
                    "kubernetes",
                    "kubernetes.default",
                    "kubernetes.default.svc",
                    "kubernetes.default.svc.cluster.local",
                ],
                ips=[LOOPBACK, service_ip],
            ),
            "serving": pki.issue("serving", "localhost", server=True, dns=["localhost"], ips=[LOOPBACK]),
            "admin": pki.issue("admin", "admin", org="system:masters", client=True),
            "kube-controller-manager": pki.issue(
                "kube-controller-manager", "system:kube-controller-manager", org="system:masters", client=True
            ),
            "kube-scheduler": pki.issue("kube-scheduler", "system:kube-scheduler", client=True),
            # KWOK plays every kubelet at once (status of any Node and Pod, leases, deletions);
            # the Node authorizer would confine a real kubelet to its own node, so KWOK is admin.
            "kwok": pki.issue("kwok", "kwok-controller", org="system:masters", client=True),
        }
        admin = pairs["admin"]
        self.kubeconfig = wd / "kubeconfig"
        self._write_kubeconfig(self.kubeconfig, pki.ca.cert, admin, "admin")
        self._ca_ssl = ssl.create_default_context(cafile=str(pki.ca.cert))
        self._admin_ssl = ssl.create_default_context(cafile=str(pki.ca.cert))
        self._admin_ssl.load_cert_chain(str(admin.cert), str(admin.key))
        return pairs

    def _component_kubeconfigs(self, wd: Path, pki: dict[str, _KeyPair]) -> dict[str, Path]:
        out = {}
        for user in ("kube-controller-manager", "kube-scheduler", "kwok"):
            path = wd / f"{user}.kubeconfig"
            self._write_kubeconfig(path, pki["ca"].cert, pki[user], user)
            out[user] = path
        return out

    def _write_kubeconfig(self, path: Path, ca: Path, pair: _KeyPair, user: str) -> None:
        # Paths rather than embedded data: the Python client would copy embedded data into
        # temp files that outlive the cluster.
        doc = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {"name": "keyturn", "cluster": {"server": self.server, "certificate-authority": str(ca)}}
            ],
            "users": [
                {"name": user, "user": {"client-certificate": str(pair.cert), "client-key": str(pair.key)}}
            ],
            "contexts": [{"name": "keyturn", "context": {"cluster": "keyturn", "user": user}}],
            "current-context": "keyturn",
        }
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
        path.chmod(0o600)

    def _kubectl_extra(self) -> tuple[str, ...]:
        # Discovery cache inside the work dir: nothing of a throwaway cluster lands in ~/.kube.
        return (f"--cache-dir={self.workdir / 'kube-cache'}",)

    def _spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> None:
        log = self.workdir / "logs" / f"{name}.log"
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            os.write(fd, (" ".join(argv) + "\n\n").encode())
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=fd,
                stderr=fd,
                cwd=self.workdir,
                env={**os.environ, **(env or {})},
                start_new_session=True,  # own process group: stop() can end it whole
                preexec_fn=_PREEXEC,  # noqa: PLW1509 - a single prctl call, resolved before fork
            )
        finally:
            os.close(fd)
        self._components[name] = _Component(name, proc, log, argv)

    def _wait(
        self, what: str, probe: Callable[[], bool], *, blame: str | None = None, also: Sequence[str] = ()
    ) -> None:
        """Polls ``probe`` until it holds, failing fast (with logs) if any component has died."""
        while True:
            for name, comp in self._components.items():
                if comp.proc.poll() is not None:
                    raise ClusterError(
                        f"{name} exited with code {comp.proc.returncode} while waiting for {what}; "
                        f"{comp.log}:\n{comp.evidence()}"
                    )
            if probe():
                return
            if time.monotonic() > self._deadline:
                culprits = [blame or what.split(maxsplit=1)[0], *also]
                tails = "\n".join(
                    f"--- {self._components[c].log}:\n{self._components[c].evidence()}"
                    for c in culprits
                    if c in self._components
                )
                raise ClusterError(f"timed out after {self.timeout:.0f}s waiting for {what}\n{tails}")
            time.sleep(0.1)

    # -- probes --------------------------------------------------------------------------------

    def _http_ok(self, url: str, needle: str) -> bool:
        host_port = url.split("/")[2]
        path = "/" + url.split("/", 3)[3]
        host, port = host_port.rsplit(":", 1)
        conn = http.client.HTTPConnection(host, int(port), timeout=2)
        try:
            conn.request("GET", path)
            resp = conn.getresponse()
            return resp.status == 200 and needle in resp.read().decode(errors="replace")
        except (OSError, http.client.HTTPException):
            return False
        finally:
            conn.close()

    def _serving_ok(self, port: int) -> bool:
        conn = http.client.HTTPSConnection(LOOPBACK, port, context=self._ca_ssl, timeout=2)
        try:
            conn.request("GET", "/healthz")
            resp = conn.getresponse()
            return resp.status == 200 and resp.read() == b"ok"
        except (OSError, http.client.HTTPException):
            return False
        finally:
            conn.close()

    def _api(self, method: str, path: str, body: object = None) -> tuple[int, bytes]:
        assert self.ports is not None
        conn = http.client.HTTPSConnection(LOOPBACK, self.ports.apiserver, context=self._admin_ssl, timeout=5)
        try:
            data = json.dumps(body).encode() if body is not None else None
            conn.request(
                method,
                path,
                body=data,
                headers={"Content-Type": "application/json", "Accept": "application/json"},
            )
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()

    def _api_status(self, path: str) -> int:
        try:
            return self._api("GET", path)[0]
        except (OSError, http.client.HTTPException):
            return 0

    def _api_text(self, path: str) -> str:
        try:
            status, data = self._api("GET", path)
        except (OSError, http.client.HTTPException):
            return ""
        return data.decode(errors="replace") if status == 200 else ""

    def _create_node(self) -> None:
        key, value = KWOK_NODE_ANNOTATION
        resources = {"cpu": "32", "memory": "256Gi", "pods": "110"}
        node = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": KWOK_NODE,
                "annotations": {key: value, "node.alpha.kubernetes.io/ttl": "0"},
                "labels": {
                    "type": "kwok",
                    "kubernetes.io/hostname": KWOK_NODE,
                    "kubernetes.io/os": "linux",
                    "kubernetes.io/arch": "amd64",
                },
            },
            # No taints: ordinary Deployments must schedule here without tolerations.
            "spec": {},
            # Nodes may carry status on create (a kubelet registers this way); KWOK keeps it.
            "status": {"allocatable": resources, "capacity": resources},
        }
        status, data = self._api("POST", "/api/v1/nodes", node)
        if status != 201:
            detail = data.decode(errors="replace")
            raise ClusterError(f"creating Node {KWOK_NODE} failed: HTTP {status} {detail}")

    def _node_ready(self) -> bool:
        try:
            status, data = self._api("GET", f"/api/v1/nodes/{KWOK_NODE}")
        except (OSError, http.client.HTTPException):
            return False
        if status != 200:
            return False
        node: dict[str, Any] = json.loads(data)
        conditions = node.get("status", {}).get("conditions") or []
        ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
        return ready and not node.get("spec", {}).get("taints")


def _reap_orphaned_tempdirs() -> None:
    """Removes temp work dirs whose owning process is gone.

    A SIGKILLed test run cannot clean up; its components die with it (parent-death signal)
    but its dir, with etcd's data, would stay in /tmp forever. Dirs of live owners, e.g. a
    parallel test run, are left alone.
    """
    for d in Path(tempfile.gettempdir()).glob(f"{TEMP_PREFIX}*"):
        try:
            pid = int((d / MARKER).read_text().strip())
        except (OSError, ValueError):
            continue  # not (yet) one of ours, or its owner is still writing it
        if pid == os.getpid():
            continue
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(d, ignore_errors=True)
        except PermissionError:
            continue  # alive, another user's


def _signal_group(proc: subprocess.Popen[bytes] | subprocess.Popen[str], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def _terminate(comps: Sequence[_Component], grace: float) -> None:
    """SIGTERM, then SIGKILL whatever is left after ``grace`` seconds."""
    for c in comps:
        _signal_group(c.proc, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for c in comps:
        try:
            c.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            _signal_group(c.proc, signal.SIGKILL)
            c.proc.wait()
        # The leader is gone; sweep anything it may have left in its group.
        _signal_group(c.proc, signal.SIGKILL)


# --------------------------------------------------------------------------------------------
# CLI


def _cmd_up(args: argparse.Namespace) -> int:
    cluster = LocalCluster(args.dir, keep=args.keep, timeout=args.timeout)
    began = time.monotonic()
    try:
        cluster.start()  # an interrupt here unwinds through start(), which cleans up
    except KeyboardInterrupt:
        _stderr_log("interrupted")
        return 130
    stop = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    try:
        if args.crds:
            names = cluster.apply_crds(args.crds)
            _stderr_log(f"CRDs established: {', '.join(names) or '(none found)'}")
        print(f"\nkubeconfig: {cluster.kubeconfig}")
        print(f"logs:       {cluster.workdir / 'logs'}")
        print(f"started in  {time.monotonic() - began:.1f}s")
        print(f"\n  export KUBECONFIG={cluster.kubeconfig}\n")
        print("Press Ctrl-C to stop the cluster.", flush=True)
        while not stop.wait(1.0):
            dead = cluster.dead_components()
            if dead:
                for name in dead:
                    _stderr_log(f"{name} died; end of its log:\n{cluster.tail(name)}")
                return 1
        return 0
    finally:
        _stderr_log("stopping the cluster...")
        cluster.stop()


def _cmd_env(_args: argparse.Namespace) -> int:
    print(ensure_binaries(_stderr_log))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start the control plane and keep it running until Ctrl-C")
    up.add_argument(
        "--dir",
        type=Path,
        default=None,
        help="work dir (kubeconfig, certificates, logs, etcd data); default: a fresh temp dir",
    )
    up.add_argument(
        "--crds",
        type=Path,
        action="append",
        default=[],
        help="CRD file or directory to apply once up (repeatable)",
    )
    up.add_argument("--keep", action="store_true", help="leave the work dir behind when stopping")
    up.add_argument("--timeout", type=float, default=120.0, help="start-up deadline in seconds")
    up.set_defaults(func=_cmd_up)
    env = sub.add_parser("env", help="print the bin dir of the control-plane binaries (built if missing)")
    env.set_defaults(func=_cmd_env)
    args = parser.parse_args(argv)
    try:
        rc: int = args.func(args)
    except ClusterError as e:
        _stderr_log(f"error: {e}")
        return 1
    return rc


if __name__ == "__main__":
    sys.exit(main())
