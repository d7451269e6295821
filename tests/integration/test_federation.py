"""Federation through two levels (issue 10) on a three-level test bed of real control planes.

A national hub, two regional hubs (``yangtze-delta`` Pinned, ``west`` Autonomous) with two
kwok members each (``deploy/testbed/federation.yaml``); one operator process per hub, each
with its own ``--hub-name``. The national hub sees the regional hubs as MemberClusters of
``type: Hub`` and their clusters one by one; what it creates there is a ComputeJob.

The federation has its own name (``COMPUTEGRID_TEST_FEDERATION``, default ``cgfd``) so it never
meets the session's flat fleet; ``COMPUTEGRID_TEST_FEDERATION_KEEP=1`` reuses a running one
(``computegrid testbed up --name cgfd --topology deploy/testbed/federation.yaml``) and leaves
it up.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import statistics
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException
from operator_fixtures import (
    GROUP,
    VERSION,
    Hub,
    OperatorProcess,
    computejob,
    member_cluster_body,
    wait_for,
)

from computegrid import testbed
from computegrid.testbed import federation as fed

NAME = os.environ.get("COMPUTEGRID_TEST_FEDERATION", "cgfd")
KEEP = os.environ.get("COMPUTEGRID_TEST_FEDERATION_KEEP") == "1"
TOPOLOGY = Path(__file__).resolve().parents[2] / "deploy" / "testbed" / "federation.yaml"
TIMEOUT_S = 180.0


class Bed:
    """The running federation: APIs and operators per hub."""

    def __init__(self, info: fed.FederationInfo) -> None:
        self.info = info
        self.national_api = testbed.api_client(Path(info.national.hub.kubeconfig))
        self.region_apis = {
            r.name: testbed.api_client(Path(r.fleet.hub.kubeconfig)) for r in info.regions
        }
        self.member_apis = {
            m.name: testbed.api_client(Path(m.kubeconfig))
            for r in info.regions
            for m in r.fleet.members
        }
        self.operators: dict[str, OperatorProcess] = {}

    def close(self) -> None:
        for api in [self.national_api, *self.region_apis.values(), *self.member_apis.values()]:
            api.close()


def _create_cluster_object(api: Any, body: dict[str, Any]) -> None:
    try:
        client.CustomObjectsApi(api).create_cluster_custom_object(
            GROUP, VERSION, "memberclusters", body
        )
    except ApiException as exc:
        if exc.status != 409:
            raise


def _hub_ready(api: Any, name: str, clusters: int) -> bool:
    mc = client.CustomObjectsApi(api).get_cluster_custom_object(
        GROUP, VERSION, "memberclusters", name
    )
    for cond in (mc.get("status") or {}).get("conditions") or []:
        if cond["type"] == "Ready" and cond["status"] == "True":
            return bool(cond.get("message") == f"hub with {clusters} clusters, {clusters} ready")
    return False


@pytest.fixture(scope="module")
def bed(testbed_binaries: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bed]:
    """The federation, MemberClusters at both levels, and three operators."""
    topology = fed.read_topology(TOPOLOGY)
    if KEEP and (testbed.workdir_for(NAME) / fed.MANIFEST).exists():
        info = fed.load_federation(NAME)
    else:
        info = fed.up_federation(NAME, topology, log=print)
    bed = Bed(info)
    logs = tmp_path_factory.mktemp("federation")
    try:
        for region in info.regions:
            for member in region.fleet.members:
                _create_cluster_object(
                    bed.region_apis[region.name],
                    member_cluster_body(member.name, region.fleet.secret_namespace),
                )
            op = OperatorProcess(
                region.fleet.hub.kubeconfig,
                logs / f"operator-{region.name}.log",
                extra=["--hub-name", region.name],
            )
            op.start()
            bed.operators[region.name] = op
            _create_cluster_object(bed.national_api, fed.hub_member_body(region))
        national = OperatorProcess(
            info.national.hub.kubeconfig,
            logs / "operator-national.log",
            extra=["--hub-name", info.national_name],
        )
        national.start()
        bed.operators[info.national_name] = national
        for region in info.regions:
            wait_for(
                lambda r=region: _hub_ready(bed.national_api, r.name, len(r.fleet.members)),
                f"hub member {region.name} Ready with every cluster",
                TIMEOUT_S,
            )
        yield bed
    finally:
        for op in bed.operators.values():
            op.stop()
        print(f"operator logs: {logs}")
        bed.close()
        if not KEEP:
            fed.down_federation(NAME)


@pytest.fixture
def ns(bed: Bed, request: pytest.FixtureRequest) -> Iterator[str]:
    name = f"fed-{uuid.uuid4().hex[:8]}"
    core = client.CoreV1Api(bed.national_api)
    core.create_namespace(body={"metadata": {"name": name}})
    yield name
    core.delete_namespace(name)


def child_cjs(bed: Bed, region: str, uid: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = client.CustomObjectsApi(
        bed.region_apis[region]
    ).list_cluster_custom_object(
        GROUP, VERSION, "computejobs", label_selector=f"computegrid.io/job-uid={uid}"
    )["items"]
    return items


def member_jobs(bed: Bed, uid: str) -> list[tuple[str, Any]]:
    out = []
    for name, api in bed.member_apis.items():
        for job in (
            client.BatchV1Api(api)
            .list_job_for_all_namespaces(label_selector=f"computegrid.io/job-uid={uid}")
            .items
        ):
            out.append((name, job))
    return out


def child_uid_of(bed: Bed, region: str, uid: str) -> str:
    found = child_cjs(bed, region, uid)
    assert len(found) == 1, f"one ComputeJob on {region} for {uid}, found {len(found)}"
    return str(found[0]["metadata"]["uid"])


def test_pinned_placement_status_and_path_through_two_levels(bed: Bed, ns: str) -> None:
    hub = Hub(bed.national_api, ns)
    # Shanghai, high class (5 ms): only the Yangtze delta's clusters are within the budget.
    made = hub.create(computejob("pinned", origin="shanghai", sensitivity="high"))
    uid = made["metadata"]["uid"]
    status = hub.wait_phase("pinned", "Succeeded", timeout=TIMEOUT_S)
    chosen = status["placement"]["cluster"]
    region, _, cluster = chosen.partition("/")
    assert region == "yangtze-delta", chosen
    assert status["path"] == ["national", "yangtze-delta", cluster]
    assert status["remote"]["cluster"] == "yangtze-delta"
    (child,) = child_cjs(bed, "yangtze-delta", uid)
    assert child["spec"]["placement"]["pinnedCluster"] == cluster
    assert child["metadata"]["labels"]["computegrid.io/origin-cluster"] == "national"
    assert child["metadata"]["annotations"]["computegrid.io/path"] == "national"
    assert child["status"]["placement"]["cluster"] == cluster  # the child ran it where pinned
    jobs = member_jobs(bed, child["metadata"]["uid"])
    assert [name for name, _ in jobs] == [cluster]
    assert jobs[0][1].metadata.labels["computegrid.io/origin-cluster"] == "yangtze-delta"


@pytest.mark.parametrize(
    ("origin", "cluster"), [("xian", "gansu-qingyang"), ("yinchuan", "ningxia-zhongwei")]
)
def test_autonomous_the_child_places_within_the_budget_from_the_origin(
    bed: Bed, ns: str, origin: str, cluster: str
) -> None:
    hub = Hub(bed.national_api, ns)
    name = f"auto-{origin}"
    made = hub.create(computejob(name, origin=origin, sensitivity="high"))
    status = hub.wait_phase(name, "Succeeded", timeout=TIMEOUT_S)
    assert status["path"] == ["national", "west", cluster]
    (child,) = child_cjs(bed, "west", made["metadata"]["uid"])
    assert "pinnedCluster" not in child["spec"].get("placement", {})
    assert child["status"]["placement"]["latencyMs"] <= 5.0  # the high class's budget
    assert child["metadata"]["annotations"]["computegrid.io/origin"] == origin


def test_deletion_goes_down_two_levels(bed: Bed, ns: str) -> None:
    hub = Hub(bed.national_api, ns)
    made = hub.create(computejob("long", origin="shanghai", sensitivity="high", run_seconds=600))
    uid = made["metadata"]["uid"]
    hub.wait_phase("long", "Running", timeout=TIMEOUT_S)
    child = child_uid_of(bed, "yangtze-delta", uid)
    assert len(member_jobs(bed, child)) == 1
    hub.delete("long")
    wait_for(lambda: not child_cjs(bed, "yangtze-delta", uid), "the child ComputeJob deleted")
    wait_for(lambda: not member_jobs(bed, child), "the member Job deleted")


def test_a_hub_refuses_a_job_that_already_passed_through_it(bed: Bed, ns: str) -> None:
    core = client.CoreV1Api(bed.region_apis["west"])
    core.create_namespace(body={"metadata": {"name": ns}})
    try:
        regional = Hub(bed.region_apis["west"], ns)
        body = computejob("looped", origin="xian", sensitivity="high")
        body["metadata"]["annotations"]["computegrid.io/path"] = "national,west"
        regional.create(body)
        status = wait_for(
            lambda: (s := regional.status("looped")).get("message") and s, "a refusal"
        )
        assert status["phase"] == "Pending"
        assert "already passed through hub west" in status["message"]
        scheduled = next(c for c in status["conditions"] if c["type"] == "Scheduled")
        assert scheduled["reason"] == "FederationLoop"
        uid = regional.get("looped")["metadata"]["uid"]
        assert member_jobs(bed, uid) == []
    finally:
        core.delete_namespace(ns)


def _created(obj: Any) -> float:
    stamp = obj["metadata"]["creationTimestamp"] if isinstance(obj, dict) else obj
    if isinstance(stamp, datetime):
        return stamp.timestamp()
    return datetime.fromisoformat(str(stamp).replace("Z", "+00:00")).timestamp()


def test_a_burst_through_two_levels_with_the_regional_operator_killed(bed: Bed, ns: str) -> None:
    """20 jobs at the national hub; the Pinned region's operator SIGKILLed while they are
    dispatched, then restarted: every job Succeeded, exactly one child ComputeJob and one
    member Job per job (counted on the APIs: a survivor count; issue 12's suites count
    creations by watch). Prints the extra create→Job latency per level."""
    hub = Hub(bed.national_api, ns)
    count = int(os.environ.get("COMPUTEGRID_FED_JOBS", "20"))
    uids = {}
    for i in range(count):
        made = hub.create(computejob(f"b{i}", origin="shanghai", sensitivity="high"))
        uids[f"b{i}"] = made
        if i == count // 2:
            bed.operators["yangtze-delta"].stop(signal.SIGKILL)
            bed.operators["yangtze-delta"].start()
    for name in uids:
        hub.wait_phase(name, "Succeeded", timeout=TIMEOUT_S * 2)
    level1, level2 = [], []
    for made in uids.values():
        (child,) = child_cjs(bed, "yangtze-delta", made["metadata"]["uid"])
        jobs = member_jobs(bed, child["metadata"]["uid"])
        assert len(jobs) == 1, f"{made['metadata']['name']}: {len(jobs)} member Jobs"
        level1.append(_created(child) - _created(made))
        level2.append(_created(jobs[0][1].metadata.creation_timestamp) - _created(child))
    summary = {
        "jobs": count,
        "national_to_child_cj_p50_s": round(statistics.median(level1), 2),
        "child_cj_to_member_job_p50_s": round(statistics.median(level2), 2),
        "national_to_member_job_p50_s": round(
            statistics.median(a + b for a, b in zip(level1, level2, strict=True)), 2
        ),
        "note": "creationTimestamps have 1 s resolution; the regional operator was SIGKILLed "
        "once mid-burst",
    }
    print("federation burst:", json.dumps(summary))


class FirstSeen:
    """When each object (keyed by its job-uid label) first showed up in a watch, by the
    test's clock: sub-second, unlike creationTimestamps."""

    def __init__(self, list_call: Any, *args: Any) -> None:
        self.seen: dict[str, float] = {}
        self.child_of: dict[str, str] = {}  # object uid → its job-uid label
        self._watch = watch.Watch()
        self._thread = threading.Thread(
            target=self._run, args=(list_call, *args), daemon=True, name="first-seen"
        )
        self._thread.start()

    def _run(self, list_call: Any, *args: Any) -> None:
        with contextlib.suppress(Exception):  # the stream ends when stop() cuts it
            self._follow(list_call, *args)

    def _follow(self, list_call: Any, *args: Any) -> None:
        for event in self._watch.stream(list_call, *args, timeout_seconds=600):
            obj = event["object"]
            meta = obj["metadata"] if isinstance(obj, dict) else obj.metadata.to_dict()
            uid = (meta.get("labels") or {}).get("computegrid.io/job-uid")
            if uid and uid not in self.seen:
                self.seen[uid] = time.time()
                self.child_of[str(meta.get("uid"))] = uid

    def stop(self) -> None:
        self._watch.stop()


def test_extra_create_to_job_latency_per_level(bed: Bed, ns: str) -> None:
    """The same jobs (Shanghai, high class: the Yangtze delta's clusters) submitted at the
    regional hub directly (one level) and at the national hub (two levels); create → member
    Job seen by a watch, p50 of each, and their difference: the extra latency of a level."""
    count = int(os.environ.get("COMPUTEGRID_FED_JOBS", "10"))
    regional_api = bed.region_apis["yangtze-delta"]
    client.CoreV1Api(regional_api).create_namespace(body={"metadata": {"name": ns}})
    children = FirstSeen(
        client.CustomObjectsApi(regional_api).list_cluster_custom_object,
        GROUP,
        VERSION,
        "computejobs",
    )
    jobs = [
        FirstSeen(client.BatchV1Api(bed.member_apis[m]).list_job_for_all_namespaces)
        for m in ("yangtze-delta-wujiang", "yangtze-delta-wuhu")
    ]

    def job_seen(uid: str) -> float | None:
        return next((j.seen[uid] for j in jobs if uid in j.seen), None)

    try:
        time.sleep(1.0)  # the watches are established
        runs: dict[str, list[float]] = {"one level": [], "two levels": [], "to child": []}
        apis = {"one level": regional_api, "two levels": bed.national_api}
        submitted: list[tuple[str, str, float]] = []
        # A warm-up job per path first (not counted), then the two paths alternate, so a
        # load swing on this shared machine hits both alike.
        for i in range(-1, count):
            for label, api in apis.items():
                name = f"lat-{label[:3]}-{i + 1}"
                started = time.time()
                made = Hub(api, ns).create(computejob(name, origin="shanghai", sensitivity="high"))
                if i >= 0:
                    submitted.append((label, made["metadata"]["uid"], started))
                time.sleep(0.3)
            if i < 0:
                time.sleep(10.0)
        for label, uid, started in submitted:
            if label == "one level":
                seen = wait_for(lambda u=uid: job_seen(u), f"member Job of {uid}")
            else:
                child = wait_for(
                    lambda u=uid: next((c for c, p in children.child_of.items() if p == u), None),
                    f"child ComputeJob of {uid}",
                )
                seen = wait_for(lambda c=child: job_seen(c), f"member Job of {child}")
                runs["to child"].append(children.seen[uid] - started)
            runs[label].append(seen - started)
    finally:
        children.stop()
        for j in jobs:
            j.stop()
    p50 = {k: round(statistics.median(v), 3) for k, v in runs.items()}
    summary = {
        "jobs_per_run": count,
        "create_to_member_job_p50_s": {
            "one level": p50["one level"],
            "two levels": p50["two levels"],
        },
        "national_create_to_child_computejob_p50_s": p50["to child"],
        "extra_per_level_p50_s": round(p50["two levels"] - p50["one level"], 3),
    }
    print("federation latency:", json.dumps(summary))
    assert len(runs["two levels"]) == count


def test_a_regional_hub_lost_its_jobs_move_per_failover_at_the_national_level(
    bed: Bed, ns: str
) -> None:
    """Xi'an, medium class (20 ms): every cluster of both regions is within the budget. The
    job's region's hub is stopped: past the grace period the national hub moves the job
    (failover Always) to the other region; when the hub is back, the old child ComputeJob is
    deleted (fenced)."""
    hub = Hub(bed.national_api, ns)
    body = computejob("moves", origin="xian", sensitivity="medium", run_seconds=600)
    body["spec"]["failover"] = {"policy": "Always"}
    uid = hub.create(body)["metadata"]["uid"]
    first = hub.wait_phase("moves", "Running", timeout=TIMEOUT_S)
    lost = first["remote"]["cluster"]
    other = next(r.name for r in bed.info.regions if r.name != lost)
    region = bed.info.region(lost)
    child_uid_of(bed, lost, uid)  # exactly one child ComputeJob there
    testbed.stop_member("hub", region.fleet.name, region.fleet.workdir)
    try:
        moved = wait_for(
            lambda: (s := hub.status("moves")).get("remote", {}).get("cluster") == other and s,
            f"the job moved to {other}",
            TIMEOUT_S,
        )
        assert moved["reschedules"] == 1
        assert [c["cluster"] for c in moved["staleCopies"]] == [lost]
        hub.wait_phase("moves", "Running", timeout=TIMEOUT_S)
        assert hub.status("moves")["path"][1] == other
    finally:
        testbed.start_member("hub", region.fleet.name, region.fleet.workdir)
    wait_for(lambda: not child_cjs(bed, lost, uid), f"the stale ComputeJob on {lost} deleted")
    assert len(child_cjs(bed, other, uid)) == 1
    # Not asserted: that the regional operator then deletes its member Job. It does when its
    # ComputeJob watch delivers the deletion, but after its own hub's outage that watch came
    # back late or not at all within 180 s (Kopf's request retries), and a relist does not
    # report objects deleted meanwhile: a known gap of the one-level operator (see the report).
    hub.delete("moves")
