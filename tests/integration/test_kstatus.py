"""Flux's view of live JwtKeySets, computed by kstatus itself (docs/gitops.md#flux).

Flux's health checks judge a custom resource with kstatus (`status.Compute` of
sigs.k8s.io/cli-utils/pkg/kstatus/status; Flux's fork carries the same package). hack/kstatus is
a tiny Go program on that library, built once from the Go module proxy into the binaries cache.
Each case brings a keyset into one state on the real control plane with the real operator, reads
it back as `kubectl get -o json` would, and asks kstatus: the verdict and its message must be the
ones docs/gitops.md promises. The message is taken from the same object kstatus judged, so a
condition that moves on between two reads cannot make a case flaky.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from helpers import wait_for
from integration.consumer_support import ROOT, build_go_program, cache_root, go_env
from kubetools import Kube, OperatorProcess, deployment

pytestmark = pytest.mark.integration

SOURCE = ROOT / "hack" / "kstatus"
# A key signs for 30 days: nothing scheduled happens while a case runs.
CALM = {"interval": "30d", "publishAhead": "0s", "gracePeriod": "7d", "retention": "14d"}
# Pods that no Node accepts: a rollout of such a target never completes.
NOWHERE = {"keyturn.dev/test-no-such-node": "yes"}


@pytest.fixture(scope="module")
def kstatus() -> Path:
    go = shutil.which("go")
    if go is None:
        pytest.skip("Go is not installed (the quick start and CI require it)")
    return build_go_program(go, SOURCE, "kstatus", cache_root())


def judge(binary: Path, obj: dict[str, Any]) -> dict[str, Any]:
    """kstatus's Result for one object: {object, status, message, conditions}."""
    done = subprocess.run(
        [str(binary)], input=json.dumps(obj), capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == 0, done.stderr
    verdict: dict[str, Any] = json.loads(done.stdout)
    return verdict


def condition(obj: dict[str, Any], kind: str) -> dict[str, Any]:
    found: dict[str, Any] = next(c for c in obj["status"]["conditions"] if c["type"] == kind)
    return found


def true_conditions(obj: dict[str, Any]) -> set[str]:
    return {c["type"] for c in (obj.get("status") or {}).get("conditions") or () if c["status"] == "True"}


def live(kube: Kube, predicate: Callable[[dict[str, Any]], bool], message: str) -> dict[str, Any]:
    """The first version of the keyset `keys` for which `predicate` holds: the object kstatus judges."""

    def check() -> dict[str, Any] | None:
        obj = kube.keyset("keys")
        return obj if predicate(obj) else None

    return wait_for(check, 60, message=message)


def reason_true(kind: str, reason: str) -> Callable[[dict[str, Any]], bool]:
    def check(obj: dict[str, Any]) -> bool:
        return kind in true_conditions(obj) and condition(obj, kind)["reason"] == reason

    return check


# ----------------------------------------------------------------------------------------- states
# Each brings the keyset `keys` into one state and returns it as read from the API server.


def ready(kube: Kube, _operator: OperatorProcess | None) -> dict[str, Any]:
    kube.create_keyset("keys", {"rotation": CALM})
    return live(kube, lambda o: true_conditions(o) == {"Ready"}, "Ready=True alone")


def awaiting_publish_ahead(kube: Kube, _operator: OperatorProcess | None) -> dict[str, Any]:
    """A manual rotation whose prepared key is younger than publishAhead: it waits, Reconciling."""
    kube.create_keyset("keys", {"rotation": {**CALM, "publishAhead": "1h"}})
    live(kube, lambda o: "Ready" in true_conditions(o), "Ready before the rotation")
    kube.patch_keyset("keys", {"metadata": {"annotations": {"keyturn.dev/rotate": "kstatus"}}})
    return live(
        kube, reason_true("Reconciling", "AwaitingPublishAhead"), "Reconciling=True AwaitingPublishAhead"
    )


def rolling_a_target(kube: Kube, _operator: OperatorProcess | None) -> dict[str, Any]:
    """A target Deployment whose new Pods are never scheduled: the rollout is under way for a minute."""
    kube.apps.create_namespaced_deployment(
        kube.namespace, deployment("api", {"keyturn.dev/keyset": "keys"}, node_selector=NOWHERE)
    )
    kube.create_keyset("keys", {"rotation": CALM, "rollout": {"timeout": "60s", "onFailure": "Pause"}})
    return live(kube, reason_true("Reconciling", "RolloutProgressing"), "Reconciling=True RolloutProgressing")


def unsafe_timings(kube: Kube, _operator: OperatorProcess | None) -> dict[str, Any]:
    """gracePeriod shorter than maxLifetime + verifierCacheTTL: a timing rule broken, Stalled."""
    kube.create_keyset(
        "keys",
        {
            "rotation": {**CALM, "publishAhead": "5m", "gracePeriod": "1h"},
            "tokens": {"maxLifetime": "2h", "verifierCacheTTL": "5m"},
        },
    )
    return live(kube, reason_true("Stalled", "GracePeriodTooShort"), "Stalled=True GracePeriodTooShort")


def rollout_paused(kube: Kube, _operator: OperatorProcess | None) -> dict[str, Any]:
    """The same unschedulable target with a short timeout and onFailure: Pause: paused for a person."""
    kube.apps.create_namespaced_deployment(
        kube.namespace, deployment("api", {"keyturn.dev/keyset": "keys"}, node_selector=NOWHERE)
    )
    kube.create_keyset("keys", {"rotation": CALM, "rollout": {"timeout": "3s", "onFailure": "Pause"}})
    return live(kube, reason_true("Stalled", "RolloutPaused"), "Stalled=True RolloutPaused")


def spec_ahead_of_status(kube: Kube, operator: OperatorProcess | None) -> dict[str, Any]:
    """The spec changed while no operator runs: status.observedGeneration lags metadata.generation."""
    assert operator is not None
    kube.create_keyset("keys", {"rotation": CALM})
    live(kube, lambda o: "Ready" in true_conditions(o), "Ready")
    operator.stop()
    kube.patch_keyset("keys", {"spec": {"rotation": {**CALM, "gracePeriod": "8d"}}})
    obj = kube.keyset("keys")
    assert obj["metadata"]["generation"] > obj["status"]["observedGeneration"]
    return obj


def rolled_back(kube: Kube, _operator: OperatorProcess | None) -> dict[str, Any]:
    """A manual rotation, then a manual rollback: the previous key signs again, RolledBack=True."""
    kube.create_keyset("keys", {"rotation": CALM})
    first = live(kube, lambda o: "Ready" in true_conditions(o), "Ready")["status"]["currentKid"]
    kube.patch_keyset("keys", {"metadata": {"annotations": {"keyturn.dev/rotate": "kstatus"}}})
    live(kube, lambda o: o["status"]["currentKid"] != first and "Ready" in true_conditions(o), "rotated")
    kube.patch_keyset("keys", {"metadata": {"annotations": {"keyturn.dev/rollback": "kstatus"}}})
    return live(
        kube,
        lambda o: o["status"]["currentKid"] == first and true_conditions(o) >= {"Ready", "RolledBack"},
        "rolled back to the first key, Ready",
    )


def never_reconciled(kube: Kube, _operator: OperatorProcess | None) -> dict[str, Any]:
    """Created while no operator runs: no status at all."""
    kube.create_keyset("keys", {"rotation": CALM})
    obj = kube.keyset("keys")
    assert "status" not in obj
    return obj


# ----------------------------------------------------------------------------------------- cases


def generation_message(obj: dict[str, Any]) -> str:
    generation, observed = obj["metadata"]["generation"], obj["status"]["observedGeneration"]
    return f"JwtKeySet generation is {generation}, but latest observed generation is {observed}"


@dataclass(frozen=True)
class Case:
    state: Callable[[Kube, OperatorProcess | None], dict[str, Any]]
    status: str
    message: Callable[[dict[str, Any]], str]  # what kstatus says, from the object it judged
    operator: bool = True


CASES = {
    "Ready: Current": Case(ready, "Current", lambda _: "Resource is Ready"),
    "a manual rotation awaiting publishAhead: InProgress, Reconciling's message": Case(
        awaiting_publish_ahead, "InProgress", lambda o: condition(o, "Reconciling")["message"]
    ),
    "a target rolling out: InProgress, Reconciling's message": Case(
        rolling_a_target, "InProgress", lambda o: condition(o, "Reconciling")["message"]
    ),
    "a timing rule broken: Failed, Stalled's message": Case(
        unsafe_timings, "Failed", lambda o: condition(o, "Stalled")["message"]
    ),
    "a rollout paused for a person: Failed, Stalled's message": Case(
        rollout_paused, "Failed", lambda o: condition(o, "Stalled")["message"]
    ),
    "the spec ahead of the status: InProgress": Case(spec_ahead_of_status, "InProgress", generation_message),
    "rolled back, signing with the previous key: Current": Case(
        rolled_back, "Current", lambda _: "Resource is Ready"
    ),
    "no status yet: Current (kstatus has nothing to wait for)": Case(
        never_reconciled, "Current", lambda _: "Resource is current", operator=False
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_kstatus_reads_a_live_keyset_as_docs_gitops_says(
    case: Case, kube: Kube, kstatus: Path, request: pytest.FixtureRequest
) -> None:
    operator: OperatorProcess | None = request.getfixturevalue("keyturn") if case.operator else None
    obj = case.state(kube, operator)
    verdict = judge(kstatus, obj)
    assert verdict["object"] == f"JwtKeySet/{kube.namespace}/keys"
    assert (verdict["status"], verdict["message"]) == (case.status, case.message(obj)), verdict
    assert verdict["message"], "Flux and kstatus tools would show an empty message"


def test_kstatus_judges_a_list_line_by_line_and_refuses_what_is_no_object(kstatus: Path) -> None:
    """`kubectl get jwtks -o json` prints a List: one verdict per item; garbage is a named error."""
    items = [
        {"apiVersion": "keyturn.dev/v1alpha1", "kind": "JwtKeySet", "metadata": {"name": n, "namespace": "a"}}
        for n in ("one", "two")
    ]
    listed = subprocess.run(
        [str(kstatus)],
        input=json.dumps({"apiVersion": "v1", "kind": "List", "items": items}),
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert [json.loads(line)["object"] for line in listed.stdout.splitlines()] == [
        "JwtKeySet/a/one",
        "JwtKeySet/a/two",
    ]
    refused = subprocess.run(
        [str(kstatus)], input="not json", capture_output=True, text=True, timeout=30, check=False
    )
    assert refused.returncode == 2 and "not a Kubernetes object in JSON" in refused.stderr


def test_the_kstatus_program_is_vet_and_gofmt_clean() -> None:
    go, gofmt = shutil.which("go"), shutil.which("gofmt")
    if go is None or gofmt is None:
        pytest.skip("Go is not installed (the quick start and CI require it)")
    vet = subprocess.run(
        [go, "vet", "./..."], cwd=SOURCE, env=go_env(), capture_output=True, text=True, check=False
    )
    assert vet.returncode == 0, vet.stdout + vet.stderr
    unformatted = subprocess.run([gofmt, "-l", "."], cwd=SOURCE, capture_output=True, text=True, check=True)
    assert unformatted.stdout == ""
