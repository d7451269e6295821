"""Fixtures for the operator's integration tests: MemberClusters and a real operator process.

Why a subprocess: the operator is proved as users run it (``computegrid run``), and a restart
or kill test needs a real process. Intervals are short (probe 1 s, sync 1 s, grace 6 s) so the
tests are quick, and every wait polls with a generous deadline for a loaded 2-core machine.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from computegrid import testbed
from computegrid.api import restricted_template
from computegrid.fleet_data import load_national_fleet

GROUP, VERSION = "computegrid.io", "v1alpha1"
T = TypeVar("T")
GRACE_S = 6.0
TIMEOUT_S = 90.0


def wait_for(check: Callable[[], T | None], what: str, timeout: float = TIMEOUT_S) -> T:
    """Poll ``check`` until it returns something truthy; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except ApiException as exc:
            last = exc
        if last:
            return last  # type: ignore[no-any-return]
        time.sleep(0.3)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; last: {last!r}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class OperatorProcess:
    """``computegrid run`` as a child process, restartable."""

    kubeconfig: str
    log_path: Path
    metrics_port: int = field(default_factory=free_port)
    liveness_port: int = field(default_factory=free_port)
    extra: list[str] = field(default_factory=list)
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        args = [
            sys.executable, "-m", "computegrid.cli", "run",
            "--hub-kubeconfig", self.kubeconfig,
            "--metrics-port", str(self.metrics_port),
            "--liveness-port", str(self.liveness_port),
            "--log-format", "json",
            "--probe-interval", "1", "--failure-threshold", "2",
            "--grace-period", str(GRACE_S), "--sync-interval", "1",
            "--delete-timeout", "10", "--hub-name", "cgtest-hub",
            *self.extra,
        ]  # fmt: skip
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            args, stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ)
        )

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc = None

    def healthz(self) -> int:
        url = f"http://127.0.0.1:{self.liveness_port}/healthz"
        with urllib.request.urlopen(url, timeout=5) as response:
            return int(response.status)

    def metrics(self) -> str:
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            return str(response.read().decode("utf-8"))


def member_cluster_body(name: str, secret_namespace: str) -> dict[str, Any]:
    data = load_national_fleet().by_name(name)
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "MemberCluster",
        "metadata": {"name": name},
        "spec": {
            "hub": data.hub,
            "region": data.region.value,
            "location": data.location,
            "pairedWith": list(data.paired_with),
            "kubeconfigSecretRef": {"name": name, "namespace": secret_namespace},
        },
    }


def ready_members(hub_api: Any) -> set[str]:
    items = client.CustomObjectsApi(hub_api).list_cluster_custom_object(
        GROUP, VERSION, "memberclusters"
    )["items"]
    out = set()
    for mc in items:
        for cond in (mc.get("status") or {}).get("conditions") or []:
            if cond["type"] == "Ready" and cond["status"] == "True":
                out.add(mc["metadata"]["name"])
    return out


@pytest.fixture(scope="session")
def member_clusters(fleet: testbed.FleetInfo, hub_api: Any) -> list[str]:
    """A MemberCluster on the hub for every member of the test fleet."""
    api = client.CustomObjectsApi(hub_api)
    for member in fleet.members:
        try:
            api.create_cluster_custom_object(
                GROUP, VERSION, "memberclusters",
                member_cluster_body(member.name, fleet.secret_namespace),
            )  # fmt: skip
        except ApiException as exc:
            if exc.status != 409:
                raise
    return [m.name for m in fleet.members]


@pytest.fixture(scope="session")
def operator(
    fleet: testbed.FleetInfo,
    hub_api: Any,
    member_clusters: list[str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[OperatorProcess]:
    """The operator running against the test fleet, every member Ready."""
    log_path = tmp_path_factory.mktemp("operator") / "operator.log"
    proc = OperatorProcess(fleet.hub.kubeconfig, log_path)
    proc.start()
    try:
        wait_for(lambda: set(member_clusters) <= ready_members(hub_api), "every member Ready", 120)
        yield proc
    finally:
        proc.stop()
        print(f"operator log: {log_path}")


def computejob(
    name: str,
    *,
    origin: str,
    sensitivity: str = "medium",
    cpu: str = "1",
    parallelism: int = 1,
    compute_type: str = "general",
    run_seconds: float = 1,
    fail: bool = False,
    extra_annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    pod_annotations = {"computegrid.io/run-seconds": str(run_seconds)}
    if fail:
        pod_annotations["computegrid.io/fail"] = "true"
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ComputeJob",
        "metadata": {
            "name": name,
            "annotations": {
                "computegrid.io/origin": origin,
                "computegrid.io/latency-sensitivity": sensitivity,
                "computegrid.io/backoff-limit": "0",
                **(extra_annotations or {}),
            },
        },
        "spec": {
            "computeType": compute_type,
            "resources": {"cpu": cpu, "memory": "1Gi"},
            "parallelism": parallelism,
            "template": restricted_template(
                "busybox", metadata={"annotations": pod_annotations}, restartPolicy="Never"
            ),
        },
    }


class Hub:
    """Small helpers over the hub's ComputeJobs."""

    def __init__(self, api: Any, namespace: str) -> None:
        self.api = client.CustomObjectsApi(api)
        self.core = client.CoreV1Api(api)
        self.namespace = namespace

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        created: dict[str, Any] = self.api.create_namespaced_custom_object(
            GROUP, VERSION, self.namespace, "computejobs", body
        )
        return created

    def get(self, name: str) -> dict[str, Any]:
        got: dict[str, Any] = self.api.get_namespaced_custom_object(
            GROUP, VERSION, self.namespace, "computejobs", name
        )
        return got

    def delete(self, name: str) -> None:
        self.api.delete_namespaced_custom_object(
            GROUP, VERSION, self.namespace, "computejobs", name
        )

    def gone(self, name: str) -> bool:
        try:
            self.get(name)
        except ApiException as exc:
            return exc.status == 404
        return False

    def status(self, name: str) -> dict[str, Any]:
        return dict(self.get(name).get("status") or {})

    def wait_phase(self, name: str, *phases: str, timeout: float = TIMEOUT_S) -> dict[str, Any]:
        return wait_for(
            lambda: (s := self.status(name)).get("phase") in phases and s,
            f"{self.namespace}/{name} in phase {'/'.join(phases)}",
            timeout,
        )

    def events(self, name: str) -> list[Any]:
        items = self.core.list_namespaced_event(
            self.namespace, field_selector=f"involvedObject.name={name}"
        ).items
        return list(items)


def jobs_with_uid(member_api: Any, uid: str) -> list[Any]:
    batch = client.BatchV1Api(member_api)
    return list(
        batch.list_job_for_all_namespaces(label_selector=f"computegrid.io/job-uid={uid}").items
    )
