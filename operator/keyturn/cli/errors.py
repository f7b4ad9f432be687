"""Exit codes of the `keyturn` / `kubectl keyturn` CLI and the mapping of API errors onto them.

Pure: no kubernetes import, so the mapping is testable with any object that looks like an
ApiException (``status``, ``reason``, ``body``) and the CLI's `--help` stays fast.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from keyturn import GROUP

# The chart's ClusterRoles for people (charts/keyturn/templates/rbac-users.yaml): the emergency
# responder may read keysets and patch status (revoke); JwtKeySets are aggregated into Kubernetes'
# built-in view (get/list), edit (patch/create: rotate, rollback, init) and admin (status) roles.
EMERGENCY_ROLE = "keyturn-emergency-responder"


class ExitCode(IntEnum):
    OK = 0
    ERROR = 1  # unexpected: API 5xx, connection refused, a bug
    USAGE = 2  # bad arguments, no usable kubeconfig/context, a command that does not apply
    NOT_FOUND = 3  # the JwtKeySet (or its JWKS ConfigMap, or the API itself) does not exist
    REJECTED = 4  # unknown or already-revoked kid, nothing to roll back to, a Rejected request
    FORBIDDEN = 5  # 403 (or 401) from the API server
    TIMEOUT = 6  # Keyturn did not acknowledge within --timeout


EXIT_CODE_HELP = """exit codes:
  0  success
  1  unexpected error (API server error, cannot connect)
  2  usage error (bad arguments, unknown --context, no kubeconfig, jwks of an HMAC keyset)
  3  JwtKeySet or its JWKS ConfigMap not found
  4  unknown or already-revoked kid, nothing to roll back to, request rejected by Keyturn
  5  no permission (403 Forbidden / 401 Unauthorized from the API server)
  6  timed out waiting for Keyturn to handle the request"""


class CliError(Exception):
    """An error the CLI reports as one message and an exit code, without a traceback."""

    def __init__(self, code: ExitCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class ApiAction:
    """What the CLI was doing when a call failed, so that errors name the verb and the resource."""

    verb: str  # get, list, patch, create
    resource: str  # jwtkeysets, jwtkeysets/status, configmaps
    namespace: str | None  # None: every namespace
    name: str | None = None
    group: str = GROUP  # "" for the core group

    @property
    def kind_label(self) -> str:
        return {"jwtkeysets": "JwtKeySet", "jwtkeysets/status": "JwtKeySet", "configmaps": "ConfigMap"}.get(
            self.resource, self.resource
        )

    def describe(self) -> str:
        group = f" (API group {self.group})" if self.group else ""
        where = f' in namespace "{self.namespace}"' if self.namespace else " in any namespace"
        return f"{self.verb} {self.resource}{group}{where}"


def role_hint(action: ApiAction) -> str:
    """Which ClusterRole grants what `action` needs, and how to bind it."""
    aggregated = "(Keyturn's chart aggregates JwtKeySets into it)"
    if action.resource == "jwtkeysets/status":
        role = f"the Keyturn chart's emergency-responder ClusterRole ({EMERGENCY_ROLE}) or the admin role"
    elif action.resource == "jwtkeysets" and action.verb in ("get", "list"):
        role = f"the built-in view ClusterRole {aggregated} or {EMERGENCY_ROLE}"
    elif action.resource == "jwtkeysets":
        role = f"the built-in edit ClusterRole {aggregated}"
    else:
        role = "the built-in view ClusterRole"
    binding = "a RoleBinding in this namespace" if action.namespace else "a ClusterRoleBinding"
    return f"ask your cluster admin to bind {role} to you with {binding}"


def api_message(exc: Any) -> str:
    """The API server's own message from an ApiException, or its HTTP reason."""
    body = getattr(exc, "body", None)
    if isinstance(body, bytes):
        body = body.decode(errors="replace")
    if isinstance(body, str) and body:
        try:
            doc = json.loads(body)
        except ValueError:
            return body.strip()
        if isinstance(doc, dict) and doc.get("message"):
            return str(doc["message"])
    return str(getattr(exc, "reason", "") or exc)


def from_api_exception(exc: Any, action: ApiAction) -> CliError:
    """The CliError (exit code + message) for an ApiException raised while doing `action`."""
    status = int(getattr(exc, "status", 0) or 0)
    message = api_message(exc)
    if status == 404:
        if action.name and "could not find the requested resource" not in message:
            where = f' in namespace "{action.namespace}"' if action.namespace else ""
            return CliError(ExitCode.NOT_FOUND, f'{action.kind_label} "{action.name}" not found{where}')
        if action.group:
            return CliError(
                ExitCode.NOT_FOUND,
                f"the API server does not serve {action.resource}.{action.group}: is the Keyturn CRD "
                f"installed? ({message})",
            )
        return CliError(ExitCode.NOT_FOUND, f"not found: {message}")
    if status == 403:
        resource, _, subresource = action.resource.partition("/")
        qualified = f"{resource}.{action.group}" if action.group else resource
        check = f"kubectl auth can-i {action.verb} {qualified}"
        check += f" --subresource={subresource}" if subresource else ""
        check += f" -n {action.namespace}" if action.namespace else " --all-namespaces"
        return CliError(
            ExitCode.FORBIDDEN,
            f"permission denied: the API server refused to {action.describe()}: {message}\n"
            f"hint: {role_hint(action)}; `{check}` checks the permission.",
        )
    if status == 401:
        return CliError(
            ExitCode.FORBIDDEN,
            f"unauthorized: the API server did not accept your credentials ({message}); "
            "log in again or check --kubeconfig/--context",
        )
    if status == 409:
        return CliError(ExitCode.ERROR, f"conflict while trying to {action.describe()}: {message}")
    if status == 422:
        return CliError(ExitCode.ERROR, f"the API server refused to {action.describe()}: {message}")
    if status == 0:
        return CliError(ExitCode.ERROR, f"cannot {action.describe()}: {message}")
    return CliError(ExitCode.ERROR, f"API error {status} while trying to {action.describe()}: {message}")
