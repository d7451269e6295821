"""Federation through two levels (issue 10) on a three-level test bed of real control planes.

A national hub, two regional hubs (``yangtze-delta`` Pinned, ``west`` Autonomous) with two
kwok members each (``deploy/testbed/federation.yaml``); one operator process per hub, each
with its own ``--hub-name``. The national hub sees the regional hubs as MemberClusters of
``type: Hub`` and their clusters one by one; what it creates there is a ComputeJob.

The federation has its own name (``COMPUTEGRID_TEST_FEDERATION``, default ``cgfd``) so it never
meets the session's flat fleet; ``COMPUTEGRID_TEST_FEDERATION_KEEP=1`` reuses a running one
(``computegrid testbed up --name cgfd --topology deploy/testbed/federation.yaml``) and leaves
it up. The samples' comparison starts a flat fleet of the same four clusters
(``COMPUTEGRID_TEST_FEDERATION_FLAT``, default ``<federation>-flat``; kept likewise) before the
federation, and removes it before the federation starts, so the two never run at once
(unless both are kept).
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
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException
from kubernetes.utils import parse_quantity
from operator_fixtures import (
    GROUP,
    VERSION,
    CreationLog,
    Hub,
    OperatorProcess,
    computejob,
    hub_jobs,
    member_cluster_body,
    wait_for,
    write_summary,
)

from computegrid import testbed
from computegrid.api import LatencySensitivity
from computegrid.cli.demo_federated import hubs_ready
from computegrid.fleet_data import load_national_fleet, resolve_city
from computegrid.fleet_data.national import load_latency_model
from computegrid.scheduling import LATENCY_BUDGET_MS
from computegrid.testbed import federation as fed

NAME = os.environ.get("COMPUTEGRID_TEST_FEDERATION", "cgfd")
FLAT = os.environ.get("COMPUTEGRID_TEST_FEDERATION_FLAT", f"{NAME}-flat")
KEEP = os.environ.get("COMPUTEGRID_TEST_FEDERATION_KEEP") == "1"
ROOT = Path(__file__).resolve().parents[2]
TOPOLOGY = ROOT / "deploy" / "testbed" / "federation.yaml"
SAMPLES = ROOT / "deploy" / "samples"  # what `make demo` applies
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
    return hubs_ready([mc], {name: clusters}) == [name]


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


# -- the samples: as on a flat fleet (Pinned), within their budgets (Autonomous) ----------

LANDED = ("Running", "Succeeded", "Failed")
DATA = load_national_fleet()


def sample_bodies(namespace: str) -> list[dict[str, Any]]:
    """deploy/samples' ComputeJobs (what `make demo` applies), all in ``namespace`` (their
    names differ; a fresh namespace keeps a rerun on a kept bed apart from the last one)."""
    bodies = []
    for path in sorted(SAMPLES.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if isinstance(doc, dict) and doc.get("kind") == "ComputeJob":
                doc["metadata"]["namespace"] = namespace
                bodies.append(doc)
    return bodies


def data_cpu(clusters: list[str]) -> float:
    """The fleet data's CPUs over ``clusters``' whole node inventories."""
    return float(sum(n.cpu for c in clusters for n in DATA.by_name(c).nodes))


def wait_full_and_idle(api: Any, cpu: dict[str, float]) -> None:
    """Until each MemberCluster (by name) shows ``cpu`` allocatable and all of it available:
    the whole inventory seen, no pod of an earlier run still counted (for a Hub member:
    through its children's statuses, one probe later)."""

    def full() -> bool:
        for name, want in cpu.items():
            mc = client.CustomObjectsApi(api).get_cluster_custom_object(
                GROUP, VERSION, "memberclusters", name
            )
            status = mc.get("status") or {}
            for field in ("allocatable", "available"):
                if float(parse_quantity((status.get(field) or {}).get("cpu", "0"))) != want:
                    return False
        return True

    wait_for(full, f"member clusters with all their CPUs free: {cpu}", TIMEOUT_S)


def landing(status: dict[str, Any], hops: int) -> str | None:
    """The cluster a job runs or ran on: the last of its path once that has ``hops`` hubs and
    clusters (2 flat: hub, cluster; 3 federated: national, region, cluster)."""
    path = status.get("path") or []
    return str(path[-1]) if status.get("phase") in LANDED and len(path) == hops else None


def unschedulable(row: dict[str, Any]) -> bool:
    """Pending with Scheduled=False: no cluster fits (the samples' Urumqi and Beijing ones)."""
    status = row["status"]
    return status.get("phase") == "Pending" and any(
        c["type"] == "Scheduled" and c["status"] == "False" for c in status.get("conditions") or []
    )


def place_samples(api: Any, namespace: str, hops: int) -> dict[str, dict[str, Any]]:
    """Apply the samples at a hub; poll (0.5 s) until each landed or waits Pending with a
    reason. Per sample: its status, the cluster (None: Pending), create → landed seconds."""
    hub = Hub(api, namespace)
    bodies = sample_bodies(namespace)
    started = time.monotonic()
    for body in bodies:
        hub.create(body)
    out: dict[str, dict[str, Any]] = {}
    deadline = started + TIMEOUT_S
    while time.monotonic() < deadline:
        for item in hub_jobs(api, namespace):
            status = item.get("status") or {}
            row = out.setdefault(item["metadata"]["name"], {"cluster": None, "landed_s": None})
            row.update(status=status, uid=item["metadata"]["uid"], item=item)
            if row["cluster"] is None and (cluster := landing(status, hops)):
                row.update(cluster=cluster, landed_s=round(time.monotonic() - started, 2))
        waiting = [n for n, r in out.items() if r["cluster"] is None and not unschedulable(r)]
        if len(out) == len(bodies) and not waiting:
            break
        time.sleep(0.5)
    return out


def budget_ms(item: dict[str, Any]) -> float | None:
    sensitivity = item["metadata"]["annotations"]["computegrid.io/latency-sensitivity"]
    return LATENCY_BUDGET_MS[LatencySensitivity(sensitivity)]


def rtt_ms(item: dict[str, Any], cluster: str) -> float:
    """RTT from the job's origin to ``cluster`` by the latency model the operators use."""
    origin = resolve_city(item["metadata"]["annotations"]["computegrid.io/origin"]).key
    return load_latency_model().rtt_ms(origin, DATA.by_name(cluster).location)


@pytest.fixture(scope="module")
def flat_samples(
    testbed_binaries: None, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, dict[str, Any]]:
    """The samples on a real flat fleet of the federation's four clusters (a hub, the four as
    plain members, one operator), each member with the data's whole inventory, as in the
    federation. Started and removed before the federation (a fixture the test names first)."""
    topology = fed.read_topology(TOPOLOGY)
    members = [m for r in topology.regions for m in r.members]
    started = time.monotonic()
    if KEEP and testbed.workdir_for(FLAT).joinpath(testbed.MANIFEST).exists():
        info = testbed.load(FLAT)
    else:
        info = testbed.up(
            FLAT, clusters=members, nodes_per_member=topology.nodes_per_member, log=print
        )
    api = testbed.api_client(Path(info.hub.kubeconfig))
    logs = tmp_path_factory.mktemp("flat")
    op = OperatorProcess(info.hub.kubeconfig, logs / "operator.log", extra=["--hub-name", "flat"])
    namespace = f"flat-{uuid.uuid4().hex[:8]}"
    try:
        testbed.add_data_inventory(info)
        for member in info.members:
            _create_cluster_object(api, member_cluster_body(member.name, info.secret_namespace))
        op.start()
        wait_full_and_idle(api, {m.name: data_cpu([m.name]) for m in info.members})
        client.CoreV1Api(api).create_namespace(body={"metadata": {"name": namespace}})
        ready_s = round(time.monotonic() - started, 1)
        placed = place_samples(api, namespace, hops=2)
        for row in placed.values():
            row["fleet_ready_s"] = ready_s
        for name in placed:  # a kept fleet is idle for the next run
            Hub(api, namespace).delete(name)
        wait_for(lambda: not hub_jobs(api, namespace), "the flat samples deleted")
        client.CoreV1Api(api).delete_namespace(namespace)
        return placed
    finally:
        op.stop()
        print(f"flat operator log: {logs / 'operator.log'}")
        api.close()
        if not KEEP:
            testbed.down(FLAT, info.workdir)


@pytest.fixture
def delegation(bed: Bed, request: pytest.FixtureRequest) -> Iterator[str]:
    """Every regional hub under ``request.param`` delegation for one test; the topology's
    back afterwards. The national operator re-reads a member's spec at each probe (1 s)."""
    custom = client.CustomObjectsApi(bed.national_api)

    def set_modes(modes: dict[str, str]) -> None:
        for region, mode in modes.items():
            custom.patch_cluster_custom_object(
                GROUP, VERSION, "memberclusters", region, {"spec": {"delegation": mode}}
            )
        time.sleep(3.0)

    set_modes({r.name: request.param for r in bed.info.regions})
    try:
        yield str(request.param)
    finally:
        set_modes({r.name: r.delegation for r in bed.info.regions})


# The first test's setup starts both beds, one after the other (flat: 69 s, federation: 52 s
# at load 11-19; 160 s and 185 s at load 35-41, which broke the 600 s default).
@pytest.mark.timeout(1200)
@pytest.mark.parametrize("delegation", ["Pinned", "Autonomous"], indirect=True)
def test_the_samples_land_as_on_a_flat_fleet(
    flat_samples: dict[str, dict[str, Any]], bed: Bed, ns: str, delegation: str
) -> None:
    """The samples applied at the national hub. Pinned: each lands on the very cluster the
    flat fleet chose (Pending where it is Pending), the child pinned to it. Autonomous: the
    same samples land (the national hub chose the region, the regional hub the cluster), each
    within its class's budget from its origin by the latency model."""
    for region in bed.info.regions:
        testbed.add_data_inventory(region.fleet)
    wait_full_and_idle(
        bed.national_api,
        {r.name: data_cpu([m.name for m in r.fleet.members]) for r in bed.info.regions},
    )
    placed = place_samples(bed.national_api, ns, hops=3)
    rows = {}
    for name, row in sorted(placed.items()):
        cluster, status = row["cluster"], row["status"]
        flat = flat_samples[name]["cluster"]
        child = None
        if cluster is not None:
            (child,) = child_cjs(bed, status["path"][1], row["uid"])
        rows[name] = {
            "flat": flat,
            "federated": " → ".join(status.get("path") or []) or status.get("phase"),
            "rtt_ms": None if cluster is None else rtt_ms(row["item"], cluster),
            "budget_ms": budget_ms(row["item"]),
            "pinned": None if child is None else child["spec"]["placement"].get("pinnedCluster"),
            "flat_landed_s": flat_samples[name]["landed_s"],
            "federated_landed_s": row["landed_s"],
        }
    write_summary(
        f"federation-samples-{delegation.lower()}",
        {
            "delegation": delegation,
            "flat_fleet": "real: a hub and the same clusters as plain members, one operator",
            "flat_fleet_ready_s": next(iter(flat_samples.values()))["fleet_ready_s"],
            "samples": rows,
        },
    )
    table = "\n".join(f"  {n}: {r}" for n, r in rows.items())
    assert set(placed) == set(flat_samples), table
    landed = {n for n, r in placed.items() if r["cluster"] is not None}
    assert landed == {n for n, r in flat_samples.items() if r["cluster"] is not None}, table
    assert {placed[n]["status"]["path"][1] for n in landed} == {r.name for r in bed.info.regions}, (
        f"the samples should span both regional hubs:\n{table}"
    )
    for name in landed:
        row = rows[name]
        if delegation == "Pinned":
            assert placed[name]["cluster"] == flat_samples[name]["cluster"], table
            assert row["pinned"] == placed[name]["cluster"], table
        else:
            assert row["pinned"] is None, table
            assert row["budget_ms"] is None or row["rtt_ms"] <= row["budget_ms"], table
    # The samples' member Jobs gone before the next test (and the next mode) measures.
    hub = Hub(bed.national_api, ns)
    for name in placed:
        hub.delete(name)
    for name in landed:
        region, uid = placed[name]["status"]["path"][1], placed[name]["uid"]
        wait_for(lambda r=region, u=uid: not child_cjs(bed, r, u), f"{name}'s child deleted")


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


def test_a_burst_through_two_levels_with_the_regional_operator_killed(bed: Bed, ns: str) -> None:
    """20 jobs at the national hub (Shanghai, high class: the Pinned yangtze-delta region).
    Its regional operator is SIGKILLed once it has created its first member Job, with half
    the jobs submitted; the other half come while it is dead; then it is restarted.

    Counted are CREATIONS, by watches opened before the burst: every ComputeJob ADDED on
    either regional hub, every Job ADDED on any member (distinct uids per job-uid label; a
    copy created and cleaned up later still counts). Each job must have had exactly one
    child ComputeJob and that child exactly one member Job (0 duplicates, 0 lost), and every
    job Succeeded. Prints the create → child → member Job latencies (watch-seen, test clock)."""
    hub = Hub(bed.national_api, ns)
    count = int(os.environ.get("COMPUTEGRID_FED_JOBS", "20"))
    regional = bed.operators["yangtze-delta"]
    submitted: dict[str, float] = {}  # national uid -> time.monotonic() of its create
    names: dict[str, str] = {}  # national uid -> its name

    def submit(i: int) -> None:
        at = time.monotonic()
        made = hub.create(computejob(f"b{i}", origin="shanghai", sensitivity="high"))
        submitted[made["metadata"]["uid"]] = at
        names[made["metadata"]["uid"]] = f"b{i}"

    with (
        CreationLog(bed.region_apis, None, kind="computejobs") as children,
        CreationLog(bed.member_apis, None) as jobs,
    ):
        for i in range(count // 2):
            submit(i)

        def ours() -> int:
            """Member Jobs made so far for this burst (the logs also list older ones)."""
            with children.lock:
                kids = {c for u in names for _, c in children.created.get(u, ())}
            with jobs.lock:
                return sum(1 for c in kids if c in jobs.created)

        wait_for(ours, "the regional operator's first member Job", TIMEOUT_S)
        regional.stop(signal.SIGKILL)
        before_kill = ours()
        for i in range(count // 2, count):
            submit(i)
        regional.start()
        for name in names.values():
            hub.wait_phase(name, "Succeeded", timeout=TIMEOUT_S * 2)
        time.sleep(3.0)  # a late duplicate would still show in the open watches
    child_of: dict[str, str] = {}  # national uid -> its child ComputeJob's uid
    duplicates, lost = [], []
    for uid, name in names.items():
        made = children.created.get(uid, set())
        if len(made) != 1:
            (duplicates if made else lost).append(f"{name}: {len(made)} child ComputeJobs")
            continue
        ((_, child),) = made
        child_of[uid] = child
        created = jobs.created.get(child, set())
        if len(created) != 1:
            (duplicates if created else lost).append(f"{name}: member Jobs {sorted(created)}")
    level1 = [children.first_seen[u] - submitted[u] for u in child_of]
    level2 = [jobs.first_seen[c] - children.first_seen[u] for u, c in child_of.items()]
    summary = {
        "jobs": count,
        "member_jobs_created_before_the_kill": before_kill,
        "child_computejobs_created": sum(len(children.created.get(u, ())) for u in names),
        "member_jobs_created": sum(len(jobs.created.get(c, ())) for c in child_of.values()),
        "duplicates": duplicates,
        "lost": lost,
        "national_create_to_child_cj_p50_s": round(statistics.median(level1), 2),
        "child_cj_to_member_job_p50_s": round(statistics.median(level2), 2),
        "child_cj_to_member_job_max_s": round(max(level2), 2),
        "note": "creations counted by watch (ADDED, distinct uids); latencies watch-seen by the "
        "test's clock; the regional operator SIGKILLed once after its first member Job, "
        "half the jobs submitted while it was down",
    }
    write_summary("federation-chaos", summary)
    # Not asserted: how many of the first half were still in flight at the kill (2 of 10 had
    # their member Job on a run here); it depends on timing. The second half always goes
    # through the dead operator's restart.
    assert duplicates == [] and lost == [], summary


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
