"""Offline checks of the image recipe, the chart's copies and the committed Kustomize base.

The image cannot be built here (no container engine), so the Dockerfile is checked for what a
reviewer would check by reading it; what needs Helm (lint, rendering, applying) lives in
tests/integration/test_chart.py.
"""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import REGISTRY

import keyturn
import keyturn.metrics  # importing it registers the operator's metrics
from keyturn import cli

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
CHART = ROOT / "charts" / "keyturn"
DEPLOY = ROOT / "deploy"
CRD = ROOT / "crds" / "keyturn.dev_jwtkeysets.yaml"


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [arg for kw, arg in self.instructions if kw == keyword]


def dockerfile_lines() -> Iterator[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    logical = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not logical and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue  # a comment inside a continued instruction
        if line.endswith("\\"):
            logical += line[:-1] + " "
            continue
        logical += line
        keyword, _, args = logical.partition(" ")
        yield keyword.upper(), args.strip()
        logical = ""


def parse_dockerfile() -> tuple[dict[str, str], list[Stage]]:
    """Global ARG defaults and the stages, with FROM's ${ARG}s resolved."""
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for keyword, args in dockerfile_lines():
        if keyword == "FROM":
            words = args.split()
            image = re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: global_args[m.group(1) or m.group(2)], words[0])
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(image, name))
        elif not stages and keyword == "ARG":
            key, _, default = args.partition("=")
            global_args[key] = default
        elif stages:
            stages[-1].instructions.append((keyword, args))
    return global_args, stages


def exec_form(arg: str) -> list[str]:
    value = json.loads(arg)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), arg
    return value


def test_the_image_is_multi_stage_with_pinned_bases() -> None:
    _, stages = parse_dockerfile()
    assert len(stages) >= 2, "a builder stage and a runtime stage"
    for stage in stages:
        repo, _, tag = stage.base.partition(":")
        assert "@sha256:" in stage.base or re.fullmatch(r"\d+\.\d+\.\d+(-[a-z0-9.-]+)?", tag), (
            f"{stage.base}: pin the base image to a full version tag or a digest, never 'latest'"
        )
        assert repo
    assert stages[-1].base == stages[0].base, "the venv only works on the Python it was built with"


def test_the_builder_installs_with_the_lock_file() -> None:
    _, stages = parse_dockerfile()
    builder = stages[0]
    runs = " ".join(builder.all("RUN"))
    assert re.search(r"pip install (\S+ )*-c requirements\.lock", runs), runs
    copied = " ".join(builder.all("COPY"))
    assert "requirements.lock" in copied and "pyproject.toml" in copied


def test_the_runtime_stage_is_slim_non_root_and_read_only_friendly() -> None:
    _, stages = parse_dockerfile()
    final = stages[-1]
    assert "slim" in final.base
    (user,) = final.all("USER")
    uid = user.split(":")[0]
    assert uid.isdigit() and int(uid) != 0, "a numeric non-root USER (runAsNonRoot can only check numbers)"
    copies = final.all("COPY")
    assert copies and all(c.startswith("--from=") for c in copies), "only the builder's output, no sources"
    env = " ".join(final.all("ENV"))
    assert "PYTHONDONTWRITEBYTECODE=1" in env
    assert not final.all("VOLUME"), "the chart mounts /tmp; a VOLUME would hide writes elsewhere"


def test_the_entrypoint_runs_the_operator() -> None:
    _, stages = parse_dockerfile()
    final = stages[-1]
    entrypoint = exec_form(final.all("ENTRYPOINT")[-1])
    cmd = exec_form(final.all("CMD")[-1]) if final.all("CMD") else []
    assert [*entrypoint, *cmd][:2] == ["keyturn", "run"]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["keyturn"] == "keyturn.cli:main"
    cli.parser().parse_args([*entrypoint, *cmd][1:])  # the CLI accepts what the image runs


def test_the_image_has_oci_labels() -> None:
    global_args, stages = parse_dockerfile()
    final = stages[-1]
    labels = " ".join(final.all("LABEL"))
    for key in ("source", "version", "title", "licenses", "revision"):
        assert f"org.opencontainers.image.{key}=" in labels, key
    version_args = [a for a in final.all("ARG") if a.startswith("VERSION=")]
    assert version_args == [f"VERSION={keyturn.__version__}"], "the default version is the package's"
    assert 'org.opencontainers.image.version="${VERSION}"' in labels
    licence = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["license"]
    assert f'org.opencontainers.image.licenses="{licence}"' in labels
    assert global_args


def test_no_remote_add() -> None:
    for keyword, args in dockerfile_lines():
        if keyword == "ADD":
            assert not re.search(r"\b(https?|git)://|git@", args), f"ADD of a remote source: {args}"


def test_the_build_context_is_an_allow_list_covering_every_copy() -> None:
    ignore = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert ignore[0] == "*", "exclude everything, then allow what the build copies"
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    _, stages = parse_dockerfile()
    for stage in stages:
        for copy in stage.all("COPY"):
            words = [w for w in shlex.split(copy) if not w.startswith("--")]
            if any(w.startswith("--from=") for w in shlex.split(copy)):
                continue
            for source in words[:-1]:
                assert source.rstrip("/") in allowed, f"COPY {source} is excluded by .dockerignore"


def test_versions_agree() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert chart["appVersion"] == project["version"] == keyturn.__version__ == "0.1.0"


def test_crd_copies_are_byte_identical() -> None:
    """One definition: crds/ is the source; the chart and deploy/ carry exact copies."""
    source = CRD.read_bytes()
    assert (CHART / "crds" / CRD.name).read_bytes() == source, "run: python hack/render_deploy.py"
    assert (DEPLOY / "crds" / CRD.name).read_bytes() == source, "run: python hack/render_deploy.py"
    for peering in (CHART / "crds").glob("kopf.dev_*.yaml"):
        assert (DEPLOY / "crds" / peering.name).read_bytes() == peering.read_bytes()


def test_the_chart_ships_kopfs_peering_crds() -> None:
    docs = [d for d in yaml.safe_load_all((CHART / "crds" / "kopf.dev_peerings.yaml").read_text()) if d]
    by_name = {d["metadata"]["name"]: d for d in docs}
    assert set(by_name) == {"clusterkopfpeerings.kopf.dev", "kopfpeerings.kopf.dev"}
    assert by_name["clusterkopfpeerings.kopf.dev"]["spec"]["scope"] == "Cluster"
    assert by_name["kopfpeerings.kopf.dev"]["spec"]["scope"] == "Namespaced"
    for doc in docs:
        (version,) = doc["spec"]["versions"]
        assert version["name"] == "v1" and version["served"] and version["storage"]
        status = version["schema"]["openAPIV3Schema"]["properties"]["status"]
        assert status["x-kubernetes-preserve-unknown-fields"] is True  # keep-alives are free-form
        assert "subresources" not in version  # kopf patches status through the main resource


def deploy_objects() -> list[dict[str, Any]]:
    kustomization = yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())
    objects: list[dict[str, Any]] = []
    for entry in kustomization["resources"]:
        path = DEPLOY / entry
        files = (
            [path / r for r in yaml.safe_load((path / "kustomization.yaml").read_text())["resources"]]
            if path.is_dir()
            else [path]
        )
        for f in files:
            objects += [d for d in yaml.safe_load_all(f.read_text()) if d]
    return objects


def test_every_deploy_file_is_in_the_kustomization() -> None:
    listed = set(yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())["resources"])
    crds = set(yaml.safe_load((DEPLOY / "crds" / "kustomization.yaml").read_text())["resources"])
    on_disk = {p.name for p in DEPLOY.iterdir() if p.is_file() and p.name != "kustomization.yaml"}
    assert on_disk | {"crds"} == listed
    assert {p.name for p in (DEPLOY / "crds").iterdir() if p.name != "kustomization.yaml"} == crds


def test_the_committed_deployment_runs_hardened_with_the_images_user() -> None:
    deployments = [o for o in deploy_objects() if o["kind"] == "Deployment"]
    assert {d["metadata"]["name"] for d in deployments} == {"keyturn", "keyturn-jwks-server"}
    _, stages = parse_dockerfile()
    (user,) = stages[-1].all("USER")
    for deployment in deployments:  # the operator and the JWKS server
        pod = deployment["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        ctx = container["securityContext"]
        assert ctx["runAsUser"] == pod["securityContext"]["runAsUser"] == int(user.split(":")[0])
        assert ctx["runAsNonRoot"] is True and pod["securityContext"]["runAsNonRoot"] is True
        assert ctx["readOnlyRootFilesystem"] is True
        assert ctx["allowPrivilegeEscalation"] is False
        assert ctx["capabilities"] == {"drop": ["ALL"]}
        assert ctx["seccompProfile"] == {"type": "RuntimeDefault"}
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert "emptyDir" in volumes[mounts["/tmp"]]
    (deployment,) = [d for d in deployments if d["metadata"]["name"] == "keyturn"]
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "health"}
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert f"--health-port={ports['health']}" in container["args"]
    assert f"--metrics-port={ports['metrics']}" in container["args"]
    # The image's ENTRYPOINT is `keyturn`: the chart's args must be a command line the CLI accepts.
    cli.parser().parse_args(container["args"])
    assert "--peering=keyturn" in container["args"]


def test_the_committed_deployment_runs_an_active_and_a_standby_replica() -> None:
    """Two peered replicas (random priorities: one acts, one stands by), kept by a budget of one
    through node drains, and preferably on different nodes."""
    objs = deploy_objects()
    (deployment,) = [o for o in objs if o["kind"] == "Deployment" and o["metadata"]["name"] == "keyturn"]
    assert deployment["spec"]["replicas"] == 2
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    peering = [a for a in container["args"] if a.startswith("--peering=")]
    assert peering == ["--peering=keyturn"] and "--standalone" not in container["args"]
    assert not [a for a in container["args"] if a.startswith("--priority")], "each replica draws its own"
    (pdb,) = [o for o in objs if o["kind"] == "PodDisruptionBudget" and o["metadata"]["name"] == "keyturn"]
    assert pdb["metadata"]["namespace"] == deployment["metadata"]["namespace"]
    assert pdb["spec"] == {"minAvailable": 1, "selector": deployment["spec"]["selector"]}
    (spread,) = pod["topologySpreadConstraints"]
    assert spread["topologyKey"] == "kubernetes.io/hostname"
    assert spread["whenUnsatisfiable"] == "ScheduleAnyway", "soft: a one-node cluster still runs both"
    assert spread["labelSelector"] == deployment["spec"]["selector"]


def test_the_committed_rbac_has_no_wildcards() -> None:
    for obj in deploy_objects():
        if obj["kind"] in ("Role", "ClusterRole"):
            for rule in obj.get("rules") or ():
                for key in ("verbs", "resources", "apiGroups", "resourceNames", "nonResourceURLs"):
                    assert "*" not in (rule.get(key) or []), (obj["metadata"]["name"], rule)


def exposed_metric_names() -> set[str]:
    """Names as Prometheus scrapes them (counters with _total, histograms with their series)."""
    names: set[str] = set()
    for family in REGISTRY.collect():
        if not family.name.startswith("keyturn_"):
            continue
        if family.type == "counter":
            names.add(f"{family.name}_total")
        elif family.type == "histogram":
            names |= {family.name, *(f"{family.name}_{s}" for s in ("bucket", "count", "sum"))}
        else:
            names.add(family.name)
    return names


def test_every_metric_is_documented() -> None:
    doc = (ROOT / "docs" / "metrics.md").read_text()
    exposed = exposed_metric_names()
    assert len(exposed) >= 12
    missing = sorted(
        n for n in exposed if not n.endswith(("_bucket", "_count", "_sum")) and f"`{n}" not in doc
    )
    assert not missing, f"docs/metrics.md does not describe {missing}"


@pytest.mark.parametrize(
    "path",
    [
        CHART / "files" / "dashboard.json",
        CHART / "templates" / "prometheusrule.yaml",
        ROOT / "docs" / "metrics.md",
    ],
    ids=lambda p: p.name,
)
def test_dashboards_alerts_and_docs_only_use_metrics_that_exist(path: Path) -> None:
    used = set(re.findall(r"\bkeyturn_[a-z_]+\b", path.read_text()))
    unknown = sorted(used - exposed_metric_names())
    assert not unknown, f"{path.name} refers to metrics the operator does not expose: {unknown}"


def test_the_dashboard_is_grafana_json() -> None:
    dashboard = json.loads((CHART / "files" / "dashboard.json").read_text())
    assert dashboard["uid"] and dashboard["title"]
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    assert exprs and all(e.count("(") == e.count(")") for e in exprs)
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    assert {"datasource", "namespace", "keyset"} <= variables
