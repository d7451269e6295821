"""The test bed tells the truth about each component and brings a dead one back.

Why: a member whose kube-controller-manager (or scheduler, or kwok) has exited still answers
every API request, but never runs a Job; the chaos and load suites and a user's first demo
stand on this bed. Each component of a member is killed in turn (SIGKILL: a crash, not a
clean stop): ``status`` must name it, ``repair`` must restart exactly what died, keep the
cluster's etcd data, and the member must run a Job to Succeeded afterwards.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from testbed_jobs import batch_job, wait_job

from computegrid import testbed
from computegrid.testbed import health, supervise
from computegrid.testbed.paths import ToolEnv

MEMBER_COMPONENTS = [c.name for c in health.COMPONENTS]
HUB_COMPONENTS = ["etcd", "kube-apiserver", "kube-controller-manager"]


def _row(rows: list[testbed.ClusterStatus], name: str) -> testbed.ClusterStatus:
    return next(row for row in rows if row.cluster.name == name)


def _kill(fleet: testbed.FleetInfo, member: str, component: str) -> int:
    """SIGKILL one component of a member; returns its pid once it is gone."""
    row = _row(testbed.status(fleet.name, fleet.workdir), member)
    (item,) = [c for c in row.components if c.name == component]
    assert item.ok and item.pid is not None, item
    os.kill(item.pid, signal.SIGKILL)
    binary = health.BY_NAME[component].binary
    deadline = time.monotonic() + 10
    while health.process_runs(item.pid, binary):
        assert time.monotonic() < deadline, f"{component} pid {item.pid} survived SIGKILL"
        time.sleep(0.1)
    return item.pid


def test_every_cluster_reports_each_of_its_components_healthy(fleet: testbed.FleetInfo) -> None:
    rows = testbed.status(fleet.name, fleet.workdir)
    assert [row.cluster.name for row in rows] == [c.name for c in fleet.clusters]
    for row in rows:
        want = HUB_COMPONENTS if row.cluster.role == "hub" else MEMBER_COMPONENTS
        assert [c.name for c in row.components] == want, row.cluster.name
        assert row.healthy, [c.to_dict() for c in row.failing]
        assert all(c.pid and c.running and c.detail == "ok" for c in row.components)


@pytest.mark.parametrize("component", MEMBER_COMPONENTS)
def test_a_killed_component_is_named_by_status_and_repaired_with_data_kept(
    fleet: testbed.FleetInfo, member_apis: dict[str, Any], namespace: str, component: str
) -> None:
    member = fleet.members[1]
    api = member_apis[member.name]
    core: Any = client.CoreV1Api(api)
    witness = {"metadata": {"name": "witness"}, "data": {"kept": component}}
    core.create_namespaced_config_map(namespace, body=witness)

    old_pid = _kill(fleet, member.name, component)

    rows = testbed.status(fleet.name, fleet.workdir)
    row = _row(rows, member.name)
    failing = {c.name: c for c in row.failing}
    assert component in failing, [c.to_dict() for c in row.components]
    assert not failing[component].running
    assert failing[component].detail == "process not running"
    assert not row.healthy
    assert all(r.healthy for r in rows if r is not row)  # the other clusters are unaffected

    restarts = testbed.repair(fleet.name, fleet.workdir)
    # exactly the dead one, once: the others only waited for it (kube-apiserver for etcd)
    assert [(r.cluster, r.component, r.attempt, r.reason) for r in restarts] == [
        (member.kwok_cluster, component, 1, "exited")
    ]

    row = _row(testbed.status(fleet.name, fleet.workdir), member.name)
    assert row.healthy, [c.to_dict() for c in row.failing]
    (item,) = [c for c in row.components if c.name == component]
    assert item.pid != old_pid
    # etcd kept its data: the object written before the kill and the nodes are still there
    kept = core.read_namespaced_config_map("witness", namespace)
    assert kept.data == {"kept": component}
    assert sorted(n.metadata.name for n in core.list_node().items) == member.nodes
    # and the member runs Jobs again: scheduler, controller-manager and kwok all at work
    batch: Any = client.BatchV1Api(api)
    batch.create_namespaced_job(namespace, body=batch_job("after-repair", 1))
    job = wait_job(api, namespace, "after-repair", "Complete")
    assert job.status.succeeded == 1


def _cli(fleet: testbed.FleetInfo, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "computegrid.cli", "testbed", *args]
    command += ["--name", fleet.name, "--workdir", fleet.workdir]
    return subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)


def test_cli_status_exits_nonzero_naming_the_dead_component_and_repair_fixes_it(
    fleet: testbed.FleetInfo,
) -> None:
    member = fleet.members[1]
    _kill(fleet, member.name, "kube-controller-manager")

    got = _cli(fleet, "status", "--json")
    assert got.returncode == 1, got.stderr
    doc = json.loads(got.stdout)
    assert doc["healthy"] is False
    by_name = {c["name"]: c for c in doc["clusters"]}
    assert by_name["hub"]["healthy"] is True
    bad = [c for c in by_name[member.name]["components"] if not c["ok"]]
    assert [(c["name"], c["running"]) for c in bad] == [("kube-controller-manager", False)]

    table = _cli(fleet, "status")
    assert table.returncode == 1
    assert "DOWN: kube-controller-manager" in table.stdout
    assert f"computegrid testbed repair --name {fleet.name}" in table.stdout

    fixed = _cli(fleet, "repair")  # prints the fleet's status afterwards; 0 only if healthy
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert "restarting kube-controller-manager (attempt 1/3; exited)" in fixed.stdout
    assert fixed.stdout.count("all 5 ok") == len(fleet.members)
    assert "DOWN" not in fixed.stdout
    assert all(row.healthy for row in testbed.status(fleet.name, fleet.workdir))


def test_repair_brings_back_a_stopped_member_and_a_killed_hub_component(
    fleet: testbed.FleetInfo, member_apis: dict[str, Any]
) -> None:
    member = fleet.members[1]
    testbed.stop_member(member.name, fleet.name, fleet.workdir)
    _kill(fleet, "hub", "kube-controller-manager")
    rows = testbed.status(fleet.name, fleet.workdir)
    assert [c.name for c in _row(rows, member.name).failing] == MEMBER_COMPONENTS
    assert [c.name for c in _row(rows, "hub").failing] == ["kube-controller-manager"]

    restarts = testbed.repair(fleet.name, fleet.workdir)
    assert sorted((r.cluster, r.component) for r in restarts) == sorted(
        [(member.kwok_cluster, c) for c in MEMBER_COMPONENTS]
        + [(fleet.hub.kwok_cluster, "kube-controller-manager")]
    )
    assert all(row.healthy for row in testbed.status(fleet.name, fleet.workdir))
    core: Any = client.CoreV1Api(member_apis[member.name])
    assert sorted(n.metadata.name for n in core.list_node().items) == member.nodes


def test_a_component_that_keeps_exiting_is_restarted_three_times_then_reported(
    fleet: testbed.FleetInfo,
) -> None:
    """The start-up path of ``up``: restarts are bounded, each says why (the log tail), and
    the final error carries the log. The scheduler's port is held by another listener, so
    every restart exits at once ("address already in use")."""
    member = fleet.members[1]
    port = member.ports["kubeSchedulerPort"]
    _kill(fleet, member.name, "kube-scheduler")
    said: list[str] = []
    env = ToolEnv(Path(fleet.bin_dir), Path(fleet.workdir) / "kwok")
    log = Path(fleet.workdir) / "logs" / "test-supervise.log"
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # past TIME_WAIT
        deadline = time.monotonic() + 10
        while True:  # its leader thread is a zombie before the other threads let the port go
            try:
                squatter.bind(("0.0.0.0", port))
                break
            except OSError:
                assert time.monotonic() < deadline, f"port {port} stays busy"
                time.sleep(0.2)
        squatter.listen()
        with pytest.raises(supervise.ComponentsUnhealthyError) as caught:
            supervise.settle(
                env,
                member.kwok_cluster,
                member.ports,
                Path(member.kubeconfig),
                log,
                say=said.append,
            )
    message = str(caught.value)
    assert "still failing after 3 restarts" in message
    assert "kube-scheduler" in message and "address already in use" in message
    assert [line.splitlines()[0].strip() for line in said] == [
        f"{member.kwok_cluster}: restarting kube-scheduler (attempt {n}/3; exited); its log ended:"
        for n in (1, 2, 3)
    ]
    assert all("address already in use" in line for line in said[1:])  # the reason, shown
    restarts = testbed.repair(fleet.name, fleet.workdir)  # the port is free again
    assert [r.component for r in restarts] == ["kube-scheduler"]
    assert all(row.healthy for row in testbed.status(fleet.name, fleet.workdir))


def test_a_hung_component_is_reported_running_but_unhealthy_and_restarted(
    fleet: testbed.FleetInfo,
) -> None:
    """SIGSTOP: the process is there but answers nothing. ``status`` must say so; with
    ``restart_hung`` (what ``repair`` uses, after 2 minutes; 5 s here) it is killed and
    restarted."""
    member = fleet.members[1]
    row = _row(testbed.status(fleet.name, fleet.workdir), member.name)
    (item,) = [c for c in row.components if c.name == "kube-scheduler"]
    assert item.ok and item.pid is not None
    os.kill(item.pid, signal.SIGSTOP)
    try:
        row = _row(testbed.status(fleet.name, fleet.workdir, timeout=1), member.name)
        (hung,) = row.failing
        assert (hung.name, hung.running, hung.healthy) == ("kube-scheduler", True, False)
        assert "not answering" in hung.detail
        env = ToolEnv(Path(fleet.bin_dir), Path(fleet.workdir) / "kwok")
        restarts = supervise.settle(
            env,
            member.kwok_cluster,
            member.ports,
            Path(member.kubeconfig),
            Path(fleet.workdir) / "logs" / "test-supervise.log",
            timeout=5,
            restart_hung=True,
        )
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(item.pid, signal.SIGCONT)
    assert [(r.component, r.reason.split(":")[0]) for r in restarts] == [("kube-scheduler", "hung")]
    assert not health.process_runs(item.pid, "kube-scheduler")
    assert all(row.healthy for row in testbed.status(fleet.name, fleet.workdir))
