"""Two replicas, as the chart runs them: one acts, the other stands by and takes over.

Both run `keyturn run --peering NAME` without `--priority`, so each draws a random kopf peering
priority; kopf pauses every replica that sees a live peer of a higher one. The peering object is
the one the chart creates in namespaced mode (rendered by the chart, not spelled out here), and
kopf keeps each replica's identity and priority in its status, which tells which replica must act.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes.client import ApiException

import localcluster
from helpers import wait_for
from kubetools import Kube, OperatorProcess

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "keyturn"
ROTATION = {"interval": "30d", "publishAhead": "0s", "gracePeriod": "7d", "retention": "14d"}
# kopf's own words (kopf/_core/engines/peering.py), logged at INFO: hence `-v` below.
PAUSED = "Pausing operations in favour of"
TIE = "Pausing all operators, including self"
RESUMED = "Resuming operations after the pause"
# A peer that dies without leaving is presumed alive for its lifetime: kopf's default, 60 s.
PEERING_LIFETIME = 60


def chart_for(namespace: str) -> tuple[dict[str, Any], str]:
    """The KopfPeering the chart creates for `watchNamespaces: [namespace]`, and the operator's
    `--peering=` argument from the same render."""
    helm = localcluster.ensure_binaries() / "helm"
    result = subprocess.run(
        [
            str(helm),
            "template",
            "keyturn",
            str(CHART),
            "--namespace",
            "keyturn-system",
            "--kube-version",
            localcluster.versions()["KUBERNETES_VERSION"],
            "--set",
            f"watchNamespaces={{{namespace}}}",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    objs = [d for d in yaml.safe_load_all(result.stdout) if d]
    (peering,) = [o for o in objs if o["kind"] == "KopfPeering"]
    (deployment,) = [o for o in objs if o["kind"] == "Deployment"]
    assert deployment["spec"]["replicas"] == 2
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    (flag,) = [a for a in container["args"] if a.startswith("--peering=")]
    assert flag == f"--peering={peering['metadata']['name']}"
    assert not [a for a in container["args"] if a.startswith("--priority")]  # random per replica
    return peering, flag


def peers(kube: Kube, name: str) -> dict[str, dict[str, Any]]:
    """Live and recently live replicas by identity, as kopf records them: priority, lifetime, lastseen."""
    obj = kube.custom.get_namespaced_custom_object("kopf.dev", "v1", kube.namespace, "kopfpeerings", name)
    assert isinstance(obj, dict)
    return dict(obj.get("status") or {})


def log_records(operator: OperatorProcess) -> list[dict[str, Any]]:
    records = []
    for line in operator.log_text().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue  # e.g. a traceback's continuation line
        if isinstance(record, dict):
            records.append(record)
    return records


def acted_on(operator: OperatorProcess, keyset: str) -> list[str]:
    """Keyturn's own log lines about the keyset: written only by a replica that reconciles it."""
    return [
        str(r.get("message"))
        for r in log_records(operator)
        if str(r.get("logger", "")).startswith("keyturn") and r.get("keyset") == keyset
    ]


def kopf_says(operator: OperatorProcess, *texts: str) -> list[str]:
    """kopf's log lines containing one of the texts, in order."""
    return [
        str(r.get("message"))
        for r in log_records(operator)
        if str(r.get("logger", "")).startswith("kopf") and any(t in str(r.get("message")) for t in texts)
    ]


def acting(operator: OperatorProcess) -> bool:
    """Whether kopf's last peering decision was to resume. With a mandatory peering (`--peering`)
    kopf starts paused and logs only changes: a replica that joins below a live higher one stays
    paused without a word, one that was acting logs the pause."""
    decisions = kopf_says(operator, RESUMED, PAUSED, TIE)
    return bool(decisions) and RESUMED in decisions[-1]


def test_one_replica_acts_and_the_standby_takes_over_when_it_exits(
    cluster: localcluster.Cluster, kube: Kube, namespace: str, tmp_path: Path
) -> None:
    cluster.apply_crds([CHART / "crds" / "kopf.dev_peerings.yaml"])
    peering, flag = chart_for(namespace)
    name = peering["metadata"]["name"]
    assert peering["metadata"]["namespace"] == namespace
    kube.custom.create_namespaced_custom_object("kopf.dev", "v1", namespace, "kopfpeerings", peering)

    replicas = {
        pod_id: OperatorProcess(
            kubeconfig=Path(cluster.kubeconfig),
            namespace=namespace,
            log_path=tmp_path / f"{pod_id}.log",
            env_extra={"POD_ID": pod_id},  # kopf's identity in the peering object, as in the chart
            extra_args=[flag, "-v"],  # -v: kopf's INFO lines (pausing, resuming) are kept
        )
        for pod_id in ("keyturn-a", "keyturn-b")
    }
    first_id, second_id = replicas
    first, second = replicas[first_id], replicas[second_id]
    try:
        # One at a time, so that each replica's first view of the peering is known: the first is
        # alone and acts; the second joins while the first's keep-alive is already recorded.
        first.start()
        wait_for(lambda: first_id in peers(kube, name), 60, message=f"{first_id}'s keep-alive")
        wait_for(lambda: acting(first), 60, message=f"{first_id} acting alone")
        second.start()

        def both_recorded() -> dict[str, dict[str, Any]] | None:
            found = peers(kube, name)
            return found if set(replicas) <= set(found) else None

        seen = wait_for(both_recorded, 60, message=f"{second_id}'s keep-alive next to {first_id}'s")
        priorities = {pod_id: int(seen[pod_id]["priority"]) for pod_id in replicas}
        assert len(set(priorities.values())) == 2, f"random priorities tied: {priorities}"
        active_id = max(priorities, key=lambda p: priorities[p])
        (standby_id,) = set(replicas) - {active_id}
        active, standby = replicas[active_id], replicas[standby_id]

        if active is second:  # the first steps back in favour of the newcomer
            wait_for(lambda: not acting(first), 60, message=f"{first_id} pausing in favour of {second_id}")
            pauses = kopf_says(first, PAUSED)
            assert pauses and all(f"<Peer {second_id}:" in p for p in pauses), pauses
            wait_for(lambda: acting(second), 60, message=f"{second_id} acting")
        else:  # the newcomer saw a higher live peer from the start: it never resumed
            assert not kopf_says(second, RESUMED), kopf_says(second, RESUMED)
        assert not kopf_says(active, PAUSED, TIE) and not kopf_says(standby, TIE)

        # Exactly one replica handles the keyset.
        kube.create_keyset("keys", {"algorithm": "ES256", "rotation": ROTATION})
        ready = kube.wait_ready("keys", timeout=90)
        assert acted_on(active, "keys"), active.log_text()[-3000:]
        assert not acted_on(standby, "keys"), acted_on(standby, "keys")
        assert acting(active) and not acting(standby)
        prepared = ready["nextKid"]

        # The active replica stops as a Pod does (SIGTERM) and leaves the peering on its way out.
        assert active.proc is not None
        active.proc.terminate()
        assert active.wait_exit(timeout=60) == 0, active.log_text()[-3000:]
        assert active_id not in peers(kube, name), "a graceful exit removes its keep-alive"
        assert standby_id in peers(kube, name)

        # The standby resumes at once (not after the leaver's 60 s lifetime) and handles a request.
        kube.patch_keyset("keys", {"metadata": {"annotations": {"keyturn.dev/rotate": "ha"}}})
        status = kube.wait_status(
            "keys",
            lambda s: s.get("lastHandledRotate") == "ha",
            PEERING_LIFETIME / 2,
            f"the rotation handled by the standby {standby_id}",
        )
        assert status["currentKid"] == prepared
        assert acted_on(standby, "keys"), standby.log_text()[-3000:]
        assert acting(standby), kopf_says(standby, RESUMED, PAUSED, TIE)
    finally:
        for replica in replicas.values():
            replica.stop()
        try:
            kube.custom.delete_namespaced_custom_object("kopf.dev", "v1", namespace, "kopfpeerings", name)
        except ApiException as exc:
            if exc.status != 404:
                raise
