"""The CLI's connection to the API server: kubeconfig/in-cluster loading and error-mapped calls.

The only CLI module that imports the kubernetes client (half a second): `session` imports it when
a command first needs the API, so `--help`, usage errors and `init` without `--apply` never do.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from keyturn.cli.errors import ApiAction, CliError, ExitCode, from_api_exception

T = TypeVar("T")
REQUEST_TIMEOUT = 30  # seconds per API request: a hung connection must not hang an incident
SA_NAMESPACE_FILE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


@dataclass
class Connection:
    api: client.ApiClient
    namespace: str  # the context's namespace (or "default"): what -n defaults to

    @property
    def custom(self) -> client.CustomObjectsApi:
        return client.CustomObjectsApi(self.api)

    @property
    def core(self) -> client.CoreV1Api:
        return client.CoreV1Api(self.api)

    def close(self) -> None:
        self.api.close()


def _kubeconfig_path(explicit: str | None) -> str | None:
    """The kubeconfig to use (possibly a KUBECONFIG list), or None for in-cluster credentials."""
    if explicit:
        if not Path(explicit).expanduser().is_file():
            raise CliError(ExitCode.USAGE, f"--kubeconfig {explicit}: no such file")
        return explicit
    env = os.environ.get("KUBECONFIG")
    if env and any(Path(p).expanduser().is_file() for p in env.split(os.pathsep) if p):
        return env
    default = Path("~/.kube/config").expanduser()
    return str(default) if default.is_file() else None


def connect(kubeconfig: str | None, context: str | None) -> Connection:
    """A client for the kubeconfig (or the Pod's service account) and the namespace -n defaults to."""
    cfg = client.Configuration()
    path = _kubeconfig_path(kubeconfig)
    if path is None:
        if context:
            raise CliError(ExitCode.USAGE, f"--context {context}: no kubeconfig found (set --kubeconfig)")
        if not os.environ.get("KUBERNETES_SERVICE_HOST"):
            raise CliError(
                ExitCode.USAGE,
                "no kubeconfig found: pass --kubeconfig, set KUBECONFIG, or create ~/.kube/config",
            )
        try:
            config.load_incluster_config(client_configuration=cfg)
        except ConfigException as exc:
            raise CliError(ExitCode.USAGE, f"in-cluster configuration failed: {exc}") from exc
        namespace = (
            SA_NAMESPACE_FILE.read_text().strip() if SA_NAMESPACE_FILE.is_file() else ""
        ) or "default"
        return Connection(client.ApiClient(cfg), namespace)
    try:
        contexts, current = config.list_kube_config_contexts(config_file=path)
    except ConfigException as exc:
        raise CliError(ExitCode.USAGE, f"kubeconfig {path}: {exc}") from exc
    by_name = {c.get("name"): c for c in contexts or ()}
    if context and context not in by_name:
        known = ", ".join(sorted(str(n) for n in by_name)) or "none"
        raise CliError(ExitCode.USAGE, f"--context {context}: no such context in {path} (known: {known})")
    chosen = by_name.get(context) if context else current
    if not chosen:
        raise CliError(ExitCode.USAGE, f"kubeconfig {path} has no current context: pass --context")
    try:
        config.load_kube_config(
            config_file=path, context=context, client_configuration=cfg, persist_config=False
        )
    except (ConfigException, OSError) as exc:
        raise CliError(ExitCode.USAGE, f"kubeconfig {path}: {exc}") from exc
    namespace = str((chosen.get("context") or {}).get("namespace") or "default")
    return Connection(client.ApiClient(cfg), namespace)


def call(action: ApiAction, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """`fn(*args, **kwargs)`, with API and connection errors turned into CliErrors naming `action`."""
    kwargs.setdefault("_request_timeout", REQUEST_TIMEOUT)
    try:
        return fn(*args, **kwargs)
    except ApiException as exc:
        raise from_api_exception(exc, action) from exc
    except urllib3.exceptions.HTTPError as exc:
        raise CliError(ExitCode.ERROR, f"cannot reach the API server to {action.describe()}: {exc}") from exc
