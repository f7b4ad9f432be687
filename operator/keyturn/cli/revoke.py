"""`revoke`: the emergency request, written into status.emergency, and Keyturn's acknowledgement."""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from typing import Any

from keyturn.cli.errors import CliError, ExitCode
from keyturn.cli.output import emit, note, shown
from keyturn.cli.session import Session, fresh_token
from keyturn.cli.status_keys import keys_by_kid
from keyturn.domain.model import AckResult, KeyState


def revoke_targets(status: Mapping[str, Any], kids: Sequence[str], revoke_all: bool, name: str) -> list[str]:
    """The kids to write into status.emergency.revokeKids.

    Only KIDs given on the command line, checked against status.keys before anything is written
    (a typo costs no round trip). Without KIDs (the current key) and with --all nothing is taken
    from status and nothing in it can refuse the request: Keyturn picks the keys from its own
    record in the Secret, while status can be written by anyone allowed to patch it.
    """
    if revoke_all or not kids:
        return []
    keys = keys_by_kid(status)
    if not keys:
        raise CliError(
            ExitCode.REJECTED,
            f"{name} has no keys yet (empty status.keys): Keyturn has not reconciled it; is the operator "
            "running? (kubectl keyturn status); without KIDs the current key is revoked all the same",
        )
    out = []
    for kid in kids:
        key = keys.get(kid)
        if key is None:
            known = ", ".join(f"{shown(k)} ({shown(v.get('state'))})" for k, v in keys.items())
            raise CliError(ExitCode.REJECTED, f"unknown kid {kid!r} in {name}; its keys: {known}")
        if key.get("state") == KeyState.REVOKED:
            when = f" at {shown(key['revokedAt'])}" if key.get("revokedAt") else ""
            why = f" ({shown(key['reason'])})" if key.get("reason") else ""
            raise CliError(ExitCode.REJECTED, f"kid {kid} of {name} is already revoked{when}{why}")
        if kid not in out:
            out.append(kid)
    return out


def status_claim(status: Mapping[str, Any], revoke_all: bool) -> str:
    """What status says the request will revoke, for the person to compare: only a claim, since
    Keyturn decides from its own record."""
    if revoke_all:
        live = [shown(kid) for kid, k in keys_by_kid(status).items() if k.get("state") != KeyState.REVOKED]
        return f"every key; status lists {', '.join(live) or 'none'} as not revoked"
    current = status.get("currentKid")
    said = f"status says it is {shown(current)}" if current else "status names no current key"
    return f"the current key, as Keyturn's own record has it; {said}"


def newly_revoked(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    """Kids revoked in `after` that were not in `before` (both statuses)."""
    was = {kid for kid, k in keys_by_kid(before).items() if k.get("state") == KeyState.REVOKED}
    return [
        kid for kid, k in keys_by_kid(after).items() if k.get("state") == KeyState.REVOKED and kid not in was
    ]


def cmd_revoke(args: argparse.Namespace) -> int:
    if args.all and args.kids:
        raise CliError(ExitCode.USAGE, "revoke: give KIDs or --all, not both")
    session = Session(args)
    name = args.name
    status = session.keyset(name).get("status") or {}
    kids = revoke_targets(status, args.kids, args.all, name)
    request_id = args.request_id or fresh_token()
    if (status.get("emergency") or {}).get("requestId") == request_id:
        raise CliError(
            ExitCode.REJECTED, f"request {request_id} was already handled; Keyturn runs a requestId only once"
        )
    request: dict[str, Any] = {"requestId": request_id, "reason": args.reason}
    if args.all:
        request["revokeAll"] = True
    else:
        request["revokeKids"] = kids  # empty: Keyturn revokes the key its record says is current
    session.request_emergency(name, request)
    what = ", ".join(kids) if kids else status_claim(status, args.all)
    note(
        f"{session.namespace}/{name}: emergency request {request_id} written (revoke {what}); "
        f"waiting up to {args.timeout:g}s for Keyturn"
    )

    def replaced(status: Mapping[str, Any]) -> None:
        other = (status.get("emergency") or {}).get("requestId")
        if other != request_id:
            raise CliError(
                ExitCode.ERROR,
                f"status.emergency of {name} now holds request {other!r}: someone replaced request "
                f"{request_id} before Keyturn handled it",
            )

    def handled(status: Mapping[str, Any]) -> bool:
        ack = status.get("emergency") or {}
        return ack.get("requestId") == request_id and bool(ack.get("result"))

    after = session.wait(name, handled, args.timeout, f"acknowledge emergency request {request_id}", replaced)
    after_status = after.get("status") or {}
    ack = dict(after_status.get("emergency") or {})
    # The KIDs given, else what status shows revoked since (written by Keyturn with the ack).
    revoked = kids or newly_revoked(status, after_status)
    data = {"namespace": session.namespace, "name": name, "revokedKids": revoked, **ack}
    if ack.get("result") != AckResult.REVOKED:
        if args.output in ("json", "yaml"):
            emit(data, args.output, "")
        raise CliError(
            ExitCode.REJECTED,
            f"Keyturn answered {shown(ack.get('result'))} to emergency request {request_id}: "
            f"{shown(ack.get('message') or 'no message')}",
        )
    emit(
        data,
        args.output,
        f"{session.namespace}/{name}: revoked {', '.join(shown(k) for k in revoked) or '-'} "
        f"(request {request_id}); {shown(ack.get('newKid'))} signs now",
    )
    return ExitCode.OK
