"""Load and measure any operator build end to end on a running test bed fleet.

Why: issue 12 asks for figures of the current operator and its rewrite side by side, measured
the same way, from outside: the harness knows nothing of the operator's internals. It starts
the operator command given (any checkout, its own venv), waits until the operator dispatches a
canary job, submits N ComputeJobs as fast as one client can, and measures from the API
servers and /proc:

- placement and dispatch: every ComputeJob's member Job is seen by a watch on every member
  started before submission; create → member Job latency is (wall-clock arrival of the Job's
  ADDED event) − (wall-clock time the client got the ComputeJob create response), because
  creationTimestamps have one-second resolution;
- dispatches/s = N / (last member Job seen − first create sent); time to all Succeeded (a watch
  of the ComputeJobs on the hub);
- the operator process tree's RSS (VmRSS summed, VmHWM of the main process) and CPU seconds
  (utime+stime from /proc/<pid>/stat) sampled every 0.5 s, during the run and over an idle
  window once everything has finished;
- hub API writes per ComputeJob from the hub apiserver's ``apiserver_request_total`` before
  and after (ComputeJob writes by verb and subresource, Events writes), minus the harness's
  own creates;
- duplicates: member Jobs per ComputeJob uid across all members at the end, and creations as
  the watches saw them (a second member Job uid for a ComputeJob is a duplicate, even if it
  was deleted since).

Run: ``python -m tests.tools.loadrun --fleet <workdir>/fleet.json --jobs 1000 --operator-cwd
/path/to/checkout --json`` (repeat ``--operator-cwd`` to measure several builds one after
the other on the same fleet). The namespace is removed at the end. Each run's summary is
also written to ``<log-dir>/<namespace>-summary.json`` as soon as that run ends.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import urllib3
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException
from prometheus_client.parser import text_string_to_metric_families
from tenacity import retry, retry_if_exception, stop_after_attempt, wait_exponential_jitter
from tests.integration.operator_fixtures import (
    GROUP,
    VERSION,
    computejob,
    free_port,
    member_cluster_body,
)

from computegrid import testbed
from computegrid.dispatch import tenant_namespace
from computegrid.testbed import kube

LABEL_JOB_UID = f"{GROUP}/job-uid"
LABEL_ORIGIN_CLUSTER = f"{GROUP}/origin-cluster"
TERMINAL = ("Succeeded", "Failed")
ORIGINS = ("chengdu", "shanghai", "beijing", "chongqing")
WRITE_VERBS = ("POST", "PUT", "PATCH", "DELETE", "APPLY")
CLK_TCK = os.sysconf("SC_CLK_TCK")


def _busy(exc: BaseException) -> bool:
    """A hub too busy to answer (429, 5xx) or no answer at all: a client would try again."""
    if isinstance(exc, ApiException):
        return exc.status in (429, 500, 502, 503, 504)
    return isinstance(exc, (OSError, urllib3.exceptions.HTTPError))


# what a client does while the hub is busy: try again with backoff
retry_while_busy = retry(
    retry=retry_if_exception(_busy),
    wait=wait_exponential_jitter(multiplier=0.5, max=10),
    stop=stop_after_attempt(8),
    reraise=True,
)


@retry_while_busy
def create_once(api: Any, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
    """Create a ComputeJob, trying again while the hub is busy. A 504 may come after the hub
    stored it: the retry's 409 then reads the stored one (same name), so each job is
    submitted once and counted once."""
    try:
        created: dict[str, Any] = api.create_namespaced_custom_object(
            GROUP, VERSION, namespace, "computejobs", body, _request_timeout=60
        )
    except ApiException as exc:
        if exc.status != 409:
            raise
        created = api.get_namespaced_custom_object(
            GROUP, VERSION, namespace, "computejobs", body["metadata"]["name"]
        )
    return created


@dataclass
class RunConfig:
    """One measured run: which operator, how many jobs, which shape."""

    fleet: Path
    jobs: int = 50
    operator_cwd: Path | None = None
    operator_cmd: list[str] | None = None  # None: `<python> -m computegrid.cli run ...`
    namespace: str = ""  # "" = loadrun-<random>
    hub_name: str = "loadrun-hub"
    cpu: str = "100m"
    run_seconds: float = 1.0
    submitters: int = 4
    rate: float = 0.0  # jobs/s offered; 0: as fast as the submitters can
    idle_seconds: float = 60.0
    timeout: float = 900.0
    ready_timeout: float = 300.0
    log_dir: Path = field(default_factory=lambda: Path("/tmp"))


# --------------------------------------------------------------------------- helpers


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (None for no values)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _r(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (a wrapper like `uv run` must not hide the operator)."""
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        out.append(current)
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            try:
                todo.extend(int(c) for c in task.read_text().split())
            except OSError:
                continue
    return out


def proc_sample(pid: int) -> tuple[int, int, float]:
    """(RSS bytes summed over the tree, VmHWM bytes of ``pid``, CPU seconds of the tree)."""
    rss = hwm = 0
    ticks = 0
    for each in process_tree(pid):
        try:
            status = Path(f"/proc/{each}/status").read_text()
            stat = Path(f"/proc/{each}/stat").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                rss += int(line.split()[1]) * 1024
            elif line.startswith("VmHWM:") and each == pid:
                hwm = int(line.split()[1]) * 1024
        fields = stat[stat.rindex(")") + 2 :].split()  # after "(comm)": state is field 3
        ticks += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return rss, hwm, ticks / CLK_TCK


class Sampler(threading.Thread):
    """Samples the operator every ``interval`` seconds; keeps the peak RSS."""

    def __init__(self, pid: int, interval: float = 0.5) -> None:
        super().__init__(name="loadrun-sampler", daemon=True)
        self.pid, self.interval = pid, interval
        self.peak_rss = self.hwm = 0
        self.last: tuple[int, int, float] = (0, 0, 0.0)
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            self.sample()
            self.stopped.wait(self.interval)

    def sample(self) -> tuple[int, int, float]:
        sample = proc_sample(self.pid)
        if sample[0]:  # an exited process reads as zeros: keep what was last seen
            self.last = sample
            self.peak_rss = max(self.peak_rss, sample[0])
            self.hwm = max(self.hwm, sample[1])
        return self.last

    def cpu(self) -> float:
        return self.sample()[2]


def request_totals(api: Any) -> Counter[tuple[str, str, str, str]]:
    """``apiserver_request_total`` by (resource, subresource, verb, code) from /metrics."""
    method, url, headers, body, post = api.param_serialize(
        "GET", "/metrics", auth_settings=["BearerToken"]
    )
    response = api.call_api(method, url, headers, body, post, _request_timeout=30)
    text = response.read().decode("utf-8")
    totals: Counter[tuple[str, str, str, str]] = Counter()
    for family in text_string_to_metric_families(text):
        if family.name != "apiserver_request":
            continue
        for sample in family.samples:
            if sample.name != "apiserver_request_total":
                continue
            labels = sample.labels
            key = (
                labels.get("resource", ""),
                labels.get("subresource", ""),
                labels.get("verb", ""),
                labels.get("code", ""),
            )
            totals[key] += int(sample.value)
    return totals


def hub_writes(
    before: Counter[tuple[str, str, str, str]], after: Counter[tuple[str, str, str, str]]
) -> dict[str, int]:
    """Writes to computejobs (by verb and subresource) and to events between two scrapes."""
    out: Counter[str] = Counter()
    for (resource, sub, verb, code), value in (after - before).items():
        if verb not in WRITE_VERBS:
            continue
        if resource == "computejobs":
            out[f"computejobs{'/' + sub if sub else ''} {verb}"] += value
            if not code.startswith("2"):
                out[f"computejobs errors {code}"] += value
        elif resource == "events":
            out[f"events {verb}"] += value
    return dict(sorted(out.items()))


def requests_by_resource(
    before: Counter[tuple[str, str, str, str]], after: Counter[tuple[str, str, str, str]]
) -> dict[str, int]:
    """Requests between two scrapes as "VERB resource[/subresource]".

    Leases are left out (kwok's node heartbeats and the control plane's leader elections
    renew them whatever the operator does), and so are non-resource paths (the harness's own
    /metrics scrapes). Watches are one total: every informer of the control plane re-opens
    its watches every few minutes, which says nothing about the operator.
    """
    out: Counter[str] = Counter()
    for (resource, sub, verb, _code), value in (after - before).items():
        if verb == "WATCH":
            out["WATCH (all resources)"] += value
        elif resource and resource != "leases":
            out[f"{verb} {resource}{'/' + sub if sub else ''}"] += value
    return dict(sorted(out.items()))


# --------------------------------------------------------------------------- watches


class Watcher(threading.Thread):
    """Lists, then watches from that resourceVersion until stopped (relists on 410).

    ``on_event(type, object, wall_time)`` runs for every event; objects found by a relist that
    were never seen arrive as type ``RELIST``.
    """

    def __init__(
        self,
        name: str,
        list_fn: Callable[..., Any],
        on_event: Callable[[str, dict[str, Any], float], None],
        **list_kwargs: Any,
    ) -> None:
        super().__init__(name=f"loadrun-watch-{name}", daemon=True)
        self.list_fn, self.on_event, self.kwargs = list_fn, on_event, list_kwargs
        self.stopped = threading.Event()
        self.errors = 0
        self.rv = self._list("ADDED")

    def _list(self, kind: str) -> str:
        listing = list_dicts(self.list_fn, **self.kwargs)
        now = time.time()
        for item in listing.get("items") or []:
            self.on_event(kind, item, now)
        return str(listing["metadata"]["resourceVersion"])

    def run(self) -> None:
        while not self.stopped.is_set():
            stream = watch.Watch()
            try:
                for event in stream.stream(
                    self.list_fn,
                    **self.kwargs,
                    resource_version=self.rv,
                    timeout_seconds=5,  # short: the stop flag is checked between watches
                    _request_timeout=30,
                ):
                    obj = event["raw_object"]
                    if event["type"] == "ERROR":
                        if obj.get("code") == 410:
                            self.rv = self._list("RELIST")
                        break
                    self.rv = str(obj["metadata"]["resourceVersion"])
                    if event["type"] != "BOOKMARK":
                        self.on_event(event["type"], obj, time.time())
            except ApiException as exc:
                self.errors += 1
                if exc.status == 410:
                    self.rv = self._list("RELIST")
                else:
                    time.sleep(0.5)
            except Exception:  # connection trouble under load: resume from the last rv
                self.errors += 1
                time.sleep(0.5)

    def stop(self) -> None:
        self.stopped.set()
        self.join(timeout=30)


@dataclass
class Observations:
    """What the watches saw (wall-clock seconds), guarded by one lock."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    # ComputeJob uid -> {(member, member Job uid): first seen}
    member_jobs: dict[str, dict[tuple[str, str], float]] = field(
        default_factory=lambda: defaultdict(dict)
    )
    relisted: int = 0
    placed: dict[str, float] = field(default_factory=dict)  # CJ uid -> status.placement seen
    finished: dict[str, tuple[str, float]] = field(default_factory=dict)  # CJ uid -> phase, t

    def member_job(self, member: str) -> Callable[[str, dict[str, Any], float], None]:
        def record(kind: str, job: dict[str, Any], now: float) -> None:
            meta = job.get("metadata") or {}
            owner = (meta.get("labels") or {}).get(LABEL_JOB_UID)
            if not owner or kind == "DELETED":
                return
            with self.lock:
                seen = self.member_jobs[owner]
                if (member, meta["uid"]) not in seen:
                    seen[(member, meta["uid"])] = now
                    self.relisted += kind == "RELIST"

        return record

    def computejob(self, kind: str, cj: dict[str, Any], now: float) -> None:
        uid = cj["metadata"]["uid"]
        status = cj.get("status") or {}
        with self.lock:
            if status.get("placement") and uid not in self.placed:
                self.placed[uid] = now
            if status.get("phase") in TERMINAL and uid not in self.finished:
                self.finished[uid] = (str(status["phase"]), now)

    def first_seen(self, uid: str) -> float | None:
        with self.lock:
            times = self.member_jobs.get(uid, {}).values()
            return min(times) if times else None


def fleet_watches(
    info: testbed.FleetInfo, obs: Observations, member_selector: str, namespace: str
) -> list[Watcher]:
    """Started watches: ``member_selector``'s Jobs on every member, and the ComputeJobs of
    ``namespace`` on the hub, each listed before this returns."""
    watchers = []
    for member in info.members:
        api = testbed.api_client(Path(member.kubeconfig))  # its own pool: not the submitters'
        batch = client.BatchV1Api(api)
        watchers.append(
            Watcher(
                member.name,
                batch.list_job_for_all_namespaces,
                obs.member_job(member.name),
                label_selector=member_selector,
            )
        )
    custom = client.CustomObjectsApi(testbed.api_client(Path(info.hub.kubeconfig)))
    watchers.append(
        Watcher(
            "hub",
            custom.list_namespaced_custom_object,
            obs.computejob,
            group=GROUP,
            version=VERSION,
            namespace=namespace,
            plural="computejobs",
        )
    )
    for watcher in watchers:
        watcher.start()
    return watchers


# --------------------------------------------------------------------------- the run


def default_command(cfg: RunConfig, hub_kubeconfig: str) -> list[str]:
    python = sys.executable
    if cfg.operator_cwd is not None and (cfg.operator_cwd / ".venv/bin/python").exists():
        python = str(cfg.operator_cwd / ".venv/bin/python")
    return [
        python, "-m", "computegrid.cli", "run",
        "--hub-kubeconfig", hub_kubeconfig,
        "--hub-name", cfg.hub_name,
        "--metrics-port", str(free_port()),
        "--log-format", "json",
    ]  # fmt: skip


def operator_env(cwd: Path | None) -> dict[str, str]:
    """This environment, importing ``computegrid`` from the checkout at ``cwd``.

    Why PYTHONPATH: a venv's editable install points at the checkout that made it, so the
    checkout's own ``operator/`` goes first; otherwise another build's code could run.
    """
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    if cwd is not None:
        env["PYTHONPATH"] = str(cwd / "operator")
    env["PYTHONUNBUFFERED"] = "1"
    return env


def imported_from(python: str, cwd: Path | None) -> str:
    """Where ``python`` imports ``computegrid`` from, run as the operator will be."""
    done = subprocess.run(
        [python, "-c", "import computegrid; print(computegrid.__file__)"],
        cwd=cwd,
        env=operator_env(cwd),
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.strip() or done.stderr.strip()[-200:]


def ensure_member_clusters(hub: Any, info: testbed.FleetInfo) -> None:
    api = client.CustomObjectsApi(hub)
    for member in info.members:
        try:
            api.create_cluster_custom_object(
                GROUP,
                VERSION,
                "memberclusters",
                member_cluster_body(member.name, info.secret_namespace),
            )
        except ApiException as exc:
            if exc.status != 409:
                raise


def delete_namespace_everywhere(apis: list[Any], namespace: str) -> str | None:
    """Delete the run's namespace on every cluster; what went wrong, if anything."""
    note = None
    for api in apis:
        try:
            client.CoreV1Api(api).delete_namespace(namespace, _request_timeout=30)
        except ApiException as exc:
            if exc.status != 404:
                note = f"deleting namespace: {exc.status} {exc.reason}"
    return note


def wait_until(check: Callable[[], bool], timeout: float, interval: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(interval)
    return False


def git_head(cwd: Path | None) -> str | None:
    done = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.strip() or None


def list_dicts(list_fn: Callable[..., Any], **kwargs: Any) -> dict[str, Any]:
    """A list call's raw JSON (dicts, as watch events carry them)."""
    response = list_fn(**kwargs, _preload_content=False, _request_timeout=60)
    data: dict[str, Any] = json.loads(response.data)
    return data


class LoadRun:
    """One operator, one namespace, N ComputeJobs; ``execute()`` returns the summary."""

    def __init__(self, cfg: RunConfig) -> None:
        if cfg.jobs < 1:
            raise ValueError(f"jobs: must be at least 1, got {cfg.jobs}")
        self.cfg = cfg
        self.info = testbed.FleetInfo.from_json(cfg.fleet.read_text(encoding="utf-8"))
        self.hub = testbed.api_client(Path(self.info.hub.kubeconfig))
        self.members = {m.name: testbed.api_client(Path(m.kubeconfig)) for m in self.info.members}
        self.ns = cfg.namespace or f"loadrun-{uuid.uuid4().hex[:6]}"
        self.obs = Observations()
        self.watchers: list[Watcher] = []
        self.proc: subprocess.Popen[bytes] | None = None
        cfg.log_dir.mkdir(parents=True, exist_ok=True)
        self.log = cfg.log_dir / f"{self.ns}-operator.log"
        self.summary: dict[str, Any] = {}
        self.canary_uid = ""
        self.hub_before: Counter[tuple[str, str, str, str]] = Counter()

    # ---- operator process

    def command(self) -> list[str]:
        if not self.cfg.operator_cmd:
            return default_command(self.cfg, self.info.hub.kubeconfig)
        values = {
            "hub_kubeconfig": self.info.hub.kubeconfig,
            "hub_name": self.cfg.hub_name,
            "metrics_port": str(free_port()),
            "namespace": self.ns,
        }
        return [part.format(**values) for part in self.cfg.operator_cmd]

    def start_operator(self) -> Sampler:
        cmd = self.command()
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                cmd,
                cwd=self.cfg.operator_cwd,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=operator_env(self.cfg.operator_cwd),
                start_new_session=True,  # its own group: stopping it reaches a wrapper's child
            )
        self.summary["operator"] = {
            "cmd": cmd,
            "cwd": str(self.cfg.operator_cwd or Path.cwd()),
            "git": git_head(self.cfg.operator_cwd),
            "computegrid_from": imported_from(cmd[0], self.cfg.operator_cwd),
            "pid": self.proc.pid,
            "log": str(self.log),
        }
        sampler = Sampler(self.proc.pid)
        sampler.start()
        return sampler

    def stop_operator(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)  # the group of the process we started
            self.proc.wait(timeout=10)

    def alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"operator exited with {self.proc.returncode}; log: {self.log}")

    # ---- watches

    @property
    def member_selector(self) -> str:
        """This run's member Jobs, in whichever member namespace the operator under test puts
        them (its own ``<hub>-<namespace>``; the same name for operators before tenancy)."""
        return f"{LABEL_ORIGIN_CLUSTER}={self.cfg.hub_name},{LABEL_JOB_UID}"

    def start_watches(self) -> None:
        """Member Job watches on every member and a ComputeJob watch on the hub, listed now."""
        self.watchers += fleet_watches(self.info, self.obs, self.member_selector, self.ns)

    def stop_watches(self) -> None:
        for watcher in self.watchers:
            watcher.stop()

    # ---- phases of the run

    def canary(self, started: float) -> None:
        """One job through the operator before the clock starts: it is up and dispatching."""
        body = computejob("loadrun-canary", origin="chengdu", sensitivity="low", cpu=self.cfg.cpu)
        uid = self.custom().create_namespaced_custom_object(
            GROUP, VERSION, self.ns, "computejobs", body
        )["metadata"]["uid"]

        def dispatched() -> bool:
            self.alive()
            return self.obs.first_seen(uid) is not None

        if not wait_until(dispatched, self.cfg.ready_timeout):
            raise RuntimeError(f"the canary job was not dispatched in {self.cfg.ready_timeout}s")
        self.summary["first_dispatch_s"] = _r((self.obs.first_seen(uid) or 0) - started)
        wait_until(lambda: uid in self.obs.finished, 120)  # its status writes done before `before`
        self.canary_uid = uid

    def custom(self) -> Any:
        return client.CustomObjectsApi(self.hub)

    def submit(self) -> dict[str, tuple[float, float]]:
        """Create the N ComputeJobs from ``submitters`` threads; uid -> (sent, answered)."""
        local = threading.local()
        times: dict[str, tuple[float, float]] = {}
        lock = threading.Lock()
        start = time.monotonic()

        def create(i: int) -> None:
            if self.cfg.rate > 0:  # an offered load: job i not before start + i / rate
                time.sleep(max(0.0, start + i / self.cfg.rate - time.monotonic()))
            if not hasattr(local, "api"):
                local.api = client.CustomObjectsApi(
                    testbed.api_client(Path(self.info.hub.kubeconfig))
                )
            body = computejob(
                f"lr-{i:05d}",
                origin=ORIGINS[i % len(ORIGINS)],
                sensitivity="low",
                cpu=self.cfg.cpu,
                run_seconds=self.cfg.run_seconds,
            )
            sent = time.time()
            created = create_once(local.api, self.ns, body)
            with lock:
                times[created["metadata"]["uid"]] = (sent, time.time())

        with ThreadPoolExecutor(self.cfg.submitters, thread_name_prefix="loadrun-submit") as pool:
            for future in [pool.submit(create, i) for i in range(self.cfg.jobs)]:
                future.result()
        return times

    def wait_done(self, uids: set[str], deadline: float) -> bool:
        def done() -> bool:
            self.alive()
            with self.obs.lock:
                dispatched = uids <= set(self.obs.member_jobs)
                return dispatched and uids <= set(self.obs.finished)

        return wait_until(done, max(0.0, deadline - time.monotonic()), interval=0.5)

    def member_job_counts(self) -> Counter[str]:
        """Member Jobs per ComputeJob uid, across all members, as they are now."""
        counts: Counter[str] = Counter()
        for api in self.members.values():
            jobs = list_dicts(
                client.BatchV1Api(api).list_job_for_all_namespaces,
                label_selector=self.member_selector,
            )
            for job in jobs["items"]:
                counts[job["metadata"]["labels"][LABEL_JOB_UID]] += 1
        return counts

    def cleanup(self) -> str:
        """ComputeJobs deleted while the operator runs, then the namespace everywhere."""
        custom = self.custom()

        @retry_while_busy  # a 1,000-job list the busy hub cut mid-answer once ended an ABAB run
        def leftovers() -> list[dict[str, Any]]:
            return list(
                custom.list_namespaced_custom_object(GROUP, VERSION, self.ns, "computejobs")[
                    "items"
                ]
            )

        note = "ok"
        try:
            custom.delete_collection_namespaced_custom_object(
                GROUP, VERSION, self.ns, "computejobs"
            )
            if self.proc is not None and self.proc.poll() is None:
                wait_until(lambda: not leftovers(), 180, interval=1.0)
        except ApiException as exc:
            note = f"deleting ComputeJobs: {exc.status} {exc.reason}"
        self.stop_operator()
        for cj in leftovers():  # the operator is gone: its finalizers would pin the namespace
            note = "finalizers removed by the harness"
            try:
                custom.patch_namespaced_custom_object(
                    GROUP, VERSION, self.ns, "computejobs", cj["metadata"]["name"],
                    {"metadata": {"finalizers": None}},
                )  # fmt: skip
            except ApiException as exc:
                if exc.status != 404:
                    raise
        members = list(self.members.values())
        gone = delete_namespace_everywhere([self.hub, *members], self.ns)
        owned = delete_namespace_everywhere(members, tenant_namespace(self.ns, self.cfg.hub_name))
        return gone or owned or note

    # ---- the whole run

    def execute(self) -> dict[str, Any]:
        cfg = self.cfg
        self.summary.update(
            {
                "fleet": self.info.name,
                "members": len(self.info.members),
                "namespace": self.ns,
                "jobs": cfg.jobs,
                "cpu_request": cfg.cpu,
                "run_seconds": cfg.run_seconds,
                "submitters": cfg.submitters,
                "offered_rate": cfg.rate or None,
            }
        )
        ensure_member_clusters(self.hub, self.info)
        for api in [self.hub, *self.members.values()]:
            kube.ensure_namespace(api, self.ns)
        started = time.time()
        sampler = self.start_operator()
        try:
            self.start_watches()
            self.canary(started)
            self.measure(sampler)
        except Exception as exc:  # reported in the summary with whatever was measured
            self.summary["error"] = f"{type(exc).__name__}: {exc}"
        finally:
            self.stop_watches()
            sampler.stopped.set()
            self.summary["cleanup"] = self.cleanup()
        return self.summary

    def measure(self, sampler: Sampler) -> None:
        cfg = self.cfg
        hub_before = self.hub_before = request_totals(self.hub)
        cpu_before = sampler.cpu()
        begin = time.monotonic()
        times = self.submit()
        uids = set(times)
        finished_in_time = self.wait_done(uids, begin + cfg.timeout)
        cpu_run = sampler.cpu() - cpu_before
        rss_end_of_run = sampler.last[0]
        hub_after = request_totals(self.hub)
        self.stop_watches()

        first_sent = min(sent for sent, _ in times.values())
        last_answer = max(answered for _, answered in times.values())
        seen = {uid: self.obs.first_seen(uid) for uid in uids}
        arrived = [t for t in seen.values() if t is not None]
        vs_answer = [t - times[uid][1] for uid, t in seen.items() if t is not None]
        vs_sent = [t - times[uid][0] for uid, t in seen.items() if t is not None]
        finished = [self.obs.finished[uid] for uid in uids if uid in self.obs.finished]
        with self.obs.lock:
            creations = {uid: dict(jobs) for uid, jobs in self.obs.member_jobs.items()}
        created_twice = {
            uid: sorted(member for member, _ in jobs)
            for uid, jobs in creations.items()
            if len(jobs) > 1 and uid != self.canary_uid
        }
        counts = self.member_job_counts()
        writes = hub_writes(hub_before, hub_after)
        operator_writes = sum(v for k, v in writes.items() if "errors" not in k) - cfg.jobs
        last_seen = max(arrived) if arrived else None
        self.summary.update(
            {
                "timed_out": not finished_in_time,
                "submit_s": _r(last_answer - first_sent),
                "submit_per_s": _r(cfg.jobs / max(last_answer - first_sent, 1e-9), 1),
                "placed": sum(uid in self.obs.placed for uid in uids),
                "dispatched": len(arrived),
                "all_placed": len(arrived) == cfg.jobs,
                "succeeded": sum(phase == "Succeeded" for phase, _ in finished),
                "failed": sum(phase == "Failed" for phase, _ in finished),
                "create_to_member_job_s": {
                    "p50": _r(percentile(vs_answer, 0.5)),
                    "p99": _r(percentile(vs_answer, 0.99)),
                    "max": _r(max(vs_answer, default=None)),
                    "mean": _r(statistics.mean(vs_answer) if vs_answer else None),
                    "p50_from_sent": _r(percentile(vs_sent, 0.5)),
                    "p99_from_sent": _r(percentile(vs_sent, 0.99)),
                },
                "dispatches_per_s": _r(len(arrived) / (last_seen - first_sent), 2)
                if last_seen
                else None,
                "all_finished_s": _r(max(t for _, t in finished) - first_sent)
                if finished
                else None,
                "hub_writes_until_finished": writes,
                "hub_writes_per_job_until_finished": _r(operator_writes / cfg.jobs, 2),
                "duplicates": {
                    "created": len(created_twice),
                    "at_end": sum(1 for uid, n in counts.items() if n > 1 and uid in uids),
                    "examples": dict(list(created_twice.items())[:5]),
                },
                "member_jobs_at_end": sum(counts[uid] for uid in uids),
                "foreign_member_jobs": sum(
                    n for uid, n in counts.items() if uid not in uids and uid != self.canary_uid
                ),
                "watch": {
                    "errors": sum(w.errors for w in self.watchers),
                    "relisted_jobs": self.obs.relisted,
                },
            }
        )
        self.idle(sampler, cpu_run, rss_end_of_run)

    def idle(self, sampler: Sampler, cpu_run: float, rss_end_of_run: int) -> None:
        """The operator with nothing to do: CPU % of a core and API requests per cluster."""
        cfg = self.cfg
        apis = {"hub": self.hub, **self.members}
        before = {name: request_totals(api) for name, api in apis.items()}
        cpu0, t0 = sampler.cpu(), time.monotonic()
        time.sleep(cfg.idle_seconds)
        cpu1, elapsed = sampler.cpu(), time.monotonic() - t0
        after = {name: request_totals(api) for name, api in apis.items()}
        mb = 1024 * 1024
        self.summary["operator"].update(
            {
                "rss_peak_mb": _r(sampler.peak_rss / mb, 1),
                "vmhwm_mb": _r(sampler.hwm / mb, 1),
                "rss_end_of_run_mb": _r(rss_end_of_run / mb, 1),
                "rss_after_idle_mb": _r(sampler.last[0] / mb, 1),
                "cpu_run_s": _r(cpu_run, 2),
                "cpu_per_job_s": _r(cpu_run / cfg.jobs, 4),
                "idle_window_s": _r(elapsed, 1),
                "cpu_idle_pct": _r(100 * (cpu1 - cpu0) / elapsed, 2),
            }
        )
        writes = hub_writes(self.hub_before, after["hub"])
        operator_writes = sum(v for k, v in writes.items() if "errors" not in k) - cfg.jobs
        self.summary["hub_writes"] = writes  # the whole life: the run and the idle window
        self.summary["hub_writes_per_job"] = _r(operator_writes / cfg.jobs, 2)
        self.summary["idle_requests"] = {
            name: requests_by_resource(before[name], after[name]) for name in apis
        }


# --------------------------------------------------------------------------- CLI


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.tools.loadrun",
        description="Run an operator on a test bed fleet under N ComputeJobs and measure it.",
    )
    parser.add_argument("--fleet", required=True, type=Path, help="fleet.json of a running fleet")
    parser.add_argument("--jobs", type=int, default=50, help="ComputeJobs to submit")
    parser.add_argument(
        "--operator-cwd",
        type=Path,
        action="append",
        help="checkout to run the operator from (its .venv/bin/python); repeat to compare",
    )
    parser.add_argument(
        "--operator-cmd",
        help="the operator command line (shell words; {hub_kubeconfig} {hub_name} "
        "{metrics_port} {namespace} are filled in); default: python -m computegrid.cli run ...",
    )
    parser.add_argument("--namespace", default="", help="default: loadrun-<random>")
    parser.add_argument("--hub-name", default="loadrun-hub")
    parser.add_argument("--cpu", default="100m", help="cpu request per job")
    parser.add_argument("--run-seconds", type=float, default=1.0, help="pod run time (kwok)")
    parser.add_argument("--submitters", type=int, default=4, help="client threads creating jobs")
    parser.add_argument(
        "--rate",
        type=float,
        default=0.0,
        help="jobs/s offered (paced submission, the same for every operator compared); "
        "0: as fast as the submitters can (default)",
    )
    parser.add_argument("--idle-seconds", type=float, default=60.0)
    parser.add_argument("--timeout", type=float, default=900.0, help="for all to finish")
    parser.add_argument("--log-dir", type=Path, default=Path("/tmp"))
    parser.add_argument("--json", action="store_true", help="print only the JSON summary")
    args = parser.parse_args(argv)
    if not args.fleet.is_file():
        parser.error(f"--fleet: no such file {args.fleet}")
    if args.jobs < 1:
        parser.error(f"--jobs: must be at least 1, got {args.jobs}")
    if args.rate < 0:
        parser.error(f"--rate: must be 0 or more, got {args.rate}")
    for cwd in args.operator_cwd or []:
        if not (cwd / "operator" / "computegrid").is_dir():
            parser.error(f"--operator-cwd: {cwd} is not a computegrid checkout")
    runs = []
    for cwd in args.operator_cwd or [None]:
        cfg = RunConfig(
            fleet=args.fleet,
            jobs=args.jobs,
            operator_cwd=cwd.resolve() if cwd else None,
            operator_cmd=shlex.split(args.operator_cmd) if args.operator_cmd else None,
            namespace=args.namespace if len(args.operator_cwd or [None]) == 1 else "",
            hub_name=args.hub_name,
            cpu=args.cpu,
            run_seconds=args.run_seconds,
            submitters=args.submitters,
            rate=args.rate,
            idle_seconds=args.idle_seconds,
            timeout=args.timeout,
            log_dir=args.log_dir,
        )
        if not args.json:
            print(f"loadrun: {cfg.jobs} jobs, operator from {cwd or Path.cwd()}", file=sys.stderr)
        runs.append(LoadRun(cfg).execute())
        # Each run's summary beside its operator log at once: a comparison of several builds
        # takes an hour or more, and one cut short (a timeout, a ^C) used to lose them all.
        saved = args.log_dir / f"{runs[-1].get('namespace') or 'loadrun'}-summary.json"
        saved.write_text(json.dumps(runs[-1], indent=2) + "\n")
        print(f"loadrun: summary {saved}", file=sys.stderr)
    print(json.dumps(runs[0] if len(runs) == 1 else {"runs": runs}, indent=2))
    return 0 if all("error" not in run for run in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
