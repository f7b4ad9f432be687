"""`init`: a minimal JwtKeySet manifest, printed or created (`--apply`)."""

from __future__ import annotations

import argparse
from typing import Any

from keyturn import GROUP, KIND, VERSION
from keyturn.cli import output
from keyturn.cli.errors import CliError, ExitCode
from keyturn.cli.session import Session
from keyturn.domain.spec import RSA_ALGORITHMS


def init_manifest(args: argparse.Namespace) -> dict[str, Any]:
    """A minimal JwtKeySet: only what was asked for; the operator's defaults do the rest."""
    algorithm = args.algorithm
    if args.key_size is not None and algorithm not in RSA_ALGORITHMS:
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
        print(output.dump(manifest, fmt))
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
        print(output.dump(created, args.output))
    else:
        suffix = " (server dry run: nothing was created)" if args.dry_run else ""
        print(f"jwtkeyset.{GROUP}/{args.name} created in namespace {session.namespace}{suffix}")
    return ExitCode.OK
