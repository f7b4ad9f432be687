"""The command table: every subcommand's name and the function that carries it out.

`entry.main` looks the parsed command up here; `parser` declares the same names with their
arguments (tests/unit/cli/test_commands.py checks the two agree). A new command is a module with a
`cmd_<name>(args) -> exit code` function, a line here and its arguments in `parser`.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from types import MappingProxyType

from keyturn.cli import (
    annotation_requests,
    init_manifest,
    jwks,
    revoke,
    run,
    sa_signer,
    serve_jwks,
    status,
)

Command = Callable[[argparse.Namespace], int]

COMMANDS: Mapping[str, Command] = MappingProxyType(
    {
        "run": run.cmd_run,
        "status": status.cmd_status,
        "rotate": annotation_requests.cmd_rotate,
        "rollback": annotation_requests.cmd_rollback,
        "revoke": revoke.cmd_revoke,
        "jwks": jwks.cmd_jwks,
        "init": init_manifest.cmd_init,
        "serve-jwks": serve_jwks.cmd_serve_jwks,
        "sa-signer": sa_signer.cmd_sa_signer,
    }
)
