"""Planner tables with explicit clocks: each case is one decision of the key lifecycle."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from keyturn.domain import jwks, record
from keyturn.domain.model import AnalysisResult, KeyState, Operation, Ring, Trigger
from keyturn.domain.planner import Emergency, Observations, Requests, plan
from keyturn.domain.reasons import Reason
from keyturn.domain.spec import Revocation, Spec
from keyturn.keys import new_keys
from planning import spec, step, violations

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


def states(ring: Ring) -> dict[str, str]:
    return {k.kid: str(k.state) for k in ring.keys}


def initialized(the_spec: Spec | None = None) -> tuple[Spec, Ring]:
    """A new keyset after its first pass (no targets: its signer wave ends as it activates)."""
    the_spec = the_spec or spec()
    ring = step(the_spec, Ring(), T0).ring
    assert ring.current is not None and ring.current.signers_ready_at == T0
    return the_spec, ring


def test_first_pass_creates_a_current_and_a_prepared_next_key() -> None:
    result = step(spec(), Ring(), T0)
    assert states(result.ring) == {"k1": "current", "k2": "next"}
    assert result.ring.current is not None and result.ring.current.activated_at == T0
    assert result.next_rotation_at == T0 + DAY
    assert result.wake_at == T0 + DAY
    assert [n.reason for n in result.notices] == [Reason.INITIALIZED, Reason.KEY_PUBLISHED]


def test_planner_asks_for_every_fresh_key_in_one_pass() -> None:
    assert plan(spec(), Ring(), T0).needs_fresh == 2


def test_nothing_due_changes_nothing() -> None:
    the_spec, ring = initialized()
    for moment in (T0, T0 + HOUR, T0 + DAY - timedelta(seconds=1)):
        result = plan(the_spec, ring, moment)
        assert result.needs_fresh == 0
        assert record.dumps(result.ring) == record.dumps(ring)
        assert result.notices == ()


def test_scheduled_rotation_promotes_next_and_prepares_another() -> None:
    the_spec, ring = initialized()
    result = step(the_spec, ring, T0 + DAY)
    assert states(result.ring) == {"k1": "previous", "k2": "current", "k3": "next"}
    old = result.ring.find("k1")
    assert old is not None
    assert old.demoted_at == T0 + DAY
    assert old.remove_from_jwks_at == T0 + 3 * DAY  # grace 2d
    assert old.purge_at == T0 + 4 * DAY  # retention 3d
    assert result.ring.history[-2].operation is Operation.ROTATE
    assert result.ring.history[-2].trigger is Trigger.SCHEDULED


def test_activation_waits_for_publish_ahead_when_the_next_key_is_young() -> None:
    the_spec = spec(rotation={"interval": "1h", "publishAhead": "2h", "gracePeriod": "2d", "retention": "3d"})
    _, ring = initialized(the_spec)
    assert plan(the_spec, ring, T0 + HOUR).ring.current.kid == "k1"  # type: ignore[union-attr]
    result = step(the_spec, ring, T0 + 2 * HOUR)
    assert result.ring.current is not None and result.ring.current.kid == "k2"


def test_grace_over_retires_and_retention_over_purges() -> None:
    the_spec, ring = initialized()
    ring = step(the_spec, ring, T0 + DAY).ring
    retired = step(the_spec, ring, T0 + 3 * DAY)
    assert retired.ring.find("k1").state is KeyState.RETIRED  # type: ignore[union-attr]
    assert "k1" not in {k["kid"] for k in jwks.build(retired.ring)["keys"]}
    purged = step(the_spec, retired.ring, T0 + 4 * DAY)
    assert purged.ring.find("k1") is None
    assert purged.ring.history[-1].operation is Operation.PURGE


def test_manual_rotation_ignores_the_interval_and_is_handled_once() -> None:
    the_spec, ring = initialized()
    result = step(the_spec, ring, T0 + 2 * HOUR, Requests(rotate="now-1"))
    assert result.ring.current.kid == "k2"  # type: ignore[union-attr]
    assert result.ring.handled.rotate == "now-1"
    again = step(the_spec, result.ring, T0 + 4 * HOUR, Requests(rotate="now-1"))
    assert again.ring.current.kid == "k2"  # type: ignore[union-attr]


def test_manual_rotation_still_waits_for_publish_ahead() -> None:
    the_spec, ring = initialized()
    result = step(the_spec, ring, T0 + timedelta(minutes=10), Requests(rotate="now-1"))
    assert result.ring.current.kid == "k1"  # type: ignore[union-attr]
    assert result.waiting is Reason.AWAITING_PUBLISH_AHEAD
    assert result.wake_at == T0 + HOUR
    assert result.ring.handled.rotate is None


def test_rotation_waits_for_verifiers() -> None:
    the_spec, ring = initialized()
    result = step(the_spec, ring, T0 + DAY, observed=Observations(verifiers_ready=False))
    assert result.ring.current.kid == "k1"  # type: ignore[union-attr]
    assert result.waiting is Reason.AWAITING_VERIFIERS


def test_suspend_stops_scheduled_rotation_but_not_manual() -> None:
    the_spec, ring = initialized(spec(suspend=True))
    assert step(the_spec, ring, T0 + 5 * DAY).ring.current.kid == "k1"  # type: ignore[union-attr]
    assert step(the_spec, ring, T0 + 5 * DAY).next_rotation_at is None
    assert step(the_spec, ring, T0 + 5 * DAY, Requests(rotate="x")).ring.current.kid == "k2"  # type: ignore[union-attr]


def test_emergency_promotes_the_prepared_key_and_is_run_once() -> None:
    the_spec, ring = initialized()
    result = step(the_spec, ring, T0 + HOUR, Requests(emergency=Emergency("inc-1", "key_compromise")))
    # the revocation is written without waiting for a new key; the next pass prepares one
    assert states(result.ring) == {"k1": "revoked", "k2": "current"}
    assert (
        result.requeue
        and plan(the_spec, ring, T0 + HOUR, Requests(emergency=Emergency("inc-1"))).needs_fresh == 0
    )
    result = step(the_spec, result.ring, T0 + HOUR, Requests(emergency=Emergency("inc-1", "key_compromise")))
    assert states(result.ring) == {"k1": "revoked", "k2": "current", "k3": "next"}
    assert not result.requeue
    ack = result.ring.handled.emergency("inc-1")
    assert ack is not None and ack.result == "Revoked" and ack.new_kid == "k2"
    assert "k1" in result.ring.revoked_kids
    assert "k1" not in {k["kid"] for k in jwks.build(result.ring)["keys"]}
    replay = step(the_spec, result.ring, T0 + 2 * HOUR, Requests(emergency=Emergency("inc-1")))
    assert record.dumps(replay.ring) == record.dumps(result.ring)


def test_emergency_revoke_all_generates_fresh_keys() -> None:
    the_spec, ring = initialized()
    ring = step(the_spec, ring, T0 + DAY).ring  # k1 previous, k2 current, k3 next
    result = step(the_spec, ring, T0 + DAY + HOUR, Requests(emergency=Emergency("inc-2", revoke_all=True)))
    revoked = {"k1": "revoked", "k2": "revoked", "k3": "revoked"}
    assert states(result.ring) == {**revoked, "k4": "current"}
    assert result.ring.handled.emergency("inc-2").new_kid == "k4"  # type: ignore[union-attr]
    result = step(the_spec, result.ring, T0 + DAY + HOUR)
    assert states(result.ring) == {**revoked, "k4": "current", "k5": "next"}


def test_emergency_with_unknown_kid_is_rejected_without_change() -> None:
    the_spec, ring = initialized()
    result = step(the_spec, ring, T0 + HOUR, Requests(emergency=Emergency("inc-3", revoke_kids=("nope",))))
    assert states(result.ring) == {"k1": "current", "k2": "next"}
    ack = result.ring.handled.emergency("inc-3")
    assert ack is not None and ack.result == "Rejected" and "nope" in ack.message


def test_revoking_the_next_key_prepares_another() -> None:
    the_spec, ring = initialized()
    result = step(the_spec, ring, T0 + HOUR, Requests(emergency=Emergency("inc-4", revoke_kids=("k2",))))
    assert states(result.ring) == {"k1": "current", "k2": "revoked", "k3": "next"}


def test_declarative_revocation_of_the_current_key() -> None:
    the_spec, ring = initialized()
    revoked = spec(revokedKids=[{"kid": "k1", "reason": "key_compromise"}])
    assert revoked.revoked == (Revocation("k1", "key_compromise"),)
    result = step(revoked, ring, T0 + HOUR)
    result = step(revoked, result.ring, T0 + HOUR)
    assert states(result.ring) == {"k1": "revoked", "k2": "current", "k3": "next"}
    assert result.ring.history[-3].trigger is Trigger.DECLARATIVE
    again = step(revoked, result.ring, T0 + 2 * HOUR)
    assert record.dumps(again.ring) == record.dumps(result.ring)
    del the_spec


def test_revoked_record_is_forgotten_after_retention_but_the_kid_never_returns() -> None:
    the_spec, ring = initialized()
    ring = step(the_spec, ring, T0, Requests(emergency=Emergency("inc-5"))).ring
    later = step(the_spec, ring, T0 + 3 * DAY + timedelta(seconds=1)).ring
    assert later.find("k1") is None
    assert "k1" in later.revoked_kids


def test_manual_rollback_restores_the_previous_key_and_fails_the_new_one() -> None:
    the_spec, ring = initialized()
    ring = step(the_spec, ring, T0 + DAY).ring
    result = step(the_spec, ring, T0 + DAY + HOUR, Requests(rollback="undo-1"))
    assert states(result.ring) == {"k1": "current", "k2": "failed", "k3": "next"}
    failed = result.ring.find("k2")
    assert failed is not None and failed.remove_from_jwks_at == T0 + 3 * DAY + HOUR
    assert "k2" in {k["kid"] for k in jwks.build(result.ring)["keys"]}  # tokens were signed with it
    assert result.ring.current.activation is Operation.ROLLBACK  # type: ignore[union-attr]
    # the next scheduled rotation counts from the rollback
    assert result.next_rotation_at == T0 + 2 * DAY + HOUR


def test_rollback_never_picks_a_revoked_key() -> None:
    the_spec, ring = initialized()
    ring = step(the_spec, ring, T0 + DAY).ring  # k1 previous
    ring = step(the_spec, ring, T0 + DAY, Requests(emergency=Emergency("inc-6", revoke_kids=("k1",)))).ring
    result = step(the_spec, ring, T0 + DAY + HOUR, Requests(rollback="undo-2"))
    assert result.ring.current.kid == "k2"  # type: ignore[union-attr]
    assert result.notices[-1].reason is Reason.ROLLBACK_IMPOSSIBLE
    assert result.ring.handled.rollback == "undo-2"


SIGNERS = Observations(signer_targets=True)  # signer Deployments exist and have loaded the key
ANALYSIS = {"prometheus": {"address": "http://prom:9090", "query": "up"}, "count": 3, "failureLimit": 1}


def test_analysis_starts_after_signers_and_failure_rolls_back() -> None:
    the_spec, ring = initialized(spec(analysis=ANALYSIS))
    ring = step(
        the_spec, ring, T0 + DAY, observed=Observations(signers_ready=False, signer_targets=True)
    ).ring
    assert ring.current.signers_ready_at is None  # type: ignore[union-attr]
    ring = step(the_spec, ring, T0 + DAY + HOUR, observed=SIGNERS).ring
    assert ring.current.signers_ready_at == T0 + DAY + HOUR  # type: ignore[union-attr]
    # no scheduled rotation while the analysis runs, even when overdue
    assert step(the_spec, ring, T0 + 3 * DAY).ring.current.kid == "k2"  # type: ignore[union-attr]
    failed = step(
        the_spec,
        ring,
        T0 + DAY + 2 * HOUR,
        observed=Observations(analysis=AnalysisResult.FAILED, analysis_message="rate 0.5 < 0.95"),
    )
    assert states(failed.ring) == {"k1": "current", "k2": "failed", "k3": "next"}
    assert failed.ring.history[-1].trigger is Trigger.ANALYSIS


def test_inconclusive_analysis_pauses_and_never_rolls_back() -> None:
    the_spec, ring = initialized(spec(analysis=ANALYSIS))
    ring = step(the_spec, ring, T0 + DAY).ring
    ring = step(the_spec, ring, T0 + DAY + HOUR).ring
    result = step(
        the_spec, ring, T0 + DAY + 2 * HOUR, observed=Observations(analysis=AnalysisResult.INCONCLUSIVE)
    )
    assert result.ring.current.kid == "k2"  # type: ignore[union-attr]
    assert result.paused is Reason.ANALYSIS_INCONCLUSIVE
    later = step(the_spec, result.ring, T0 + 5 * DAY)
    assert later.ring.current.kid == "k2"  # type: ignore[union-attr]  # paused: a person decides
    assert later.paused is Reason.ANALYSIS_INCONCLUSIVE


def test_emergency_activation_is_never_analysed_or_rolled_back() -> None:
    the_spec, ring = initialized(spec(analysis=ANALYSIS))
    ring = step(the_spec, ring, T0 + HOUR, Requests(emergency=Emergency("inc-7"))).ring
    result = step(
        the_spec,
        ring,
        T0 + 2 * HOUR,
        observed=Observations(analysis=AnalysisResult.FAILED, signer_failure="web: timeout"),
    )
    assert result.ring.current.kid == "k2"  # type: ignore[union-attr]
    assert result.paused is Reason.ROLLOUT_PAUSED


def test_signer_failure_after_rotation_rolls_back_or_pauses() -> None:
    observed = Observations(signer_failure="deployment web: rollout timed out", signer_targets=True)
    the_spec, ring = initialized()
    ring = step(the_spec, ring, T0 + DAY, observed=SIGNERS).ring
    rolled = step(the_spec, ring, T0 + DAY + HOUR, observed=observed)
    assert rolled.ring.current.kid == "k1"  # type: ignore[union-attr]
    assert rolled.ring.history[-1].trigger is Trigger.ROLLOUT
    pause_spec = spec(rollout={"onFailure": "Pause"})
    paused = step(pause_spec, ring, T0 + DAY + HOUR, observed=observed)
    assert paused.ring.current.kid == "k2"  # type: ignore[union-attr]
    assert paused.paused is Reason.ROLLOUT_PAUSED


def test_window_defers_scheduled_activation() -> None:
    window_spec = spec(
        rotation={
            "interval": "1d",
            "publishAhead": "1h",
            "gracePeriod": "2d",
            "retention": "3d",
            "timeZone": "Europe/Paris",
            "window": {"start": "02:00", "end": "04:00"},
        }
    )
    _, ring = initialized(window_spec)  # T0 is 13:00 in Paris
    due = step(window_spec, ring, T0 + DAY)
    assert due.ring.current.kid == "k1"  # type: ignore[union-attr]
    # next window opens 02:00 Paris = 01:00 UTC on March 3
    assert due.next_rotation_at == datetime(2026, 3, 3, 1, 0, tzinfo=UTC)
    assert step(window_spec, ring, datetime(2026, 3, 3, 1, 30, tzinfo=UTC)).ring.current.kid == "k2"  # type: ignore[union-attr]


def test_cron_schedule() -> None:
    cron_spec = spec(
        rotation={"schedule": "0 2 1 */3 *", "publishAhead": "1h", "gracePeriod": "2d", "retention": "3d"}
    )
    result = step(cron_spec, Ring(), T0)
    assert result.next_rotation_at == datetime(2026, 4, 1, 2, 0, tzinfo=UTC)


def test_template_kids_use_the_serial() -> None:
    # kids are assigned by the executor; the planner keeps the serial so {n} never repeats
    the_spec, ring = initialized()
    ring = step(the_spec, ring, T0 + DAY).ring
    assert ring.serial == 3
    assert sorted(k.serial for k in ring.keys) == [1, 2, 3]


def test_documents_render_identically_after_a_round_trip_through_the_secret_record() -> None:
    # A fresh key's JWK (insertion order) and the same key reloaded from the record (sorted keys)
    # must render the same bytes, or every rotation would cost an extra ConfigMap write.
    the_spec, ring = initialized()
    fresh = step(the_spec, ring, T0 + DAY).ring
    shuffled = fresh.evolve(
        keys=tuple(
            k.evolve(public_jwk=dict(reversed(list(k.public_jwk.items())))) if k.public_jwk else k
            for k in fresh.keys
        )
    )
    reloaded = record.loads(record.dumps(shuffled))
    assert (
        jwks.render(jwks.build(shuffled))
        == jwks.render(jwks.build(reloaded))
        == jwks.render(jwks.build(fresh))
    )


def test_emergency_naming_only_revoked_kids_is_rejected() -> None:
    the_spec, ring = initialized()
    ring = step(the_spec, ring, T0, Requests(emergency=Emergency("inc-8", revoke_kids=("k2",)))).ring
    result = step(the_spec, ring, T0 + HOUR, Requests(emergency=Emergency("inc-9", revoke_kids=("k2",))))
    ack = result.ring.handled.emergency("inc-9")
    assert ack is not None and ack.result == "Rejected" and "already revoked" in ack.message


def test_a_signer_failure_after_the_wave_never_undoes_an_established_key() -> None:
    the_spec, ring = initialized()
    ring = step(the_spec, ring, T0 + DAY, observed=SIGNERS).ring  # rotation: k2 current
    ring = step(the_spec, ring, T0 + DAY + HOUR, observed=SIGNERS).ring  # signers loaded k2: wave over
    assert ring.current is not None and ring.current.signers_ready_at == T0 + DAY + HOUR
    later = step(
        the_spec,
        ring,
        T0 + DAY + 5 * HOUR,
        observed=Observations(signer_failure="new-app: timeout", signer_targets=True),
    )
    assert later.ring.current.kid == "k2"  # type: ignore[union-attr]
    assert later.paused is Reason.ROLLOUT_PAUSED


def test_a_signer_failure_with_nothing_to_roll_back_to_pauses_without_writing() -> None:
    the_spec, ring = initialized()
    ring = step(the_spec, ring, T0 + DAY, observed=SIGNERS).ring
    rolling = Observations(signers_ready=False, signer_targets=True)  # k2's signer wave is under way
    ring = step(
        the_spec, ring, T0 + DAY, Requests(emergency=Emergency("inc-10", revoke_kids=("k1",))), rolling
    ).ring
    failing = Observations(signer_failure="api: timeout", signer_targets=True)
    first = step(the_spec, ring, T0 + DAY + HOUR, observed=failing)
    second = step(the_spec, first.ring, T0 + DAY + 2 * HOUR, observed=failing)
    assert first.paused is Reason.ROLLBACK_IMPOSSIBLE and "no previous key" in first.paused_message
    assert record.dumps(second.ring) == record.dumps(first.ring)  # no history entry per pass


def test_revoked_kids_of_a_keyset_starting_over_are_a_deny_list_not_a_stall() -> None:
    listed = spec(revokedKids=[{"kid": "old-1", "reason": "key_compromise"}])
    assert violations(listed, Ring()) == []  # new keyset, or its Secret was lost
    started = step(listed, Ring(), T0).ring
    assert "old-1" in started.revoked_kids  # remembered: known from now on, never generated
    assert violations(listed, started) == []
    _, ring = initialized()
    assert [v.reason for v in violations(listed, ring)] == [Reason.UNKNOWN_KID]


def test_template_kids_skip_serials_whose_kid_was_revoked() -> None:
    template = spec(algorithm="ES256", kid={"strategy": "Template", "template": "{date}_v{n}_prod"})
    made = new_keys.generate(
        template,
        first_serial=1,
        count=2,
        now=T0,
        passphrase=None,
        taken={"20260301_v1_prod", "20260301_v2_prod"},
    )
    assert [g.fresh.kid for g in made] == ["20260301_v3_prod", "20260301_v4_prod"]
    assert [g.fresh.serial for g in made] == [3, 4]
