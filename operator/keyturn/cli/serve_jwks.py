"""`keyturn serve-jwks`: the JWKS server (jwks_server.server; granian is imported only for it)."""

from __future__ import annotations

import argparse


def cmd_serve_jwks(args: argparse.Namespace) -> int:
    from keyturn.jwks_server import server  # noqa: PLC0415 - the HTTP server only for this command

    host, port = args.listen
    return server.run(
        server.Config(
            host=host,
            port=port,
            namespaces=tuple(args.namespace),
            kubeconfig=args.kubeconfig,
            max_age_cap=args.max_age_cap,
            workers=args.workers,
            log_format=args.log_format,
            verbose=args.verbose,
        )
    )
