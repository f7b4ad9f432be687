"""cli/connection.py: calls whose connection fails."""

from __future__ import annotations

from typing import Any

import pytest
import urllib3

from keyturn.cli import connection
from keyturn.cli.errors import CliError, ExitCode
from unit.cli.samples import GET


def test_connection_errors_are_unexpected_errors() -> None:
    def refused(**_kw: Any) -> None:
        raise urllib3.exceptions.MaxRetryError(None, "/apis", "connection refused")  # type: ignore[arg-type]

    with pytest.raises(CliError) as caught:
        connection.call(GET, refused)
    assert caught.value.code == ExitCode.ERROR and "cannot reach the API server" in caught.value.message
