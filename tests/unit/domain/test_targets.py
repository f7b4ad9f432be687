"""domain/targets.py: the pure rollout decisions, with explicit clocks."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from keyturn.domain.model import Ring
from keyturn.domain.spec import OnFailure, RolloutSpec
from keyturn.domain.targets import Health, Role, Target, TargetState, decide, revisions
from planning import spec, step

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
S = timedelta(seconds=1)
ROLLOUT = RolloutSpec(timeout=timedelta(minutes=10), pause_between=10 * S, on_failure=OnFailure.ROLLBACK)


def ring() -> Ring:
    return step(spec(), Ring(), NOW).ring


def target(name: str, role: Role, revision: str | None, **kw: object) -> Target:
    base = Target(
        name=name,
        role=role,
        order=0,
        revision=revision,
        stamped_at=NOW - 60 * S,
        complete=True,
        deadline_exceeded=False,
        progress="1/1 updated, 1 available",
    )
    return dataclasses.replace(base, **kw)  # type: ignore[arg-type]


def test_revisions_change_with_what_each_role_loads() -> None:
    before = ring()
    after = step(spec(), before, NOW + timedelta(days=1)).ring  # rotation: current and the set change
    a, b = revisions(before), revisions(after)
    assert a[Role.SIGNER] != b[Role.SIGNER] and a[Role.VERIFIER] != b[Role.VERIFIER]
    assert len({a[Role.SIGNER], a[Role.VERIFIER], a[Role.BOTH]}) == 3


def test_signers_restart_first_and_one_at_a_time() -> None:
    desired = revisions(ring())
    targets = [
        target("v", Role.VERIFIER, "old"),
        target("s", Role.SIGNER, "old"),
        target("b", Role.BOTH, "old"),
    ]
    decision = decide(targets, desired, NOW, ROLLOUT, {})
    assert decision.stamp is not None and decision.stamp.name == "b"  # both counts as signer; by name
    assert [v.state for v in decision.views] == [
        TargetState.ROLLING,
        TargetState.PENDING,
        TargetState.PENDING,
    ]
    assert not decision.signers_ready and not decision.verifiers_ready


def test_order_annotation_sorts_within_a_role() -> None:
    desired = revisions(ring())
    targets = [target("a", Role.SIGNER, "old", order=20), target("z", Role.SIGNER, "old", order=10)]
    assert decide(targets, desired, NOW, ROLLOUT, {}).stamp.name == "z"  # type: ignore[union-attr]


def test_a_finished_target_is_marked_and_the_next_waits_for_pause_between() -> None:
    desired = revisions(ring())
    done = target("s", Role.SIGNER, desired[Role.SIGNER])
    waiting = target("v", Role.VERIFIER, "old")
    decision = decide([done, waiting], desired, NOW, ROLLOUT, {})
    assert [t.name for t in decision.mark] == ["s"]
    assert decision.stamp is None and decision.wake_at == NOW + 10 * S
    marked = dataclasses.replace(done, verified=desired[Role.SIGNER], verified_at=NOW - 20 * S)
    later = decide([marked, waiting], desired, NOW, ROLLOUT, {})
    assert later.stamp is not None and later.stamp.name == "v" and later.mark == ()


def test_incomplete_target_fails_after_its_timeout() -> None:
    desired = revisions(ring())
    slow = target("s", Role.SIGNER, desired[Role.SIGNER], complete=False, stamped_at=NOW - 5 * S)
    waiting = decide([slow], desired, NOW, ROLLOUT, {})
    assert waiting.failure is None and waiting.wake_at == NOW - 5 * S + ROLLOUT.timeout
    late = decide([slow], desired, NOW + ROLLOUT.timeout, ROLLOUT, {})
    assert late.failure is not None and "not complete" in late.failure_message


def test_progress_deadline_exceeded_fails_at_once() -> None:
    desired = revisions(ring())
    stuck = target("s", Role.SIGNER, desired[Role.SIGNER], complete=False, deadline_exceeded=True)
    assert "ProgressDeadlineExceeded" in decide([stuck], desired, NOW, ROLLOUT, {}).failure_message


def test_health_url_is_probed_then_gates() -> None:
    desired = revisions(ring())
    t = target("s", Role.SIGNER, desired[Role.SIGNER], health_url="http://s/health", stamped_at=NOW - 5 * S)
    first = decide([t], desired, NOW, ROLLOUT, {})
    assert first.probe == (t,)
    bad = decide([t], desired, NOW, ROLLOUT, {"Deployment/s": Health(False, "answered HTTP 500")})
    assert bad.failure is None and bad.wake_at is not None  # retried until the timeout
    failed = decide(
        [t], desired, NOW + ROLLOUT.timeout, ROLLOUT, {"Deployment/s": Health(False, "answered HTTP 500")}
    )
    assert failed.failure is not None and "HTTP 500" in failed.failure_message
    good = decide([t], desired, NOW, ROLLOUT, {"Deployment/s": Health(True, "HTTP 200")})
    assert good.mark == (t,) and good.signers_ready


END = datetime.max.replace(tzinfo=UTC)
HUGE = RolloutSpec(timeout=timedelta(days=999_999_999), pause_between=timedelta(days=999_999_999))


@pytest.mark.parametrize(
    ("kw", "rollout"),
    [
        ({"stamped_at": END - S, "complete": False}, ROLLOUT),
        ({"stamped_at": NOW - 60 * S, "complete": False}, HUGE),
        ({"stamped_at": datetime.min.replace(tzinfo=UTC), "complete": False}, HUGE),
        ({"stamped_at": NOW - 60 * S, "health_url": "http://s/h"}, HUGE),
    ],
    ids=["stamp at the end of time", "huge timeout", "stamp at the start of time", "huge timeout and health"],
)
def test_no_timestamp_or_duration_overflows(kw: dict[str, object], rollout: RolloutSpec) -> None:
    desired = revisions(ring())
    t = target("s", Role.SIGNER, desired[Role.SIGNER], **kw)
    decision = decide([t], desired, NOW, rollout, {"Deployment/s": Health(False, "answered HTTP 500")})
    assert decision.failure is None or "not complete" in decision.failure_message
    assert decision.wake_at is None or decision.wake_at >= NOW


def test_pause_between_saturates_after_a_huge_pause() -> None:
    desired = revisions(ring())
    done = target(
        "s", Role.SIGNER, desired[Role.SIGNER], verified=desired[Role.SIGNER], verified_at=NOW - 20 * S
    )
    decision = decide([done, target("v", Role.VERIFIER, "old")], desired, NOW, HUGE, {})
    assert decision.stamp is None and decision.wake_at == END


@pytest.mark.parametrize(
    "stamped_at",
    [None, NOW + timedelta(days=365), END],
    ids=["missing or damaged", "a year ahead", "end of time"],
)
def test_a_target_without_a_usable_stamp_is_stamped_again_without_a_restart(
    stamped_at: datetime | None,
) -> None:
    desired = revisions(ring())
    t = target("s", Role.SIGNER, desired[Role.SIGNER], complete=False, stamped_at=stamped_at)
    decision = decide([t], desired, NOW, ROLLOUT, {})
    assert decision.stamp == t and decision.stamp_revision == t.revision  # same revision: no restart
    assert decision.failure is None and not decision.signers_ready


def test_a_stamp_within_the_clock_skew_is_believed() -> None:
    desired = revisions(ring())
    t = target("s", Role.SIGNER, desired[Role.SIGNER], complete=False, stamped_at=NOW + 60 * S)
    decision = decide([t], desired, NOW, ROLLOUT, {})
    assert decision.stamp is None and decision.wake_at == NOW + 60 * S + ROLLOUT.timeout


def test_a_ready_time_in_the_future_counts_as_now() -> None:
    desired = revisions(ring())
    done = target("s", Role.SIGNER, desired[Role.SIGNER], verified=desired[Role.SIGNER], verified_at=END)
    decision = decide([done, target("v", Role.VERIFIER, "old")], desired, NOW, ROLLOUT, {})
    assert decision.wake_at == NOW + ROLLOUT.pause_between


def test_a_huge_health_url_is_shortened_in_messages() -> None:
    desired = revisions(ring())
    t = target("s", Role.SIGNER, desired[Role.SIGNER], health_url="http://s/" + "x" * 100_000)
    failed = decide(
        [t], desired, NOW + ROLLOUT.timeout, ROLLOUT, {"Deployment/s": Health(False, "refused: too long")}
    )
    assert failed.failure is not None and len(failed.failure_message) < 300
    assert all(len(v.message) < 300 for v in failed.views)
