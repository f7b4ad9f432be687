"""Rollbacks (manual, after a failed signer wave, after a failed analysis) and the analysis verdict."""

from __future__ import annotations

from keyturn.domain.annotations import ROLLBACK_ANNOTATION, ROTATE_ANNOTATION
from keyturn.domain.lifecycle.state import PassState
from keyturn.domain.model import (
    AnalysisResult,
    HistoryResult,
    KeyState,
    Operation,
    Trigger,
    rollback_target,
)
from keyturn.domain.reasons import Reason
from keyturn.domain.spec import OnFailure


class Rollbacks(PassState):
    """Undo a rotation: on request, after a failed signer wave, after a failed analysis."""

    def _rollback(self, trigger: Trigger, reason: str) -> None:
        current = self._find(KeyState.CURRENT)
        target = rollback_target(self.keys)
        if current is None or target is None:
            message = (
                "no previous key is left to roll back to (revoked, retired and failed keys never sign again)"
            )
            self._record(
                Operation.ROLLBACK, [current.kid] if current else [], trigger, reason, HistoryResult.REJECTED
            )
            self._notice(Reason.ROLLBACK_IMPOSSIBLE, message, [], warning=True)
            return
        self._demote(current, KeyState.FAILED, reason)
        restored = self._activate(target, Operation.ROLLBACK, trigger)
        self._record(
            Operation.ROLLBACK, [restored.kid, current.kid], trigger, reason, HistoryResult.ROLLED_BACK
        )
        self._notice(
            Reason.ROLLED_BACK,
            f"rolled back ({trigger}: {reason}): {restored.kid} signs again, {current.kid} is failed",
            [restored.kid, current.kid],
            warning=True,
        )

    def _manual_rollback(self) -> None:
        token = self.requests.rollback
        if token is None or token == self.handled_rollback:
            return
        self.handled_rollback = token
        self._rollback(Trigger.MANUAL, f"requested with {ROLLBACK_ANNOTATION}")

    def _rollout_failure(self) -> None:
        """Only the signer wave of a rotation can be undone, and only onto a key still `previous`."""
        failure = self.observed.signer_failure
        current = self._find(KeyState.CURRENT)
        if failure is None or current is None:
            return
        undoable = (
            current.activation is Operation.ROTATE
            and current.signers_ready_at is None
            and current.analysis_result is None
        )
        has_previous = rollback_target(self.keys) is not None
        rollback = self.spec.rollout.on_failure is OnFailure.ROLLBACK
        if rollback and undoable and has_previous:
            self._rollback(Trigger.ROLLOUT, failure)
        elif rollback and undoable:
            self.paused = Reason.ROLLBACK_IMPOSSIBLE
            self.paused_message = f"{failure}; no previous key is left to roll back to"
        else:
            self.paused, self.paused_message = Reason.ROLLOUT_PAUSED, failure

    def _analysis(self) -> None:
        analysis = self.spec.analysis
        current = self._find(KeyState.CURRENT)
        if current is None:
            return
        result = current.analysis_result
        if result in (AnalysisResult.INCONCLUSIVE, AnalysisResult.FAILED):
            self.paused = (
                Reason.ANALYSIS_INCONCLUSIVE
                if result is AnalysisResult.INCONCLUSIVE
                else Reason.ANALYSIS_FAILED
            )
            self.paused_message = (
                f"analysis of {current.kid} was {result}; rotate or roll back with "
                f"{ROTATE_ANNOTATION} or {ROLLBACK_ANNOTATION} once you have looked"
            )
            return
        if current.signers_ready_at is None:
            # The signer wave of this activation is over: from now on a failing target no longer
            # undoes the key, and the analysis (if any) measures from here.
            ready = self.observed.signers_ready and self.observed.signer_failure is None
            if ready and current.kid not in self.activated_here:
                self._replace(current, current.evolve(signers_ready_at=self.now))
            return
        if analysis is None or not self._analysing(current):
            return
        verdict = self.observed.analysis
        if verdict is None:
            return
        current = self._replace(current, current.evolve(analysis_result=verdict))
        message = self.observed.analysis_message or f"analysis of {current.kid}: {verdict}"
        self._record(
            Operation.ANALYSIS, [current.kid], Trigger.ANALYSIS, message, HistoryResult(verdict.value)
        )
        if verdict is AnalysisResult.PASSED:
            self._notice(Reason.ANALYSIS_PASSED, message, [current.kid])
        elif verdict is AnalysisResult.FAILED and analysis.on_failure is OnFailure.ROLLBACK:
            self._notice(Reason.ANALYSIS_FAILED, message, [current.kid], warning=True)
            self._rollback(Trigger.ANALYSIS, message)
        else:
            reason = (
                Reason.ANALYSIS_FAILED if verdict is AnalysisResult.FAILED else Reason.ANALYSIS_INCONCLUSIVE
            )
            self._notice(reason, message, [current.kid], warning=True)
            self.paused, self.paused_message = reason, message
