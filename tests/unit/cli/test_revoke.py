"""cli/revoke.py: the kids a revocation names, and the command against a faked API."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from keyturn import cli
from keyturn.cli import revoke
from keyturn.cli.errors import CliError, ExitCode
from unit.cli.fakes import FakeCustomObjects, fake_api
from unit.cli.samples import (
    CURRENT,
    FORGED_LINE,
    GONE,
    HOSTILE,
    NEXT,
    OLD,
    STATUS,
    D,
    api_error,
    keyset,
    no_control_characters,
    ts,
)


def test_revoke_targets_are_only_the_kids_given() -> None:
    assert revoke.revoke_targets(STATUS, [OLD, NEXT, OLD], False, "api-keys") == [OLD, NEXT]
    # Without KIDs, and with --all, nothing is taken from status, which anyone allowed to patch the
    # status subresource can write: Keyturn picks the keys from its own record.
    assert revoke.revoke_targets(STATUS, [], False, "api-keys") == []
    assert revoke.revoke_targets(STATUS, [], True, "api-keys") == []


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
        assert revoke.revoke_targets(status, [], revoke_all, "api-keys") == []
        assert "status" in revoke.status_claim(status, revoke_all)


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
        revoke.revoke_targets(status, kids, False, "api-keys")
    assert caught.value.code == ExitCode.REJECTED and fragment in caught.value.message


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
