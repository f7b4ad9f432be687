"""cli/sa_signer.py and its arguments: --keyset NAMESPACE/NAME, global options before or after, and
the options handed to the signer as they were given."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from keyturn import cli
from keyturn.cli import connection
from keyturn.cli.errors import ExitCode
from keyturn.sasigner import server


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("kube-system/service-accounts", ("kube-system", "service-accounts")),
        ("a/b.c-d", ("a", "b.c-d")),
    ],
)
def test_a_keyset_is_namespace_slash_name(text: str, expected: tuple[str, str]) -> None:
    assert cli.parse_args(["sa-signer", "--socket", "/s", "--keyset", text]).keyset == expected


@pytest.mark.parametrize(
    "text", ["service-accounts", "/x", "ns/", "ns/x/y", "NS/x", "ns/-x", "n_s/x", "a" * 64 + "/x", "ns/x\n"]
)
def test_anything_else_is_a_usage_error(text: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as raised:
        cli.parse_args(["sa-signer", "--socket", "/s", "--keyset", text])
    assert raised.value.code == 2
    assert "NAMESPACE/NAME" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        ["--kubeconfig", "/k", "--context", "c", "sa-signer", "--socket", "/s", "--keyset", "ns/x"],
        ["sa-signer", "--socket", "/s", "--keyset", "ns/x", "--kubeconfig", "/k", "--context", "c"],
    ],
    ids=["before the command", "after it"],
)
def test_the_kubeconfig_may_come_before_or_after_the_command(argv: list[str]) -> None:
    args = cli.parse_args(argv)
    assert (args.kubeconfig, args.context) == ("/k", "c")


def test_the_command_hands_its_options_to_the_signer(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}

    class FakeConnection:
        api = object()

        def close(self) -> None:
            seen["closed"] = True

    def fake_connect(kubeconfig: str | None, context: str | None) -> FakeConnection:
        seen["connect"] = (kubeconfig, context)
        return FakeConnection()

    def fake_run(options: server.Options, api: object) -> int:
        seen["options"], seen["api"] = options, api
        return 0

    monkeypatch.setattr(connection, "connect", fake_connect)
    monkeypatch.setattr(server, "run", fake_run)
    argv = ["sa-signer", "--socket=/run/s.sock", "--keyset=kube-system/sa", "--cache=/var/lib/c.json"]
    argv += ["--legacy-public-key=/a.pub", "--legacy-public-key=/b.pub", "--kubeconfig=/k.conf"]
    assert cli.main(argv) == ExitCode.OK
    assert seen["connect"] == ("/k.conf", None)
    assert seen["options"] == server.Options(
        socket=Path("/run/s.sock"),
        namespace="kube-system",
        name="sa",
        cache=Path("/var/lib/c.json"),
        legacy_public_keys=(Path("/a.pub"), Path("/b.pub")),
    )
    assert seen["api"] is FakeConnection.api
    assert seen["closed"]


def test_other_commands_never_import_grpc() -> None:
    """The table imports every command's module: gRPC must wait for sa-signer."""
    import subprocess

    code = "import sys, keyturn.cli; keyturn.cli.parse_args(['status']); print('grpc' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
