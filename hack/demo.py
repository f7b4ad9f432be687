"""`make demo`: a local control plane, the operator, the quickstart keyset, and an application
signing and verifying through its rotations, until Ctrl-C.

Once the keyset is Ready, examples/app runs twice as local processes: a signer that holds the
keyset's Secret and a verifier that holds only its JWKS, each reading a directory that
examples/app/sync.py keeps in step with the cluster the way the kubelet updates a volume (the
`..data` symlink swap). examples/app/load.py issues tokens at the signer and verifies them at the
verifier, a few per second. Each time the signer starts signing with a new key the demo prints one
line: the old and the new kid, the tokens verified since the last line and the share of
validations that succeeded, read from the verifier's jwt_validations_total (what Keyturn's
analysis gate reads). Thanks to publishAhead the verifier holds every key before it signs, so the
share stays at 100%.

examples/quickstart.yaml rotates every 5 minutes; the demo applies it with a shorter interval
(`--interval`, default 1m, or KEYTURN_DEMO_INTERVAL) so that rotations come within the first
minutes. Everything runs on 127.0.0.1 and logs into the work dir; Ctrl-C (or SIGTERM) stops the
load, the apps, the sync, the operator and the control plane in that order and removes the work
dir, so nothing is left running or on disk.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from prometheus_client.parser import text_string_to_metric_families

import localcluster
from keyturn.domain.durations import format_duration, parse_duration
from localcluster.process import PARENT_DEATH_HOOK

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "quickstart.yaml"
APP = ROOT / "examples" / "app"
KEYSET, NAMESPACE = "quickstart", "default"
DEFAULT_INTERVAL = "1m"
POLL_SECONDS = 0.5


class DemoError(Exception):
    """Something the demo depends on failed; the message says what and where its log is."""


def say(line: str) -> None:
    print(f"[demo] {line}", flush=True)


# ------------------------------------------------------------------------------------ the keyset


def demo_keyset(interval: timedelta) -> dict[str, Any]:
    """examples/quickstart.yaml with `interval` as its rotation interval.

    A key is published when the one before it is activated, so it cannot be published for longer
    than one interval: publishAhead shrinks to the interval when that is shorter, and the
    verifiers' cache TTL to publishAhead (Keyturn refuses a publishAhead shorter than the TTL).
    """
    doc: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text())
    rotation, tokens = doc["spec"]["rotation"], doc["spec"]["tokens"]
    ahead = min(parse_duration(rotation["publishAhead"]), interval)
    rotation["interval"] = format_duration(interval)
    rotation["publishAhead"] = format_duration(ahead)
    tokens["verifierCacheTTL"] = format_duration(min(parse_duration(tokens["verifierCacheTTL"]), ahead))
    return doc


def wait_ready(cluster: localcluster.Cluster, operator: Child, timeout: float) -> dict[str, Any]:
    """The keyset's status once Ready."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        operator.check()
        result = cluster.kubectl("get", "jwtkeyset", KEYSET, "-n", NAMESPACE, "-o", "json", check=False)
        if result.returncode == 0:
            status: dict[str, Any] = json.loads(result.stdout).get("status") or {}
            if any(c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions") or ()):
                return status
        time.sleep(POLL_SECONDS)
    raise DemoError(
        f"JwtKeySet {KEYSET} did not become Ready within {timeout:.0f}s; the operator's last lines:\n"
        f"{operator.tail()}"
    )


# ------------------------------------------------------------------------------------ processes


@dataclass
class Child:
    """A process of the demo. Its own session, so that Ctrl-C reaches the demo alone, which stops
    the children in order; its output in a log file; killed by Linux if the demo dies."""

    name: str
    argv: Sequence[str]
    log: Path
    env: dict[str, str]
    proc: subprocess.Popen[bytes] = field(init=False)

    def __post_init__(self) -> None:
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                list(self.argv),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
                env=self.env,
                start_new_session=True,
                preexec_fn=PARENT_DEATH_HOOK,  # noqa: PLW1509 - one prctl call, resolved before fork
            )

    def check(self) -> None:
        code = self.proc.poll()
        if code is not None:
            raise DemoError(f"{self.name} exited with code {code}; its last lines:\n{self.tail()}")

    def tail(self) -> str:
        return "\n".join(self.output().splitlines()[-20:])

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def wait_line(self, prefix: str, timeout: float) -> str:
        """The first line of its output that starts with `prefix`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check()
            found = next((ln for ln in self.output().splitlines() if ln.startswith(prefix)), None)
            if found is not None:
                return found
            time.sleep(0.1)
        raise DemoError(f"{self.name} did not print {prefix!r} within {timeout:.0f}s:\n{self.tail()}")

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = 10) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def app(name: str, logs: Path, env: dict[str, str], *args: str) -> tuple[Child, str]:
    """examples/app/app.py on a free port: the process and its base URL."""
    child = Child(
        name, [sys.executable, str(APP / "app.py"), "--port", "0", *args], logs / f"{name}.log", env
    )
    return child, child.wait_line("listening on http://", timeout=30).split()[2]


# ------------------------------------------------------------------------------------ the lines


def scrape(url: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Every sample of an app's /metrics by name: [(labels, value)]."""
    with urllib.request.urlopen(f"{url}/metrics", timeout=2) as response:  # noqa: S310 - http://127.0.0.1
        text = response.read().decode()
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples.setdefault(s.name, []).append((dict(s.labels), s.value))
    return samples


def short(kid: str | None) -> str:
    return "(none)" if kid is None else kid if len(kid) <= 12 else f"{kid[:10]}…"


@dataclass
class Validations:
    """The verifier's jwt_validations_total, summed: successes, and failures by reason."""

    ok: float = 0
    failed: Counter[str] = field(default_factory=Counter)

    @classmethod
    def of(cls, samples: dict[str, list[tuple[dict[str, str], float]]]) -> Validations:
        out = cls()
        for labels, value in samples.get("jwt_validations_total", []):
            if labels.get("result") == "success":
                out.ok += value
            else:
                out.failed[labels.get("reason", "?")] += int(value)
        return out

    def since(self, earlier: Validations) -> Validations:
        return Validations(self.ok - earlier.ok, self.failed - earlier.failed)

    def describe(self) -> str:
        total = self.ok + sum(self.failed.values())
        share = f"{100 * self.ok / total:.2f}% valid" if total else "no validations"
        failures = ", ".join(f"{n} {reason}" for reason, n in self.failed.most_common())
        return f"{self.ok:.0f} tokens verified since the last line, {share}" + (
            f" ({failures})" if failures else ""
        )


class RotationWatch:
    """One line each time the signer signs with a new kid, from the two apps' metrics."""

    def __init__(self, signer: str, verifier: str) -> None:
        self.signer, self.verifier = signer, verifier
        self.rotations = 0
        self.loaded_at: dict[str, float] = {}  # kid -> when the verifier first held it
        self.kid = self._signing_kid(scrape(signer))
        first = scrape(verifier)
        self.last = Validations.of(first)
        self._note_loaded(first)
        self.held_from_start = set(self.loaded_at)  # loaded before we looked: "at least" so long

    @staticmethod
    def _signing_kid(samples: dict[str, list[tuple[dict[str, str], float]]]) -> str | None:
        return next((labels["kid"] for labels, v in samples.get("jwt_signing_key", []) if v == 1), None)

    def _note_loaded(self, samples: dict[str, list[tuple[dict[str, str], float]]]) -> None:
        for labels, value in samples.get("jwt_keys_loaded", []):
            if value == 1:
                self.loaded_at.setdefault(labels["kid"], time.monotonic())

    def poll(self) -> str | None:
        """A line if the signer changed keys since the last call, else None."""
        try:
            signer, verifier = scrape(self.signer), scrape(self.verifier)
        except (OSError, http.client.HTTPException, ValueError):
            return None  # a busy moment; the next poll sees the same change
        self._note_loaded(verifier)
        kid = self._signing_kid(signer)
        if kid is None or kid == self.kid:
            return None
        now = Validations.of(verifier)
        counts = now.since(self.last).describe()
        self.rotations += 1
        loaded = self.loaded_at.get(kid)
        ahead = (
            "the verifier never loaded it"
            if loaded is None
            else f"the verifier had it {'≥' if kid in self.held_from_start else ''}"
            f"{time.monotonic() - loaded:.0f}s before"
        )
        line = (
            f"{datetime.now():%H:%M:%S} rotation {self.rotations}: {short(self.kid)} → {short(kid)} | "
            f"{counts} | {ahead}"
        )
        self.kid, self.last = kid, now
        return line


# ------------------------------------------------------------------------------------ main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    def duration(text: str) -> timedelta:
        try:
            value = parse_duration(text)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None
        if value < timedelta(seconds=5):
            raise argparse.ArgumentTypeError("the interval must be at least 5s")
        return value

    p = argparse.ArgumentParser(prog="demo.py", description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument(
        "--interval",
        type=duration,
        default=os.environ.get("KEYTURN_DEMO_INTERVAL", DEFAULT_INTERVAL),
        help=f"how long a key signs (default {DEFAULT_INTERVAL}; the quickstart file says 5m)",
    )
    p.add_argument("--rps", type=float, default=5.0, help="tokens issued and verified per second")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    # Ctrl-C is the way out, even when started where SIGINT was ignored (a background job).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    workdir = Path(os.environ.get("KEYTURN_DEMO_DIR", ROOT / ".keyturn" / "demo"))
    try:
        with localcluster.LocalCluster(workdir=workdir, log=say, progress=say) as cluster:
            return run(cluster, args.interval, args.rps)
    except DemoError as e:
        say(f"failed: {e}")
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        say("stopped: the control plane, the operator and the apps are gone, and so is the work dir")


def run(cluster: localcluster.LocalCluster, interval: timedelta, rps: float) -> int:
    cluster.apply_crds([ROOT / "crds"])
    # The apps' private keys live here; the cluster removes its work dir when it stops.
    home = cluster.workdir / "app"
    home.mkdir(mode=0o700)
    logs = cluster.workdir / "logs"
    env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig)}
    env = {k: v for k, v in env.items() if not k.startswith("KEYTURN_APP_")}
    metrics, health = free_port(), free_port()
    children: list[Child] = []
    try:
        say(f"starting the operator: keyturn run (metrics on :{metrics}, log {logs / 'operator.log'})")
        argv = [
            sys.executable, "-m", "keyturn", "run", "--standalone",
            "--metrics-port", str(metrics), "--health-port", str(health),
        ]  # fmt: skip
        operator = Child("operator", argv, logs / "operator.log", env)
        children.append(operator)
        keyset = demo_keyset(interval)
        timings = ", ".join(f"{k} {v}" for k, v in keyset["spec"]["rotation"].items())
        say(f"applying {EXAMPLE.relative_to(ROOT)} with {timings}")
        print(cluster.kubectl("apply", "-f", "-", input=json.dumps(keyset)).stdout, end="", flush=True)
        status = wait_ready(cluster, operator, timeout=60)
        print(cluster.kubectl("get", "jwtkeysets", "-A").stdout, flush=True)

        say("the example app: a signer (the Secret) and a verifier (the JWKS), kept in step by sync.py")
        secret_dir, jwks_dir = home / "secret", home / "jwks"
        argv = [
            sys.executable, str(APP / "sync.py"), "--keyset", KEYSET, "--namespace", NAMESPACE,
            "--secret-dir", str(secret_dir), "--jwks-dir", str(jwks_dir),
            "--kubectl", str(cluster.kubectl_path), "--kubeconfig", str(cluster.kubeconfig),
        ]  # fmt: skip
        sync = Child("sync", argv, logs / "sync.log", env)
        children.append(sync)
        sync.wait_line("synced configmap/", timeout=30)  # after the Secret: one pass syncs both
        signer, signer_url = app("signer", logs, env, "--secret-dir", str(secret_dir))
        children.append(signer)
        verifier, verifier_url = app("verifier", logs, env, "--jwks-file", str(jwks_dir / "jwks.json"))
        children.append(verifier)
        argv = [
            sys.executable, str(APP / "load.py"), "--url", signer_url, "--verify-url", verifier_url,
            "--rps", f"{rps:g}", "--concurrency", "2", "--duration", "0", "--json",
        ]  # fmt: skip
        load = Child("load", argv, logs / "load.log", env)
        children.append(load)
        watch = RotationWatch(signer_url, verifier_url)

        say(f"signer {signer_url} signs with {watch.kid}; verifier {verifier_url}")
        say(f"load: {rps:g} tokens per second, issued by the signer and verified by the verifier")
        say(f"one line per rotation, every {format_duration(interval)}{first_due(status)}:")
        say("in another terminal:")
        say(f"  export KUBECONFIG={cluster.kubeconfig}")
        say(f"  export PATH={cluster.bin_dir}:$PATH")
        say("  kubectl get jwtkeysets -w            # watch Current KID change")
        say("  kubectl describe jwtkeyset quickstart # Events: the audit trail")
        say("  kubectl get configmap quickstart-jwks -o jsonpath='{.data.jwks\\.json}'  # the JWKS")
        say("Ctrl-C stops everything.")
        while True:
            for child in children:
                child.check()
            line = watch.poll()
            if line is not None:
                say(line)
            time.sleep(POLL_SECONDS)
    except KeyboardInterrupt:
        say("stopping...")
        return 0
    finally:
        stop_all(children)


def first_due(status: dict[str, Any]) -> str:
    """' (the first at HH:MM:SS)' in local time, the clock of the lines; '' if status has no date."""
    try:
        due = datetime.fromisoformat(str(status.get("nextRotationAt")).replace("Z", "+00:00"))
    except ValueError:
        return ""
    return f" (the first at {due.astimezone():%H:%M:%S})"


def stop_all(children: list[Child]) -> None:
    """Newest first: the load (which then prints its summary), the apps, the sync, the operator."""
    for child in reversed(children):
        interrupt = child.name == "load"
        code = child.stop(signal.SIGINT if interrupt else signal.SIGTERM, timeout=20)
        if interrupt and code == 0:
            try:
                summary = json.loads(child.output().strip().splitlines()[-1])
            except (IndexError, ValueError):
                continue
            rate = summary.get("success_rate")
            say(
                f"load: {summary['tokens_issued']} tokens issued, {summary['verified']} verified "
                f"of {summary['verifications']} checked"
                + ("" if rate is None else f" ({100 * rate:.2f}% valid)")
                + f", errors {summary['errors'] or 'none'}"
            )


if __name__ == "__main__":
    sys.exit(main())
