"""``kubectl computegrid fleet|explain|why`` against the test bed's hub, as kubectl runs it.

No operator here: the MemberClusters' statuses are written by the test with the operator's own
status builder (``build_snapshot`` → ``ready_status``) through the /status subresource, and a
ComputeJob's ``status.placement`` with the core's own ``placement_status`` of a real
decision, so what the plugin reads is what the operator would have written. The plugin runs
as a user runs it: the ``kubectl-computegrid`` console script, found on PATH by the test bed's
kubectl, with the hub given by ``KUBECONFIG`` alone (kubectl passes plugins no flags).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from operator_fixtures import no_operator

from computegrid import testbed
from computegrid.api import GROUP, VERSION, ComputeJob, MemberClusterSpec, restricted_template
from computegrid.fleet import build_snapshot, failed_status, ready_status
from computegrid.fleet.live import snapshot_from_status
from computegrid.fleet_data import load_latency_model
from computegrid.scheduling import Decision, FleetState, Scheduler, placement_status, to_request

pytest_plugins = ["operator_fixtures"]
PLUGIN = Path(sys.executable).with_name("kubectl-computegrid")
NOW = "2026-11-29T01:00:00Z"


def spec(hub: str, region: str, location: str) -> dict[str, Any]:
    return {"hub": hub, "region": region, "location": location,
            "kubeconfigSecretRef": {"name": "unused"}}  # fmt: skip


def node(
    name: str, kind: str, allocatable: dict[str, str], carbon: float, price: float
) -> dict[str, Any]:
    labels = {"computegrid.io/compute-type": kind, "computegrid.io/renewable-share": "0.5",
              "computegrid.io/carbon-intensity": str(carbon), "computegrid.io/power-price": str(price)}  # fmt: skip
    return {"metadata": {"name": name, "labels": labels},
            "status": {"allocatable": allocatable, "conditions": [{"type": "Ready", "status": "True"}]}}  # fmt: skip


def busy(node_name: str, requests: dict[str, str]) -> dict[str, Any]:
    return {"spec": {"nodeName": node_name, "containers": [{"resources": {"requests": requests}}]},
            "status": {"phase": "Running"}}  # fmt: skip


CPU = {"cpu": "64", "memory": "256Gi", "pods": "110"}
GPU = {"cpu": "32", "memory": "256Gi", "nvidia.com/gpu": "8", "pods": "110"}
# name suffix -> (spec, nodes, pods, ready)
MEMBERS: dict[str, tuple[dict[str, Any], list[Any], list[Any], bool]] = {
    "tianfu": (spec("chengdu-chongqing", "west", "chengdu"),
               [node("c1", "general", CPU, 140.4, 0.6), node("g1", "intelligent", GPU, 140.4, 0.6)],
               [busy("g1", {"cpu": "4", "nvidia.com/gpu": "2"})], True),
    "qingyang": (spec("gansu", "west", "qingyang"),
                 [node("c1", "general", CPU, 477.2, 0.38), node("c2", "general", CPU, 477.2, 0.38)],
                 [busy("c1", {"cpu": "16"})], True),
    "wujiang": (spec("yangtze-delta", "east", "suzhou"),
                [node("g1", "intelligent", GPU, 520.0, 0.7)], [], False),
}  # fmt: skip


class Plugin:
    def __init__(self, kubeconfig: Path, selector: str) -> None:
        self.kubeconfig, self.selector = kubeconfig, selector

    def run(
        self, *args: str | Path, check: bool = True, via_kubectl: bool = True
    ) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "KUBECONFIG": str(self.kubeconfig),
               "PATH": f"{PLUGIN.parent}:{testbed.bin_dir()}:{os.environ.get('PATH', '')}"}  # fmt: skip
        command = (
            [str(testbed.bin_dir() / "kubectl"), "computegrid"] if via_kubectl else [str(PLUGIN)]
        )
        done = subprocess.run([*command, *map(str, args)], capture_output=True, text=True,
                              timeout=120, env=env, check=False)  # fmt: skip
        if check:
            assert done.returncode == 0, f"{args}: {done.stdout}{done.stderr}"
        return done

    def json(self, *args: str | Path) -> Any:
        return json.loads(self.run(*args, "-l", self.selector, "-o", "json").stdout)


@pytest.fixture(scope="module")
def live(
    fleet: testbed.FleetInfo, hub_api: Any, member_clusters: list[str]
) -> Iterator[tuple[Plugin, dict[str, str]]]:
    """Three MemberClusters with written statuses (two Ready, one not), labelled for this run;
    no operator runs meanwhile (it would probe them and overwrite the statuses)."""
    run_id = uuid.uuid4().hex[:6]
    label = {"computegrid.io/test-run": run_id}
    api = client.CustomObjectsApi(hub_api)
    names = {}
    with no_operator(hub_api, member_clusters):
        try:
            for suffix, (member_spec, nodes, pods, ready) in MEMBERS.items():
                name = f"plug-{run_id}-{suffix}"
                names[suffix] = name
                api.create_cluster_custom_object(GROUP, VERSION, "memberclusters", {
                    "apiVersion": f"{GROUP}/{VERSION}", "kind": "MemberCluster",
                    "metadata": {"name": name, "labels": label}, "spec": member_spec})  # fmt: skip
                snapshot = build_snapshot(
                    name, MemberClusterSpec.model_validate(member_spec), nodes, pods
                )
                status = ready_status(snapshot, None, NOW)
                if not ready:
                    status |= failed_status(status["conditions"], 3, 3, "connection refused", NOW)
                api.patch_cluster_custom_object_status(
                    GROUP, VERSION, "memberclusters", name, {"status": status}
                )
            yield Plugin(Path(fleet.hub.kubeconfig), f"computegrid.io/test-run={run_id}"), names
        finally:
            for name in names.values():
                api.delete_cluster_custom_object(GROUP, VERSION, "memberclusters", name)


def job_doc(name: str, origin: str, sensitivity: str, compute_type: str, resources: dict[str, str],
            namespace: str | None = None) -> dict[str, Any]:  # fmt: skip
    metadata: dict[str, Any] = {"name": name, "annotations": {
        "computegrid.io/origin": origin, "computegrid.io/latency-sensitivity": sensitivity}}  # fmt: skip
    if namespace:
        metadata["namespace"] = namespace
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "ComputeJob", "metadata": metadata,
            "spec": {"computeType": compute_type, "parallelism": 1, "resources": resources,
                     "template": restricted_template("busybox", restartPolicy="Never")}}  # fmt: skip


def test_fleet_shows_readiness_room_power_and_jobs(
    live: tuple[Plugin, dict[str, str]], hub_api: Any, namespace: str
) -> None:
    plugin, names = live
    # Jobs the operator would have placed: counted by status.remote.cluster.
    api = client.CustomObjectsApi(hub_api)
    for i, phase in enumerate(("Running", "Scheduled", "Succeeded")):
        name = f"placed-{i}"
        api.create_namespaced_custom_object(GROUP, VERSION, namespace, "computejobs",
                                            job_doc(name, "chengdu", "low", "general", {"cpu": "1"}))  # fmt: skip
        api.patch_namespaced_custom_object_status(GROUP, VERSION, namespace, "computejobs", name, {
            "status": {"phase": phase, "remote": {"cluster": names["tianfu"], "namespace": namespace,
                                                  "name": name}}})  # fmt: skip
    rows = {r["cluster"]: r for r in plugin.json("fleet")}
    assert set(rows) == set(names.values())  # the selector keeps other tests' members out
    tianfu, qingyang, wujiang = (rows[names[k]] for k in ("tianfu", "qingyang", "wujiang"))
    assert tianfu["ready"] and qingyang["ready"] and not wujiang["ready"]
    assert "connection refused" in wujiang["notReadyReason"]
    assert tianfu["free"]["intelligent"]["nvidia.com/gpu"] == "6/8"
    assert tianfu["free"]["general"]["cpu"] == "64/64"
    assert qingyang["free"]["general"]["cpu"] == "112/128"
    assert (tianfu["carbonIntensity"], qingyang["pricePerKWh"]) == (140.4, 0.38)
    assert (tianfu["activeJobs"], tianfu["jobs"]) == (2, 3)
    assert (qingyang["activeJobs"], qingyang["jobs"]) == (0, 0)
    table = plugin.run("fleet", "-l", plugin.selector).stdout
    assert names["tianfu"] in table and "nvidia.com/gpu 6/8" in table and "2/3" in table
    assert "not ready: 3 probes failed" in table


def test_explain_scores_a_manifest_against_the_live_fleet(
    live: tuple[Plugin, dict[str, str]], tmp_path: Path
) -> None:
    plugin, names = live
    # A low GPU job: only Tianfu is Ready with GPUs (Wujiang has them but is not Ready).
    gpu = tmp_path / "gpu.yaml"
    gpu.write_text(yaml.safe_dump(job_doc("train", "shanghai", "low", "intelligent",
                                          {"cpu": "8", "nvidia.com/gpu": "4"})), encoding="utf-8")  # fmt: skip
    report = plugin.json("explain", "-f", gpu)
    assert report["placement"]["cluster"] == names["tianfu"]
    verdicts = {c["cluster"]: c for c in report["clusters"]}
    assert verdicts[names["qingyang"]]["filter"] == "ComputeType"
    assert verdicts[names["wujiang"]]["filter"] == "ClusterReady"
    # More GPUs than are free on the live fleet (6 of 8 at Tianfu): Pending, saying why.
    big = tmp_path / "big.yaml"
    big.write_text(yaml.safe_dump(job_doc("train-big", "shanghai", "low", "intelligent",
                                          {"cpu": "8", "nvidia.com/gpu": "7"})), encoding="utf-8")  # fmt: skip
    report = plugin.json("explain", "-f", big)
    assert report["placement"] is None
    assert {c["cluster"]: c["filter"] for c in report["clusters"]}[
        names["tianfu"]
    ] == "ResourcesFit"
    # The table is explain's, with the live fleet's caveat.
    table = plugin.run("explain", "-f", gpu, "-l", plugin.selector).stdout
    assert f"→ {names['tianfu']} (chengdu-chongqing, west)" in table
    assert "CLUSTER" in table and "VERDICT" in table and "live fleet" in table


def test_why_prints_the_recorded_decision(
    live: tuple[Plugin, dict[str, str]], hub_api: Any, namespace: str
) -> None:
    plugin, _ = live
    api = client.CustomObjectsApi(hub_api)
    doc = job_doc("render", "guangzhou", "low", "general", {"cpu": "4"}, namespace)
    api.create_namespaced_custom_object(GROUP, VERSION, namespace, "computejobs", doc)
    # The decision the operator would record, made by the core on the same live view.
    listing: Any = api.list_cluster_custom_object(GROUP, VERSION, "memberclusters",
                                                  label_selector=plugin.selector)  # fmt: skip
    members: list[dict[str, Any]] = listing["items"]
    state = FleetState([snapshot_from_status(m) for m in members], load_latency_model())
    result = Scheduler().schedule(to_request(ComputeJob.model_validate(doc), "guangzhou"), state)
    assert isinstance(result, Decision)
    placement = placement_status(result, NOW).model_dump(
        by_alias=True, exclude_none=True, mode="json"
    )
    api.patch_namespaced_custom_object_status(GROUP, VERSION, namespace, "computejobs", "render", {
        "status": {"phase": "Running", "placement": placement,
                   "remote": {"cluster": placement["cluster"], "namespace": namespace, "name": "render-1"}}})  # fmt: skip
    report = json.loads(plugin.run("why", "render", "-n", namespace, "-o", "json").stdout)
    assert report["placement"] == placement
    text = plugin.run("why", "render", "-n", namespace).stdout
    assert f"→ {placement['cluster']}" in text
    for alternative in placement["alternatives"]:
        assert alternative["cluster"] in text
    for reason in placement["reasons"]:
        assert reason in text
    assert f"Job {namespace}/render-1 on {placement['cluster']}" in text
    # A job with no decision yet, and one that does not exist.
    api.create_namespaced_custom_object(GROUP, VERSION, namespace, "computejobs",
                                        job_doc("waiting", "guangzhou", "low", "general", {"cpu": "1"}))  # fmt: skip
    assert (
        "→ Pending: no decision recorded yet"
        in plugin.run("why", "waiting", "-n", namespace).stdout
    )
    missing = plugin.run("why", "nope", "-n", namespace, check=False)
    assert missing.returncode == 1
    assert missing.stderr.strip().startswith(
        f"kubectl computegrid why: error: computejob {namespace}/nope: 404"
    )
    assert len(missing.stderr.strip().splitlines()) == 1


def test_kubeconfig_and_context_flags(live: tuple[Plugin, dict[str, str]], tmp_path: Path) -> None:
    plugin, names = live
    # --kubeconfig wins over KUBECONFIG; a context that does not exist is a one-line error.
    done = plugin.run(
        "--kubeconfig", plugin.kubeconfig, "fleet", "-l", plugin.selector, via_kubectl=False
    )
    assert names["tianfu"] in done.stdout
    wrong = plugin.run("fleet", "--context", "no-such-context", check=False, via_kubectl=False)
    assert wrong.returncode == 1 and "no-such-context" in wrong.stderr
    unreachable = tmp_path / "down.kubeconfig"
    doc = yaml.safe_load(plugin.kubeconfig.read_text(encoding="utf-8"))
    for cluster in doc["clusters"]:
        cluster["cluster"]["server"] = "https://127.0.0.1:1"
    unreachable.write_text(yaml.safe_dump(doc), encoding="utf-8")
    down = plugin.run("--kubeconfig", unreachable, "fleet", check=False, via_kubectl=False)
    assert down.returncode == 1 and "the hub did not answer" in down.stderr, down.stderr
