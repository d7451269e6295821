"""A controller and placer of the operator's own parts, with no API server: three Ready members
of the national fleet and Deferred jobs as the hub records them (tests of the placer's promise
check and of the joint re-plan)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from computegrid.api import MemberClusterSpec, restricted_template
from computegrid.fleet import Capacity, Fleet, HubWriter
from computegrid.fleet_data import load_latency_model, load_national_fleet
from computegrid.handlers.controller import Controller
from computegrid.handlers.jobcache import Entry
from computegrid.handlers.options import OperatorOptions
from computegrid.handlers.placer import Placer
from computegrid.lifecycle.machine import rfc3339_of
from computegrid.scheduling import Scheduler

NAMES = ("chengdu-chongqing-chongqing", "chengdu-chongqing-tianfu", "gansu-qingyang")
QINGYANG = "gansu-qingyang"
P = 1796000400.0  # a whole hour: the planned start
LEAD_S = 600.0  # the operator's clock is this far before P


class Watching:
    """Stands for a started Job watch (the view asks only whether there is one)."""

    def stop(self) -> None:
        pass


def spec_of(name: str) -> MemberClusterSpec:
    data = load_national_fleet().by_name(name)
    return MemberClusterSpec.model_validate(
        {
            "hub": data.hub,
            "region": data.region.value,
            "location": data.location,
            "kubeconfigSecretRef": {"name": name},
        }
    )


@pytest.fixture
def parts() -> Iterator[tuple[Fleet, Controller, Placer]]:
    """Three Ready, watched members with their national-fleet nodes; a controller and placer."""
    fleet = Fleet(None, hub_name="h")
    for snapshot in load_national_fleet().snapshots():
        if snapshot.name in NAMES:
            state = fleet.register(snapshot.name, spec_of(snapshot.name), {})
            state.snapshot, state.ready, state.probed, state.synced = snapshot, True, True, True
            state.watch = Watching()  # type: ignore[assignment]
    options = OperatorOptions(clock_offset=P - LEAD_S - time.time())
    writer = HubWriter(None)  # type: ignore[arg-type]  # nothing is written here
    controller = Controller(options, fleet, Capacity(load_latency_model()), writer)
    placer = Placer(controller, Scheduler())
    placer.gate.opened = True  # past the restart's wait for first probes
    try:
        yield fleet, controller, placer
    finally:
        fleet.close()


def deferred(
    uid: str,
    cluster: str,
    start_s: float,
    cpu: str = "1",
    parallelism: int = 1,
    *,
    replans: int = 0,
    annotations: dict[str, str] | None = None,
    deadline_s: float = P + 6 * 3600,
) -> Entry:
    """A low-class 10-minute windowed job Deferred to ``start_s`` on ``cluster``, as the hub
    records it (its latest start 10 minutes before ``deadline_s``)."""
    entry = Entry(uid, "team-a", f"job-{uid}")
    entry.update(
        {
            "metadata": {
                "uid": uid, "namespace": "team-a", "name": f"job-{uid}", "generation": 1,
                "resourceVersion": "1", "creationTimestamp": "2026-11-29T00:00:00Z",
                "annotations": {
                    "computegrid.io/origin": "qingyang",
                    "computegrid.io/latency-sensitivity": "low",
                    **(annotations or {}),
                },
            },
            "spec": {
                "resources": {"cpu": cpu, "memory": "1Gi"},
                "parallelism": parallelism,
                "template": restricted_template("busybox", restartPolicy="Never"),
                "timing": {"deadline": rfc3339_of(deadline_s), "expectedDuration": "10m"},
            },
            "status": {
                "phase": "Deferred",
                "remote": {"cluster": cluster, "namespace": "h-team-a", "name": f"cg-{uid}",
                           "attempt": 1},
                "attempts": 1,
                "deferral": {"cluster": cluster, "start": rfc3339_of(start_s),
                             "latestStart": rfc3339_of(deadline_s - 600), "replans": replans},
            },
        }
    )  # fmt: skip
    return entry


def hold(controller: Controller, *entries: Entry) -> None:
    for entry in entries:
        controller.jobs[entry.uid] = entry
        controller.deferred.add(entry.uid)
