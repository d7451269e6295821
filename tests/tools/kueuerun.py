"""Kueue's MultiKueue under the same load and the same measurements as ``loadrun``.

Why: issue 12 compares computegrid with MultiKueue v0.17.0 on one test bed (CPU per job,
dispatches/s, create → member Job latency, restart to first placement). This runs Kueue as
one process per cluster of a running fleet (the hub is MultiKueue's manager cluster, every
member a worker), submits N suspended batch Jobs to the hub's LocalQueue and measures with
loadrun's own parts: member Job watches started before submission, /proc sampling of every
Kueue process (CPU summed over all of them: MultiKueue needs one per cluster, computegrid
one in all), the hub apiserver's request counters.

Kueue runs without its webhooks (no webhook configurations are registered, so the API
server never calls them): the harness does what the mutating webhook would, creating each
Job suspended with ``spec.managedBy: kueue.x-k8s.io/multikueue`` and the queue-name label.
Its CRDs come from the Go module (deploy/bench/build-kueue.sh copies them beside the binary).

Kueue 0.17 loads its metrics serving certificate from the fixed path
``/etc/kueue/metrics/certs`` whenever its internal certificate management is off; the harness
writes a self-signed pair there if none is present (the metrics endpoint itself is off).

Run: ``python -m tests.tools.kueuerun --fleet <workdir>/fleet.json --jobs 200 --json``;
``python -m tests.tools.sidebyside`` runs this and loadrun back to back.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from tests.integration.operator_fixtures import free_port
from tests.tools.loadrun import (
    LABEL_JOB_UID,
    Observations,
    Sampler,
    Watcher,
    _r,
    delete_namespace_everywhere,
    list_dicts,
    percentile,
    request_totals,
    requests_by_resource,
    wait_until,
)

from computegrid import testbed
from computegrid.testbed import kube
from computegrid.testbed.fleet import load_crds

KUEUE_VERSION = "v0.17.0"
KUEUE = "kueue.x-k8s.io"
KUEUE_API = "v1beta2"
KUEUE_NS = "kueue-system"  # Kueue's own namespace: MultiKueue reads kubeconfig Secrets there
MULTIKUEUE = f"{KUEUE}/multikueue"  # the admission check controller and the Jobs' managedBy
QUEUE = "bench"  # LocalQueue, ClusterQueue, MultiKueueConfig and AdmissionCheck names
FLAVOR = "default"
METRICS_CERTS = Path("/etc/kueue/metrics/certs")  # fixed in Kueue 0.17's main.go
WRITE_VERBS = ("POST", "PUT", "PATCH", "DELETE", "APPLY")
WORKLOAD_OBJECTS = ("jobs", "workloads", "events")


def kueue_home(version: str = KUEUE_VERSION) -> Path:
    """Where deploy/bench/build-kueue.sh puts the binary (bin/kueue) and the CRDs (crds/)."""
    root = Path(os.environ.get("COMPUTEGRID_CACHE", Path.home() / ".cache" / "computegrid"))
    return root / f"kueue-{version}"


@dataclass
class KueueRunConfig:
    """One measured Kueue run."""

    fleet: Path
    jobs: int = 50
    home: Path = field(default_factory=kueue_home)
    namespace: str = ""  # "" = kueuerun-<random>
    cpu: str = "100m"
    memory: str = "1Gi"  # as loadrun's ComputeJobs ask
    run_seconds: float = 1.0
    submitters: int = 4
    idle_seconds: float = 30.0
    timeout: float = 900.0
    ready_timeout: float = 300.0
    log_level: int = 2  # Kueue's own manager Deployment runs with --zap-log-level=2
    restart: bool = True
    log_dir: Path = field(default_factory=lambda: Path("/tmp"))


# --------------------------------------------------------------------------- certificates


def self_signed(directory: Path, name: str = "tls") -> None:
    """A self-signed localhost pair ``<name>.crt``/``<name>.key`` in ``directory`` (openssl)."""
    if (directory / f"{name}.crt").is_file() and (directory / f"{name}.key").is_file():
        return
    directory.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30",
            "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
            "-keyout", str(directory / f"{name}.key"), "-out", str(directory / f"{name}.crt"),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip


# --------------------------------------------------------------------------- Kueue objects


def kueue_config(health_port: int, webhook_port: int, cert_dir: Path) -> dict[str, Any]:
    """Kueue's shipped manager configuration, less leader election, metrics and visibility,
    Jobs only; ports of its own so that four managers share one host."""
    return {
        "apiVersion": f"config.{KUEUE}/{KUEUE_API}",
        "kind": "Configuration",
        "namespace": KUEUE_NS,
        "health": {"healthProbeBindAddress": f"127.0.0.1:{health_port}"},
        "metrics": {"bindAddress": "0"},  # "0" turns controller-runtime's server off
        "webhook": {"port": webhook_port, "host": "127.0.0.1", "certDir": str(cert_dir)},
        "leaderElection": {"leaderElect": False},
        "internalCertManagement": {"enable": False},
        "controller": {
            "groupKindConcurrency": {
                "Job.batch": 5,
                "Pod": 5,
                f"Workload.{KUEUE}": 5,
                f"LocalQueue.{KUEUE}": 1,
                f"Cohort.{KUEUE}": 1,
                f"ClusterQueue.{KUEUE}": 1,
                f"ResourceFlavor.{KUEUE}": 1,
            }
        },
        "clientConnection": {"qps": 50, "burst": 100},
        "integrations": {"frameworks": ["batch/job"]},
        "featureGates": {"VisibilityOnDemand": False},
    }


def quota(api: Any) -> dict[str, str]:
    """The allocatable CPU and memory of a cluster's nodes, as nominal quotas."""
    cpu_milli = memory_ki = 0
    for node in client.CoreV1Api(api).list_node().items:
        alloc = node.status.allocatable or {}
        cpu = str(alloc.get("cpu", "0"))
        cpu_milli += int(cpu[:-1]) if cpu.endswith("m") else int(float(cpu) * 1000)
        memory_ki += kube_quantity_ki(str(alloc.get("memory", "0")))
    return {"cpu": f"{cpu_milli}m", "memory": f"{memory_ki}Ki"}


def kube_quantity_ki(text: str) -> int:
    """A memory quantity in KiB (binary suffixes and plain bytes, as node status uses)."""
    units = {"Ki": 1, "Mi": 1024, "Gi": 1024**2, "Ti": 1024**3}
    for suffix, factor in units.items():
        if text.endswith(suffix):
            return int(text[: -len(suffix)]) * factor
    return int(text) // 1024


def cluster_queue(limits: dict[str, str], checks: list[str]) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "namespaceSelector": {},
        "resourceGroups": [
            {
                "coveredResources": ["cpu", "memory"],
                "flavors": [
                    {
                        "name": FLAVOR,
                        "resources": [{"name": k, "nominalQuota": v} for k, v in limits.items()],
                    }
                ],
            }
        ],
    }
    if checks:
        spec["admissionChecksStrategy"] = {"admissionChecks": [{"name": c} for c in checks]}
    return {"kind": "ClusterQueue", "metadata": {"name": QUEUE}, "spec": spec}


def resource_flavor() -> dict[str, Any]:
    return {"kind": "ResourceFlavor", "metadata": {"name": FLAVOR}, "spec": {}}


def local_queue(namespace: str) -> dict[str, Any]:
    return {
        "kind": "LocalQueue",
        "metadata": {"name": QUEUE, "namespace": namespace},
        "spec": {"clusterQueue": QUEUE},
    }


def worker_objects(namespace: str, limits: dict[str, str]) -> list[dict[str, Any]]:
    """A worker's queues: MultiKueue dispatches to the LocalQueue of the hub's name."""
    return [resource_flavor(), cluster_queue(limits, []), local_queue(namespace)]


def manager_objects(
    namespace: str, limits: dict[str, str], secrets: dict[str, str]
) -> list[dict[str, Any]]:
    """The hub's objects, in creation order; ``secrets``: MultiKueueCluster -> kubeconfig Secret."""
    clusters = [
        {
            "kind": "MultiKueueCluster",
            "metadata": {"name": name},
            "spec": {"clusterSource": {"kubeConfig": {"locationType": "Secret", "location": s}}},
        }
        for name, s in secrets.items()
    ]
    return [
        *clusters,
        {
            "kind": "MultiKueueConfig",
            "metadata": {"name": QUEUE},
            "spec": {"clusters": list(secrets)},
        },
        {
            "kind": "AdmissionCheck",
            "metadata": {"name": QUEUE},
            "spec": {
                "controllerName": MULTIKUEUE,
                "parameters": {"apiGroup": KUEUE, "kind": "MultiKueueConfig", "name": QUEUE},
            },
        },
        resource_flavor(),
        cluster_queue(limits, [QUEUE]),
        local_queue(namespace),
    ]


PLURALS = {
    "ResourceFlavor": "resourceflavors",
    "ClusterQueue": "clusterqueues",
    "LocalQueue": "localqueues",
    "AdmissionCheck": "admissionchecks",
    "MultiKueueConfig": "multikueueconfigs",
    "MultiKueueCluster": "multikueueclusters",
}


def _call(api: Any, verb: str, body: dict[str, Any], *more: Any) -> Any:
    """``verb`` (get, create, patch, delete) on the Kueue object ``body`` names."""
    custom: Any = client.CustomObjectsApi(api)
    plural, ns = PLURALS[body["kind"]], body["metadata"].get("namespace")
    if ns:
        method = getattr(custom, f"{verb}_namespaced_custom_object")
        return method(KUEUE, KUEUE_API, ns, plural, *more)
    return getattr(custom, f"{verb}_cluster_custom_object")(KUEUE, KUEUE_API, plural, *more)


def _get(api: Any, body: dict[str, Any]) -> dict[str, Any] | None:
    try:
        found: dict[str, Any] = _call(api, "get", body, body["metadata"]["name"])
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    return found


def forget(api: Any, body: dict[str, Any]) -> None:
    """Drop the finalizers of an object whose controller is gone, and wait until it is."""
    name = body["metadata"]["name"]
    try:
        _call(api, "patch", body, name, {"metadata": {"finalizers": None}})
    except ApiException as exc:
        if exc.status != 404:
            raise
    wait_until(lambda: _get(api, body) is None, 30)


def put_object(api: Any, body: dict[str, Any]) -> None:
    """Create a Kueue object, or patch the spec of the one there.

    One left Terminating by an earlier run (Kueue's finalizers, Kueue stopped) is let go
    first: else it vanishes as soon as this run's Kueue starts.
    """
    body = {"apiVersion": f"{KUEUE}/{KUEUE_API}", **body}
    existing = _get(api, body)
    if existing is not None and existing["metadata"].get("deletionTimestamp"):
        forget(api, body)
        existing = None
    if existing is None:
        _call(api, "create", body, body)
    else:
        _call(api, "patch", body, body["metadata"]["name"], {"spec": body["spec"]})


def delete_objects(api: Any, bodies: list[dict[str, Any]], timeout: float) -> list[str]:
    """Delete, newest first, and wait up to ``timeout`` s; the names still there."""
    for body in reversed(bodies):
        try:
            _call(api, "delete", body, body["metadata"]["name"])
        except ApiException as exc:
            if exc.status != 404:
                raise

    def left() -> list[dict[str, Any]]:
        return [b for b in bodies if _get(api, b) is not None]

    wait_until(lambda: not left(), timeout, interval=1.0)
    return [b["metadata"]["name"] for b in left()]


def active(api: Any, plural: str, name: str) -> bool:
    obj = client.CustomObjectsApi(api).get_cluster_custom_object(KUEUE, KUEUE_API, plural, name)
    conds = (obj.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Active" and c.get("status") == "True" for c in conds)


def batch_job(name: str, namespace: str, cfg: KueueRunConfig) -> dict[str, Any]:
    """A suspended Job for the LocalQueue, as Kueue's webhook would leave it for MultiKueue.

    The ``computegrid.io/job-uid`` label (the Job's name here) lets loadrun's Observations
    match member Jobs to hub Jobs: MultiKueue copies the labels to the worker's Job.
    """
    container = {
        "name": "main",
        "image": "busybox",
        "resources": {"requests": {"cpu": cfg.cpu, "memory": cfg.memory}},
        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {f"{KUEUE}/queue-name": QUEUE, LABEL_JOB_UID: name},
        },
        "spec": {
            "suspend": True,
            "managedBy": MULTIKUEUE,
            "backoffLimit": 0,
            "template": {
                "metadata": {"annotations": {"computegrid.io/run-seconds": str(cfg.run_seconds)}},
                "spec": {
                    "restartPolicy": "Never",
                    "securityContext": {
                        "runAsNonRoot": True,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [container],
                },
            },
        },
    }


def job_finished(job: dict[str, Any]) -> str | None:
    for cond in (job.get("status") or {}).get("conditions") or []:
        if cond.get("type") in ("Complete", "Failed") and cond.get("status") == "True":
            return "Succeeded" if cond["type"] == "Complete" else "Failed"
    return None


# --------------------------------------------------------------------------- processes


@dataclass
class KueueProcess:
    """One Kueue manager for one cluster."""

    cluster: str
    kubeconfig: str
    binary: Path
    workdir: Path
    log_level: int
    health_port: int = field(default_factory=free_port)
    webhook_port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    sampler: Sampler | None = None
    started: float = 0.0

    @property
    def log(self) -> Path:
        return self.workdir / f"{self.cluster}.log"

    def start(self) -> None:
        config = self.workdir / f"{self.cluster}.yaml"
        body = kueue_config(self.health_port, self.webhook_port, self.workdir / "webhook-certs")
        config.write_text(yaml.safe_dump(body), encoding="utf-8")
        env = {**os.environ, "KUBECONFIG": self.kubeconfig}
        cmd = [str(self.binary), f"--config={config}", f"--zap-log-level={self.log_level}"]
        self.started = time.time()
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
        self.sampler = Sampler(self.proc.pid)
        self.sampler.start()

    def ready(self) -> bool:
        self.alive()
        try:
            url = f"http://127.0.0.1:{self.health_port}/readyz"
            with urllib.request.urlopen(url, timeout=2) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    def alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(
                f"kueue for {self.cluster} exited with {self.proc.returncode}; log: {self.log}"
            )

    def stop(self) -> None:
        if self.sampler is not None:
            self.sampler.stopped.set()
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)  # the group of the process we started
            self.proc.wait(timeout=10)


# --------------------------------------------------------------------------- the run


class KueueRun:
    """Kueue on every cluster of a fleet, one namespace, N Jobs; ``execute()`` -> summary."""

    def __init__(self, cfg: KueueRunConfig) -> None:
        if cfg.jobs < 1:
            raise ValueError(f"jobs: must be at least 1, got {cfg.jobs}")
        binary = cfg.home / "bin" / "kueue"
        if not binary.is_file():
            raise FileNotFoundError(f"{binary} not found: run deploy/bench/build-kueue.sh")
        self.cfg = cfg
        self.info = testbed.FleetInfo.from_json(cfg.fleet.read_text(encoding="utf-8"))
        self.hub = testbed.api_client(Path(self.info.hub.kubeconfig))
        self.members = {m.name: testbed.api_client(Path(m.kubeconfig)) for m in self.info.members}
        self.ns = cfg.namespace or f"kueuerun-{uuid.uuid4().hex[:6]}"
        self.workdir = cfg.log_dir / f"{self.ns}-kueue"
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.procs = {
            c.name: KueueProcess(c.name, c.kubeconfig, binary, self.workdir, cfg.log_level)
            for c in self.info.clusters
        }
        self.obs = Observations()
        self.watchers: list[Watcher] = []
        self.summary: dict[str, Any] = {}
        self.hub_objects: list[dict[str, Any]] = []
        self.member_objects: list[dict[str, Any]] = []
        self.names: set[str] = set()

    # ---- set up

    def install(self) -> None:
        """Certificates, CRDs, namespaces, kubeconfig Secrets and the queues everywhere."""
        self_signed(METRICS_CERTS)
        self_signed(self.workdir / "webhook-certs")
        crds = load_crds(self.cfg.home / "crds")
        if not crds:
            raise FileNotFoundError(f"no Kueue CRDs in {self.cfg.home / 'crds'}")
        limits_total: Counter[str] = Counter()
        secrets = {}
        for name, api in {"hub": self.hub, **self.members}.items():
            kube.apply_crds(api, crds)
            kube.ensure_namespace(api, KUEUE_NS)
            kube.ensure_namespace(api, self.ns)
            if name == "hub":
                continue
            limits = quota(api)
            limits_total["cpu"] += int(limits["cpu"][:-1])
            limits_total["memory"] += int(limits["memory"][:-2])
            self.member_objects = worker_objects(self.ns, limits)
            for body in self.member_objects:
                put_object(api, body)
            secret = f"bench-{name}"
            kube.put_secret(
                self.hub,
                KUEUE_NS,
                secret,
                {"kubeconfig": kube.inline_kubeconfig(Path(self.info.member(name).kubeconfig))},
                {"computegrid.io/fleet": self.info.name},
            )
            secrets[name] = secret
        total = {"cpu": f"{limits_total['cpu']}m", "memory": f"{limits_total['memory']}Ki"}
        self.hub_objects = manager_objects(self.ns, total, secrets)
        for body in self.hub_objects:
            put_object(self.hub, body)
        self.summary["quota"] = {"hub": total}

    def start_all(self) -> None:
        for proc in self.procs.values():
            proc.start()
        started = time.monotonic()

        def ready() -> bool:
            return all(p.ready() for p in self.procs.values())

        if not wait_until(ready, self.cfg.ready_timeout, interval=0.5):
            raise RuntimeError(
                f"Kueue not ready in {self.cfg.ready_timeout}s; logs: {self.workdir}"
            )
        self.summary["ready_s"] = _r(time.monotonic() - started)

        def connected() -> bool:
            for proc in self.procs.values():
                proc.alive()
            checks = [active(self.hub, "multikueueclusters", m) for m in self.members]
            return all(checks) and active(self.hub, "admissionchecks", QUEUE)

        if not wait_until(connected, self.cfg.ready_timeout, interval=1.0):
            raise RuntimeError("MultiKueueClusters or the AdmissionCheck never became Active")
        self.summary["connected_s"] = _r(time.monotonic() - started)

    def start_watches(self) -> None:
        for name in self.members:
            api = testbed.api_client(Path(self.info.member(name).kubeconfig))
            self.watchers.append(
                Watcher(
                    name,
                    client.BatchV1Api(api).list_namespaced_job,
                    self.obs.member_job(name),
                    namespace=self.ns,
                    label_selector=LABEL_JOB_UID,
                )
            )
        hub = client.CustomObjectsApi(testbed.api_client(Path(self.info.hub.kubeconfig)))
        self.watchers.append(
            Watcher(
                "hub",
                hub.list_namespaced_custom_object,
                self.finished_on_hub,
                group=KUEUE,
                version=KUEUE_API,
                namespace=self.ns,
                plural="workloads",
            )
        )
        for watcher in self.watchers:
            watcher.start()

    def finished_on_hub(self, kind: str, workload: dict[str, Any], now: float) -> None:
        """A hub Workload's Finished condition, keyed by its Job's name.

        Why the Workload and not the Job: under load MultiKueue can copy a worker's Finished
        onto the hub Workload before the hub Job is unsuspended, and then never syncs the
        Job's status (the Job stays suspended with no conditions); ``hub_jobs_not_complete``
        counts those.
        """
        owners = workload["metadata"].get("ownerReferences") or []
        job = next((o["name"] for o in owners if o.get("kind") == "Job"), None)
        conds = (workload.get("status") or {}).get("conditions") or []
        done = next((c for c in conds if c.get("type") == "Finished"), None)
        if job is None or done is None or done.get("status") != "True":
            return
        phase = "Succeeded" if done.get("reason") == "Succeeded" else "Failed"
        with self.obs.lock:
            if job not in self.obs.finished:
                self.obs.finished[job] = (phase, now)

    def hub_jobs_not_complete(self, names: set[str]) -> int:
        jobs = list_dicts(client.BatchV1Api(self.hub).list_namespaced_job, namespace=self.ns)
        return sum(
            1
            for job in jobs["items"]
            if job["metadata"]["name"] in names and job_finished(job) is None
        )

    def create(self, api: Any, name: str) -> tuple[float, float]:
        sent = time.time()
        client.BatchV1Api(api).create_namespaced_job(
            self.ns, batch_job(name, self.ns, self.cfg), _request_timeout=60
        )
        return sent, time.time()

    def first_dispatch(self, name: str, since: float) -> float:
        """Seconds from ``since`` until ``name``'s Job is seen on a member."""

        def seen() -> bool:
            self.procs["hub"].alive()
            return self.obs.first_seen(name) is not None

        if not wait_until(seen, self.cfg.ready_timeout):
            raise RuntimeError(f"{name} did not reach a member in {self.cfg.ready_timeout}s")
        return (self.obs.first_seen(name) or 0.0) - since

    # ---- the measured part

    def submit(self) -> dict[str, tuple[float, float]]:
        local = threading.local()
        times: dict[str, tuple[float, float]] = {}
        lock = threading.Lock()

        def one(i: int) -> None:
            if not hasattr(local, "api"):
                local.api = testbed.api_client(Path(self.info.hub.kubeconfig))
            name = f"kq-{i:05d}"
            result = self.create(local.api, name)
            with lock:
                times[name] = result

        with ThreadPoolExecutor(self.cfg.submitters, thread_name_prefix="kueuerun-submit") as pool:
            for future in [pool.submit(one, i) for i in range(self.cfg.jobs)]:
                future.result()
        return times

    def cpu(self) -> float:
        return sum(p.sampler.cpu() for p in self.procs.values() if p.sampler is not None)

    def rss(self) -> dict[str, float | None]:
        mb = 1024 * 1024
        return {name: _r(p.sampler.peak_rss / mb, 1) for name, p in self.procs.items() if p.sampler}

    def measure(self) -> None:
        cfg = self.cfg
        before = request_totals(self.hub)
        cpu_by_proc0 = {n: p.sampler.cpu() for n, p in self.procs.items() if p.sampler}
        begin = time.monotonic()
        times = self.submit()
        names = self.names = set(times)

        def done() -> bool:
            for proc in self.procs.values():
                proc.alive()
            with self.obs.lock:
                return names <= set(self.obs.member_jobs) and names <= set(self.obs.finished)

        finished_in_time = wait_until(done, cfg.timeout - (time.monotonic() - begin), 0.5)
        cpu_by_proc = {
            n: p.sampler.cpu() - cpu_by_proc0[n] for n, p in self.procs.items() if p.sampler
        }
        after = request_totals(self.hub)
        cpu_run = sum(cpu_by_proc.values())

        first_sent = min(sent for sent, _ in times.values())
        last_answer = max(answered for _, answered in times.values())
        seen = {name: self.obs.first_seen(name) for name in names}
        arrived = [t for t in seen.values() if t is not None]
        vs_answer = [t - times[n][1] for n, t in seen.items() if t is not None]
        with self.obs.lock:
            finished = [self.obs.finished[n] for n in names if n in self.obs.finished]
            creations = {n: dict(jobs) for n, jobs in self.obs.member_jobs.items()}
        last_seen = max(arrived) if arrived else None
        writes = hub_object_writes(before, after)
        mine = sum(v for k, v in writes.items() if not k.startswith("errors")) - cfg.jobs
        self.summary.update(
            {
                "timed_out": not finished_in_time,
                "submit_s": _r(last_answer - first_sent),
                "dispatched": len(arrived),
                "succeeded": sum(phase == "Succeeded" for phase, _ in finished),
                "failed": sum(phase == "Failed" for phase, _ in finished),
                "create_to_member_job_s": {
                    "p50": _r(percentile(vs_answer, 0.5)),
                    "p99": _r(percentile(vs_answer, 0.99)),
                    "max": _r(max(vs_answer, default=None)),
                },
                "dispatches_per_s": _r(len(arrived) / (last_seen - first_sent), 2)
                if last_seen
                else None,
                "all_finished_s": _r(max(t for _, t in finished) - first_sent)
                if finished
                else None,
                "duplicates_created": sum(
                    1 for n, jobs in creations.items() if len(jobs) > 1 and n in names
                ),
                "hub_writes_until_finished": writes,
                "hub_writes_per_job": _r(mine / cfg.jobs, 2),
                "cpu_run_s": {n: _r(v, 2) for n, v in cpu_by_proc.items()},
                "cpu_run_total_s": _r(cpu_run, 2),
                "cpu_per_job_s": _r(cpu_run / cfg.jobs, 4),
                "watch_errors": sum(w.errors for w in self.watchers),
            }
        )
        self.idle()

    def idle(self) -> None:
        apis = {"hub": self.hub, **self.members}
        before = {name: request_totals(api) for name, api in apis.items()}
        cpu0, t0 = self.cpu(), time.monotonic()  # after the scrapes: they are slow under load
        time.sleep(self.cfg.idle_seconds)
        cpu1, elapsed = self.cpu(), time.monotonic() - t0
        after = {name: request_totals(api) for name, api in apis.items()}
        self.summary["cpu_idle_pct"] = _r(100 * (cpu1 - cpu0) / elapsed, 2)
        self.summary["hub_jobs_not_complete_after_idle"] = self.hub_jobs_not_complete(self.names)
        self.summary["idle_window_s"] = _r(elapsed, 1)
        self.summary["idle_requests"] = {
            name: requests_by_resource(before[name], after[name]) for name in apis
        }
        self.summary["rss_peak_mb"] = self.rss()
        self.summary["rss_peak_total_mb"] = _r(sum(v or 0 for v in self.rss().values()), 1)

    def restart_hub(self) -> None:
        """Stop the hub's Kueue, start it again and at once create one Job: the seconds until
        that Job is on a member (loadrun's first_dispatch_s, measured the same way)."""
        hub = self.procs["hub"]
        hub.stop()
        hub.start()
        _, answered = self.create(self.hub, "kq-after-restart")
        self.summary["restart"] = {
            "first_dispatch_s": _r(self.first_dispatch("kq-after-restart", hub.started)),
            "created_after_start_s": _r(answered - hub.started),
        }

    def cleanup(self) -> str:
        note = "ok"
        batch = client.BatchV1Api(self.hub)
        try:
            batch.delete_collection_namespaced_job(self.ns, propagation_policy="Background")
            # MultiKueue's garbage collector removes the workers' copies of deleted Jobs
            wait_until(
                lambda: not list_dicts(batch.list_namespaced_job, namespace=self.ns)["items"],
                60,
                1.0,
            )
        except ApiException as exc:
            note = f"deleting Jobs: {exc.status} {exc.reason}"
        clusters = [(self.hub, self.hub_objects)] + [
            (api, self.member_objects) for api in self.members.values()
        ]
        try:  # while Kueue runs: it removes its own finalizers
            stuck = [(api, bodies) for api, bodies in clusters if delete_objects(api, bodies, 60)]
        except ApiException as exc:
            stuck, note = clusters, f"deleting Kueue objects: {exc.status} {exc.reason}"
        for proc in self.procs.values():
            proc.stop()
        for api, bodies in stuck:
            note = "Kueue finalizers removed by the harness"
            for body in bodies:
                forget(api, body)
        return delete_namespace_everywhere([self.hub, *self.members.values()], self.ns) or note

    def execute(self) -> dict[str, Any]:
        cfg = self.cfg
        self.summary.update(
            {
                "system": f"kueue {cfg.home.name.removeprefix('kueue-')} (MultiKueue)",
                "fleet": self.info.name,
                "members": len(self.info.members),
                "namespace": self.ns,
                "jobs": cfg.jobs,
                "cpu_request": cfg.cpu,
                "run_seconds": cfg.run_seconds,
                "submitters": cfg.submitters,
                "processes": {n: str(p.log) for n, p in self.procs.items()},
            }
        )
        try:
            t0 = time.monotonic()
            self.install()
            self.summary["install_s"] = _r(time.monotonic() - t0)
            self.start_all()
            self.start_watches()
            _, answered = self.create(self.hub, "kq-canary")
            self.summary["canary_to_member_s"] = _r(self.first_dispatch("kq-canary", answered))
            wait_until(lambda: "kq-canary" in self.obs.finished, 120)
            self.measure()
            if cfg.restart:
                self.restart_hub()
        except Exception as exc:  # reported in the summary with whatever was measured
            self.summary["error"] = f"{type(exc).__name__}: {exc}"
        finally:
            for watcher in self.watchers:
                watcher.stop()
            self.summary["cleanup"] = self.cleanup()
        return self.summary


def hub_object_writes(
    before: Counter[tuple[str, str, str, str]], after: Counter[tuple[str, str, str, str]]
) -> dict[str, int]:
    """Writes to Jobs, Workloads and Events on the hub between two scrapes, by verb."""
    out: Counter[str] = Counter()
    for (resource, sub, verb, code), value in (after - before).items():
        if verb in WRITE_VERBS and resource in WORKLOAD_OBJECTS:
            out[f"{resource}{'/' + sub if sub else ''} {verb}"] += value
            if not code.startswith("2"):
                out[f"errors {resource} {code}"] += value
    return dict(sorted(out.items()))


# --------------------------------------------------------------------------- CLI


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--fleet", required=True, type=Path, help="fleet.json of a running fleet")
    parser.add_argument("--jobs", type=int, default=50, help="Jobs to submit")
    parser.add_argument(
        "--kueue-home", type=Path, default=kueue_home(), help="build-kueue.sh's dir"
    )
    parser.add_argument("--cpu", default="100m", help="cpu request per job")
    parser.add_argument("--run-seconds", type=float, default=1.0, help="pod run time (kwok)")
    parser.add_argument("--submitters", type=int, default=4, help="client threads creating jobs")
    parser.add_argument("--idle-seconds", type=float, default=30.0)
    parser.add_argument("--timeout", type=float, default=900.0, help="for all to finish")
    parser.add_argument("--log-dir", type=Path, default=Path("/tmp"))


def shared_options(args: argparse.Namespace) -> dict[str, Any]:
    """The options kueuerun and loadrun take alike, so that both sides run the same load."""
    names = (
        "fleet",
        "jobs",
        "cpu",
        "run_seconds",
        "submitters",
        "idle_seconds",
        "timeout",
        "log_dir",
    )
    return {name: getattr(args, name) for name in names}


def config_from(args: argparse.Namespace) -> KueueRunConfig:
    return KueueRunConfig(home=args.kueue_home, **shared_options(args))


def check_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if not args.fleet.is_file():
        parser.error(f"--fleet: no such file {args.fleet}")
    if args.jobs < 1:
        parser.error(f"--jobs: must be at least 1, got {args.jobs}")
    if not (args.kueue_home / "bin" / "kueue").is_file():
        parser.error(
            f"--kueue-home: no bin/kueue in {args.kueue_home}; run deploy/bench/build-kueue.sh"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.tools.kueuerun",
        description="Run Kueue's MultiKueue on a test bed fleet under N Jobs and measure it.",
    )
    add_arguments(parser)
    args = parser.parse_args(argv)
    check_arguments(parser, args)
    summary = KueueRun(config_from(args)).execute()
    print(json.dumps(summary, indent=2))
    return 0 if "error" not in summary else 1


if __name__ == "__main__":
    sys.exit(main())
