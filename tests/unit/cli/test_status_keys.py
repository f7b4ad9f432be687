"""cli/status_keys.py: status.keys, which anyone who may patch status writes, read without a crash."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from keyturn.cli.status_keys import UNKNOWN_TIME, StatusKey, keys_by_kid, read_status_keys
from keyturn.domain.model import KeyState

AT = datetime(2026, 5, 22, 10, 0, tzinfo=UTC)
GOOD = {"kid": "k", "state": "previous", "createdAt": "2026-05-22T10:00:00Z"}


@pytest.mark.parametrize(
    ("status", "read"),
    [
        pytest.param("junk", (), id="status is not an object"),
        pytest.param({"keys": "junk"}, (), id="keys is not a list"),
        pytest.param({"keys": None}, (), id="keys is null"),
        pytest.param(
            {"keys": [GOOD]}, (StatusKey("k", KeyState.PREVIOUS, AT, None, 0),), id="a readable key"
        ),
        pytest.param(
            {"keys": ["junk", 7, None, GOOD]},
            (StatusKey("k", KeyState.PREVIOUS, AT, None, 3),),
            id="entries that are not objects are left out; the serial is the place in the list",
        ),
        pytest.param({"keys": [{**GOOD, "kid": ""}]}, (), id="an empty kid"),
        pytest.param({"keys": [{**GOOD, "kid": ["k"]}]}, (), id="a kid that is not text"),
        pytest.param({"keys": [{**GOOD, "state": "sleeping"}]}, (), id="an unknown state"),
        pytest.param({"keys": [{**GOOD, "state": {"a": 1}}]}, (), id="a state that is not text"),
        pytest.param(
            {"keys": [{**GOOD, "createdAt": "yesterday"}]},
            (StatusKey("k", KeyState.PREVIOUS, UNKNOWN_TIME, None, 0),),
            id="an unreadable creation time orders first but keeps the key",
        ),
        pytest.param(
            {"keys": [{**GOOD, "demotedAt": "0001-01-01T00:00:00+01:00"}]},
            (StatusKey("k", KeyState.PREVIOUS, AT, None, 0),),
            id="a demotion time out of range reads as none",
        ),
        pytest.param(
            {"keys": [{**GOOD, "demotedAt": "2026-05-22T10:00:00Z"}]},
            (StatusKey("k", KeyState.PREVIOUS, AT, AT, 0),),
            id="a demotion time",
        ),
    ],
)
def test_status_keys_are_read_totally(status: Any, read: tuple[StatusKey, ...]) -> None:
    assert read_status_keys(status) == read


def test_keys_by_kid_keeps_every_object_entry_as_status_has_it() -> None:
    odd = {"kid": 7, "state": "sleeping"}
    assert keys_by_kid({"keys": [GOOD, "junk", odd]}) == {"k": GOOD, "7": odd}
    assert keys_by_kid({"keys": "junk"}) == {}
