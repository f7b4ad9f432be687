"""The CLI without a cluster: parsing, rendering, exit codes; the API is faked only at its boundary."""

from __future__ import annotations

import json
import re
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import urllib3
import yaml
from kubernetes.client.exceptions import ApiException

from keyturn import cli, cli_commands, cli_kube, cli_output
from keyturn.cli_errors import ApiAction, CliError, ExitCode, from_api_exception

NOW = datetime(2026, 5, 22, 10, 0, tzinfo=UTC)
CURRENT, NEXT, OLD, GONE = "kid-current", "kid-next", "kid-old", "kid-gone"


def ts(delta: timedelta) -> str:
    return (NOW + delta).strftime("%Y-%m-%dT%H:%M:%SZ")


def condition(kind: str, value: str, reason: str, message: str) -> dict[str, str]:
    return {"type": kind, "status": value, "reason": reason, "message": message, "lastTransitionTime": ts(-D)}


H, D = timedelta(hours=1), timedelta(days=1)
STATUS: dict[str, Any] = {
    "observedGeneration": 2,
    "phase": "Ready",
    "currentKid": CURRENT,
    "nextKid": NEXT,
    "nextRotationAt": ts(29 * D + 23 * H),
    "lastRotationAt": ts(-timedelta(minutes=12)),
    "conditions": [
        condition("Ready", "True", "KeysReady", f"{CURRENT} signs"),
        condition("Reconciling", "False", "KeysReady", f"{CURRENT} signs"),
        condition("Stalled", "False", "KeysReady", f"{CURRENT} signs"),
        condition("RolledBack", "False", "KeysReady", "no rollback in effect"),
    ],
    "keys": [
        {"kid": NEXT, "state": "next", "algorithm": "RS256", "createdAt": ts(-timedelta(minutes=12))},
        {
            "kid": CURRENT,
            "state": "current",
            "algorithm": "RS256",
            "createdAt": ts(-(3 * D + 4 * H)),
            "activatedAt": ts(-timedelta(minutes=12)),
        },
        {
            "kid": OLD,
            "state": "previous",
            "algorithm": "RS256",
            "createdAt": ts(-40 * D),
            "demotedAt": ts(-timedelta(minutes=12)),
            "removeFromJwksAt": ts(7 * D),
        },
        {
            "kid": GONE,
            "state": "revoked",
            "algorithm": "RS256",
            "createdAt": ts(-100 * D),
            "revokedAt": ts(-2 * D),
            "reason": "key_compromise",
        },
    ],
}


def keyset(name: str = "api-keys", status: dict[str, Any] | None = None, **spec: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "keyturn.dev/v1alpha1",
        "kind": "JwtKeySet",
        "metadata": {"name": name, "namespace": "auth", "generation": 2},
        "spec": {"algorithm": "RS256", **spec},
    }
    if status is not None:
        obj["status"] = status
    return obj


# ------------------------------------------------------------------------------------------ parsing


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


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["revoke", "x", "k1", "--all", "--reason", "r"], "KIDs or --all, not both"),
        (["status", "x", "-A"], "NAME or -A"),
        (["init", "x", "--algorithm", "ES256", "--key-size", "2048"], "only to RSA"),
    ],
)
def test_contradictory_arguments_exit_2_before_any_connection(
    argv: list[str], fragment: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cli_kube, "connect", _no_connection)
    assert cli.main(argv) == ExitCode.USAGE
    assert fragment in capsys.readouterr().err


def _no_connection(*_args: Any) -> Any:
    raise AssertionError("must not connect")


def test_no_command_prints_help_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([]) == 2
    assert "COMMAND" in capsys.readouterr().err


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


def test_fresh_tokens_are_unique_and_admitted_as_request_ids() -> None:
    tokens = {cli_commands.fresh_token(NOW) for _ in range(50)}
    assert len(tokens) == 50
    for token in tokens:
        assert re.fullmatch(r"cli-20260522T100000Z-[0-9a-f]{6}", token)
        assert re.fullmatch(r"[A-Za-z0-9._:-]{1,128}", token)  # the CRD's requestId pattern


# ---------------------------------------------------------------------------------------- rendering


@pytest.mark.parametrize(
    ("delta", "text"),
    [
        (timedelta(seconds=0), "0s"),
        (timedelta(seconds=-1), "0s"),  # clock skew of a second is "now"
        (timedelta(seconds=-5), "<invalid>"),
        (timedelta(seconds=45), "45s"),
        (timedelta(seconds=119), "119s"),
        (timedelta(minutes=5, seconds=30), "5m30s"),
        (timedelta(minutes=5), "5m"),
        (timedelta(minutes=12, seconds=59), "12m"),
        (timedelta(hours=5, minutes=30), "5h30m"),
        (timedelta(hours=30, minutes=10), "30h"),
        (3 * D + 4 * H, "3d4h"),
        (3 * D, "3d"),
        (120 * D + 5 * H, "120d"),
        (2 * 365 * D + 30 * D, "2y30d"),
        (9 * 365 * D, "9y"),
    ],
)
def test_ages_read_like_kubectl(delta: timedelta, text: str) -> None:
    assert cli_output.human_duration(delta) == text


def test_relative_times() -> None:
    assert cli_output.relative(ts(29 * D + 23 * H), NOW) == "in 29d"
    assert cli_output.relative(ts(5 * H + 30 * timedelta(minutes=1)), NOW) == "in 5h30m"
    assert cli_output.relative(ts(-timedelta(minutes=12)), NOW) == "12m ago"
    assert cli_output.relative(ts(timedelta(0)), NOW) == "now"
    assert cli_output.relative(None, NOW) == "-"
    assert cli_output.relative("not a time", NOW) == "-"


def columns(line: str) -> list[int]:
    """Start offsets of the cells of a table line (cells are separated by 2+ spaces)."""
    return [m.start() for m in re.finditer(r"(?:^|(?<=  ))\S", line)]


def test_status_view_of_a_keyset() -> None:
    text = cli_output.render_keyset(keyset(status=STATUS), NOW)
    lines = text.splitlines()
    assert lines[0].split() == ["JwtKeySet:", "auth/api-keys"]
    assert "Phase:" in text and re.search(r"^Phase:\s+Ready$", text, re.MULTILINE)
    assert re.search(
        rf"^Conditions:\s+Ready=True Reconciling=False Stalled=False; KeysReady: {CURRENT} signs$",
        text,
        re.MULTILINE,
    )
    assert re.search(r"^Next rotation:\s+\S+ \(in 29d\)$", text, re.MULTILINE)
    assert re.search(r"^Last rotation:\s+\S+ \(12m ago\)$", text, re.MULTILINE)
    assert "RolledBack" not in text  # False extra conditions are not news
    # the key table: a header and one row per key, every column aligned under its header
    start = lines.index(next(line for line in lines if line.startswith("KID")))
    header, rows = lines[start], lines[start + 1 :]
    assert header.split("  ")[0] == "KID" and columns(header)[:3] == columns(rows[0])[:3]
    cells = {row.split()[0]: re.split(r"\s{2,}", row) for row in rows}
    assert cells[NEXT][1:4] == ["next", "12m", "-"]
    assert cells[NEXT][4] == "signs in 29d"
    assert cells[CURRENT][1:5] == ["current", "3d4h", "12m ago", "replaced in 29d"]
    assert cells[OLD][1:5] == ["previous", "40d", "-", "leaves JWKS in 7d"]
    assert cells[GONE][1:] == ["revoked", "100d", "-", "revoked 2d ago", "key_compromise"]
    for row in rows:
        state_at = header.index("STATE")
        assert row[state_at - 2 : state_at] == "  " and row[state_at] != " "


def test_an_overdue_rotation_reads_as_due() -> None:
    text = cli_output.render_keyset(
        keyset(status={**STATUS, "nextRotationAt": ts(-timedelta(minutes=5))}), NOW
    )
    assert re.search(rf"^{CURRENT}\s+current\s+3d4h\s+12m ago\s+rotation due 5m ago", text, re.MULTILINE)


def test_status_view_explains_a_stall_and_a_pending_emergency() -> None:
    status = {
        **STATUS,
        "phase": "Failed",
        "conditions": [
            condition("Ready", "False", "GracePeriodTooShort", "raise gracePeriod to at least 2h5m"),
            condition("Reconciling", "False", "GracePeriodTooShort", "raise gracePeriod to at least 2h5m"),
            condition("Stalled", "True", "GracePeriodTooShort", "raise gracePeriod to at least 2h5m"),
            condition("Degraded", "True", "RolloutPaused", "web (Failed)"),
        ],
        "emergency": {"requestId": "inc-42", "reason": "key_compromise"},
    }
    text = cli_output.render_keyset(keyset(status=status), NOW)
    assert "Stalled=True; GracePeriodTooShort: raise gracePeriod to at least 2h5m" in text
    assert "Degraded (RolloutPaused): web (Failed)" in text
    assert re.search(r"^Emergency:\s+inc-42: pending", text, re.MULTILINE)


def test_status_view_of_a_keyset_keyturn_has_not_seen() -> None:
    text = cli_output.render_keyset(keyset(), NOW)
    assert "no status yet" in text and "KID" not in text


def test_machine_readable_status_is_the_status_as_written() -> None:
    data = cli_output.keyset_data(keyset(status=STATUS))
    assert data == {
        "namespace": "auth",
        "name": "api-keys",
        "algorithm": "RS256",
        "generation": 2,
        "status": STATUS,
    }
    assert yaml.safe_load(cli_output.dump(data, "yaml")) == json.loads(cli_output.dump(data, "json"))


# --------------------------------------------------------------------------------------- exit codes


def api_error(status: int, message: str = "", reason: str = "") -> ApiException:
    exc = ApiException(status=status, reason=reason or "Error")
    exc.body = json.dumps({"kind": "Status", "message": message, "code": status})
    return exc


GET = ApiAction("get", "jwtkeysets", "auth", "api-keys")
PATCH_STATUS = ApiAction("patch", "jwtkeysets/status", "auth", "api-keys")


@pytest.mark.parametrize(
    ("exc", "action", "code", "fragments"),
    [
        (
            api_error(404, 'jwtkeysets "api-keys" not found'),
            GET,
            3,
            ['JwtKeySet "api-keys" not found', '"auth"'],
        ),
        (
            api_error(404, 'configmaps "api-keys-jwks" not found'),
            ApiAction("get", "configmaps", "auth", "api-keys-jwks", group=""),
            3,
            ['ConfigMap "api-keys-jwks" not found'],
        ),
        (api_error(404, "the server could not find the requested resource"), GET, 3, ["CRD installed"]),
        (
            api_error(403, 'cannot patch resource "jwtkeysets/status"'),
            PATCH_STATUS,
            5,
            [
                "refused to patch jwtkeysets/status",
                "emergency-responder",
                "kubectl auth can-i patch jwtkeysets.keyturn.dev --subresource=status -n auth",
            ],
        ),
        (
            api_error(403, 'cannot patch resource "jwtkeysets"'),
            ApiAction("patch", "jwtkeysets", "auth", "api-keys"),
            5,
            ["refused to patch jwtkeysets (API group keyturn.dev)", "edit ClusterRole", "RoleBinding"],
        ),
        (
            api_error(403, 'cannot list resource "jwtkeysets"'),
            ApiAction("list", "jwtkeysets", None),
            5,
            ["in any namespace", "view ClusterRole", "ClusterRoleBinding", "--all-namespaces"],
        ),
        (api_error(401, "Unauthorized"), GET, 5, ["credentials"]),
        (api_error(422, "status.emergency.requestId must be"), PATCH_STATUS, 1, ["requestId must be"]),
        (api_error(409, "conflict"), GET, 1, ["conflict"]),
        (api_error(500, "etcd is sad"), GET, 1, ["500", "etcd is sad"]),
    ],
)
def test_api_errors_map_to_exit_codes(
    exc: ApiException, action: ApiAction, code: int, fragments: list[str]
) -> None:
    error = from_api_exception(exc, action)
    assert error.code == code
    for fragment in fragments:
        assert fragment in error.message


def test_connection_errors_are_unexpected_errors() -> None:
    def refused(**_kw: Any) -> None:
        raise urllib3.exceptions.MaxRetryError(None, "/apis", "connection refused")  # type: ignore[arg-type]

    with pytest.raises(CliError) as caught:
        cli_kube.call(GET, refused)
    assert caught.value.code == ExitCode.ERROR and "cannot reach the API server" in caught.value.message


# ------------------------------------------------------------------------------- local kid checks


def test_revoke_targets_are_only_the_kids_given() -> None:
    assert cli_commands.revoke_targets(STATUS, [OLD, NEXT, OLD], False, "api-keys") == [OLD, NEXT]
    # Without KIDs, and with --all, nothing is taken from status, which anyone allowed to patch the
    # status subresource can write: Keyturn picks the keys from its own record.
    assert cli_commands.revoke_targets(STATUS, [], False, "api-keys") == []
    assert cli_commands.revoke_targets(STATUS, [], True, "api-keys") == []


@pytest.mark.parametrize(
    "status",
    [
        pytest.param({}, id="no status"),
        pytest.param({"keys": [{"kid": GONE, "state": "revoked"}]}, id="every key revoked"),
        pytest.param({**STATUS, "currentKid": None}, id="no current kid"),
        pytest.param({"keys": "junk", "currentKid": ["x"]}, id="wrong types"),
    ],
)
def test_nothing_in_status_refuses_a_revocation_without_kids(status: dict[str, Any]) -> None:
    for revoke_all in (False, True):
        assert cli_commands.revoke_targets(status, [], revoke_all, "api-keys") == []
        assert "status" in cli_commands.status_claim(status, revoke_all)


@pytest.mark.parametrize(
    ("status", "kids", "fragment"),
    [
        (STATUS, ["nope"], "unknown kid 'nope'"),
        (STATUS, [GONE], f"kid {GONE} of api-keys is already revoked"),
        ({}, [OLD], "has no keys yet"),
    ],
)
def test_revoke_refuses_unknown_and_revoked_kids(
    status: dict[str, Any], kids: list[str], fragment: str
) -> None:
    with pytest.raises(CliError) as caught:
        cli_commands.revoke_targets(status, kids, False, "api-keys")
    assert caught.value.code == ExitCode.REJECTED and fragment in caught.value.message


def test_rollback_needs_a_previous_key() -> None:
    assert cli_commands.rollback_target(STATUS, "api-keys") == OLD
    without = {**STATUS, "keys": [k for k in STATUS["keys"] if k["state"] != "previous"]}
    with pytest.raises(CliError) as caught:
        cli_commands.rollback_target(without, "api-keys")
    assert caught.value.code == ExitCode.REJECTED and "no previous key" in caught.value.message


# ------------------------------------------------------------------ commands against a faked API


class FakeCustomObjects:
    """CustomObjectsApi stand-in: serves a scripted sequence of objects and records patches."""

    def __init__(self, reads: list[dict[str, Any]], patch_error: ApiException | None = None) -> None:
        self.reads = reads
        self.patches: list[tuple[Any, dict[str, Any]]] = []
        self.patch_error = patch_error

    def get_namespaced_custom_object(self, *args: Any, **_kw: Any) -> dict[str, Any]:
        assert args[:4] == ("keyturn.dev", "v1alpha1", "auth", "jwtkeysets")
        return self.reads.pop(0) if len(self.reads) > 1 else self.reads[0]

    def patch_namespaced_custom_object_status(self, *args: Any, **kw: Any) -> dict[str, Any]:
        if self.patch_error is not None:
            raise self.patch_error
        self.patches.append((args[5], kw))
        return {}


class FakeConnection:
    def __init__(self, custom: FakeCustomObjects) -> None:
        self.custom = custom
        self.namespace = "auth"


def fake_api(monkeypatch: pytest.MonkeyPatch, custom: FakeCustomObjects) -> None:
    monkeypatch.setattr(cli_kube, "connect", lambda _kubeconfig, _context: FakeConnection(custom))
    monkeypatch.setattr(cli_commands, "POLL_FIRST", 0.001)


def test_revoke_replaces_status_emergency_with_a_json_patch_and_reports_a_rejection(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    old_ack = {"requestId": "inc-1", "handledAt": ts(-D), "result": "Revoked", "newKid": CURRENT}
    before = keyset(status={**STATUS, "emergency": old_ack})
    custom = FakeCustomObjects([before])
    fake_api(monkeypatch, custom)

    def answer(*args: Any, **kw: Any) -> dict[str, Any]:
        request = args[5][0]["value"]
        ack = {**request, "handledAt": ts(timedelta(0)), "result": "Rejected", "message": "unknown kid(s): x"}
        custom.reads = [keyset(status={**STATUS, "emergency": ack})]
        return FakeCustomObjects.patch_namespaced_custom_object_status(custom, *args, **kw)

    monkeypatch.setattr(custom, "patch_namespaced_custom_object_status", answer)
    code = cli.main(["revoke", "api-keys", OLD, "--reason", "key_compromise", "-n", "auth"])
    assert code == ExitCode.REJECTED
    assert "unknown kid(s): x" in capsys.readouterr().err
    [(patch, kw)] = custom.patches
    assert kw["_content_type"] == "application/json-patch+json"
    assert len(patch) == 1 and patch[0]["op"] == "add" and patch[0]["path"] == "/status/emergency"
    value = patch[0]["value"]
    assert set(value) == {"requestId", "reason", "revokeKids"}  # nothing of the old request survives
    assert value["revokeKids"] == [OLD] and value["reason"] == "key_compromise"
    assert value["requestId"].startswith("cli-")


def test_revoke_without_kid_sends_no_kid_from_status_and_labels_what_status_claims(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """status.currentKid is forged (it names the next key): the request must not carry it."""
    forged = {**STATUS, "currentKid": NEXT}
    custom = FakeCustomObjects([keyset(status=forged)])
    fake_api(monkeypatch, custom)

    def answer(*args: Any, **kw: Any) -> dict[str, Any]:
        request = args[5][0]["value"]
        # Keyturn revokes the current key of its own record, which is CURRENT.
        keys = [{**k, "state": "revoked"} if k["kid"] == CURRENT else k for k in STATUS["keys"]]
        ack = {**request, "handledAt": ts(timedelta(0)), "result": "Revoked", "newKid": NEXT}
        custom.reads = [keyset(status={**STATUS, "keys": keys, "currentKid": NEXT, "emergency": ack})]
        return FakeCustomObjects.patch_namespaced_custom_object_status(custom, *args, **kw)

    monkeypatch.setattr(custom, "patch_namespaced_custom_object_status", answer)
    code = cli.main(["revoke", "api-keys", "--reason", "key_compromise", "-n", "auth", "-o", "json"])
    assert code == ExitCode.OK
    [(patch, _kw)] = custom.patches
    assert patch[0]["value"]["revokeKids"] == []
    assert set(patch[0]["value"]) == {"requestId", "reason", "revokeKids"}
    out, err = capsys.readouterr()
    assert f"status says it is {NEXT}" in err and "Keyturn's own record" in err
    data = json.loads(out)
    assert data["revokedKids"] == [CURRENT] and data["newKid"] == NEXT


def test_revoke_all_is_sent_whatever_status_says(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    forged = {**STATUS, "keys": [{**k, "state": "revoked"} for k in STATUS["keys"]]}
    custom = FakeCustomObjects([keyset(status=forged)])
    fake_api(monkeypatch, custom)

    def unanswered(*args: Any, **kw: Any) -> dict[str, Any]:
        custom.reads = [keyset(status={**forged, "emergency": args[5][0]["value"]})]
        return FakeCustomObjects.patch_namespaced_custom_object_status(custom, *args, **kw)

    monkeypatch.setattr(custom, "patch_namespaced_custom_object_status", unanswered)
    argv = ["revoke", "api-keys", "--all", "--reason", "storage", "-n", "auth", "--timeout", "0.05"]
    assert cli.main(argv) == ExitCode.TIMEOUT
    [(patch, _kw)] = custom.patches
    assert patch[0]["value"]["revokeAll"] is True and "revokeKids" not in patch[0]["value"]
    assert "status lists none as not revoked" in capsys.readouterr().err


def test_revoke_rejection_message_is_printed(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    custom = FakeCustomObjects([keyset(status=STATUS)])
    fake_api(monkeypatch, custom)

    def answer(*args: Any, **_kw: Any) -> dict[str, Any]:
        request = args[5][0]["value"]
        ack = {**request, "handledAt": ts(timedelta(0)), "result": "Rejected", "message": "there is no key"}
        custom.reads = [keyset(status={**STATUS, "emergency": ack})]
        return {}

    monkeypatch.setattr(custom, "patch_namespaced_custom_object_status", answer)
    assert cli.main(["revoke", "api-keys", "--reason", "r", "-n", "auth"]) == ExitCode.REJECTED
    err = capsys.readouterr().err
    assert "Keyturn answered Rejected" in err and "there is no key" in err


def test_revoke_without_permission_exits_5_naming_the_refused_verb(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    refusal = api_error(403, 'User "x" cannot patch resource "jwtkeysets/status"', "Forbidden")
    fake_api(monkeypatch, FakeCustomObjects([keyset(status=STATUS)], patch_error=refusal))
    assert cli.main(["revoke", "api-keys", "--reason", "r", "-n", "auth"]) == ExitCode.FORBIDDEN
    err = capsys.readouterr().err
    assert "patch jwtkeysets/status" in err and "emergency-responder" in err


def test_revoke_times_out_with_exit_6(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    custom = FakeCustomObjects([keyset(status=STATUS)])
    fake_api(monkeypatch, custom)

    def unanswered(*args: Any, **_kw: Any) -> dict[str, Any]:
        custom.reads = [keyset(status={**STATUS, "emergency": args[5][0]["value"]})]
        return {}

    monkeypatch.setattr(custom, "patch_namespaced_custom_object_status", unanswered)
    assert (
        cli.main(["revoke", "api-keys", "--reason", "r", "-n", "auth", "--timeout", "0.05"])
        == ExitCode.TIMEOUT
    )
    assert "timed out after 0.05s" in capsys.readouterr().err


# ------------------------------------------------------------------ text from status is escaped

HOSTILE = "\x1b]0;owned\x07\x1b[2J"  # set the terminal title, clear the screen
FORGED_LINE = "ok\nPhase:         Ready"  # a newline forging a line of the view


def no_control_characters(text: str) -> bool:
    """Only printable characters and the line breaks the view itself puts between lines."""
    return all(line.isprintable() for line in text.split("\n"))


def test_status_view_escapes_what_anyone_who_patches_status_wrote() -> None:
    status = {
        **STATUS,
        "phase": "Failed",
        "currentKid": f"kid{HOSTILE}",
        "conditions": [
            condition("Ready", "False", "Stalled", "-"),
            {**condition("Stalled", "True", "Bad", "-"), "message": f"stop{HOSTILE}\n{FORGED_LINE}"},
            {**condition("Degraded", "True", "Paused", "-"), "message": FORGED_LINE},
        ],
        "keys": [{**k, "kid": f"{k['kid']}{HOSTILE}", "reason": FORGED_LINE} for k in STATUS["keys"]],
        "emergency": {
            "requestId": "inc-1",
            "handledAt": ts(-H),
            "result": f"Revoked{HOSTILE}",
            "newKid": HOSTILE,
        },
    }
    plain = cli_output.render_keyset(keyset(status=STATUS), NOW)
    text = cli_output.render_keyset(keyset(status=status), NOW)
    assert no_control_characters(text)
    assert "\\x1b]0;owned\\x07\\x1b[2J" in text and "ok\\nPhase:" in text
    # one line per fact and per key, as without the hostile values (plus the Degraded line)
    assert len(text.splitlines()) == len(plain.splitlines()) + 2
    assert len(re.findall(r"^Phase:", text, re.MULTILINE)) == 1
    assert no_control_characters(cli_output.conditions_summary(status))
    assert no_control_characters(cli_output.jwks_table({"keys": [{"kid": HOSTILE, "kty": FORGED_LINE}]}))


def test_machine_readable_output_escapes_control_characters_itself() -> None:
    data = cli_output.keyset_data(keyset(status={**STATUS, "currentKid": HOSTILE + FORGED_LINE}))
    for fmt in ("json", "yaml"):
        dumped = cli_output.dump(data, fmt)
        assert "\x1b" not in dumped and "\x07" not in dumped
    assert json.loads(cli_output.dump(data, "json"))["status"]["currentKid"] == HOSTILE + FORGED_LINE
    assert yaml.safe_load(cli_output.dump(data, "yaml"))["status"]["currentKid"] == HOSTILE + FORGED_LINE


def test_messages_from_status_reach_the_terminal_escaped(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    forged = {**STATUS, "currentKid": HOSTILE}
    custom = FakeCustomObjects([keyset(status=forged)])
    fake_api(monkeypatch, custom)

    def answer(*args: Any, **_kw: Any) -> dict[str, Any]:
        request = args[5][0]["value"]
        ack = {
            **request,
            "handledAt": ts(timedelta(0)),
            "result": "Rejected",
            "message": HOSTILE + FORGED_LINE,
        }
        custom.reads = [keyset(status={**forged, "emergency": ack})]
        return {}

    monkeypatch.setattr(custom, "patch_namespaced_custom_object_status", answer)
    assert cli.main(["revoke", "api-keys", "--reason", "r", "-n", "auth"]) == ExitCode.REJECTED
    err = capsys.readouterr().err
    assert no_control_characters(err) and "\\x1b]0;owned" in err
    assert len(err.strip().splitlines()) == 2  # the note and the error, one line each
    assert "status says it is \\x1b]0;owned" in err
