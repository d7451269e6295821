"""End to end on kind: a hub and two member clusters, the Helm chart, the samples, placements.

The operator image is built from this checkout and runs in the hub as the chart installs it;
the members are registered the way the README tells a user (their internal kubeconfigs as
Secrets, then MemberClusters). Assertions:

* both members turn Ready with the power mix of their node labels (``kubectl computegrid
  fleet``);
* small jobs land where the policy says on this two-member fleet (member A: Chengdu, 140
  gCO2e/kWh; member B: Qingyang, 477 gCO2e/kWh but cheaper), a Job exists on that member, and
  ``kubectl computegrid why`` prints the decision;
* every sample gets the same answer from the operator as from ``kubectl computegrid explain``
  against the live fleet just before it is applied; the three that no cluster here can take
  (east-only data, a 5 ms budget from Shanghai, supercomputing) are Pending with the filter
  that rejected them.

Needs a Docker engine, kind, helm and kubectl; elsewhere every test is skipped with the
reason. ``make test-e2e`` runs it; ``.github/workflows/e2e-kind.yml`` in CI. The hub's
objects and the operator's log are written to ``out/e2e/`` whatever the outcome.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
KIND_DIR = ROOT / "deploy" / "kind"
SAMPLES = ROOT / "deploy" / "samples"
OUT = ROOT / "out" / "e2e"
IMAGE = "computegrid:e2e"
HUB, MEMBERS = "cg-hub", ("cg-member-a", "cg-member-b")
SECRET_NS = "computegrid-system"
PLUGIN = Path(sys.executable).with_name("kubectl-computegrid")


def docker_engine() -> str | None:
    """None when a Docker engine answers, else why not (the skip reason)."""
    if shutil.which("docker") is None:
        return "no docker client on PATH"
    try:
        done = subprocess.run(
            ["docker", "info", "--format", "{{.ServerVersion}}"],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return "docker info timed out"
    if done.returncode != 0:
        return "no Docker engine is running (docker info failed): the kind tier needs one"
    return None


def missing_tools() -> str | None:
    for tool in ("kind", "helm", "kubectl"):
        if shutil.which(tool) is None:
            return f"{tool} is not on PATH"
    return None


REASON = docker_engine() or missing_tools()
pytestmark = [pytest.mark.e2e, pytest.mark.skipif(REASON is not None, reason=f"kind e2e: {REASON}")]


def sh(*args: str | Path, timeout: float = 600, stdin: str | None = None, **env: str) -> str:
    done = subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, timeout=timeout, input=stdin,
        env={**os.environ, **env}, check=False,
    )  # fmt: skip
    assert done.returncode == 0, f"{' '.join(map(str, args))}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def wait_for(what: str, check: Any, timeout: float = 300, interval: float = 3) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out after {timeout:.0f} s waiting for {what}"
        time.sleep(interval)


class Hub:
    def __init__(self, kubeconfig: Path) -> None:
        self.kubeconfig = kubeconfig

    def kubectl(self, *args: str | Path, stdin: str | None = None) -> str:
        return sh("kubectl", "--kubeconfig", self.kubeconfig, *args, stdin=stdin)

    def get(self, *args: str) -> Any:
        return json.loads(self.kubectl("get", *args, "-o", "json"))

    def plugin(self, *args: str | Path) -> str:
        """kubectl computegrid, found on PATH as a user's kubectl would find it."""
        path = f"{PLUGIN.parent}:{os.environ.get('PATH', '')}"
        return sh("kubectl", "computegrid", *args, KUBECONFIG=str(self.kubeconfig), PATH=path)


def dump(hub: Hub) -> None:
    """The hub's objects and the operator's log, for the CI artifact."""
    OUT.mkdir(parents=True, exist_ok=True)
    for name, args in {
        "objects.yaml": ("get", "memberclusters,computejobs", "-A", "-o", "yaml"),
        "pods.txt": ("get", "pods", "-A", "-o", "wide"),
        "operator.log": ("-n", SECRET_NS, "logs", "-l", "app.kubernetes.io/name=computegrid",
                         "--all-containers", "--tail=-1", "--prefix"),
    }.items():  # fmt: skip
        done = subprocess.run(["kubectl", "--kubeconfig", str(hub.kubeconfig), *args],
                              capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
        (OUT / name).write_text(done.stdout + done.stderr, encoding="utf-8")


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    work = tmp_path_factory.mktemp("kind")
    kubeconfigs: dict[str, Path] = {}
    the_hub: Hub | None = None
    try:
        sh("docker", "build", "-t", IMAGE, ROOT, timeout=1800)
        for name in (HUB, *MEMBERS):
            kubeconfigs[name] = work / f"{name}.kubeconfig"
            sh("kind", "create", "cluster", "--name", name, "--kubeconfig", kubeconfigs[name],
               "--config", KIND_DIR / f"{name.removeprefix('cg-')}.yaml", timeout=900)  # fmt: skip
        sh("kind", "load", "docker-image", IMAGE, "--name", HUB)
        the_hub = Hub(kubeconfigs[HUB])
        # The chart first (it brings the CRDs), then the members, as the README has it.
        repository, tag = IMAGE.split(":")
        sh("helm", "install", "computegrid", ROOT / "charts" / "computegrid",
           "--kubeconfig", the_hub.kubeconfig, "--namespace", SECRET_NS, "--create-namespace",
           "--set", f"image.repository={repository}", "--set", f"image.tag={tag}",
           "--set", "image.pullPolicy=Never", "--wait", "--timeout", "10m", timeout=900)  # fmt: skip
        for name in MEMBERS:
            internal = sh("kind", "get", "kubeconfig", "--internal", "--name", name)
            secret = the_hub.kubectl("-n", SECRET_NS, "create", "secret", "generic", name,
                                     "--from-file=kubeconfig=/dev/stdin", "--dry-run=client",
                                     "-o", "yaml", stdin=internal)  # fmt: skip
            the_hub.kubectl("apply", "-f", "-", stdin=secret)
        the_hub.kubectl("apply", "-f", KIND_DIR / "members.yaml")
        yield the_hub
    finally:
        if the_hub is not None:
            dump(the_hub)
        for name in kubeconfigs:
            subprocess.run(["kind", "delete", "cluster", "--name", name], check=False, timeout=300)


def ready_members(hub: Hub) -> list[dict[str, Any]] | None:
    rows: list[dict[str, Any]] = json.loads(hub.plugin("fleet", "-o", "json"))
    return rows if len(rows) == 2 and all(r["ready"] for r in rows) else None


def test_members_turn_ready_with_their_power_mix(hub: Hub) -> None:
    rows = {r["cluster"]: r for r in wait_for("both members Ready", lambda: ready_members(hub))}
    assert rows["cg-member-a"]["carbonIntensity"] == pytest.approx(140.4)
    assert rows["cg-member-b"]["carbonIntensity"] == pytest.approx(477.2)
    assert rows["cg-member-b"]["pricePerKWh"] == pytest.approx(0.38)
    for row in rows.values():
        assert "cpu" in row["free"]["general"]
    assert "cg-member-a" in hub.plugin("fleet")


def small_job(name: str, origin: str, sensitivity: str) -> str:
    return yaml.safe_dump({
        "apiVersion": "computegrid.io/v1alpha1", "kind": "ComputeJob",
        "metadata": {"name": name, "namespace": "e2e", "annotations": {
            "computegrid.io/origin": origin, "computegrid.io/latency-sensitivity": sensitivity}},
        "spec": {"computeType": "general", "parallelism": 1,
                 "resources": {"cpu": "100m", "memory": "64Mi"},
                 "template": {"spec": {"restartPolicy": "Never", "containers": [
                     {"name": "main", "image": "busybox:1.36", "command": ["true"]}]}}},
    })  # fmt: skip


def decision(hub: Hub, namespace: str, name: str) -> dict[str, Any] | None:
    status = hub.get("-n", namespace, "computejob", name).get("status") or {}
    return status if status.get("phase") else None


@pytest.mark.parametrize(
    ("name", "origin", "sensitivity", "cluster"),
    [
        # Low work goes to the lowest carbon (carbon 5 : price 1): A's 140 beats B's 477.
        ("green-batch", "shanghai", "low", "cg-member-a"),
        # High work from Chengdu: only A is inside 5 ms.
        ("near-chengdu", "chengdu", "high", "cg-member-a"),
        # High work from Qingyang: only B is.
        ("near-qingyang", "qingyang", "high", "cg-member-b"),
    ],
)
def test_small_jobs_land_where_the_policy_says(
    hub: Hub, name: str, origin: str, sensitivity: str, cluster: str
) -> None:
    wait_for("both members Ready", lambda: ready_members(hub))
    hub.kubectl("apply", "-f", "-", stdin=yaml.safe_dump({"apiVersion": "v1", "kind": "Namespace",
                                                          "metadata": {"name": "e2e"}}))  # fmt: skip
    hub.kubectl("apply", "-f", "-", stdin=small_job(name, origin, sensitivity))
    status = wait_for(f"{name} placed", lambda: decision(hub, "e2e", name))
    assert status["phase"] != "Pending", status.get("message")
    assert status["placement"]["cluster"] == cluster
    remote = wait_for(f"{name} on its member", lambda: decision(hub, "e2e", name).get("remote"))
    member = sh("kind", "get", "kubeconfig", "--name", cluster)
    member_kubeconfig = hub.kubeconfig.with_name(f"{cluster}.kubeconfig")
    member_kubeconfig.write_text(member, encoding="utf-8")
    sh("kubectl", "--kubeconfig", member_kubeconfig, "-n", remote["namespace"], "get", "job",
       remote["name"])  # fmt: skip
    assert f"→ {cluster}" in hub.plugin("why", name, "-n", "e2e")


# Samples no cluster of this fleet may take, and the filter that says so.
REFUSED = {
    "ledger-backup": "AllowedRegions",  # east only; both members are west
    "risk-engine": "LatencyBudget",  # 5 ms from Shanghai
    "climate-model": "ComputeType",  # supercomputing; both members are general
}


@pytest.mark.parametrize("sample", sorted(p.name for p in SAMPLES.glob("*.yaml")))
def test_each_sample_lands_where_the_live_explain_says(hub: Hub, sample: str) -> None:
    wait_for("both members Ready", lambda: ready_members(hub))
    path = SAMPLES / sample
    job = yaml.safe_load(path.read_text(encoding="utf-8"))
    namespace, name = job["metadata"]["namespace"], job["metadata"]["name"]
    predicted = json.loads(hub.plugin("explain", "-f", path, "-o", "json"))
    hub.kubectl("apply", "-f", "-", stdin=yaml.safe_dump({"apiVersion": "v1", "kind": "Namespace",
                                                          "metadata": {"name": namespace}}))  # fmt: skip
    hub.kubectl("apply", "-f", path)
    status = wait_for(f"{name}'s decision", lambda: decision(hub, namespace, name))
    if predicted["placement"] is None:
        assert status["phase"] == "Pending", (
            f"{name}: explain said Pending: {predicted['diagnosis']}"
        )
    else:
        assert status["placement"]["cluster"] == predicted["placement"]["cluster"]
    if name in REFUSED:
        assert status["phase"] == "Pending"
        rejected = {c["filter"] for c in predicted["clusters"]}
        assert rejected == {REFUSED[name]}, predicted["clusters"]
        assert REFUSED[name] in (status.get("message") or ""), status.get("message")
