"""The chart's admission policy installed once per test session on the test bed's hub.

Once per session, not per module: after one release's policy, binding and params namespace
are deleted, a second release's binding on the same v1.36 API server kept answering "no
params found" for minutes although its ConfigMap was there (seen twice); one release shared
by test_admission and test_bad_input avoids that, and costs one install.
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from test_chart import CHART, helm_binary, kubectl, run

from computegrid import testbed
from computegrid.api import restricted_template


def _with(**pod: Any) -> dict[str, Any]:
    return restricted_template("busybox", restartPolicy="Never", **pod)


@dataclass
class Admission:
    hub: Path
    release: str
    namespace: str  # the release's
    tenant: str  # restricted (the default)
    trusted: str  # relaxed to baseline by the policy
    workdir: Path

    def create(self, name: str, template: dict[str, Any], namespace: str | None = None) -> str:
        """``kubectl create`` of a ComputeJob; "" when admitted, else kubectl's error."""
        body = {
            "apiVersion": "computegrid.io/v1alpha1",
            "kind": "ComputeJob",
            "metadata": {
                "name": name,
                "namespace": namespace or self.tenant,
                "annotations": {"computegrid.io/origin": "shanghai"},
            },
            "spec": {"resources": {"cpu": "1"}, "template": template},
        }
        return self.apply(body)

    def apply(self, body: dict[str, Any], verb: str = "create") -> str:
        """``kubectl <verb> -f`` of any manifest; "" when the hub took it, else the error."""
        path = self.workdir / f"{uuid.uuid4().hex}.json"
        path.write_text(json.dumps(body), encoding="utf-8")
        done = subprocess.run(
            [str(testbed.bin_dir() / "kubectl"), verb, "-f", str(path)],
            capture_output=True, text=True, timeout=60, check=False,
            env={"KUBECONFIG": str(self.hub), "PATH": "/usr/bin:/bin"},
        )  # fmt: skip
        return "" if done.returncode == 0 else done.stderr


@pytest.fixture(scope="session")
def admission(
    fleet: testbed.FleetInfo, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Admission]:
    hub = Path(fleet.hub.kubeconfig)
    suffix = uuid.uuid4().hex[:6]
    adm = Admission(
        # A release of its own per module: a previous module's cluster-scoped policy and
        # binding may still be going away when this one installs.
        hub, f"cgadm-{suffix}", f"cgadm-{suffix}", f"tenant-{suffix}", f"trusted-{suffix}",
        tmp_path_factory.mktemp("admission"),
    )  # fmt: skip
    # Admission in this fixture's namespaces only: the policy lives for the whole session and
    # must not refuse other modules' ComputeJobs (they test the operator's own checks).
    scope = {"matchLabels": {"computegrid.io/test-admission": suffix}}
    values = {"admission": {"namespaces": {adm.trusted: {"level": "baseline"}},
                            "allowedPriorityClasses": ["batch-low"],
                            "namespaceSelector": scope}}  # fmt: skip
    _drop_earlier_policies(hub)
    run(helm_binary(), "install", adm.release, CHART, "--namespace", adm.namespace,
        "--create-namespace", "--set-json", f"admission={json.dumps(values['admission'])}",
        kubeconfig=hub)  # fmt: skip
    for ns in (adm.tenant, adm.trusted):
        kubectl(hub, "create", "namespace", ns)
        kubectl(hub, "label", "namespace", ns, f"computegrid.io/test-admission={suffix}")
    try:
        # The API server compiles a new policy and binding asynchronously: wait until it bites.
        deadline = time.monotonic() + 180  # minutes on a loaded machine
        probe = _with(hostNetwork=True)
        while "(rule hostNamespaces)" not in adm.create(f"probe-{uuid.uuid4().hex[:6]}", probe):
            assert time.monotonic() < deadline, "the admission policy never took effect"
            time.sleep(1)
        yield adm
    finally:
        run(helm_binary(), "uninstall", adm.release, "--namespace", adm.namespace, "--wait",
            kubeconfig=hub, check=False)  # fmt: skip
        _drop_earlier_policies(hub)
        for ns in (adm.tenant, adm.trusted, adm.namespace):
            kubectl(hub, "delete", "namespace", ns, "--wait=false", "--ignore-not-found")


def _drop_earlier_policies(hub: Path) -> None:
    """Another module's release may have left its cluster-scoped policy and binding (their
    params namespace gone, they deny every ComputeJob): remove them before and after."""
    kinds = "validatingadmissionpolicybindings,validatingadmissionpolicies"
    names = kubectl(hub, "get", kinds, "-o", "name").split()
    ours = [n for n in names if n.split("/", 1)[1].startswith("cgadm-")]
    if ours:
        kubectl(hub, "delete", *ours, "--ignore-not-found", "--wait=true")
        time.sleep(2.0)  # the API server's admission plugin drops them from its cache
