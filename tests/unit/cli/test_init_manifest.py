"""cli/init_manifest.py: the minimal manifest `init` prints."""

from __future__ import annotations

import json

import pytest
import yaml

from keyturn import cli


def test_init_prints_a_minimal_manifest(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        cli.main(["init", "api-keys", "--algorithm", "ES256", "--interval", "30d", "--grace-period", "7d"])
        == 0
    )
    manifest = yaml.safe_load(capsys.readouterr().out)
    assert manifest == {
        "apiVersion": "keyturn.dev/v1alpha1",
        "kind": "JwtKeySet",
        "metadata": {"name": "api-keys"},
        "spec": {"algorithm": "ES256", "rotation": {"interval": "30d", "gracePeriod": "7d"}},
    }
    assert cli.main(["init", "x", "-n", "auth", "-o", "json", "--key-size", "4096"]) == 0
    manifest = json.loads(capsys.readouterr().out)
    assert manifest["metadata"] == {"name": "x", "namespace": "auth"}
    assert manifest["spec"] == {"algorithm": "RS256", "keySize": 4096}
