"""``computegrid demo up --topology FILE``: the demo's federated view (issue 10).

Brings up the three-level test bed of ``FILE`` (a national hub; regional hubs, each with its
own members: ``testbed.federation``), gives the members the fleet data's whole node inventory,
registers each region's members on its hub and each regional hub on the national hub
(``type: Hub``, the region's delegation), starts one operator per hub (``--hub-name`` = the
name its parent knows it by), applies the samples at the national hub and prints where each
landed and through which hubs (the Path column). ``computegrid demo down`` removes it.

Like the flat demo, it drives the hubs with the test bed's ``kubectl`` (no Kubernetes client
here: import-linter).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from computegrid.cli import demo
from computegrid.cli.errors import UsageError

# Short: a region's fleet is "<this>-<region>", 20 characters at most ("demofd-yangtze-delta").
FEDERATION = "demofd"


def _federation() -> Any:
    from computegrid.testbed import federation

    return federation


def hubs_ready(items: list[dict[str, Any]], clusters: dict[str, int]) -> list[str]:
    """The Hub members whose Ready condition says every one of their clusters is ready
    (``clusters``: Hub member name → how many clusters it has)."""
    ready = []
    for mc in items:
        name = mc["metadata"]["name"]
        want = f"hub with {clusters.get(name)} clusters, {clusters.get(name)} ready"
        for cond in (mc.get("status") or {}).get("conditions") or []:
            if cond["type"] == "Ready" and cond["status"] == "True" and cond["message"] == want:
                ready.append(name)
    return sorted(ready)


def landed_rtt_ms(job: dict[str, Any]) -> float | None:
    """RTT from the job's origin to the cluster it landed on (the last hop of its path),
    by the latency model: under Autonomous delegation the child hub chose that cluster, so
    the parent's ``placement.latencyMs`` (for the cluster it judged) may not be it."""
    from computegrid.fleet_data import UnknownCityError, load_national_fleet, resolve_city
    from computegrid.fleet_data.national import load_latency_model

    path = (job.get("status") or {}).get("path") or []
    origin = (job["metadata"].get("annotations") or {}).get("computegrid.io/origin")
    if len(path) < 3 or not origin:
        return None
    try:
        city = resolve_city(origin).key
        location = load_national_fleet().by_name(path[-1]).location
    except (UnknownCityError, KeyError):
        return None
    return load_latency_model().rtt_ms(city, location)


def table(jobs: list[dict[str, Any]]) -> str:
    rows = [("NAMESPACE", "NAME", "PHASE", "PATH", "RTT-MS", "WHY")]
    for job in demo.by_name(jobs):
        status = job.get("status") or {}
        rtt = landed_rtt_ms(job)
        rows.append(
            (
                job["metadata"]["namespace"],
                job["metadata"]["name"],
                status.get("phase") or "-",
                " → ".join(status.get("path") or []) or "-",
                "-" if rtt is None else f"{rtt:.1f}",
                demo.why(status),
            )
        )
    return demo.render_rows(rows)


def _operators_down(info: Any) -> None:
    for fleet in [info.national, *(r.fleet for r in info.regions)]:
        demo._stop_operator(fleet)


def remove(workdir: Path | None = None) -> bool:
    """Stop the federated demo's operators and clusters; False when there was none."""
    federation = _federation()
    testbed = demo._testbed()
    if not (testbed.workdir_for(FEDERATION, workdir) / federation.MANIFEST).exists():
        return False
    _operators_down(federation.load_federation(FEDERATION, workdir))
    federation.down_federation(FEDERATION, workdir)
    return True


def run_up(args: argparse.Namespace) -> int:
    federation = _federation()
    testbed = demo._testbed()
    if not args.samples.is_dir():
        raise UsageError(f"--samples {args.samples}: not a folder (run from the checkout)")
    try:
        topology = federation.read_topology(args.topology)
        federation.check_names(FEDERATION, topology)
    except ValueError as exc:
        raise UsageError(f"--topology {exc}") from None
    demo._ensure_binaries(testbed)
    if remove():
        print(f"demo: removed the previous federation {FEDERATION}")
    try:
        info = federation.up_federation(FEDERATION, topology, log=print)
    except (testbed.BinariesMissingError, testbed.FleetBusyError, ValueError) as exc:
        raise UsageError(str(exc)) from exc
    for region in info.regions:
        testbed.add_data_inventory(region.fleet)
        kubectl = demo.Kubectl(region.fleet.bin_dir, region.fleet.hub.kubeconfig)
        kubectl("apply", "-f", "-", stdin=demo._member_docs(region.fleet))
        demo.start_operator(region.fleet, "--hub-name", region.name)
    national = demo.Kubectl(info.national.bin_dir, info.national.hub.kubeconfig)
    bodies = [federation.hub_member_body(region) for region in info.regions]
    national("apply", "-f", "-", stdin="\n---\n".join(json.dumps(b) for b in bodies))
    proc = demo.start_operator(info.national, "--hub-name", info.national_name)
    clusters = {r.name: len(r.fleet.members) for r in info.regions}
    deadline = time.monotonic() + 180
    while True:
        if proc.poll() is not None:
            raise UsageError("the national operator exited; see its log")
        items = json.loads(national("get", "memberclusters.computegrid.io", "-o", "json"))
        ready = hubs_ready(items["items"], clusters)
        print(f"demo: {len(ready)}/{len(clusters)} regional hubs Ready with all their clusters")
        if len(ready) == len(clusters):
            break
        if time.monotonic() > deadline:
            raise UsageError("the regional hubs did not become Ready in 180 s")
        time.sleep(3)
    demo.create_namespaces(national, args.samples)
    jobs = demo.apply_and_wait(national, args.samples, args.timeout)
    print()
    print(table(jobs))
    print(f"\ndemo: try  {' '.join(national.base)} get cgj -A")
    for region in info.regions:
        kubeconfig = region.fleet.hub.kubeconfig
        print(f"demo: {region.name} ({region.delegation}): kubectl --kubeconfig {kubeconfig}")
    print("demo: stop with  make demo-down")
    return 0
