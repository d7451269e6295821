"""The Helm chart, rendered and installed on the test bed's hub (a real API server with RBAC).

The hub has no kubelet, so the operator's pods never start here: this proves what the chart
creates and what its ServiceAccount may do, not that the image runs (that is the kind tier).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from computegrid import testbed

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "computegrid"
RELEASE = "cgchart"
NAMESPACE = "cgchart-system"


def helm_binary() -> Path:
    helm = testbed.bin_dir() / "helm"
    if not helm.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{helm} is missing: `make testbed-build` builds it")
        pytest.skip(f"{helm} is missing: run `make testbed-build`")
    return helm


def run(*args: str | Path, kubeconfig: Path | None = None) -> str:
    env = {**os.environ, "PATH": f"{testbed.bin_dir()}:{os.environ.get('PATH', '')}"}
    if kubeconfig is not None:
        env["KUBECONFIG"] = str(kubeconfig)
    done = subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, timeout=300, env=env, check=False
    )
    assert done.returncode == 0, f"{' '.join(map(str, args))}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def render(*extra: str) -> list[dict[str, Any]]:
    text = run(helm_binary(), "template", RELEASE, CHART, "--namespace", NAMESPACE, *extra)
    return [doc for doc in yaml.safe_load_all(text) if doc]


def test_lint_and_render() -> None:
    out = run(helm_binary(), "lint", CHART)
    assert "1 chart(s) linted, 0 chart(s) failed" in out
    objects = render()
    deployments = [o for o in objects if o["kind"] == "Deployment"]
    assert len(deployments) == 2
    peering, priority = set(), set()
    for deployment in deployments:
        args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
        peering |= {a for a in args if a.startswith("--peering=")}
        priority |= {a for a in args if a.startswith("--priority=")}
    # One peering, distinct priorities: equal priorities would pause every replica.
    assert peering == {"--peering=computegrid"}
    assert len(priority) == 2
    kinds = {o["kind"] for o in objects}
    assert {"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "Service"} <= kinds


def test_chart_crds_are_the_generated_ones() -> None:
    for crd in (ROOT / "crds").glob("*.yaml"):
        assert (CHART / "crds" / crd.name).read_text() == crd.read_text(), crd.name


@pytest.fixture(scope="module")
def installed(fleet: testbed.FleetInfo) -> Iterator[Path]:
    hub = fleet.hub.kubeconfig
    helm = helm_binary()
    run(helm, "install", RELEASE, CHART, "--namespace", NAMESPACE, "--create-namespace",
        kubeconfig=hub)  # fmt: skip
    try:
        yield hub
    finally:
        run(helm, "uninstall", RELEASE, "--namespace", NAMESPACE, "--wait", kubeconfig=hub)


def can_i(hub: Path, *what: str) -> bool:
    sa = f"system:serviceaccount:{NAMESPACE}:{RELEASE}"
    env = {**os.environ, "KUBECONFIG": str(hub)}
    done = subprocess.run(
        [str(testbed.bin_dir() / "kubectl"), "auth", "can-i", f"--as={sa}", *what],
        capture_output=True, text=True, timeout=60, env=env, check=False,
    )  # fmt: skip
    answer = done.stdout.strip()
    assert answer in ("yes", "no"), done.stderr
    return answer == "yes"


def test_install_creates_what_the_operator_needs(installed: Path) -> None:
    names = run("kubectl", "get", "crd", "-o", "name", kubeconfig=installed)
    for crd in ("computejobs.computegrid.io", "memberclusters.computegrid.io",
                "kopfpeerings.kopf.dev", "clusterkopfpeerings.kopf.dev"):  # fmt: skip
        assert f"customresourcedefinition.apiextensions.k8s.io/{crd}" in names
    deployments = run("kubectl", "-n", NAMESPACE, "get", "deployments", "-o", "name",
                      kubeconfig=installed)  # fmt: skip
    assert len(deployments.split()) == 2
    peering = run("kubectl", "get", "clusterkopfpeerings", "-o", "name", kubeconfig=installed)
    assert "computegrid" in peering


@pytest.mark.parametrize(
    ("what", "allowed"),
    [
        (("patch", "computejobs.computegrid.io", "-A"), True),
        (("patch", "computejobs.computegrid.io", "--subresource=status", "-A"), True),
        (("watch", "memberclusters.computegrid.io"), True),
        (("patch", "memberclusters.computegrid.io", "--subresource=status"), True),
        (("create", "events", "-n", "team-a"), True),
        (("get", "secrets", "-n", "computegrid-system"), True),
        (("list", "customresourcedefinitions.apiextensions.k8s.io"), True),
        (("patch", "clusterkopfpeerings.kopf.dev"), True),
        # Least privilege: nothing beyond what the operator does.
        (("get", "secrets", "-n", "kube-system"), False),
        (("delete", "computejobs.computegrid.io", "-A"), False),
        (("delete", "nodes"), False),
        (("create", "pods", "-n", "team-a"), False),
    ],
)
def test_service_account_rbac(installed: Path, what: tuple[str, ...], allowed: bool) -> None:
    assert can_i(installed, *what) is allowed
