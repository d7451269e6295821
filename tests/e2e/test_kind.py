"""End to end on kind: a hub and two member clusters, the Helm chart, a sample ComputeJob.

Needs a Docker engine, kind and helm; elsewhere every test here is skipped with the reason.
Run with ``make test-e2e``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
KIND_DIR = ROOT / "deploy" / "kind"
IMAGE = "computegrid:e2e"


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


def sh(*args: str, timeout: float = 600) -> str:
    done = subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=True)
    return done.stdout


@pytest.fixture(scope="module")
def kind_fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    work = tmp_path_factory.mktemp("kind")
    names = ["cg-hub", "cg-member-a", "cg-member-b"]
    configs = {n: KIND_DIR / f"{n.removeprefix('cg-')}.yaml" for n in names}
    kubeconfigs = {}
    try:
        sh("docker", "build", "-t", IMAGE, str(ROOT), timeout=1800)
        for name, config in configs.items():
            kubeconfig = work / f"{name}.kubeconfig"
            args = ["kind", "create", "cluster", "--name", name, "--kubeconfig", str(kubeconfig)]
            if config.exists():
                args += ["--config", str(config)]
            sh(*args, timeout=900)
            kubeconfigs[name] = kubeconfig
        sh("kind", "load", "docker-image", IMAGE, "--name", "cg-hub")
        yield kubeconfigs
    finally:
        for name in names:
            subprocess.run(["kind", "delete", "cluster", "--name", name], check=False, timeout=300)


def test_chart_installs_and_a_job_is_placed(kind_fleet: dict[str, Path]) -> None:
    hub = str(kind_fleet["cg-hub"])
    sh(
        "helm",
        "install",
        "computegrid",
        str(ROOT / "charts" / "computegrid"),
        "--kubeconfig",
        hub,
        "--namespace",
        "computegrid-system",
        "--create-namespace",
        "--set",
        f"image.repository={IMAGE.split(':')[0]}",
        "--set",
        f"image.tag={IMAGE.split(':')[1]}",
        "--wait",
        timeout=900,
    )
    crds = sh("kubectl", "--kubeconfig", hub, "get", "crd", "-o", "name")
    assert "customresourcedefinition.apiextensions.k8s.io/computejobs.computegrid.io" in crds
    sh("kubectl", "--kubeconfig", hub, "create", "namespace", "team-finance")
    sh(
        "kubectl",
        "--kubeconfig",
        hub,
        "apply",
        "-f",
        str(ROOT / "deploy/samples/backup-shenzhen-east-only.yaml"),
    )
    deadline = time.monotonic() + 300
    phase = None
    while time.monotonic() < deadline:
        body = json.loads(
            sh(
                "kubectl",
                "--kubeconfig",
                hub,
                "-n",
                "team-finance",
                "get",
                "computejobs",
                "ledger-backup",
                "-o",
                "json",
            )
        )
        phase = body.get("status", {}).get("phase")
        if phase in ("Scheduled", "Running", "Succeeded", "Pending"):
            break
        time.sleep(3)
    assert phase is not None, "the operator never wrote a phase"
