"""`sa-signer`: kube-apiserver's external ServiceAccount token signer for one JwtKeySet.

The signer (keyturn.sasigner, with grpcio) is imported only for this command, so the other
commands never pay for gRPC. Its credentials are the kubeconfig's (a client certificate on a
control-plane node: a ServiceAccount token would have to be signed by the signer itself).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from keyturn import logs


def cmd_sa_signer(args: argparse.Namespace) -> int:
    # The Kubernetes client and gRPC are imported only for this command (see the module docstring).
    from keyturn.cli.connection import connect  # noqa: PLC0415
    from keyturn.sasigner.server import Options, run  # noqa: PLC0415

    logs.setup(args.log_format, args.verbose)
    namespace, name = args.keyset
    connection = connect(args.kubeconfig, args.context)
    options = Options(
        socket=Path(args.socket),
        namespace=namespace,
        name=name,
        cache=Path(args.cache) if args.cache else None,
        legacy_public_keys=tuple(Path(p) for p in args.legacy_public_key),
    )
    try:
        return run(options, connection.api)
    finally:
        connection.close()
