"""Deferred jobs on the test bed (issue 9): planned on forecasts, held suspended, released on time.

The hourly forecasts are ConfigMaps on the hub in the Carbon Aware SDK exporter's format
(binaryData.data: base64 JSON of ``{location, timestamp, duration, value}``; data.lastHeartbeatTime
in Go's time format), one per member. Hour P−1 is dirty everywhere (600 g/kWh); from hour P
gansu-qingyang is clean (100) and the others are not (500). So a 10-minute job with a window
is planned on gansu-qingyang at P.

Time: the operator plans on its own clock, ``--clock-offset`` seconds ahead of the wall clock
(docs/operator.md), chosen so that its "now" is P − LEAD_S when the test starts: the planned
start comes LEAD_S real seconds later, not an hour later. Everything else (the members'
clocks, the Jobs' startTime) is real time; the test converts with the same offset.

One test for the three promises, so their waits overlap (CI time):
- a deferred job is created suspended on its planned member and starts at its planned time;
- a forecast ConfigMap changed before the start re-plans a job (Event, one more member Job on
  the new member, the old suspended copy deleted);
- a SIGKILL of the operator in between changes nothing (same members, same starts, no new
  member Job).
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import json
import math
import signal
import time
from pathlib import Path
from typing import Any

from kubernetes import client
from operator_fixtures import (
    CreationLog,
    Hub,
    OperatorProcess,
    computejob,
    jobs_with_uid,
    ready_members,
    wait_for,
)

from computegrid import testbed
from computegrid.api import GROUP, VERSION

pytest_plugins = ["operator_fixtures"]
QINGYANG, TIANFU = "gansu-qingyang", "chengdu-chongqing-tianfu"
LEAD_S = 100.0  # real seconds from the operator's start to the planned start
FORECAST_NS = "kube-system"


def sdk_configmap(name: str, hour_p: float, now_s: float, after: float) -> dict[str, Any]:
    """The exporter's ConfigMap: hour P−1 at 600 g/kWh, then 24 hours at ``after``."""
    points = [
        {
            "location": name,
            "timestamp": dt.datetime.fromtimestamp(hour_p + 3600 * h, dt.UTC).strftime(
                "%Y-%m-%dT%H:%M:%SZ"
            ),
            "duration": 60,
            "value": 600.0 if h < 0 else after,
        }
        for h in range(-1, 24)
    ]
    beat = dt.datetime.fromtimestamp(now_s, dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f000 +0000 UTC")
    return {
        "metadata": {"name": f"carbon-{name}", "namespace": FORECAST_NS},
        "data": {"lastHeartbeatTime": beat, "numOfRecords": str(len(points))},
        "binaryData": {"data": base64.b64encode(json.dumps(points).encode()).decode()},
    }


def forecast_from(name: str) -> dict[str, Any]:
    return {
        "type": "ConfigMap",
        "configMap": {"cluster": "Hub", "namespace": FORECAST_NS, "name": f"carbon-{name}"},
    }


def windowed(name: str, now_s: float, **kw: Any) -> dict[str, Any]:
    body = computejob(name, origin="qingyang", sensitivity="low", **kw)
    deadline = dt.datetime.fromtimestamp(now_s + 6 * 3600, dt.UTC)
    body["spec"]["timing"] = {
        "deadline": deadline.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "expectedDuration": "10m",
    }
    return body


def released_at(log: Path, job: str) -> float:
    """When the operator's log says it unsuspended ``job`` (its own clock, sub-second)."""
    for line in log.read_text().splitlines():
        if line.startswith("{") and f"/{job} on " in line and '"released ' in line:
            return dt.datetime.fromisoformat(json.loads(line)["timestamp"]).timestamp()
    raise AssertionError(f"no 'released' line for {job} in {log}")


def rfc3339_s(text: str) -> float:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def test_deferred_jobs_start_on_time_replan_on_a_forecast_and_survive_a_kill(
    operator: OperatorProcess,
    fleet: testbed.FleetInfo,
    hub_api: Any,
    member_apis: dict[str, Any],
    member_clusters: list[str],
    namespace: str,
    tmp_path: Path,
) -> None:
    began = time.monotonic()
    hub = Hub(hub_api, namespace)
    custom = client.CustomObjectsApi(hub_api)
    core = client.CoreV1Api(hub_api)
    real0 = time.time()
    hour_p = math.ceil(real0 / 3600) * 3600 + 3600  # a whole hour of the operator's clock
    offset = hour_p - LEAD_S - real0  # its now = P − LEAD_S at real0
    after = {name: 100.0 if name == QINGYANG else 500.0 for name in member_clusters}
    for name in member_clusters:
        core.create_namespaced_config_map(
            FORECAST_NS, sdk_configmap(name, hour_p, real0 + offset, after[name])
        )
        custom.patch_cluster_custom_object(
            GROUP,
            VERSION,
            "memberclusters",
            name,
            {"spec": {"forecastSource": forecast_from(name)}},
        )
    operator.stop()
    ours = OperatorProcess(
        fleet.hub.kubeconfig,
        tmp_path / "deferred.log",
        extra=["--clock-offset", f"{offset:.3f}", "--forecast-interval", "1"],
    )
    try:
        ours.start()

        def forecasts_current() -> bool:
            items = custom.list_cluster_custom_object(GROUP, VERSION, "memberclusters")["items"]
            return all(
                any(
                    c["type"] == "ForecastCurrent" and c["status"] == "True"
                    for c in (mc.get("status") or {}).get("conditions") or []
                )
                and (mc["status"].get("forecast") or {}).get("source") == "ConfigMap"
                for mc in items
            )

        wait_for(forecasts_current, "every member on its ConfigMap forecast", 60)
        ready_at = time.monotonic() - began
        with CreationLog(member_apis, namespace) as log:
            pinned = hub.create(
                windowed(
                    "held",
                    hour_p - LEAD_S,
                    extra_annotations={"computegrid.io/max-latency-ms": "3"},  # qingyang only
                )
            )
            moving = hub.create(windowed("moving", hour_p - LEAD_S))
            uids = {"held": pinned["metadata"]["uid"], "moving": moving["metadata"]["uid"]}
            for name in uids:
                status = hub.wait_phase(name, "Deferred", timeout=30)
                assert status["deferral"]["cluster"] == QINGYANG
                assert rfc3339_s(status["deferral"]["start"]) == hour_p
                assert status["remote"]["cluster"] == QINGYANG
            for name, uid in uids.items():  # created suspended on the planned member
                jobs = wait_for(lambda u=uid: jobs_with_uid(member_apis[QINGYANG], u), "Job", 30)
                assert [j.spec.suspend for j in jobs] == [True], name
                assert not (jobs[0].status.active or 0), name

            # The forecast changes before the start: tianfu becomes the cleanest from P.
            core.replace_namespaced_config_map(
                f"carbon-{TIANFU}",
                FORECAST_NS,
                sdk_configmap(TIANFU, hour_p, time.time() + offset, 20.0),
            )
            moved = wait_for(
                lambda: (
                    (s := hub.status("moving")).get("deferral", {}).get("cluster") == TIANFU and s
                ),
                "the unpinned job re-planned onto tianfu",
                30,
            )
            assert moved["deferral"]["replans"] == 1 and moved["remote"]["cluster"] == TIANFU
            assert rfc3339_s(moved["deferral"]["start"]) == hour_p
            wait_for(
                lambda: "Replanned" in {e.reason for e in hub.events("moving")},
                "a Replanned Event",
                30,
            )
            wait_for(
                lambda: (
                    [j.spec.suspend for j in jobs_with_uid(member_apis[TIANFU], uids["moving"])]
                    == [True]
                    and not jobs_with_uid(member_apis[QINGYANG], uids["moving"])
                ),
                "the suspended copy moved: created on tianfu, deleted on qingyang",
                30,
            )
            held = hub.status("held")
            assert held["deferral"]["replans"] == 0  # its only member: the same plan, no change

            # SIGKILL between plan and start: the restarted operator reads the plan back.
            before = {n: hub.status(n)["deferral"] for n in uids}
            ours.stop(signal.SIGKILL)
            following = ours.log_path.read_text().count("following member")
            ours.start()
            wait_for(
                lambda: (
                    ours.log_path.read_text().count("following member")
                    >= following + len(member_clusters)
                ),
                "the restarted operator following every member",
                60,
            )
            killed_at = time.time()
            assert killed_at < hour_p - offset, "the restart took longer than the lead"
            time.sleep(3.0)  # a restarted operator that got it wrong would act by now
            for n in uids:
                status = hub.status(n)
                assert status["phase"] == "Deferred" and status["deferral"] == before[n], n

            # The planned start: each released on its member, at (not before) its time.
            start_real = hour_p - offset
            lags: dict[str, float] = {}
            for name, home in (("held", QINGYANG), ("moving", TIANFU)):
                done = hub.wait_phase(name, "Running", "Succeeded", timeout=LEAD_S + 60)
                assert done["remote"]["cluster"] == home
                assert rfc3339_s(done["deferral"]["started"]) >= hour_p
                [job] = jobs_with_uid(member_apis[home], uids[name])
                assert job.spec.suspend is False
                # startTime has whole seconds: at most 1 s before the (fractional) start.
                assert job.status.start_time.timestamp() >= start_real - 1.0, name
                lag = released_at(ours.log_path, job.metadata.name) - start_real
                assert 0.0 <= lag < 10.0, f"{name} released {lag:+.2f} s from its start"
                lags[name] = round(lag, 2)
            for name in uids:
                hub.wait_phase(name, "Succeeded", timeout=60)
        created = {n: sorted(m for m, _ in log.created.get(uid, set())) for n, uid in uids.items()}
        assert created == {"held": [QINGYANG], "moving": sorted([QINGYANG, TIANFU])}
        print(
            f"forecasts current {ready_at:.1f} s after start; member Jobs created {created}; "
            f"released after the planned start by {lags} s"
        )
    finally:
        ours.stop()
        for name in member_clusters:
            custom.patch_cluster_custom_object(
                GROUP, VERSION, "memberclusters", name, {"spec": {"forecastSource": None}}
            )
            with contextlib.suppress(client.ApiException):
                core.delete_namespaced_config_map(f"carbon-{name}", FORECAST_NS)
        operator.start()
        wait_for(lambda: set(member_clusters) <= ready_members(hub_api), "members Ready", 120)
        print(f"deferred test took {time.monotonic() - began:.1f} s; log {ours.log_path}")
