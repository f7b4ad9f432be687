"""The Kubernetes session of one command: the reads and writes the commands make, and the wait.

Every API call of the CLI goes through `Session`, which names what it was doing (`ApiAction`) so
that a refusal becomes an exit code and a message that says which permission is missing. The
kubernetes client itself is imported from `connection` only when a command first needs the API.
"""

from __future__ import annotations

import argparse
import secrets
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from keyturn import GROUP, PLURAL, VERSION
from keyturn.cli import output
from keyturn.cli.errors import ApiAction, CliError, ExitCode

if TYPE_CHECKING:
    from keyturn.cli.connection import Connection

POLL_FIRST, POLL_MAX = 0.1, 1.0  # seconds between reads while waiting for Keyturn


def utcnow() -> datetime:
    return datetime.now(UTC)


def fresh_token(now: datetime | None = None) -> str:
    """A new request id / annotation token: cli-<UTC timestamp>-<random>, e.g. cli-20260522T101500Z-3fa9c1."""
    at = (now or utcnow()).astimezone(UTC)
    return f"cli-{at:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


def _call(action: ApiAction, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """connection.call; the custom-objects API types its JSON answers as `object`, hence Any."""
    from keyturn.cli.connection import call  # noqa: PLC0415 - see Session

    return call(action, fn, *args, **kwargs)


class Session:
    """One connection and the namespace the command works in."""

    def __init__(self, args: argparse.Namespace) -> None:
        from keyturn.cli import connection  # noqa: PLC0415 - the kubernetes client takes 0.5s to import

        self.conn: Connection = connection.connect(args.kubeconfig, args.context)
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
                    f"{self.namespace}/{name} is "
                    f"{output.shown(status.get('phase') or 'not reconciled yet')} "
                    f"({output.conditions_summary(status)}). Is the operator running? "
                    f"The request stays recorded and is handled when Keyturn gets to it.",
                )
            time.sleep(min(pause, left))
            pause = min(pause * 1.5, POLL_MAX)
