"""What the consumer tests share: keys and tokens made at test time, a kubelet-like JWKS mount,
the example consumers built once into the cache, and a handle on a running consumer.

Nothing here is committed key material: every key is generated when the tests run.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import queue
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from prometheus_client.parser import text_string_to_metric_families

from keyturn.client import project
from keyturn.keys.generation import generate
from keyturn.keys.jwk import public_jwk
from keyturn.keys.material import KeyMaterial
from keyturn.keys.signing import sign

ROOT: Final = Path(__file__).resolve().parents[2]
EXAMPLES: Final = ROOT / "examples" / "consumers"
JWKS_ITEM: Final = "jwks.json"

# One series of a metric: its labels, sorted, as a hashable key.
Labels = tuple[tuple[str, str], ...]


def cache_root() -> Path:
    """The control plane's binaries cache (hack/build-binaries.sh): ~/.cache/keyturn by default."""
    base = os.environ.get("KEYTURN_CACHE_DIR") or str(
        Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "keyturn"
    )
    return Path(base)


def cache_dir() -> Path:
    """Where the built examples live between runs: beside the control plane's binaries."""
    return cache_root() / "consumers"


# ------------------------------------------------------------------------------------ keys, tokens


@dataclass(frozen=True)
class KeyPair:
    kid: str
    material: KeyMaterial

    @property
    def alg(self) -> str:
        return self.material.algorithm

    def jwk(self) -> dict[str, str]:
        return public_jwk(self.material, self.kid)

    def token(self, *, kid: str | None = None, **claims: Any) -> str:
        """A token signed with this key under `kid` (default: its own), valid for 5 minutes."""
        now = int(time.time())
        body = {"sub": "consumer-test", "iat": now, "exp": now + 300, **claims}
        return sign(self.material, {k: v for k, v in body.items() if v is not None}, kid or self.kid)


def new_key(kid: str, alg: str) -> KeyPair:
    return KeyPair(kid, generate(alg))


def forged(header: Mapping[str, Any], claims: Mapping[str, Any], signature: bytes = b"sig") -> str:
    """A compact JWS with any header (alg none, a lying alg, no kid) and a meaningless signature."""

    def part(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    return ".".join(
        part(x) for x in (json.dumps(dict(header)).encode(), json.dumps(dict(claims)).encode(), signature)
    )


def with_header(token: str, **changes: Any) -> str:
    """The same token (signature untouched) with header members changed: None removes one."""
    head, payload, signature = token.split(".")
    header = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    header.update(changes)
    header = {k: v for k, v in header.items() if v is not None}
    new_head = base64.urlsafe_b64encode(json.dumps(header).encode()).rstrip(b"=").decode()
    return f"{new_head}.{payload}.{signature}"


def publish(directory: Path, jwks: Sequence[Mapping[str, Any]]) -> Path:
    """Write a JWKS the way the kubelet updates a ConfigMap volume (atomic ..data swap)."""
    project(directory, {JWKS_ITEM: json.dumps({"keys": [dict(k) for k in jwks]}, indent=2)})
    return directory / JWKS_ITEM


def publish_raw(directory: Path, text: str) -> None:
    """Any text as the JWKS item, e.g. a document that does not parse."""
    project(directory, {JWKS_ITEM: text})


# ------------------------------------------------------------------------------------ metrics


def series(exposition: str, name: str) -> dict[Labels, float]:
    """Every sample called `name` in a Prometheus text exposition, by its labels."""
    found: dict[Labels, float] = {}
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            if sample.name == name:
                found[tuple(sorted(sample.labels.items()))] = sample.value
    return found


def loaded_kids(exposition: str) -> dict[str, float]:
    """jwt_keys_loaded as {kid: value}."""
    return {dict(labels)["kid"]: value for labels, value in series(exposition, "jwt_keys_loaded").items()}


def validations(exposition: str) -> dict[tuple[str, str, str], float]:
    """jwt_validations_total as {(result, reason, kid): count}."""
    return {
        (d["result"], d["reason"], d["kid"]): value
        for d, value in (
            (dict(labels), v) for labels, v in series(exposition, "jwt_validations_total").items()
        )
    }


# ------------------------------------------------------------------------------------ building


def _digest(paths: Sequence[Path], *extra: str) -> str:
    h = hashlib.sha256()
    for path in sorted(paths):
        h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    for value in extra:
        h.update(value.encode() + b"\0")
    return h.hexdigest()[:16]


def _publish_dir(staging: Path, final: Path) -> None:
    """Rename a finished build into place; a concurrent run that got there first wins."""
    try:
        staging.rename(final)
    except OSError:
        if not final.exists():
            raise
        shutil.rmtree(staging, ignore_errors=True)


def _run(argv: Sequence[str], cwd: Path, env: Mapping[str, str] | None = None, timeout: float = 900) -> None:
    done = subprocess.run(
        list(argv),
        cwd=cwd,
        env=dict(env) if env else None,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")


def go_env() -> dict[str, str]:
    """Never fetch another toolchain; modules from the proxy into the usual module cache."""
    return {**os.environ, "GOTOOLCHAIN": "local", "GOFLAGS": "-mod=readonly -buildvcs=false"}


def build_go(go: str) -> Path:
    """The Go example's binary, built once per source and toolchain version."""
    return build_go_program(go, EXAMPLES / "go", "consumer", cache_dir(), prefix="go")


def build_go_program(go: str, source: Path, name: str, cache: Path, prefix: str | None = None) -> Path:
    """`go build` of the module in `source` into `cache`/<prefix>-<hash>/<name>, once per source and
    toolchain version (the hash covers go.mod, go.sum, the .go files and `go version`)."""
    version = subprocess.run([go, "version"], capture_output=True, text=True, check=True).stdout.strip()
    files = [*source.glob("*.go"), source / "go.mod", source / "go.sum"]
    final = cache / f"{prefix or name}-{_digest(files, version)}"
    binary = final / name
    if binary.is_file():
        return binary
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f"{name}-build-", dir=final.parent))
    _run([go, "build", "-trimpath", "-o", str(staging / name), "."], source, go_env())
    _publish_dir(staging, final)
    return binary


def install_node(npm: str, node_version: str) -> Path:
    """node_modules of the Node example, installed once per lock file and Node version."""
    source = EXAMPLES / "node"
    files = [source / "package.json", source / "package-lock.json"]
    final = cache_dir() / f"node-{_digest(files, node_version)}"
    modules = final / "node_modules"
    if modules.is_dir():
        return modules
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="npm-ci-", dir=final.parent))
    for f in files:
        shutil.copyfile(f, staging / f.name)
    _run([npm, "ci", "--omit=dev", "--ignore-scripts", "--no-audit", "--no-fund"], staging)
    _publish_dir(staging, final)
    return modules


# ------------------------------------------------------------------------------------ running


@dataclass
class Answer:
    status: int
    body: dict[str, Any]


class Consumer:
    """A started consumer: its base URL, and the lines it wrote (for failure messages)."""

    def __init__(self, argv: Sequence[str], cwd: Path, env: Mapping[str, str] | None = None) -> None:
        self.argv = list(argv)
        self.process = subprocess.Popen(
            self.argv,
            cwd=cwd,
            env=dict(env) if env else None,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()
        self.url = self._wait_listening(timeout=30)

    def _pump(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))
            self._lines.put(line)
        self._lines.put(None)

    def _wait_listening(self, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self._lines.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                break
            if line.startswith("listening on http://"):
                return line.split()[-1].strip()
        self.stop()
        raise AssertionError(f"{self.argv[0]} did not start listening:\n{self.output()}")

    def output(self) -> str:
        return "\n".join(self.lines[-50:])

    def verify(self, token: str) -> Answer:
        request = urllib.request.Request(f"{self.url}/verify", headers={"Authorization": f"Bearer {token}"})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return Answer(response.status, json.loads(response.read()))
        except urllib.error.HTTPError as exc:
            with exc:
                return Answer(exc.code, json.loads(exc.read()))

    def metrics(self) -> str:
        with urllib.request.urlopen(f"{self.url}/metrics", timeout=10) as response:
            text: str = response.read().decode()
            return text

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


@contextlib.contextmanager
def running(argv: Sequence[str], cwd: Path, env: Mapping[str, str] | None = None) -> Iterator[Consumer]:
    consumer = Consumer(argv, cwd, env)
    try:
        yield consumer
    finally:
        consumer.stop()
