"""charts/keyturn, offline: its versions, its copies of the CRDs and its dashboard (Helm itself runs in
tests/integration/test_chart.py)."""

from __future__ import annotations

import json
import tomllib

import yaml

import keyturn
from unit.packaging.dockerfile import ROOT

CHART = ROOT / "charts" / "keyturn"
DEPLOY = ROOT / "deploy"
CRD = ROOT / "crds" / "keyturn.dev_jwtkeysets.yaml"


def test_versions_agree() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert chart["appVersion"] == project["version"] == keyturn.__version__ == "0.1.0"


def test_crd_copies_are_byte_identical() -> None:
    """One definition: crds/ is the source; the chart and deploy/ carry exact copies."""
    source = CRD.read_bytes()
    assert (CHART / "crds" / CRD.name).read_bytes() == source, "run: python hack/render_deploy.py"
    assert (DEPLOY / "crds" / CRD.name).read_bytes() == source, "run: python hack/render_deploy.py"


def test_the_chart_ships_only_the_jwtkeyset_crd() -> None:
    """Leader election uses the built-in coordination.k8s.io Lease: kopf's peering CRDs are gone."""
    assert sorted(p.name for p in (CHART / "crds").iterdir()) == [CRD.name]
    assert sorted(p.name for p in (DEPLOY / "crds").glob("*.yaml") if p.name != "kustomization.yaml") == [
        CRD.name
    ]


def test_the_dashboard_is_grafana_json() -> None:
    dashboard = json.loads((CHART / "files" / "dashboard.json").read_text())
    assert dashboard["uid"] and dashboard["title"]
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    assert exprs and all(e.count("(") == e.count(")") for e in exprs)
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    assert {"datasource", "namespace", "keyset"} <= variables
