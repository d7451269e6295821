"""``computegrid demo up|down``: the whole product on the local test bed, in one command.

``up`` builds (or reuses) the control-plane binaries, starts a hub and one member cluster per
national-fleet cluster, registers them as MemberClusters, runs the operator in the
background, applies ``deploy/samples/``, waits while printing progress, then prints where
each job went and why and draws the placements on a map (PNG). ``down`` stops it all.
``up --topology FILE`` shows the federated view instead (``demo_federated``).

The command line never imports the Kubernetes client (import-linter): it drives the hub with
the test bed's own ``kubectl``, exactly the commands a newcomer would type next.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from computegrid.cli.errors import UsageError

FLEET = "demo"
DONE = ("Succeeded", "Failed")


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "demo", help="the operator on a local national fleet (or federation), with the samples"
    )
    sub = parser.add_subparsers(dest="demo_command", required=True, metavar="ACTION")
    up = sub.add_parser("up", help="start fleet + operator, apply the samples, report")
    up.add_argument("--members", type=int, help="first N national clusters (default: all 10)")
    up.add_argument("--samples", type=Path, default=Path("deploy/samples"), help="ComputeJobs")
    up.add_argument("--timeout", type=float, default=240, help="seconds to wait for the jobs")
    up.add_argument("--map", type=Path, help="PNG path (default <fleet dir>/placements.png)")
    up.add_argument(
        "--topology",
        type=Path,
        help="the federated view instead: a three-level test bed from this file "
        "(deploy/testbed/federation.yaml), the samples applied at its national hub",
    )
    up.set_defaults(func=run_up)
    down = sub.add_parser("down", help="stop the operator and the fleet")
    down.set_defaults(func=run_down)


def _testbed() -> Any:
    import computegrid.testbed as testbed

    return testbed


class Kubectl:
    def __init__(self, bin_dir: str, kubeconfig: str) -> None:
        self.base = [str(Path(bin_dir) / "kubectl"), "--kubeconfig", kubeconfig]

    def __call__(self, *args: str, stdin: str | None = None) -> str:
        done = subprocess.run(
            [*self.base, *args], input=stdin, capture_output=True, text=True, timeout=120
        )
        if done.returncode != 0:
            raise UsageError(f"kubectl {' '.join(args)}: {done.stderr.strip()}")
        return done.stdout


def _ensure_binaries(testbed: Any) -> None:
    if testbed.missing_binaries():
        print("demo: building the control-plane binaries (first run only; tens of minutes)")
        subprocess.run(["bash", "deploy/testbed/build.sh"], check=True)


def _member_docs(info: Any) -> str:
    from computegrid.fleet_data import load_national_fleet

    national = load_national_fleet()
    docs = []
    for member in info.members:
        data = national.by_name(member.name)
        docs.append(
            {
                "apiVersion": "computegrid.io/v1alpha1",
                "kind": "MemberCluster",
                "metadata": {"name": member.name},
                "spec": {
                    "hub": data.hub,
                    "region": data.region.value,
                    "location": data.location,
                    "pairedWith": list(data.paired_with),
                    "kubeconfigSecretRef": {
                        "name": member.name,
                        "namespace": info.secret_namespace,
                    },
                },
            }
        )
    return "\n---\n".join(json.dumps(d) for d in docs)


def _namespaces(samples: Path) -> list[str]:
    import yaml

    found = set()
    for path in sorted(samples.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if isinstance(doc, dict):
                found.add((doc.get("metadata") or {}).get("namespace") or "default")
    return sorted(found)


def _jobs(kubectl: Kubectl) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = json.loads(
        kubectl("get", "computejobs.computegrid.io", "-A", "-o", "json")
    )["items"]
    return items


def _settled(job: dict[str, Any]) -> bool:
    status = job.get("status") or {}
    return status.get("phase") in DONE or (
        status.get("phase") == "Pending" and bool(status.get("conditions"))
    )


def _table(jobs: list[dict[str, Any]]) -> str:
    rows = [("NAMESPACE", "NAME", "PHASE", "CLUSTER", "HUB", "RTT-MS", "gCO2/h SAVED", "WHY")]
    for job in by_name(jobs):
        status = job.get("status") or {}
        placement = status.get("placement") or {}
        rows.append(
            (
                job["metadata"]["namespace"],
                job["metadata"]["name"],
                status.get("phase") or "-",
                placement.get("cluster") or "-",
                placement.get("hub") or "-",
                f"{placement['latencyMs']:.1f}" if "latencyMs" in placement else "-",
                f"{placement.get('carbonSavedGPerHour', 0):.0f}" if placement else "-",
                why(status),
            )
        )
    return render_rows(rows)


def by_name(jobs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(jobs, key=lambda j: (j["metadata"]["namespace"], j["metadata"]["name"]))


def why(status: dict[str, Any]) -> str:
    """The first reason of the placement, else the status message (cut to 70 characters)."""
    placement = status.get("placement") or {}
    return str((placement.get("reasons") or [status.get("message") or ""])[0])[:70]


def render_rows(rows: Sequence[tuple[str, ...]]) -> str:
    """Columns padded to their widest cell; the last (the reason) left unpadded."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(r[:-1], widths, strict=True)) + "  " + r[-1]
        for r in rows
    )


def _draw_map(info: Any, jobs: list[dict[str, Any]], path: Path) -> None:
    """Members on the province map coloured by carbon intensity, each job from its origin
    to its cluster, Pending ones marked with the operator's reason."""
    from computegrid.fleet_data import load_national_fleet, resolve_city
    from computegrid.sim.china_map import MapCluster, MapJob, draw_fleet_map

    fleet = load_national_fleet()
    clusters = []
    for member in info.members:
        city = resolve_city(member.location)
        try:
            carbon = fleet.by_name(member.name).power.carbon_intensity
        except KeyError:  # not a national-fleet member: its power is not known here
            continue
        clusters.append(MapCluster(member.name, city.lon, city.lat, carbon))
    drawn = []
    for job in jobs:
        status = job.get("status") or {}
        try:
            origin = resolve_city(job["metadata"]["annotations"]["computegrid.io/origin"])
        except Exception:  # a sample with an unknown origin has no place on the map
            continue
        cluster = (status.get("placement") or {}).get("cluster")
        reason = status.get("message") or status.get("phase") or "not decided yet"
        drawn.append(MapJob(job["metadata"]["name"], origin.lon, origin.lat, cluster, reason))
    draw_fleet_map(path, "computegrid demo: sample ComputeJobs (origin → member cluster)",
                   clusters, drawn)  # fmt: skip


def start_operator(info: Any, *extra: str) -> subprocess.Popen[bytes]:
    """``computegrid run`` on the fleet's hub in the background; pid and log in its folder."""
    log_path = Path(info.workdir) / "operator.log"
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "computegrid.cli", "run", "--hub-kubeconfig",
             info.hub.kubeconfig, "--metrics-port", "0", "--probe-interval", "2", *extra],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    _pid_file(info).write_text(str(proc.pid), encoding="utf-8")
    print(f"demo: operator running (pid {proc.pid}, log {log_path})")
    return proc


def create_namespaces(kubectl: Kubectl, samples: Path) -> None:
    for namespace in _namespaces(samples):
        body = kubectl("create", "namespace", namespace, "--dry-run=client", "-o", "yaml")
        kubectl("apply", "-f", "-", stdin=body)


def apply_and_wait(kubectl: Kubectl, samples: Path, timeout: float) -> list[dict[str, Any]]:
    """Apply the samples; print progress every 3 s until each has finished or waits with a
    reason (or ``timeout``); the hub's ComputeJobs then."""
    kubectl("apply", "-f", str(samples))
    deadline = time.monotonic() + timeout
    jobs: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        jobs = _jobs(kubectl)
        phases: dict[str, int] = {}
        for job in jobs:
            phase = (job.get("status") or {}).get("phase") or "New"
            phases[phase] = phases.get(phase, 0) + 1
        print("demo: " + ", ".join(f"{n} {p}" for p, n in sorted(phases.items())), flush=True)
        if jobs and all(_settled(j) for j in jobs):
            break
        time.sleep(3)
    return jobs


def _pid_file(info: Any) -> Path:
    return Path(info.workdir) / "operator.pid"


def run_up(args: argparse.Namespace) -> int:
    if args.topology is not None:
        if args.members is not None or args.map is not None:
            raise UsageError("--topology: the federated demo takes neither --members nor --map")
        from computegrid.cli import demo_federated

        return demo_federated.run_up(args)
    testbed = _testbed()
    if not args.samples.is_dir():
        raise UsageError(f"--samples {args.samples}: not a folder (run from the checkout)")
    _ensure_binaries(testbed)
    try:
        old = testbed.load(FLEET)
        _stop_operator(old)
    except FileNotFoundError:
        pass
    size = {"members": args.members} if args.members else {"fleet": "national"}
    info = testbed.up(FLEET, **size, nodes_per_member=3, log=print)
    testbed.add_data_inventory(info)  # the data's capacity: placements match `explain`
    kubectl = Kubectl(info.bin_dir, info.hub.kubeconfig)
    kubectl("apply", "-f", "-", stdin=_member_docs(info))
    create_namespaces(kubectl, args.samples)
    proc = start_operator(info)
    _wait_ready(kubectl, len(info.members), proc)
    jobs = apply_and_wait(kubectl, args.samples, args.timeout)
    print()
    print(_table(jobs))
    map_path = args.map or Path(info.workdir) / "placements.png"
    _draw_map(info, jobs, map_path)
    print(f"\ndemo: map of the placements written to {map_path}")
    print(f"demo: try  {' '.join(kubectl.base)} describe computejobs -A")
    print("demo: stop with  make demo-down")
    return 0


def _wait_ready(kubectl: Kubectl, members: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise UsageError("the operator exited; see its log")
        items = json.loads(kubectl("get", "memberclusters.computegrid.io", "-o", "json"))["items"]
        ready = sum(
            any(
                c["type"] == "Ready" and c["status"] == "True"
                for c in (mc.get("status") or {}).get("conditions") or []
            )
            for mc in items
        )
        print(f"demo: {ready}/{members} member clusters Ready", flush=True)
        if ready >= members:
            return
        time.sleep(3)
    raise UsageError("member clusters did not become Ready in 180 s")


def _stop_operator(info: Any) -> None:
    pid_file = _pid_file(info)
    if not pid_file.exists():
        return
    pid = int(pid_file.read_text(encoding="utf-8").strip())
    try:
        os.kill(pid, signal.SIGTERM)
        for _ in range(50):
            os.kill(pid, 0)
            time.sleep(0.2)
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    pid_file.unlink(missing_ok=True)


def run_down(args: argparse.Namespace) -> int:
    testbed = _testbed()
    with contextlib.suppress(FileNotFoundError):
        _stop_operator(testbed.load(FLEET))
    removed = testbed.down(FLEET)
    print(f"demo: removed {len(removed)} clusters" if removed else "demo: nothing to remove")
    from computegrid.cli import demo_federated

    if demo_federated.remove():
        print(f"demo: removed the federation {demo_federated.FEDERATION}")
    return 0
