"""`rotate` and `rollback`: requests a person makes by annotating the JwtKeySet with a fresh token.

Keyturn echoes the token in status.lastHandledRotate / status.lastHandledRollback once it handled
the request; `--wait` waits for that echo.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from typing import Any

from keyturn.cli.errors import CliError, ExitCode
from keyturn.cli.output import conditions_summary, emit, note, shown
from keyturn.cli.session import Session, fresh_token
from keyturn.cli.status_keys import read_status_keys
from keyturn.domain import model
from keyturn.domain.annotations import ROLLBACK_ANNOTATION, ROTATE_ANNOTATION


def _history_keys(status: Mapping[str, Any]) -> list[str]:
    return [json.dumps(h, sort_keys=True) for h in status.get("history") or ()]


def rollback_target(status: Mapping[str, Any], name: str) -> str:
    """The kid a rollback would restore, by Keyturn's own rule (`domain.model.rollback_target`)
    applied to status.keys; CliError when there is none."""
    if not status.get("currentKid"):
        raise CliError(ExitCode.REJECTED, f"{name} has no signing key yet: nothing to roll back")
    target = model.rollback_target(read_status_keys(status))
    if target is None:
        raise CliError(
            ExitCode.REJECTED,
            f"{name} has no previous key to roll back to (revoked, retired and failed keys never sign "
            "again); rotate instead: kubectl keyturn rotate",
        )
    return target.kid


def _annotation_request(args: argparse.Namespace, annotation: str, verb: str) -> int:
    session = Session(args)
    name = args.name
    before = session.keyset(name)
    status = before.get("status") or {}
    old_kid = status.get("currentKid")
    if verb == "rollback":
        rollback_target(status, name)  # refuses locally when there is nothing to roll back to
    if verb == "rotate" and status.get("phase") == "Failed":
        note(
            f"warning: {session.namespace}/{name} is Stalled ({conditions_summary(status)}); "
            "Keyturn rotates only once that is fixed"
        )
    token = args.token or fresh_token()
    session.annotate(name, annotation, token)
    data: dict[str, Any] = {
        "namespace": session.namespace,
        "name": name,
        "annotation": annotation,
        "token": token,
        "previousKid": old_kid,
    }
    if not args.wait:
        data |= {"handled": False, "currentKid": old_kid}
        emit(
            data,
            args.output,
            f"{session.namespace}/{name}: {verb} requested ({annotation}={token}); follow it with "
            f"`kubectl keyturn status {name} -n {session.namespace}` or use --wait",
        )
        return ExitCode.OK
    field = "lastHandledRotate" if verb == "rotate" else "lastHandledRollback"
    note(
        f"{session.namespace}/{name}: {verb} requested ({token}); waiting up to {args.timeout:g}s for Keyturn"
    )
    after = session.wait(name, lambda s: s.get(field) == token, args.timeout, f"handle {annotation}={token}")
    status = after.get("status") or {}
    new_kid = status.get("currentKid")
    data |= {"handled": True, "currentKid": new_kid}
    old_shown, new_shown = shown(old_kid), shown(new_kid)
    if verb == "rollback":
        seen = set(_history_keys(before.get("status") or {}))
        entries = [
            h
            for h, key in zip(status.get("history") or (), _history_keys(status), strict=True)
            if key not in seen
            and h.get("operation") == model.Operation.ROLLBACK
            and h.get("trigger") == model.Trigger.MANUAL
        ]
        rejected = (
            entries[-1].get("result") == model.HistoryResult.REJECTED if entries else new_kid == old_kid
        )
        data["result"] = (model.HistoryResult.REJECTED if rejected else model.HistoryResult.ROLLED_BACK).value
        if rejected:
            if args.output in ("json", "yaml"):
                emit(data, args.output, "")
            raise CliError(
                ExitCode.REJECTED,
                f"Keyturn rejected the rollback of {session.namespace}/{name}: no previous key is left to "
                f"roll back to (revoked, retired and failed keys never sign again); {new_shown} still signs",
            )
        text = f"{session.namespace}/{name}: rolled back; {new_shown} signs again ({old_shown} is failed)"
    else:
        text = f"{session.namespace}/{name}: rotated; {new_shown} signs now ({old_shown} is previous)"
    emit(data, args.output, text)
    return ExitCode.OK


def cmd_rotate(args: argparse.Namespace) -> int:
    return _annotation_request(args, ROTATE_ANNOTATION, "rotate")


def cmd_rollback(args: argparse.Namespace) -> int:
    return _annotation_request(args, ROLLBACK_ANNOTATION, "rollback")
