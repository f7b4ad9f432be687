"""cli/session.py: the request ids and tokens the CLI writes."""

from __future__ import annotations

import re

from keyturn.cli import session
from unit.cli.samples import NOW


def test_fresh_tokens_are_unique_and_admitted_as_request_ids() -> None:
    tokens = {session.fresh_token(NOW) for _ in range(50)}
    assert len(tokens) == 50
    for token in tokens:
        assert re.fullmatch(r"cli-20260522T100000Z-[0-9a-f]{6}", token)
        assert re.fullmatch(r"[A-Za-z0-9._:-]{1,128}", token)  # the CRD's requestId pattern
