"""`status`: the keys, phase and conditions of one keyset or of every keyset of a namespace."""

from __future__ import annotations

import argparse

from keyturn.cli import output
from keyturn.cli.errors import CliError, ExitCode
from keyturn.cli.session import Session, utcnow


def cmd_status(args: argparse.Namespace) -> int:
    if args.name and args.all_namespaces:
        raise CliError(ExitCode.USAGE, "status: give a NAME or -A/--all-namespaces, not both")
    session = Session(args)
    objs = [session.keyset(args.name)] if args.name else session.keysets(args.all_namespaces)
    if args.output in ("json", "yaml"):
        data = [output.keyset_data(o) for o in objs]
        print(output.dump(data[0] if args.name else {"items": data}, args.output))
        return ExitCode.OK
    if not objs:
        where = "any namespace" if args.all_namespaces else f'namespace "{session.namespace}"'
        output.note(f"No JwtKeySets found in {where}.")
        return ExitCode.OK
    print(output.render_keysets(objs, utcnow()))
    return ExitCode.OK
