"""adapters/list_watch.py: list, then watch; an expired or broken watch is followed by a new list."""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

import pytest

from keyturn.adapters import list_watch
from keyturn.adapters.list_watch import ListWatch, Peek


class Response:
    """What the client returns with _preload_content=False: a status, a body or a stream."""

    def __init__(
        self, status: int = 200, data: Any = None, lines: list[dict[str, Any]] | None = None
    ) -> None:
        self.status = status
        self.data = json.dumps(data).encode()
        self._chunks = [json.dumps(line).encode() + b"\n" for line in lines or ()]
        self.released = False

    def stream(self, amt: None = None, decode_content: bool = False) -> Any:
        # Split mid-line as a socket may: the reader must join the pieces.
        blob = b"".join(self._chunks)
        return iter([blob[:7], blob[7:]] if blob else [])

    def release_conn(self) -> None:
        self.released = True


def obj(name: str, version: str) -> dict[str, Any]:
    return {"metadata": {"namespace": "ns", "name": name, "resourceVersion": version}}


class Recorder:
    def __init__(self, stop: threading.Event, after: int) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.stop, self.after = stop, after

    def _note(self, what: str, value: Any) -> None:
        self.calls.append((what, value))
        if len(self.calls) >= self.after:
            self.stop.set()

    def replace(self, scope: str, objects: list[dict[str, Any]]) -> None:
        self._note("replace", [o["metadata"]["name"] for o in objects])

    def apply(self, scope: str, kind: str, obj: dict[str, Any]) -> None:
        self._note(kind, obj["metadata"]["name"])

    def synced(self, scope: str) -> None:
        self._note("synced", scope)

    def failed(self, scope: str) -> None:
        self._note("failed", scope)


def run(
    answers: list[Response | Exception], after: int
) -> tuple[list[tuple[str, Any]], list[dict[str, Any]]]:
    """Run the thread's loop inline over scripted answers; the calls the sink saw and the queries."""
    stop = threading.Event()
    sink = Recorder(stop, after)
    queries: list[dict[str, Any]] = []

    def lister(scope: str, **query: Any) -> Any:
        queries.append({"scope": scope, **query})
        answer = answers.pop(0) if answers else Response(lines=[])
        if isinstance(answer, Exception):
            raise answer
        return answer

    thread = ListWatch(
        lister, "ns", sink, stop, what="things", log=logging.getLogger("test"), label_selector="a=b"
    )
    thread.stopping.wait = lambda timeout=None: stop.is_set()  # type: ignore[method-assign]  # no real backoff
    thread.run()
    return sink.calls, queries


def listed(*names: str, version: str = "5") -> Response:
    return Response(data={"metadata": {"resourceVersion": version}, "items": [obj(n, "1") for n in names]})


def test_a_list_then_the_events_from_its_version() -> None:
    events = [
        {"type": "ADDED", "object": obj("c", "6")},
        {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "7"}}},
        {"type": "MODIFIED", "object": obj("a", "8")},
        {"type": "DELETED", "object": obj("b", "9")},
    ]
    calls, queries = run([listed("a", "b"), Response(lines=events)], after=6)
    assert calls == [
        ("replace", ["a", "b"]),
        ("ADDED", "c"),
        ("synced", "ns"),
        ("MODIFIED", "a"),
        ("DELETED", "b"),
        ("synced", "ns"),  # the server ended the watch cleanly
    ]
    assert queries[0]["label_selector"] == "a=b" and "watch" not in queries[0]
    assert queries[1]["watch"] is True and queries[1]["resource_version"] == "5"


@pytest.mark.parametrize(
    "expiry",
    [Response(status=410), Response(lines=[{"type": "ERROR", "object": {"code": 410, "reason": "Expired"}}])],
    ids=["410 answer", "410 in the stream"],
)
def test_an_expired_watch_is_followed_by_a_new_list(expiry: Response) -> None:
    calls, _ = run([listed("a"), expiry, listed("a", "b", version="20")], after=2)
    assert calls == [("replace", ["a"]), ("replace", ["a", "b"])]
    assert expiry.released


def test_a_failure_is_reported_and_the_list_retried() -> None:
    calls, _ = run([ConnectionError("API server away"), Response(status=403), listed("a")], after=3)
    assert calls == [("failed", "ns"), ("failed", "ns"), ("replace", ["a"])]


def test_a_watch_resumes_from_the_last_version_seen() -> None:
    first = Response(lines=[{"type": "MODIFIED", "object": obj("a", "11")}])
    _, queries = run([listed("a", version="10"), first, Response(lines=[])], after=4)
    assert [q.get("resource_version") for q in queries[1:3]] == ["10", "11"]


def test_owned_objects_are_selected_by_keyturn_s_label() -> None:
    thread = list_watch.owned(
        None, "Secret", "", Recorder(threading.Event(), 1), threading.Event(), logging.getLogger()
    )
    assert thread.query == {"label_selector": "app.kubernetes.io/managed-by=keyturn"}
    assert thread.scope == "" and thread.daemon


def peek(answers: list[Response | Exception]) -> tuple[list[tuple[str, Any]], list[dict[str, Any]]]:
    """Run a Peek inline over scripted answers: what the sink saw and the queries."""
    stop = threading.Event()
    sink = Recorder(stop, after=100)
    queries: list[dict[str, Any]] = []

    def lister(scope: str, **query: Any) -> Any:
        queries.append(query)
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    Peek(lister, "ns", sink, stop, what="things", log=logging.getLogger("test"), seconds=60).run()
    return sink.calls, queries


def test_a_peek_follows_the_events_from_now_without_the_list() -> None:
    events = [{"type": "MODIFIED", "object": obj("a", "8")}]
    calls, queries = peek([listed("x", version="7"), Response(lines=events)])
    assert calls == [("MODIFIED", "a"), ("synced", "ns")]  # no replace: the list is not its business
    assert queries[0]["limit"] == 1  # only the collection's version
    assert queries[1]["resource_version"] == "7" and queries[1]["timeout_seconds"] == 60


@pytest.mark.parametrize(
    "answers",
    [
        [ConnectionError("away")],
        [listed(version="7"), Response(status=410)],
        [Response(data={"metadata": {}})],
    ],
    ids=["list fails", "watch expired", "no version"],
)
def test_a_peek_that_fails_just_ends(answers: list[Response | Exception]) -> None:
    calls, _ = peek(answers)
    assert calls == []  # nothing reported: the ListWatch beside it sees everything, later
