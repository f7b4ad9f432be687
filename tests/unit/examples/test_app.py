"""examples/app and examples/app/load.py as real processes on 127.0.0.1.

The app gets its keys the way a pod does: a Secret directory and a JWKS file laid out like the
kubelet's volumes and swapped atomically during the test (a rotation, then the end of the grace
period). Tokens it issues are also checked with jwcrypto, independently of keyturn.client.
"""

from __future__ import annotations

import base64
import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from jwcrypto import jwk as jc_jwk
from jwcrypto import jwt as jc_jwt

from helpers import wait_for
from keyturn.client.hmac_verifier import secret_thumbprint
from keyturn.keys.generation import generate
from keyturn.keys.jwk import public_jwk
from keyturn.keys.material import KeyMaterial, raw_secret
from keyturn.keys.pem import private_pem, public_pem
from keyturn.keys.signing import sign
from keyturn.keys.thumbprints import thumbprint
from unit.client.support import jwks_text, kubelet_write

ROOT = Path(__file__).resolve().parents[3]
APP = ROOT / "examples" / "app" / "app.py"
LOAD = ROOT / "examples" / "app" / "load.py"
DEADLINE = 15.0
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("KEYTURN_APP_")}


class RunningApp:
    """app.py on a free port (--port 0; the port is read from its first line of output)."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(APP), "--host", "127.0.0.1", "--port", "0", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=clean_env(),
        )
        self.stderr: list[str] = []
        lines: queue.Queue[str] = queue.Queue()
        assert self.proc.stdout is not None and self.proc.stderr is not None
        stdout, stderr = self.proc.stdout, self.proc.stderr

        def pump_stdout() -> None:
            for line in stdout:
                lines.put(line)

        threading.Thread(target=pump_stdout, daemon=True).start()
        threading.Thread(target=lambda: self.stderr.extend(stderr), daemon=True).start()
        try:
            first = lines.get(timeout=DEADLINE)
        except queue.Empty:
            self.proc.kill()
            raise AssertionError(f"app did not start: {''.join(self.stderr)}") from None
        match = re.match(r"listening on (http://127\.0\.0\.1:\d+) ", first)
        assert match, first
        self.url = match.group(1)

    def call(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> Any:
        data = body if isinstance(body, bytes) else (json.dumps(body).encode() if body is not None else None)
        request = urllib.request.Request(self.url + path, data=data, method=method, headers=headers or {})
        try:
            with _NO_PROXY.open(request, timeout=10) as response:
                status, raw, ctype = response.status, response.read(), response.headers["Content-Type"]
        except urllib.error.HTTPError as exc:
            status, raw, ctype = exc.code, exc.read(), exc.headers["Content-Type"]
        return status, (json.loads(raw) if ctype == "application/json" else raw.decode())

    def metric(self, name: str, **labels: str) -> float:
        _, text = self.call("GET", "/metrics")
        for line in text.splitlines():
            if not line.startswith(name + "{"):
                continue
            found = dict(re.findall(r'(\w+)="([^"]*)"', line[len(name) : line.rindex("}") + 1]))
            if found == labels:
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    def has_series(self, name: str, **labels: str) -> bool:
        _, text = self.call("GET", "/metrics")
        wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        return f"{name}{{{wanted}}}" in text

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=DEADLINE)


@pytest.fixture
def start() -> Iterator[Any]:
    apps: list[RunningApp] = []

    def run(*args: str) -> RunningApp:
        app = RunningApp(*args)
        apps.append(app)
        return app

    yield run
    for app in apps:
        if app.proc.poll() is None:
            app.proc.kill()
            app.proc.wait()


def secret_items(material: KeyMaterial, kid: str) -> dict[str, str]:
    return {
        "JWT_PRIVATE_KEY": private_pem(material),
        "JWT_PUBLIC_KEY": public_pem(material),
        "JWT_KID": kid,
    }


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_app_rs256_endpoints_fault_injection_and_a_full_rotation(tmp_path: Path, start: Any) -> None:
    a, b = generate("RS256"), generate("RS256")
    kid_a, kid_b = thumbprint(a), thumbprint(b)
    secret_dir, jwks_dir = tmp_path / "secret", tmp_path / "jwks"
    kubelet_write(secret_dir, secret_items(a, kid_a))
    kubelet_write(jwks_dir, {"jwks.json": jwks_text((a, kid_a))})
    app = start(
        "--secret-dir", str(secret_dir), "--jwks-file", str(jwks_dir / "jwks.json"),
        "--check-interval", "0.1", "--enable-admin",
    )  # fmt: skip

    status, health = app.call("GET", "/health/jwt")
    assert (status, health["status"], health["kid"]) == (200, "ok", kid_a)
    status, issued = app.call("POST", "/token", {"sub": "carol", "ttl": 120})
    assert status == 200 and issued["kid"] == kid_a and issued["alg"] == "RS256"
    token = issued["token"]
    checked = jc_jwt.JWT(jwt=token, key=jc_jwk.JWK(**public_jwk(a, kid_a)), algs=["RS256"])
    independent = json.loads(checked.claims)
    assert independent["sub"] == "carol" and independent["exp"] - independent["iat"] == 120

    for body, headers in ((None, bearer(token)), ({"token": token}, {}), (token.encode(), {})):
        status, answer = app.call("POST", "/verify", body, headers)
        assert (status, answer["valid"], answer["claims"]["sub"]) == (200, True, "carol")
    assert app.call("POST", "/verify", b"garbage")[1]["reason"] == "malformed"
    foreign = sign(b, {"sub": "x", "exp": int(time.time()) + 60}, kid_b)
    assert app.call("POST", "/verify", None, bearer(foreign)) == (
        401,
        {"valid": False, "reason": "unknown_kid", "kid": kid_b},
    )
    assert app.call("POST", "/verify", None, {})[0] == 400  # no token at all: not a validation

    assert app.metric("jwt_validations_total", kid=kid_a, reason="ok", result="success") == 3
    assert app.metric("jwt_validations_total", kid="", reason="malformed", result="failure") == 1
    assert app.metric("jwt_validations_total", kid=kid_b, reason="unknown_kid", result="failure") == 1
    assert app.metric("jwt_keys_loaded", kid=kid_a) == 1
    assert app.metric("jwt_signing_key", kid=kid_a) == 1
    app.call("GET", "/health/jwt")
    assert app.metric("jwt_validations_total", kid=kid_a, reason="ok", result="success") == 3  # not counted

    # Fault injection: the current kid is refused by /verify and by the health check.
    assert app.call("POST", "/admin/reject-kids", {"kids": [kid_a]}) == (200, {"rejected_kids": [kid_a]})
    assert app.call("POST", "/verify", None, bearer(token))[1]["reason"] == "rejected_by_test"
    status, health = app.call("GET", "/health/jwt")
    assert (status, health["reason"]) == (500, "rejected_by_test")
    assert app.metric("jwt_validations_total", kid=kid_a, reason="rejected_by_test", result="failure") == 1
    assert app.call("GET", "/admin/reject-kids") == (200, {"rejected_kids": [kid_a]})
    app.call("POST", "/admin/reject-kids", {"kids": []})
    assert app.call("POST", "/verify", None, bearer(token))[0] == 200
    assert app.call("GET", "/health/jwt")[0] == 200

    # Rotation as Keyturn does it: publish b, activate b, end of a's grace.
    kubelet_write(jwks_dir, {"jwks.json": jwks_text((a, kid_a), (b, kid_b))})
    wait_for(lambda: app.metric("jwt_keys_loaded", kid=kid_b) == 1, DEADLINE, 0.05, "b published")
    kubelet_write(secret_dir, secret_items(b, kid_b))
    wait_for(lambda: app.call("POST", "/token")[1]["kid"] == kid_b, DEADLINE, 0.05, "b signing")
    assert app.metric("jwt_signing_key", kid=kid_b) == 1
    assert not app.has_series("jwt_signing_key", kid=kid_a)
    new_token = app.call("POST", "/token")[1]["token"]
    assert app.call("POST", "/verify", None, bearer(new_token))[0] == 200
    assert app.call("POST", "/verify", None, bearer(token))[0] == 200  # a still in its grace
    kubelet_write(jwks_dir, {"jwks.json": jwks_text((b, kid_b))})
    wait_for(
        lambda: app.call("POST", "/verify", None, bearer(token))[1].get("reason") == "unknown_kid",
        DEADLINE,
        0.05,
        "a to be refused after its grace",
    )
    assert not app.has_series("jwt_keys_loaded", kid=kid_a)
    status, health = app.call("GET", "/health/jwt")
    assert (status, health["kid"], health["verifier_kids"]) == (200, kid_b, [kid_b])
    assert app.stop() == 0


def test_app_hs256_accept_list_and_grace(tmp_path: Path, start: Any) -> None:
    old, new, nxt = (raw_secret(generate("HS256")) for _ in range(3))
    kid_old, kid_new, kid_next = (secret_thumbprint(s) for s in (old, new, nxt))
    secret_dir = tmp_path / "secret"
    items = {"JWT_SECRET": new, "JWT_KID": kid_new, "JWT_SECRET_NEXT": nxt}
    kubelet_write(secret_dir, {**items, "JWT_SECRET_PREVIOUS": old})
    app = start("--hmac", "--secret-dir", str(secret_dir), "--check-interval", "0.1")

    assert app.call("GET", "/health/jwt")[0] == 200
    issued = app.call("POST", "/token")[1]
    assert (issued["kid"], issued["alg"]) == (kid_new, "HS256")
    oct_key = jc_jwk.JWK(kty="oct", k=base64.urlsafe_b64encode(new.encode()).rstrip(b"=").decode())
    assert json.loads(jc_jwt.JWT(jwt=issued["token"], key=oct_key, algs=["HS256"]).claims)["sub"]

    def hs(secret: str, kid: str, alg: str = "HS256") -> str:
        now = int(time.time())
        payload = {
            "iss": "keyturn-example-app",
            "aud": "keyturn-example",
            "sub": "s",
            "iat": now,
            "exp": now + 60,
        }
        key = secret.encode() * (2 if alg == "HS512" else 1)
        return jwt.encode(payload, key, algorithm=alg, headers={"kid": kid})

    for secret, kid in ((old, kid_old), (nxt, kid_next), (new, kid_new)):
        assert app.call("POST", "/verify", None, bearer(hs(secret, kid)))[0] == 200
    assert app.call("POST", "/verify", None, bearer(hs(new, kid_new, "HS512")))[1]["reason"] == "wrong_alg"
    assert {app.metric("jwt_keys_loaded", kid=k) for k in (kid_old, kid_new, kid_next)} == {1}
    assert app.call("POST", "/admin/reject-kids", {"kids": [kid_new]})[0] == 404  # admin is opt-in

    kubelet_write(secret_dir, items)  # the grace period is over: JWT_SECRET_PREVIOUS is gone
    wait_for(
        lambda: app.call("POST", "/verify", None, bearer(hs(old, kid_old)))[1].get("reason") == "unknown_kid",
        DEADLINE,
        0.05,
        "the previous secret to be refused",
    )
    assert app.call("POST", "/verify", None, bearer(hs(new, kid_new)))[0] == 200
    assert app.stop() == 0


def test_app_refuses_to_start_without_usable_keys(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    result = subprocess.run(
        [sys.executable, str(APP), "--port", "0", "--secret-dir", str(empty)],
        capture_output=True,
        text=True,
        timeout=DEADLINE,
        env=clean_env(),
        check=False,
    )
    assert result.returncode == 2
    assert "signing key item JWT_PRIVATE_KEY is missing" in result.stderr
    result = subprocess.run(
        [sys.executable, str(APP)],
        capture_output=True,
        text=True,
        timeout=DEADLINE,
        env=clean_env(),
        check=False,
    )
    assert result.returncode == 2 and "nothing to do" in result.stderr


def test_load_script_reports_and_stops_cleanly_on_sigint(tmp_path: Path, start: Any) -> None:
    secret = raw_secret(generate("HS256"))
    kid = secret_thumbprint(secret)
    secret_dir = tmp_path / "secret"
    kubelet_write(secret_dir, {"JWT_SECRET": secret, "JWT_KID": kid})
    app = start("--hmac", "--secret-dir", str(secret_dir), "--enable-admin")
    base = [sys.executable, str(LOAD), "--url", app.url, "--rps", "50", "--json"]

    done = subprocess.run([*base, "--duration", "1"], capture_output=True, text=True, timeout=30, check=True)
    summary = json.loads(done.stdout)
    assert summary["success_rate"] == 1.0 and summary["verified"] >= 20
    assert summary["kids"] == {kid: summary["tokens_issued"]} and not summary["interrupted"]
    assert app.metric("jwt_validations_total", kid=kid, reason="ok", result="success") == summary["verified"]

    # The success rate the analysis gate would see drops when the admin endpoint says so.
    app.call("POST", "/admin/reject-kids", {"kids": [kid]})
    failed = subprocess.run(
        [*base, "--duration", "0.5", "--min-success-rate", "0.9"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert failed.returncode == 1
    assert json.loads(failed.stdout)["rejected"]["rejected_by_test"] > 0
    app.call("POST", "/admin/reject-kids", {"kids": []})

    before = app.metric("jwt_validations_total", kid=kid, reason="ok", result="success")
    running = subprocess.Popen([*base, "--duration", "0"], stdout=subprocess.PIPE, text=True)
    try:
        wait_for(
            lambda: (
                app.metric("jwt_validations_total", kid=kid, reason="ok", result="success") >= before + 10
            ),
            DEADLINE,
            0.05,
            "traffic from the load script",
        )
        running.send_signal(signal.SIGINT)
        out, _ = running.communicate(timeout=DEADLINE)
    finally:
        if running.poll() is None:
            running.kill()
    assert running.returncode == 0
    summary = json.loads(out)
    assert summary["interrupted"] and summary["verified"] >= 10 and summary["success_rate"] == 1.0
    assert app.stop() == 0


def test_load_script_issues_at_a_signer_and_verifies_at_a_verifier(tmp_path: Path, start: Any) -> None:
    """--verify-url: tokens from a signer-only app are checked by a verifier-only app (the demo's pair)."""
    key = generate("ES256")
    secret_dir, jwks_dir = tmp_path / "secret", tmp_path / "jwks"
    kubelet_write(secret_dir, secret_items(key, "k1"))
    kubelet_write(jwks_dir, {"jwks.json": jwks_text((key, "k1"))})
    signer = start("--algorithm", "ES256", "--secret-dir", str(secret_dir))
    verifier = start("--algorithm", "ES256", "--jwks-file", str(jwks_dir / "jwks.json"))
    argv = [sys.executable, str(LOAD), "--url", signer.url, "--verify-url", verifier.url]
    done = subprocess.run(
        [*argv, "--rps", "40", "--duration", "0.5", "--json"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    summary = json.loads(done.stdout)
    assert summary["success_rate"] == 1.0 and summary["verified"] >= 10
    assert (
        verifier.metric("jwt_validations_total", kid="k1", reason="ok", result="success")
        == summary["verified"]
    )
    assert not signer.has_series("jwt_validations_total", kid="k1", reason="ok", result="success")


SYNC = ROOT / "examples" / "app" / "sync.py"

FAKE_KUBECTL = """\
import json, pathlib, sys
args = sys.argv[1:]
kind, name = args[args.index("get") + 1], args[args.index("get") + 2]
state = pathlib.Path(__file__).parent / "state" / f"{kind}-{name}.json"
if not state.exists():
    sys.stderr.write(f'Error from server (NotFound): {kind}s "{name}" not found\\n')
    sys.exit(1)
sys.stdout.write(state.read_text())
"""


def test_sync_projects_secret_and_jwks_like_the_kubelet(tmp_path: Path) -> None:
    kubectl = tmp_path / "kubectl"
    kubectl.write_text(f"#!{sys.executable}\n{FAKE_KUBECTL}")
    kubectl.chmod(0o755)
    state = tmp_path / "state"
    state.mkdir()

    def publish(secret: dict[str, str], jwks: str) -> None:
        encoded = {k: base64.b64encode(v.encode()).decode() for k, v in secret.items()}
        (state / "secret-api.json").write_text(json.dumps({"kind": "Secret", "data": encoded}))
        (state / "configmap-api-jwks.json").write_text(json.dumps({"data": {"jwks.json": jwks}}))

    a = generate("ES256")
    publish(secret_items(a, "a"), jwks_text((a, "a")))
    secret_dir, jwks_dir = tmp_path / "secret", tmp_path / "jwks"
    base = [sys.executable, str(SYNC), "--keyset", "api", "--kubectl", str(kubectl)]
    dirs = ["--secret-dir", str(secret_dir), "--jwks-dir", str(jwks_dir)]
    subprocess.run(
        [*base, *dirs, "--once"], check=True, timeout=DEADLINE, capture_output=True, env=clean_env()
    )
    assert os.readlink(secret_dir / "JWT_KID") == "..data/JWT_KID"
    assert (secret_dir / "JWT_KID").read_text() == "a"
    assert json.loads((jwks_dir / "jwks.json").read_text())["keys"][0]["kid"] == "a"
    missing = subprocess.run(
        [*base, "--secret", "nope", "--secret-dir", str(tmp_path / "x"), "--once"],
        timeout=DEADLINE,
        capture_output=True,
        check=False,
        env=clean_env(),
    )
    assert missing.returncode == 1 and not (tmp_path / "x").exists()

    running = subprocess.Popen([*base, *dirs, "--interval", "0.05"], stdout=subprocess.PIPE, env=clean_env())
    try:
        b = generate("ES256")
        publish(secret_items(b, "b"), jwks_text((a, "a"), (b, "b")))
        wait_for(lambda: (secret_dir / "JWT_KID").read_text() == "b", DEADLINE, 0.05, "the new kid")
        wait_for(
            lambda: (
                [k["kid"] for k in json.loads((jwks_dir / "jwks.json").read_text())["keys"]] == ["a", "b"]
            ),
            DEADLINE,
            0.05,
            "the new JWKS",
        )
        running.send_signal(signal.SIGINT)
        assert running.wait(timeout=DEADLINE) == 0
    finally:
        if running.poll() is None:
            running.kill()
