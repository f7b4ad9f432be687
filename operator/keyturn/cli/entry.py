"""`main`: parse, run the command from the table, and turn its failure into one line and an exit code."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from keyturn.cli.commands import COMMANDS
from keyturn.cli.errors import CliError, ExitCode
from keyturn.cli.parser import parse_args, parser
from keyturn.logs import escape


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.command is None:
        parser().print_help(sys.stderr)
        return 2
    command = COMMANDS[args.command]
    if args.command in ("run", "serve-jwks"):  # the servers log their own errors
        return command(args)
    try:
        return int(command(args))
    except CliError as exc:
        print(f"error: {escape(exc.message, keep_newlines=True)}", file=sys.stderr)
        return int(exc.code)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # the exit code promises "1 unexpected error", not a traceback
        if os.environ.get("KEYTURN_DEBUG"):
            raise
        detail = escape(str(exc))
        print(
            f"error: unexpected {type(exc).__name__}: {detail} (KEYTURN_DEBUG=1 shows the traceback)",
            file=sys.stderr,
        )
        return int(ExitCode.ERROR)
