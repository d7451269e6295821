"""Fixtures for the operator's integration tests: MemberClusters and a real operator process.

Why a subprocess: the operator is proved as users run it (``computegrid run``), and a restart
or kill test needs a real process. Intervals are short (probe 1 s, sync 1 s, grace 6 s) so the
tests are quick, and every wait polls with a generous deadline for a loaded 2-core machine.
There is no per-job interval any more: member Jobs are watched.
"""

from __future__ import annotations

import contextlib
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
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from computegrid import testbed
from computegrid.api import restricted_template
from computegrid.dispatch import tenant_namespace
from computegrid.fleet_data import load_national_fleet

GROUP, VERSION = "computegrid.io", "v1alpha1"
T = TypeVar("T")
GRACE_S = 6.0
HUB_NAME = "cgtest-hub"  # the operator's --hub-name in these tests
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
            "--grace-period", str(GRACE_S),
            "--delete-timeout", "10", "--hub-name", HUB_NAME,
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


def member_namespace(hub_namespace: str) -> str:
    """The member namespace the test operator owns for ``hub_namespace`` (its Jobs go there)."""
    return tenant_namespace(hub_namespace, HUB_NAME)


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


#: The session operator once started (it runs until the session ends, across modules).
SESSION_OPERATORS: list[OperatorProcess] = []


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
    SESSION_OPERATORS.append(proc)
    try:
        wait_for(lambda: set(member_clusters) <= ready_members(hub_api), "every member Ready", 120)
        yield proc
    finally:
        SESSION_OPERATORS.remove(proc)
        proc.stop()
        print(f"operator log: {log_path}")


@contextlib.contextmanager
def no_operator(hub_api: Any, member_clusters: list[str]) -> Iterator[None]:
    """Stop the session operator, if an earlier module started it, for a block that writes
    MemberCluster statuses itself (a running operator would probe those members and
    overwrite them); start it again afterwards, every member Ready."""
    paused = [proc for proc in SESSION_OPERATORS if proc.proc is not None]
    for proc in paused:
        proc.stop()
    try:
        yield
    finally:
        for proc in paused:
            proc.start()
        if paused:
            wait_for(lambda: set(member_clusters) <= ready_members(hub_api), "members Ready", 120)


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
    failover: str | None = None,
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
            **({"failover": {"policy": failover}} if failover else {}),
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


class CreationLog:
    """Every member Job ever created for a hub namespace (in the member namespace the operator
    owns for it), seen through a watch per member.

    Counting creations (ADDED events with distinct member Job uids), not survivors, is what
    proves exactly-once: a duplicate that was created and then cleaned up still counts.

    ``hub`` is the ``--hub-name`` whose member namespace is watched; ``namespace=None``
    watches every namespace (objects are keyed by their job-uid label, so other tests'
    objects are never counted for ours); ``kind="computejobs"`` follows the ComputeJobs a
    parent hub creates on a child hub (federation) instead of Jobs.
    """

    def __init__(
        self,
        member_apis: dict[str, Any],
        namespace: str | None,
        *,
        hub: str = HUB_NAME,
        kind: str = "jobs",
    ) -> None:
        import threading

        self.namespace = None if namespace is None else tenant_namespace(namespace, hub)
        self.kind = kind
        self.created: dict[str, set[tuple[str, str]]] = {}  # CJ uid -> {(member, Job uid)}
        self.first_seen: dict[str, float] = {}  # CJ uid -> time.monotonic() of first ADDED
        self.lock = threading.Lock()
        self.stop_flag = threading.Event()
        self.threads = [
            threading.Thread(target=self._follow, args=(name, api), daemon=True)
            for name, api in member_apis.items()
        ]
        self.ready = threading.Barrier(len(self.threads) + 1)

    def __enter__(self) -> CreationLog:
        for thread in self.threads:
            thread.start()
        self.ready.wait(timeout=60)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_flag.set()
        for thread in self.threads:
            thread.join(timeout=15)

    def _list_call(self, api: Any) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        """The list function (and its leading arguments) that the watch follows."""
        if self.kind == "computejobs":
            custom = client.CustomObjectsApi(api)
            if self.namespace is None:
                return custom.list_cluster_custom_object, (GROUP, VERSION, "computejobs")
            return custom.list_namespaced_custom_object, (
                GROUP, VERSION, self.namespace, "computejobs",
            )  # fmt: skip
        batch = client.BatchV1Api(api)
        if self.namespace is None:
            return batch.list_job_for_all_namespaces, ()
        return batch.list_namespaced_job, (self.namespace,)

    def _follow(self, member: str, api: Any) -> None:
        from kubernetes import watch

        call, args = self._list_call(api)
        listed = call(*args)
        for obj in _items(listed):
            self._saw(member, obj)
        version = _meta(listed)["resourceVersion"]
        self.ready.wait(timeout=60)
        while not self.stop_flag.is_set():
            stream = watch.Watch()
            try:
                for event in stream.stream(
                    call, *args, resource_version=version, timeout_seconds=5
                ):
                    obj = event["object"]
                    version = _meta(obj)["resourceVersion"]
                    if event["type"] == "ADDED":
                        self._saw(member, obj)
                    if self.stop_flag.is_set():
                        break
            except ApiException as exc:
                if exc.status == 410:  # relist; ADDED for known objects changes nothing
                    listed = call(*args)
                    for obj in _items(listed):
                        self._saw(member, obj)
                    version = _meta(listed)["resourceVersion"]
            except Exception:  # the member is being stopped by a test: try again
                time.sleep(0.5)

    def _saw(self, member: str, obj: Any) -> None:
        meta = _meta(obj)
        uid = (meta.get("labels") or {}).get("computegrid.io/job-uid")
        if not uid:
            return
        with self.lock:
            self.created.setdefault(uid, set()).add((member, str(meta["uid"])))
            self.first_seen.setdefault(uid, time.monotonic())

    def duplicates(self) -> dict[str, list[str]]:
        with self.lock:
            return {
                uid: sorted(m for m, _ in where)
                for uid, where in self.created.items()
                if len(where) > 1
            }


def _meta(obj: Any) -> dict[str, Any]:
    """An object's (or a list's) metadata with the API's camelCase keys, whether the client
    returned a dict (custom objects) or a model (Jobs)."""
    if isinstance(obj, dict):
        return dict(obj.get("metadata") or {})
    meta = obj.metadata
    return {
        "resourceVersion": meta.resource_version,
        "labels": getattr(meta, "labels", None),  # a list's metadata has neither
        "uid": getattr(meta, "uid", None),
    }


def _items(listed: Any) -> list[Any]:
    return list(listed["items"] if isinstance(listed, dict) else listed.items)


def suite_size(ci: int, full: int) -> int:
    """CI runs the reduced size; COMPUTEGRID_SUITES=full runs the issue's size."""
    return full if os.environ.get("COMPUTEGRID_SUITES") == "full" else ci


def write_summary(name: str, summary: dict[str, Any]) -> Path:
    """A suite's JSON summary in out/suites/ (or $COMPUTEGRID_SUITE_OUT), also printed."""
    import json

    root = Path(os.environ.get("COMPUTEGRID_SUITE_OUT", Path(__file__).parents[2] / "out/suites"))
    root.mkdir(parents=True, exist_ok=True)
    path = root / f"{name}.json"
    path.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    print(f"\n{name}: {json.dumps(summary)} (written to {path})")
    return path


def hub_jobs(hub_api: Any, namespace: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = client.CustomObjectsApi(hub_api).list_namespaced_custom_object(
        GROUP, VERSION, namespace, "computejobs"
    )["items"]
    return items


PEERING = "cgtest-ha"
CHART_PEERING = Path(__file__).resolve().parents[2] / "charts/computegrid/templates/peering.yaml"


def peering_crds() -> list[dict[str, Any]]:
    """The Kopf peering CRDs exactly as the chart installs them (its only templated lines
    are the ``{{ ... }}`` guards around them)."""
    text = CHART_PEERING.read_text(encoding="utf-8")
    body = text.split("{{- if .Values.peering.installCRDs }}", 1)[1].split("{{- end }}", 1)[0]
    assert "{{" not in body
    return [d for d in yaml.safe_load_all(body) if d]


def install_peering(hub_api: Any) -> None:
    ext = client.ApiextensionsV1Api(hub_api)
    for crd in peering_crds():
        try:
            ext.create_custom_resource_definition(crd)
        except ApiException as exc:
            if exc.status != 409:
                raise
    custom = client.CustomObjectsApi(hub_api)

    def create_peering() -> bool:
        try:
            custom.create_cluster_custom_object(
                "kopf.dev", "v1", "clusterkopfpeerings",
                {"apiVersion": "kopf.dev/v1", "kind": "ClusterKopfPeering",
                 "metadata": {"name": PEERING}},
            )  # fmt: skip
        except ApiException as exc:
            if exc.status == 404:  # the CRD is not served yet
                return False
            if exc.status != 409:
                raise
        return True

    wait_for(create_peering, "the ClusterKopfPeering created")
