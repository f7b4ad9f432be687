"""cli/parser.py: global options, subcommands, value types, usage errors and the help text."""

from __future__ import annotations

import re
import sys

import pytest

from keyturn import cli
from keyturn.domain.durations import format_duration
from keyturn.domain.spec import ALGORITHMS
from keyturn.domain.spec_parser import parse_spec


def test_global_options_go_before_or_after_the_command_and_after_wins() -> None:
    args = cli.parse_args(["-n", "before", "--context", "ctx", "status", "api-keys"])
    assert (args.namespace, args.context, args.kubeconfig, args.output) == ("before", "ctx", None, None)
    args = cli.parse_args(["-n", "before", "status", "-n", "after", "-o", "json", "--kubeconfig", "kc"])
    assert (args.namespace, args.output, args.kubeconfig, args.name) == ("after", "json", "kc", None)


def test_run_is_parsed_as_before() -> None:
    args = cli.parse_args(["run", "-n", "a", "--namespace", "b", "--standalone", "--log-format", "json"])
    assert args.namespace == ["a", "b"] and args.standalone and args.log_format == "json"
    assert (args.metrics_port, args.health_port, args.peering, args.verbose) == (8080, 8081, None, False)
    assert cli.parse_args(["run"]).namespace == []
    with pytest.raises(SystemExit) as exc:
        cli.parse_args(["-n", "x", "run"])  # was an unknown option before the CLI grew; still refused
    assert exc.value.code == 2


def test_revoke_arguments() -> None:
    args = cli.parse_args(
        ["revoke", "api-keys", "k1", "k2", "--reason", "key_compromise", "--timeout", "90s"]
    )
    assert (args.name, args.kids, args.reason, args.all, args.timeout) == (
        "api-keys",
        ["k1", "k2"],
        "key_compromise",
        False,
        90.0,
    )
    assert cli.parse_args(["revoke", "x", "--reason", "r", "--all"]).kids == []
    assert cli.parse_args(["revoke", "x", "--reason", "r"]).timeout == 120.0
    with pytest.raises(SystemExit) as exc:
        cli.parse_args(["revoke", "api-keys", "k1"])  # --reason is required: it is the audit record
    assert exc.value.code == 2


@pytest.mark.parametrize(
    ("text", "seconds"), [("90", 90.0), ("2.5", 2.5), ("90s", 90.0), ("2m", 120.0), ("1h30m", 5400.0)]
)
def test_timeouts_are_seconds_or_durations(text: str, seconds: float) -> None:
    assert cli.parse_args(["rotate", "x", "--wait", "--timeout", text]).timeout == seconds


@pytest.mark.parametrize("argv", [["rotate", "x", "--timeout", "0"], ["rotate", "x", "--timeout", "soon"]])
def test_bad_timeouts_are_usage_errors(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.parse_args(argv)
    assert exc.value.code == 2


@pytest.mark.parametrize(
    "argv",
    [
        ["init", "x", "--interval", "90x"],
        ["init", "x", "--algorithm", "none"],
        ["init", "x", "--key-size", "1024"],
        ["status", "-o", "xml"],
        ["jwks"],
    ],
)
def test_usage_errors_exit_2(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == 2


def test_help_names_exit_codes_and_the_kubectl_plugin_name(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "argv", ["/usr/local/bin/kubectl-keyturn", "--help"])
    with pytest.raises(SystemExit) as exc:
        cli.main(["revoke", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: kubectl keyturn revoke")
    for code in range(7):
        assert re.search(rf"^  {code}  ", out, re.MULTILINE), f"exit code {code} is documented"


def test_init_offers_the_spec_algorithms_and_names_the_spec_parser_defaults(
    capsys: pytest.CaptureFixture[str],
) -> None:
    defaults = parse_spec("x", "ns", {})
    with pytest.raises(SystemExit):
        cli.main(["init", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    rotation = defaults.rotation
    assert rotation.interval is not None
    for value, label in (
        (rotation.interval, "interval"),
        (rotation.publish_ahead, "publishAhead"),
        (rotation.grace_period, "grace"),
        (rotation.retention, "retention"),
    ):
        assert f"{format_duration(value)} {label}" in text
    assert f"default {defaults.algorithm}" in text
    assert cli.parse_args(["init", "x"]).algorithm == defaults.algorithm
    for algorithm in ALGORITHMS:
        assert cli.parse_args(["init", "x", "--algorithm", algorithm]).algorithm == algorithm
