"""The `keyturn-client` wheel installs alone into a clean venv and works there.

The wheel is built from this checkout (hack/client_wheel.py), installed with pip into a fresh
`python -m venv` (no system site packages), its dependencies resolved from PyPI within the
project's pins (requirements.lock; pip's cache keeps warm runs fast), and a script run in that
venv, isolated from this checkout, loads a JWKS written by the test, verifies tokens signed at
test time and prints the gate metrics.
"""

from __future__ import annotations

import json
import subprocess
import venv
import zipfile
from pathlib import Path
from typing import Any

import pytest

import client_wheel
from integration.consumer_support import ROOT, loaded_kids, new_key, publish, validations

OPERATOR_ONLY = {"kopf", "kubernetes", "aiohttp", "croniter", "pyyaml"}
# The three dependencies, theirs (cffi and pycparser, through cryptography), and the venv's own tools.
ALLOWED = {
    "keyturn-client",
    "cryptography",
    "pyjwt",
    "prometheus-client",
    "cffi",
    "pycparser",
    "pip",
    "setuptools",
}

SCRIPT = """
import importlib, json, sys
from prometheus_client import CollectorRegistry, generate_latest
import keyturn
from keyturn.client import ClientMetrics, JwksVerifier, VerificationError

jwks, good, unknown = sys.argv[1:]
registry = CollectorRegistry()
verifier = JwksVerifier.from_file(jwks, metrics=ClientMetrics(registry))
verdicts = []
for token in (good, unknown):
    try:
        verifier.verify(token)
        verdicts.append("ok")
    except VerificationError as exc:
        verdicts.append(exc.reason.value)
missing = []
for name in ("keyturn.domain", "keyturn.executor", "keyturn.cli", "keyturn.keys.secret_data"):
    try:
        importlib.import_module(name)
    except ModuleNotFoundError:
        missing.append(name)
print(json.dumps({
    "verdicts": verdicts,
    "keyturn_file": getattr(keyturn, "__file__", None),
    "client_file": sys.modules["keyturn.client"].__file__,
    "not_shipped": missing,
    "metrics": generate_latest(registry).decode(),
}))
"""


def run(argv: list[str], cwd: Path) -> str:
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, f"{' '.join(argv)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return client_wheel.build_wheel(tmp_path_factory.mktemp("dist"))


def test_the_wheel_holds_the_client_and_only_the_keys_modules_it_imports(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        metadata = archive.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert "keyturn/__init__.py" not in names
    assert {n.split("/")[1] for n in names if n.startswith("keyturn/")} == {"client", "keys"}
    assert "keyturn/keys/secret_data.py" not in names and "keyturn/keys/new_keys.py" not in names
    requires = {
        line.split(":", 1)[1].strip() for line in metadata.splitlines() if line.startswith("Requires-Dist:")
    }
    assert requires == {"cryptography>=44", "PyJWT>=2.10", "prometheus-client>=0.21"}


def test_installs_alone_into_a_clean_venv_and_verifies(wheel: Path, tmp_path: Path) -> None:
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True, system_site_packages=False).create(env_dir)
    python = str(env_dir / "bin" / "python")
    run(
        [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         "-c", str(ROOT / "requirements.lock"), str(wheel)],
        tmp_path,
    )  # fmt: skip
    installed = json.loads(
        run([python, "-m", "pip", "list", "--format=json", "--disable-pip-version-check"], tmp_path)
    )
    names = {str(d["name"]).lower().replace("_", "-") for d in installed}
    assert not names & OPERATOR_ONLY
    assert {"keyturn-client", "cryptography", "pyjwt", "prometheus-client"} <= names <= ALLOWED, names

    key, stranger = new_key("rsa-1", "RS256"), new_key("stranger", "ES256")
    jwks = publish(tmp_path / "mount", [key.jwk()])
    (tmp_path / "check.py").write_text(SCRIPT)
    # -I: no PYTHONPATH, no user site, no current directory; only what the venv holds.
    out: dict[str, Any] = json.loads(
        run([python, "-I", str(tmp_path / "check.py"), str(jwks), key.token(), stranger.token()], tmp_path)
    )
    assert out["verdicts"] == ["ok", "unknown_kid"]
    assert out["keyturn_file"] is None  # a namespace package: no operator __init__ came along
    assert str(out["client_file"]).startswith(str(env_dir))
    assert sorted(out["not_shipped"]) == sorted(
        ["keyturn.domain", "keyturn.executor", "keyturn.cli", "keyturn.keys.secret_data"]
    )
    metrics = out["metrics"]
    assert loaded_kids(metrics) == {"rsa-1": 1}
    assert validations(metrics) == {("success", "ok", "rsa-1"): 1, ("failure", "unknown_kid", "stranger"): 1}
    print(metrics)  # shown with -s: the exposition the gates read
