"""`keyturn` and `kubectl keyturn`: run the operator, and operate keysets from a terminal.

`main` is the console scripts' entry point (pyproject.toml: `keyturn.cli:main`). The modules:
parser (arguments), commands (the command table), entry (main), one module per command (run,
status, annotation_requests, revoke, jwks, init_manifest), session and connection (the API),
status_keys (status.keys read totally), output (what is printed), errors (exit codes).
Only `connection` imports the kubernetes client and only `run` imports kopf, each when needed,
so `--help` and usage errors answer at once.
"""

from keyturn.cli.entry import main
from keyturn.cli.parser import parse_args, parser

__all__ = ["main", "parse_args", "parser"]
