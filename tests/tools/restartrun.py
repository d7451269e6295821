"""Restart → first placement, several builds side by side on one fleet with history.

Why: issue 12 asks that a restarted operator place its first job within 10 s (Kueue: 2 s). One
figure from one run says little on a shared machine, so this restarts each build K times,
alternating the builds round by round (ABAB, then BABA) so that they share the machine's mood,
and reports median and max per build.

Each restart, as ``tests.tools.kueuerun`` measures Kueue's: start the operator, create one
ComputeJob at once, and time from the process's start to that job's member Job arriving at a
watch on the members (started before the first restart). Before the restarts, the namespace
is filled with ``--history`` finished ComputeJobs (kept between invocations), so every
restart lists them and their member Jobs, as a real restart would; ``--recorded-history N``
adds N more written to the hub as Succeeded without running them (the listing of a long
history, at a size that would take an hour to run). A build that logs its start
(``computegrid.handlers.startclock``: "first member Job ... s after process start") gives its
steps too; older builds give the outside figure only.

Run: ``python -m tests.tools.restartrun --fleet <workdir>/fleet.json --operator-cwd /work/main
--operator-cwd . --history 300 --restarts 10`` (``--burn N``: N busy processes at nice 19
beside it, to show a crowded machine; the load average is recorded either way).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubernetes import client
from tests.tools.loadrun import (
    GROUP,
    ORIGINS,
    VERSION,
    Observations,
    RunConfig,
    Watcher,
    computejob,
    create_once,
    default_command,
    ensure_member_clusters,
    fleet_watches,
    git_head,
    operator_env,
    proc_sample,
    wait_until,
)

from computegrid import testbed
from computegrid.testbed import kube

RECORDED = "restartrun.computegrid.io/recorded"  # history written to the hub, never run
FIRST_JOB = re.compile(r"first member Job ([\d.]+) s after process start \(([\d.]+) CPU-s\): (.*)")


@dataclass
class RestartConfig:
    fleet: Path
    builds: list[Path]
    history: int = 300
    recorded_history: int = 0
    restarts: int = 10
    namespace: str = "restartrun"
    hub_name: str = "restartrun-hub"
    stop: str = "term"  # term: SIGTERM (a rolling update); kill: SIGKILL (a crash)
    burn: int = 0
    timeout: float = 180.0
    log_dir: Path = field(default_factory=lambda: Path("/tmp"))


def steps_of(log: Path) -> dict[str, Any] | None:
    """The start's steps from a build that logs them (handlers/startclock.py), else None."""
    if not log.exists():
        return None
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            message = str(json.loads(line).get("message", ""))
        except (ValueError, AttributeError):
            message = line
        found = FIRST_JOB.search(message)
        if found is None:
            continue
        steps, _, members = found.group(3).partition(" | ")
        out: dict[str, Any] = {k: float(v) for k, v in (p.split("=") for p in steps.split())}
        out["cpu_s"] = float(found.group(2))
        out["members"] = members
        return out
    return None


def summarize(values: list[float]) -> dict[str, Any]:
    return {
        "n": len(values),
        "median": round(statistics.median(values), 2) if values else None,
        "max": round(max(values), 2) if values else None,
        "min": round(min(values), 2) if values else None,
        "all": [round(v, 2) for v in values],
    }


class RestartRun:
    def __init__(self, cfg: RestartConfig) -> None:
        self.cfg = cfg
        self.info = testbed.FleetInfo.from_json(cfg.fleet.read_text(encoding="utf-8"))
        self.hub = testbed.api_client(Path(self.info.hub.kubeconfig))
        self.members = {m.name: testbed.api_client(Path(m.kubeconfig)) for m in self.info.members}
        self.obs = Observations()
        self.watchers: list[Watcher] = []
        self.proc: subprocess.Popen[bytes] | None = None
        self.burners: list[subprocess.Popen[bytes]] = []
        cfg.log_dir.mkdir(parents=True, exist_ok=True)

    def custom(self) -> Any:
        return client.CustomObjectsApi(self.hub)

    # ---- the operator

    def start(self, build: Path, log: Path) -> float:
        cfg = RunConfig(fleet=self.cfg.fleet, operator_cwd=build, hub_name=self.cfg.hub_name)
        cmd = default_command(cfg, self.info.hub.kubeconfig)
        with log.open("ab") as out:
            started = time.time()
            self.proc = subprocess.Popen(
                cmd,
                cwd=build,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=operator_env(build),
                start_new_session=True,
            )
        return started

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGKILL if self.cfg.stop == "kill" else signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # the group of the process we started
            proc.wait(timeout=10)

    def alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"operator exited with {self.proc.returncode}")

    # ---- the fleet and the history

    def start_watches(self) -> None:
        selector = f"{GROUP}/origin-cluster={self.cfg.hub_name},{GROUP}/job-uid"
        self.watchers += fleet_watches(self.info, self.obs, selector, self.cfg.namespace)

    def finished_jobs(self, recorded: bool = False) -> int:
        """Finished ComputeJobs in the namespace: run by an operator, or only recorded."""
        listed = self.custom().list_namespaced_custom_object(
            GROUP,
            VERSION,
            self.cfg.namespace,
            "computejobs",
            label_selector=RECORDED if recorded else f"!{RECORDED}",
        )
        return sum(
            (cj.get("status") or {}).get("phase") in ("Succeeded", "Failed")
            for cj in listed["items"]
        )

    def ensure_history(self) -> dict[str, Any]:
        """``--history`` finished ComputeJobs in the namespace (made by the first build)."""
        have = self.finished_jobs()
        missing = self.cfg.history - have
        if missing <= 0:
            return {"finished_jobs": have, "made": 0}
        build = self.cfg.builds[0]
        self.start(build, self.cfg.log_dir / "restartrun-history.log")
        uids: set[str] = set()
        try:
            api = self.custom()

            def create(i: int) -> str:
                body = computejob(
                    f"hist-{have + i:05d}",
                    origin=ORIGINS[i % len(ORIGINS)],
                    sensitivity="low",
                    cpu="100m",
                    run_seconds=0.5,
                )
                return str(create_once(api, self.cfg.namespace, body)["metadata"]["uid"])

            with ThreadPoolExecutor(4) as pool:
                uids = set(pool.map(create, range(missing)))

            def done() -> bool:
                self.alive()
                with self.obs.lock:
                    return uids <= set(self.obs.finished)

            if not wait_until(done, 60 + missing, interval=1.0):
                raise RuntimeError(f"history: {missing} jobs did not all finish")
        finally:
            self.stop()
        return {"finished_jobs": self.finished_jobs(), "made": missing}

    def ensure_recorded(self) -> dict[str, Any]:
        """``--recorded-history`` ComputeJobs written straight to the hub as Succeeded (no
        operator, no member Job): the listing a restart pays for at a size that would take
        an hour to run for real."""
        have = self.finished_jobs(recorded=True)
        missing = self.cfg.recorded_history - have
        if missing <= 0:
            return {"recorded_jobs": have, "made": 0}
        api = self.custom()
        status = {"status": {"phase": "Succeeded", "message": "recorded by restartrun"}}

        def create(i: int) -> None:
            body = computejob(f"done-{have + i:05d}", origin=ORIGINS[i % len(ORIGINS)])
            body["metadata"].setdefault("labels", {})[RECORDED] = "true"
            name = create_once(api, self.cfg.namespace, body)["metadata"]["name"]
            api.patch_namespaced_custom_object_status(
                GROUP, VERSION, self.cfg.namespace, "computejobs", name, status
            )

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(create, range(missing)))
        return {"recorded_jobs": self.finished_jobs(recorded=True), "made": missing}

    # ---- one restart

    def restart(self, build: Path, label: str) -> dict[str, Any]:
        log = self.cfg.log_dir / f"restartrun-{label}.log"
        log.unlink(missing_ok=True)
        load = [round(x, 2) for x in os.getloadavg()]
        started = self.start(build, log)
        try:
            body = computejob(
                label, origin="chengdu", sensitivity="low", cpu="100m", run_seconds=0.5
            )
            created = create_once(self.custom(), self.cfg.namespace, body)
            answered = time.time()
            uid = str(created["metadata"]["uid"])

            def dispatched() -> bool:
                self.alive()
                return self.obs.first_seen(uid) is not None

            if not wait_until(dispatched, self.cfg.timeout, interval=0.05):
                raise RuntimeError(f"{label}: no member Job in {self.cfg.timeout}s; log {log}")
            seen = self.obs.first_seen(uid) or 0.0
            cpu = proc_sample(self.proc.pid)[2] if self.proc is not None else None
            wait_until(lambda: uid in self.obs.finished, 60, interval=0.2)
        finally:
            self.stop()
        with self.obs.lock:
            copies = len(self.obs.member_jobs.get(uid, {}))
        return {
            "label": label,
            "first_placement_s": round(seen - started, 3),
            "created_after_start_s": round(answered - started, 3),
            "cpu_s_when_seen": round(cpu, 2) if cpu is not None else None,
            "member_jobs_created": copies,
            "load_average": load,
            "steps": steps_of(log),
            "log": str(log),
        }

    # ---- the whole run

    def burn(self) -> None:
        for _ in range(self.cfg.burn):
            self.burners.append(
                subprocess.Popen(["nice", "-n", "19", sys.executable, "-c", "while True: pass"])
            )

    def unburn(self) -> None:
        for proc in self.burners:
            proc.kill()
            proc.wait(timeout=10)
        self.burners.clear()

    def execute(self) -> dict[str, Any]:
        cfg = self.cfg
        out: dict[str, Any] = {
            "fleet": self.info.name,
            "members": len(self.info.members),
            "namespace": cfg.namespace,
            "stop": cfg.stop,
            "burn": cfg.burn,
            "builds": {str(b): git_head(b) for b in cfg.builds},
        }
        ensure_member_clusters(self.hub, self.info)
        for api in [self.hub, *self.members.values()]:
            kube.ensure_namespace(api, cfg.namespace)
        self.start_watches()
        runs: dict[str, list[dict[str, Any]]] = {str(b): [] for b in cfg.builds}
        try:
            out["history"] = self.ensure_history()
            if cfg.recorded_history:
                out["recorded_history"] = self.ensure_recorded()
            stamp = time.strftime("%H%M%S")
            self.burn()
            for r in range(cfg.restarts):
                order = cfg.builds if r % 2 == 0 else list(reversed(cfg.builds))
                for build in order:
                    index = cfg.builds.index(build)
                    runs[str(build)].append(self.restart(build, f"rr-{stamp}-{r:02d}-b{index}"))
        except Exception as exc:  # reported with whatever was measured
            out["error"] = f"{type(exc).__name__}: {exc}"
        finally:
            self.unburn()
            self.stop()
            for watcher in self.watchers:
                watcher.stop()
        out["results"] = {
            build: {
                "first_placement_s": summarize([r["first_placement_s"] for r in results]),
                "cpu_s_when_seen": summarize([r["cpu_s_when_seen"] or 0.0 for r in results]),
                "steps_median": median_steps([r["steps"] for r in results if r["steps"]]),
                "duplicates": sum(r["member_jobs_created"] > 1 for r in results),
                "restarts": results,
            }
            for build, results in runs.items()
        }
        return out


def median_steps(all_steps: list[dict[str, Any]]) -> dict[str, float]:
    names = {k for steps in all_steps for k, v in steps.items() if isinstance(v, float)}
    return {
        name: round(statistics.median(s[name] for s in all_steps if name in s), 2)
        for name in sorted(names, key=lambda n: statistics.median(s.get(n, 0) for s in all_steps))
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.tools.restartrun",
        description="Restart → first placement, builds side by side, on a fleet with history.",
    )
    parser.add_argument("--fleet", required=True, type=Path, help="fleet.json of a running fleet")
    parser.add_argument(
        "--operator-cwd", type=Path, action="append", required=True, help="a checkout (repeat)"
    )
    parser.add_argument("--history", type=int, default=300, help="finished ComputeJobs to keep")
    parser.add_argument(
        "--recorded-history",
        type=int,
        default=0,
        help="more finished ComputeJobs, written to the hub as Succeeded without running them",
    )
    parser.add_argument("--restarts", type=int, default=10, help="restarts per build")
    parser.add_argument("--namespace", default="restartrun")
    parser.add_argument("--hub-name", default="restartrun-hub")
    parser.add_argument("--stop", choices=["term", "kill"], default="term")
    parser.add_argument("--burn", type=int, default=0, help="busy processes at nice 19 beside")
    parser.add_argument("--timeout", type=float, default=180.0, help="per restart")
    parser.add_argument("--log-dir", type=Path, default=Path("/tmp"))
    args = parser.parse_args(argv)
    if not args.fleet.is_file():
        parser.error(f"--fleet: no such file {args.fleet}")
    for name in ("history", "recorded_history", "restarts", "burn"):
        if getattr(args, name) < (1 if name == "restarts" else 0):
            parser.error(f"--{name}: too small: {getattr(args, name)}")
    for cwd in args.operator_cwd:
        if not (cwd / "operator" / "computegrid").is_dir():
            parser.error(f"--operator-cwd: {cwd} is not a computegrid checkout")
    cfg = RestartConfig(
        fleet=args.fleet,
        builds=[c.resolve() for c in args.operator_cwd],
        history=args.history,
        recorded_history=args.recorded_history,
        restarts=args.restarts,
        namespace=args.namespace,
        hub_name=args.hub_name,
        stop=args.stop,
        burn=args.burn,
        timeout=args.timeout,
        log_dir=args.log_dir,
    )
    out = RestartRun(cfg).execute()
    print(json.dumps(out, indent=2))
    return 0 if "error" not in out else 1


if __name__ == "__main__":
    sys.exit(main())
