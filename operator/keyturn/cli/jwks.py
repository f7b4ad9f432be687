"""`jwks`: the JWK Set Keyturn published in the keyset's ConfigMap (asymmetric keysets only)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from typing import Any

from keyturn.cli import output
from keyturn.cli.errors import CliError, ExitCode
from keyturn.cli.session import Session
from keyturn.domain.spec import DEFAULT_ALGORITHM, DEFAULT_JWKS_KEY, HMAC_ALGORITHMS, default_jwks_config_map


def is_hmac(obj: Mapping[str, Any]) -> bool:
    return str((obj.get("spec") or {}).get("algorithm") or DEFAULT_ALGORITHM) in HMAC_ALGORITHMS


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
    cm_name = str(jwks.get("configMapName") or default_jwks_config_map(args.name))
    key = str(jwks.get("key") or DEFAULT_JWKS_KEY)
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
        print(output.jwks_table(doc))
    else:
        print(output.dump(doc, "yaml" if args.output == "yaml" else "json"))
    return ExitCode.OK
