"""The command line's arguments: global options, every subcommand and the types of their values.

Parsing only, and pure: argument values are checked here (durations, timeouts, egress patterns),
so a typo is a usage error (exit 2) before any connection. What each command does is in the
module `commands.COMMANDS` names; the algorithms and defaults shown come from domain.spec.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Sequence

from keyturn import __version__
from keyturn.cli.errors import EXIT_CODE_HELP
from keyturn.domain.annotations import ROLLBACK_ANNOTATION, ROTATE_ANNOTATION
from keyturn.domain.durations import parse_duration
from keyturn.domain.spec import (
    ALGORITHMS,
    DEFAULT_ALGORITHM,
    DEFAULT_GRACE_PERIOD,
    DEFAULT_INTERVAL,
    DEFAULT_PUBLISH_AHEAD,
    DEFAULT_RETENTION,
    RSA_SIZES,
)

GLOBAL_OPTIONS = ("namespace", "kubeconfig", "context", "output")
DEFAULT_TIMEOUT = "2m"


def _host_patterns(text: str) -> list[str]:
    """Checked now, so a typo is a usage error rather than every health check failing later."""
    from keyturn.domain.egress import EgressPolicy  # noqa: PLC0415 - only `run` needs it

    try:
        EgressPolicy.from_patterns([text])
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc
    return [p.strip() for p in text.split(",") if p.strip()]


def _duration(text: str) -> str:
    try:
        parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc
    return text


def _listen(text: str) -> tuple[str, int]:
    """--listen HOST:PORT (an IPv6 host in brackets: [::]:8080)."""
    host, sep, port = text.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"{text!r} is not HOST:PORT, e.g. 0.0.0.0:8080")
    return host, int(port)


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return int(text)


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


def _add_global_options(target: argparse.ArgumentParser, prefix: str = "") -> None:
    """-n/--kubeconfig/--context/-o, before the command (dest `top_*`) or after it."""
    suppress = argparse.SUPPRESS
    target.add_argument(
        "-n",
        "--namespace",
        dest=f"{prefix}namespace",
        metavar="NAMESPACE",
        default=suppress,
        help="namespace of the JwtKeySet (default: the kubeconfig context's namespace, else default)",
    )
    target.add_argument(
        "--kubeconfig", dest=f"{prefix}kubeconfig", metavar="FILE", default=suppress, help="kubeconfig file"
    )
    target.add_argument(
        "--context", dest=f"{prefix}context", metavar="NAME", default=suppress, help="kubeconfig context"
    )
    target.add_argument(
        "-o",
        "--output",
        dest=f"{prefix}output",
        choices=("table", "json", "yaml"),
        default=suppress,
        help="output format: table/text (default), json or yaml",
    )


def _program_name() -> str:
    base = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    return "kubectl keyturn" if base.startswith("kubectl-") else "keyturn"


def _positive_int(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 1024:
        raise argparse.ArgumentTypeError(f"{text} is not a number from 1 to 1024")
    return value


def _positive_seconds(text: str) -> float:
    value = float(text)
    if not 2.0 <= value <= 3600.0:
        raise argparse.ArgumentTypeError(f"{text} is not a number of seconds from 2 to 3600")
    return value


_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")


def keyset_ref(text: str) -> tuple[str, str]:
    """sa-signer --keyset: NAMESPACE/NAME, both valid Kubernetes names (the signer has no -n)."""
    namespace, _, name = text.partition("/")
    if not _DNS_LABEL.fullmatch(namespace) or not _DNS_SUBDOMAIN.fullmatch(name):
        raise argparse.ArgumentTypeError(
            f"{text[:300]!r} is not NAMESPACE/NAME, e.g. kube-system/service-accounts"
        )
    return namespace, name


def parser() -> argparse.ArgumentParser:
    formatter = argparse.RawDescriptionHelpFormatter
    top = argparse.ArgumentParser(
        prog=_program_name(),
        description="Keyturn rotates JWT signing keys declared as JwtKeySet resources.",
        epilog=EXIT_CODE_HELP + "\n\nDocumentation: docs/cli.md",
        formatter_class=formatter,
    )
    top.add_argument("--version", action="version", version=f"keyturn {__version__}")
    _add_global_options(top, prefix="top_")
    # dest "command": the name entry.main looks up in commands.COMMANDS (None: no command given).
    sub = top.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser("run", help="run the operator (uses in-cluster credentials or KUBECONFIG)")
    run.add_argument(
        "-n",
        "--namespace",
        action="append",
        default=[],
        help="watch only this namespace (repeatable; default: all namespaces)",
    )
    run.add_argument(
        "--lease",
        default=None,
        metavar="NAME",
        help="leader election on the coordination.k8s.io Lease NAME: with several replicas one acts, the "
        "others stand by and take over within seconds (default: none, this replica acts alone)",
    )
    run.add_argument(
        "--lease-namespace",
        default=None,
        metavar="NS",
        help="the Lease's namespace (default: $POD_NAMESPACE, else the Pod's, else the first --namespace, "
        "else default)",
    )
    run.add_argument(
        "--lease-duration",
        type=_positive_seconds,
        default=10.0,
        metavar="SECONDS",
        help="a standby takes over once the Lease went unrenewed this long (default: 10)",
    )
    run.add_argument(
        "--standalone", action="store_true", help="no leader election (the default without --lease)"
    )
    run.add_argument("--peering", default=None, help=argparse.SUPPRESS)  # before 0.2: now --lease NAME
    run.add_argument("--priority", type=int, default=None, help=argparse.SUPPRESS)  # before 0.2: ignored
    run.add_argument(
        "--workers",
        type=_positive_int,
        default=16,
        help="passes that may run at once (default: 16); emergencies always go first",
    )
    run.add_argument("--metrics-port", type=int, default=8080, help="port of /metrics (0: off)")
    run.add_argument("--health-port", type=int, default=8081, help="port of /healthz (0: off)")
    run.add_argument("--log-format", choices=("text", "json"), default="text")
    run.add_argument("-v", "--verbose", action="store_true")
    run.add_argument(
        "--egress-allow",
        action="append",
        type=_host_patterns,
        metavar="PATTERN",
        help="the only hosts health URLs and analysis addresses may name: *.monitoring.svc, "
        "prometheus.monitoring:9090, 10.0.0.0/8 (repeatable or comma-separated; default: "
        "$KEYTURN_EGRESS_ALLOW, else any host but link-local addresses)",
    )

    serve = sub.add_parser(
        "serve-jwks",
        help="serve the JWKS ConfigMaps over HTTP, with discovery and cache headers (docs/jwks-server.md)",
        description="Serve every JWKS ConfigMap Keyturn manages from memory, watched (uses in-cluster\n"
        "credentials or KUBECONFIG): /<namespace>/<keyset>/.well-known/jwks.json, and under\n"
        "spec.jwks.issuer <issuer>/.well-known/jwks.json and .../openid-configuration. Plain HTTP\n"
        "(TLS is the Ingress's); /healthz, /readyz and /metrics on the same port. Needs get, list\n"
        "and watch on configmaps.",
        formatter_class=formatter,
    )
    serve.add_argument(
        "--listen",
        type=_listen,
        default="0.0.0.0:8080",
        metavar="HOST:PORT",
        help="address to serve on (default 0.0.0.0:8080)",
    )
    serve.add_argument(
        "-n",
        "--namespace",
        action="append",
        default=[],
        help="serve only this namespace's keysets (repeatable; default: all namespaces)",
    )
    serve.add_argument(
        "--kubeconfig", metavar="FILE", default=None, help="kubeconfig file (default: in-cluster)"
    )
    serve.add_argument(
        "--max-age-cap",
        type=_positive,
        default=3600,
        metavar="SECONDS",
        help="the longest Cache-Control max-age ever sent (default 3600)",
    )
    serve.add_argument(
        "--workers",
        type=_positive,
        default=1,
        help="server processes, each with its own watch, sharing the port (default 1)",
    )
    serve.add_argument("--log-format", choices=("text", "json"), default="text")
    serve.add_argument("-v", "--verbose", action="store_true")

    def command(name: str, help_text: str, description: str) -> argparse.ArgumentParser:
        cmd = sub.add_parser(
            name, help=help_text, description=description, epilog=EXIT_CODE_HELP, formatter_class=formatter
        )
        _add_global_options(cmd)
        return cmd

    status = command(
        "status",
        "show keys, phase and conditions of one keyset or all of a namespace",
        "Show each JwtKeySet's phase, conditions, current kid, next and last rotation, and a table of\n"
        "its keys (kid, state, age, activation, lifecycle event). Needs get (NAME) or list on jwtkeysets.",
    )
    status.add_argument("name", nargs="?", metavar="NAME", help="the JwtKeySet (default: every one)")
    status.add_argument(
        "-A", "--all-namespaces", action="store_true", help="every JwtKeySet in every namespace"
    )

    for verb, annotation, what in (
        ("rotate", ROTATE_ANNOTATION, "activate the prepared next key now (publishAhead still holds)"),
        (
            "rollback",
            ROLLBACK_ANNOTATION,
            "make the previous key sign again; the current one becomes failed",
        ),
    ):
        cmd = command(
            verb,
            f"{verb} a keyset: {what}",
            f"Annotate the JwtKeySet with {annotation}: <fresh token>; Keyturn echoes the token in\n"
            f"status.lastHandled{verb.capitalize()} once handled. Needs get and patch on jwtkeysets.",
        )
        cmd.add_argument("name", metavar="NAME", help="the JwtKeySet")
        cmd.add_argument(
            "--wait", action="store_true", help="wait until Keyturn handled it; print the new kid"
        )
        cmd.add_argument(
            "--timeout",
            type=parse_timeout,
            default=DEFAULT_TIMEOUT,
            help=f"how long --wait waits, seconds or a duration like 90s, 5m (default {DEFAULT_TIMEOUT})",
        )
        cmd.add_argument(
            "--token", help="annotation value to use, e.g. a ticket id (default: cli-<time>-<random>)"
        )

    revoke = command(
        "revoke",
        "emergency revocation of one or more kids (default: the current key)",
        "Write status.emergency (a fresh requestId, the kids, the reason) through the status\n"
        "subresource and wait for Keyturn's acknowledgement; print the kid that signs now.\n"
        "Without KIDs Keyturn revokes the key its own record says is current (status is only\n"
        "shown, never trusted). Needs get on jwtkeysets and patch on jwtkeysets/status.",
    )
    revoke.add_argument("name", metavar="NAME", help="the JwtKeySet")
    revoke.add_argument("kids", nargs="*", metavar="KID", help="kid(s) to revoke (default: the current key)")
    revoke.add_argument("--reason", required=True, help="why, recorded with the key, e.g. key_compromise")
    revoke.add_argument(
        "--all",
        action="store_true",
        help="revoke every key, the prepared one included, and sign with a fresh key (storage compromise)",
    )
    revoke.add_argument(
        "--timeout",
        type=parse_timeout,
        default=DEFAULT_TIMEOUT,
        help=f"how long to wait for the acknowledgement (default {DEFAULT_TIMEOUT})",
    )
    revoke.add_argument(
        "--request-id", help="requestId to use, e.g. an incident id (default: cli-<time>-<random>)"
    )

    jwks = command(
        "jwks",
        "print the published JWKS (public keys) of an asymmetric keyset",
        "Print the JWK Set from the ConfigMap spec.jwks.configMapName (default <name>-jwks),\n"
        "key spec.jwks.key (default jwks.json). JSON by default; -o yaml, or -o table for a summary.\n"
        "Needs get on jwtkeysets and on configmaps.",
    )
    jwks.add_argument("name", metavar="NAME", help="the JwtKeySet")

    init = command(
        "init",
        "print (or --apply) a minimal JwtKeySet manifest",
        "Print a minimal JwtKeySet manifest (YAML; -o json for JSON); --apply creates it.\n"
        f"Unset fields take the operator's defaults ({DEFAULT_INTERVAL} interval, {DEFAULT_PUBLISH_AHEAD} "
        f"publishAhead, {DEFAULT_GRACE_PERIOD} grace, {DEFAULT_RETENTION}\n"
        "retention). --apply needs create on jwtkeysets.",
    )
    init.add_argument("name", metavar="NAME", help="name of the new JwtKeySet")
    init.add_argument(
        "--algorithm",
        choices=sorted(ALGORITHMS),
        default=DEFAULT_ALGORITHM,
        help=f"default {DEFAULT_ALGORITHM}",
    )
    init.add_argument("--key-size", type=int, choices=RSA_SIZES, help="RSA modulus bits (RS*/PS*)")
    init.add_argument("--interval", type=_duration, help="rotation.interval, e.g. 90d")
    init.add_argument("--publish-ahead", type=_duration, help="rotation.publishAhead, e.g. 1h")
    init.add_argument("--grace-period", type=_duration, help="rotation.gracePeriod, e.g. 30d")
    init.add_argument("--retention", type=_duration, help="rotation.retention, e.g. 180d")
    init.add_argument("--max-token-lifetime", type=_duration, help="tokens.maxLifetime, e.g. 24h")
    init.add_argument("--verifier-cache-ttl", type=_duration, help="tokens.verifierCacheTTL, e.g. 5m")
    init.add_argument("--apply", action="store_true", help="create it in the cluster instead of printing it")
    init.add_argument(
        "--dry-run",
        action="store_true",
        help="with --apply: a server-side dry run (validated by the API server, nothing created); "
        "without --apply nothing is written anyway",
    )

    # Not command(): the signer takes no -n (the keyset names its namespace) and no -o (it prints
    # nothing but logs); --kubeconfig/--context may still come before the command (SUPPRESS).
    signer = sub.add_parser(
        "sa-signer",
        help="sign the cluster's ServiceAccount tokens with a keyset (kube-apiserver external signer)",
        description="Serve kube-apiserver's external JWT signer (--service-account-signing-endpoint) on a\n"
        "Unix socket with the keys of one JwtKeySet (RS256, ES256, ES384 or ES512). Runs until\n"
        "SIGTERM. Needs get on the jwtkeyset and get, list, watch on its Secret.\n"
        "See docs/serviceaccount-signer.md.",
        epilog="exit codes:\n  0  stopped by SIGTERM or SIGINT\n  2  bad arguments, a legacy key file or the "
        "socket path refused",
        formatter_class=formatter,
    )
    signer.add_argument("--socket", required=True, metavar="PATH", help="the Unix socket to listen on")
    signer.add_argument(
        "--keyset", required=True, type=keyset_ref, metavar="NAMESPACE/NAME", help="the JwtKeySet to serve"
    )
    signer.add_argument(
        "--cache",
        metavar="FILE",
        help="node-local cache (0600): served at start-up and while the API server is down; "
        "rewritten when the keys it serves change (strongly advised)",
    )
    signer.add_argument(
        "--legacy-public-key",
        action="append",
        default=[],
        metavar="FILE",
        help="a PEM public key the cluster signed with before (e.g. sa.pub): its tokens still verify, "
        "it is not in the OIDC JWKS and never signs (repeatable)",
    )
    signer.add_argument("--kubeconfig", default=argparse.SUPPRESS, metavar="FILE", help="kubeconfig file")
    signer.add_argument("--context", default=argparse.SUPPRESS, metavar="NAME", help="kubeconfig context")
    signer.add_argument("--log-format", choices=("text", "json"), default="text")
    signer.add_argument("-v", "--verbose", action="store_true", help="also log every signature (kid only)")
    return top


def _merge_global_options(top: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Options may come before or after the command; after wins. `run` takes none of them."""
    given_before = [name for name in GLOBAL_OPTIONS if hasattr(args, f"top_{name}")]
    if args.command in ("run", "serve-jwks"):
        if given_before:
            top.error(
                f"{args.command} does not take --{given_before[0]} before it; use "
                f"`{args.command} --namespace NS`"
            )
        return
    for name in GLOBAL_OPTIONS:
        if not hasattr(args, name):
            setattr(args, name, getattr(args, f"top_{name}", None))


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parsed arguments, global options merged; exits 2 on a usage error, as argparse does."""
    top = parser()
    args = top.parse_args(argv)
    if args.command is not None:
        _merge_global_options(top, args)
    return args
