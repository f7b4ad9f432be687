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


def test_the_dashboard_is_grafana_json() -> None:
    dashboard = json.loads((CHART / "files" / "dashboard.json").read_text())
    assert dashboard["uid"] and dashboard["title"]
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    assert exprs and all(e.count("(") == e.count(")") for e in exprs)
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    assert {"datasource", "namespace", "keyset"} <= variables
