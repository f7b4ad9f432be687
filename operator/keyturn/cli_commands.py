"""The operating commands of the CLI: status, rotate, rollback, revoke, jwks, init.

Each command is a function of the parsed arguments that prints its result and returns an exit
code; failures raise CliError (see cli_errors for the codes). Only cli_kube talks to the API.
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from keyturn import GROUP, KIND, PLURAL, VERSION, cli_output
from keyturn.cli_errors import ApiAction, CliError, ExitCode
from keyturn.domain.durations import parse_duration
from keyturn.logs import escape

if TYPE_CHECKING:
    from keyturn.cli_kube import Connection

ROTATE_ANNOTATION = "keyturn.dev/rotate"
ROLLBACK_ANNOTATION = "keyturn.dev/rollback"
POLL_FIRST, POLL_MAX = 0.1, 1.0  # seconds between reads while waiting for Keyturn


def utcnow() -> datetime:
    return datetime.now(UTC)


def fresh_token(now: datetime | None = None) -> str:
    """A new request id / annotation token: cli-<UTC timestamp>-<random>, e.g. cli-20260522T101500Z-3fa9c1."""
    at = (now or utcnow()).astimezone(UTC)
    return f"cli-{at:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


def parse_timeout(text: str) -> float:
    """--timeout: seconds (`90`, `2.5`) or a duration (`90s`, `2m`, `1h`)."""
    try:
        value = float(text)
    except ValueError:
        try:
            value = parse_duration(text).total_seconds()
        except ValueError as exc:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not a number of seconds or a duration like 2m"
            ) from exc
    if value <= 0:
        raise argparse.ArgumentTypeError("the timeout must be greater than zero")
    return value


def is_hmac(obj: Mapping[str, Any]) -> bool:
    return str((obj.get("spec") or {}).get("algorithm") or "RS256").startswith("HS")


# --------------------------------------------------------------------------------------------- API


def _call(action: ApiAction, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """cli_kube.call; the custom-objects API types its JSON answers as `object`, hence Any."""
    from keyturn.cli_kube import call  # noqa: PLC0415 - see Session

    return call(action, fn, *args, **kwargs)


class Session:
    """One connection and the namespace the command works in."""

    def __init__(self, args: argparse.Namespace) -> None:
        from keyturn import cli_kube  # noqa: PLC0415 - the kubernetes client takes 0.5s to import

        self.conn: Connection = cli_kube.connect(args.kubeconfig, args.context)
        self.namespace: str = args.namespace or self.conn.namespace

    def keyset(self, name: str) -> dict[str, Any]:
        ns = self.namespace
        action = ApiAction("get", PLURAL, ns, name)
        obj = _call(action, self.conn.custom.get_namespaced_custom_object, GROUP, VERSION, ns, PLURAL, name)
        return dict(obj)

    def keysets(self, all_namespaces: bool) -> list[dict[str, Any]]:
        if all_namespaces:
            found = _call(
                ApiAction("list", PLURAL, None),
                self.conn.custom.list_cluster_custom_object,
                GROUP,
                VERSION,
                PLURAL,
            )
        else:
            found = _call(
                ApiAction("list", PLURAL, self.namespace),
                self.conn.custom.list_namespaced_custom_object,
                GROUP,
                VERSION,
                self.namespace,
                PLURAL,
            )
        items = [dict(i) for i in found.get("items") or ()]
        return sorted(items, key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"]))

    def annotate(self, name: str, key: str, value: str) -> None:
        patch = {"metadata": {"annotations": {key: value}}}
        _call(
            ApiAction("patch", PLURAL, self.namespace, name),
            self.conn.custom.patch_namespaced_custom_object,
            GROUP,
            VERSION,
            self.namespace,
            PLURAL,
            name,
            patch,
        )

    def request_emergency(self, name: str, request: Mapping[str, Any]) -> None:
        """Replace status.emergency as a whole (JSON patch "add" replaces an existing member).

        A merge patch would keep the previous request's handledAt/result/newKid, which the CRD
        refuses. The caller has checked that status exists (it needs status.keys anyway), so
        /status/emergency has a parent.
        """
        patch = [{"op": "add", "path": "/status/emergency", "value": dict(request)}]
        _call(
            ApiAction("patch", f"{PLURAL}/status", self.namespace, name),
            self.conn.custom.patch_namespaced_custom_object_status,
            GROUP,
            VERSION,
            self.namespace,
            PLURAL,
            name,
            patch,
            _content_type="application/json-patch+json",
        )

    def config_map(self, name: str) -> dict[str, str]:
        action = ApiAction("get", "configmaps", self.namespace, name, group="")
        cm = _call(action, self.conn.core.read_namespaced_config_map, name, self.namespace)
        return dict(cm.data or {})

    def create_keyset(self, manifest: Mapping[str, Any], dry_run: bool) -> dict[str, Any]:
        ns = str(manifest["metadata"].get("namespace") or self.namespace)
        extra = {"dry_run": "All"} if dry_run else {}
        created = _call(
            ApiAction("create", PLURAL, ns, str(manifest["metadata"]["name"])),
            self.conn.custom.create_namespaced_custom_object,
            GROUP,
            VERSION,
            ns,
            PLURAL,
            dict(manifest),
            **extra,
        )
        return dict(created)

    def wait(
        self,
        name: str,
        done: Callable[[Mapping[str, Any]], bool],
        timeout: float,
        what: str,
        check: Callable[[Mapping[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        """Re-reads the keyset until `done(status)`; `check` may raise to stop early."""
        deadline = time.monotonic() + timeout
        pause = POLL_FIRST
        while True:
            obj = self.keyset(name)
            status = obj.get("status") or {}
            if done(status):
                return obj
            if check is not None:
                check(status)
            left = deadline - time.monotonic()
            if left <= 0:
                raise CliError(
                    ExitCode.TIMEOUT,
                    f"timed out after {timeout:g}s waiting for Keyturn to {what}; "
                    f"{self.namespace}/{name} is {shown(status.get('phase') or 'not reconciled yet')} "
                    f"({cli_output.conditions_summary(status)}). Is the operator running? "
                    f"The request stays recorded and is handled when Keyturn gets to it.",
                )
            time.sleep(min(pause, left))
            pause = min(pause * 1.5, POLL_MAX)


def emit(data: Any, fmt: str | None, text: str) -> None:
    """Print `text` for the human formats, `data` for json/yaml."""
    print(cli_output.dump(data, fmt) if fmt in ("json", "yaml") else escape(text, keep_newlines=True))


def note(message: str) -> None:
    print(escape(message, keep_newlines=True), file=sys.stderr)


def shown(value: object) -> str:
    """A value from status (or the API server) as one line of printable text: status is writable
    by anyone allowed to patch it, so its kids and reasons may hold escape sequences or newlines."""
    return escape(str(value))


# ------------------------------------------------------------------------------------------ status


def cmd_status(args: argparse.Namespace) -> int:
    if args.name and args.all_namespaces:
        raise CliError(ExitCode.USAGE, "status: give a NAME or -A/--all-namespaces, not both")
    session = Session(args)
    objs = [session.keyset(args.name)] if args.name else session.keysets(args.all_namespaces)
    if args.output in ("json", "yaml"):
        data = [cli_output.keyset_data(o) for o in objs]
        print(cli_output.dump(data[0] if args.name else {"items": data}, args.output))
        return ExitCode.OK
    if not objs:
        where = "any namespace" if args.all_namespaces else f'namespace "{session.namespace}"'
        note(f"No JwtKeySets found in {where}.")
        return ExitCode.OK
    print(cli_output.render_keysets(objs, utcnow()))
    return ExitCode.OK


# --------------------------------------------------------------------------------- rotate/rollback


def _history_keys(status: Mapping[str, Any]) -> list[str]:
    return [json.dumps(h, sort_keys=True) for h in status.get("history") or ()]


def rollback_target(status: Mapping[str, Any], name: str) -> str:
    """The kid a rollback would restore (the newest previous key); CliError when there is none."""
    if not status.get("currentKid"):
        raise CliError(ExitCode.REJECTED, f"{name} has no signing key yet: nothing to roll back")
    previous = [k for k in status.get("keys") or () if k.get("state") == "previous"]
    if not previous:
        raise CliError(
            ExitCode.REJECTED,
            f"{name} has no previous key to roll back to (revoked, retired and failed keys never sign "
            "again); rotate instead: kubectl keyturn rotate",
        )
    newest = max(previous, key=lambda k: (k.get("demotedAt") or "", k.get("createdAt") or ""))
    return str(newest["kid"])


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
            f"warning: {session.namespace}/{name} is Stalled ({cli_output.conditions_summary(status)}); "
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
            if key not in seen and h.get("operation") == "rollback" and h.get("trigger") == "manual"
        ]
        rejected = entries[-1].get("result") == "Rejected" if entries else new_kid == old_kid
        data["result"] = "Rejected" if rejected else "RolledBack"
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


# ------------------------------------------------------------------------------------------ revoke


def _status_keys(status: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    keys = status.get("keys")
    entries = keys if isinstance(keys, list) else []
    return {str(k.get("kid")): k for k in entries if isinstance(k, Mapping)}


def revoke_targets(status: Mapping[str, Any], kids: Sequence[str], revoke_all: bool, name: str) -> list[str]:
    """The kids to write into status.emergency.revokeKids.

    Only KIDs given on the command line, checked against status.keys before anything is written
    (a typo costs no round trip). Without KIDs (the current key) and with --all nothing is taken
    from status and nothing in it can refuse the request: Keyturn picks the keys from its own
    record in the Secret, while status can be written by anyone allowed to patch it.
    """
    if revoke_all or not kids:
        return []
    keys = _status_keys(status)
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
        if key.get("state") == "revoked":
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
        live = [shown(kid) for kid, k in _status_keys(status).items() if k.get("state") != "revoked"]
        return f"every key; status lists {', '.join(live) or 'none'} as not revoked"
    current = status.get("currentKid")
    said = f"status says it is {shown(current)}" if current else "status names no current key"
    return f"the current key, as Keyturn's own record has it; {said}"


def newly_revoked(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    """Kids revoked in `after` that were not in `before` (both statuses)."""
    was = {kid for kid, k in _status_keys(before).items() if k.get("state") == "revoked"}
    return [kid for kid, k in _status_keys(after).items() if k.get("state") == "revoked" and kid not in was]


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
    if ack.get("result") != "Revoked":
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


# -------------------------------------------------------------------------------------------- jwks


def cmd_jwks(args: argparse.Namespace) -> int:
    session = Session(args)
    obj = session.keyset(args.name)
    spec = obj.get("spec") or {}
    if is_hmac(obj):
        raise CliError(
            ExitCode.USAGE,
            f"{args.name} uses {spec.get('algorithm')}: HMAC keys are shared secrets and are never "
            "published, so there is no JWKS; verifiers read the Secret's items instead",
        )
    jwks = spec.get("jwks") or {}
    cm_name = str(jwks.get("configMapName") or f"{args.name}-jwks")
    key = str(jwks.get("key") or "jwks.json")
    try:
        data = session.config_map(cm_name)
    except CliError as exc:
        if exc.code is ExitCode.NOT_FOUND:
            raise CliError(
                ExitCode.NOT_FOUND,
                f'ConfigMap "{cm_name}" (the JWKS of {args.name}) not found in namespace '
                f'"{session.namespace}": Keyturn has not published it yet; '
                f"see kubectl keyturn status {args.name}",
            ) from exc
        raise
    if key not in data:
        raise CliError(ExitCode.NOT_FOUND, f'ConfigMap "{cm_name}" has no key "{key}" (spec.jwks.key)')
    try:
        doc = json.loads(data[key])
    except ValueError as exc:
        raise CliError(ExitCode.ERROR, f'ConfigMap "{cm_name}" key "{key}" is not JSON: {exc}') from exc
    if args.output == "table":
        print(cli_output.jwks_table(doc))
    else:
        print(cli_output.dump(doc, "yaml" if args.output == "yaml" else "json"))
    return ExitCode.OK


# -------------------------------------------------------------------------------------------- init


def init_manifest(args: argparse.Namespace) -> dict[str, Any]:
    """A minimal JwtKeySet: only what was asked for; the operator's defaults do the rest."""
    algorithm = args.algorithm
    rsa = algorithm[:2] in ("RS", "PS")
    if args.key_size is not None and not rsa:
        raise CliError(
            ExitCode.USAGE, f"--key-size applies only to RSA algorithms (RS*/PS*), not {algorithm}"
        )
    spec: dict[str, Any] = {"algorithm": algorithm}
    if args.key_size is not None:
        spec["keySize"] = args.key_size
    rotation = {
        field: value
        for field, value in (
            ("interval", args.interval),
            ("publishAhead", args.publish_ahead),
            ("gracePeriod", args.grace_period),
            ("retention", args.retention),
        )
        if value is not None
    }
    if rotation:
        spec["rotation"] = rotation
    tokens = {
        field: value
        for field, value in (
            ("maxLifetime", args.max_token_lifetime),
            ("verifierCacheTTL", args.verifier_cache_ttl),
        )
        if value is not None
    }
    if tokens:
        spec["tokens"] = tokens
    metadata: dict[str, Any] = {"name": args.name}
    if args.namespace:
        metadata["namespace"] = args.namespace
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": KIND, "metadata": metadata, "spec": spec}


def cmd_init(args: argparse.Namespace) -> int:
    manifest = init_manifest(args)
    fmt = "json" if args.output == "json" else "yaml"
    if not args.apply:
        print(cli_output.dump(manifest, fmt))
        return ExitCode.OK
    session = Session(args)
    manifest["metadata"]["namespace"] = session.namespace
    try:
        created = session.create_keyset(manifest, dry_run=args.dry_run)
    except CliError as exc:
        if isinstance(exc.__cause__, Exception) and getattr(exc.__cause__, "status", None) == 422:
            raise CliError(ExitCode.USAGE, exc.message) from exc
        if isinstance(exc.__cause__, Exception) and getattr(exc.__cause__, "status", None) == 409:
            raise CliError(
                ExitCode.ERROR, f"JwtKeySet {session.namespace}/{args.name} already exists"
            ) from exc
        raise
    if args.output in ("json", "yaml"):
        print(cli_output.dump(created, args.output))
    else:
        suffix = " (server dry run: nothing was created)" if args.dry_run else ""
        print(f"jwtkeyset.keyturn.dev/{args.name} created in namespace {session.namespace}{suffix}")
    return ExitCode.OK
