"""The policies compared: the product's scheduler and six baselines.

Every placer answers ``choose(job, state) -> cluster index | None`` on the live FleetState;
None means "wait in the queue" (the engine retries when capacity frees). No placer takes
capacity itself: the engine reserves it through ``FleetState.reserve``.

- ``computegrid``: the operator's own ``Scheduler`` with a ``Policy`` (default weights unless
  given): filters then weighted scores; it waits only when every cluster fails a filter.
- ``nearest``: the lowest-RTT cluster that offers the compute type and has room; when full,
  the next nearest, but never beyond the job's latency budget (then it waits). Never violates.
- ``round-robin``: a pointer cycles over clusters (by name); the first cluster at or after
  it that has room and meets the budget; the pointer moves past the pick.
- ``random``: a uniform pick among clusters that have room and meet the budget (seeded).
- ``least-loaded``: among clusters that have room and meet the budget, the one with the
  largest share of capacity free after the job (mean over the resources the job asks for).
- ``always-west``: the slogan taken literally: the nearest cluster in a west-region hub that
  has room, next nearest west when full, ignoring the latency budget (so it may violate);
  it waits when no west cluster has room.
- ``greedy-carbon``: the lowest grid carbon intensity at decision time among clusters that
  have room and meet the budget (ties by name). Never violates.
- ``computegrid-timed``: the operator's time-aware core (``TimeScheduler``, sim/timed.py):
  the same policy's score over each windowed job's run, at its best start within its window;
  jobs without a window (and every high-class job) start now, as with ``computegrid``.
- ``computegrid-timed-rolling``: the same, and every hour each held job is planned again on
  the fleet as it is then (a rolling horizon); it moves only to a strictly better score.
- ``computegrid-priced``: computegrid-timed with prices for room (``--prices FILE``, learned
  from the LP bound's dual prices on training traces, sim/prices.py): every job, window or
  not, pays for the green room it takes at its hours (scheduling/capacity_price.py).
- ``computegrid-timed-batch``: computegrid-timed on arrival; every whole hour all held jobs
  are planned together by the bound's time-expanded model over the room known then
  (sim/batch.py, scheduling/batch_plan.py), a rolling-horizon controller.
- ``computegrid-timed-batch-yield``: computegrid-timed-batch where promises yield to every
  job without a window, not only to high-class ones (``TimeScheduler(unknown_run_h=0)``):
  work that cannot wait starts where it scores best, a deferred job whose room it took is
  planned again (at the next whole hour or at its start).
- ``computegrid-timed-batch-yield-freed``: the same, and the joint plan is also re-solved when
  a completion frees room (at most once per 30 min, whole hours counting), so held work takes
  room that work without a window gave back before the next whole hour (session 10).
- ``computegrid-timed-batch-yield-retry``: computegrid-timed-batch-yield, and held starts whose
  pods do not fit node by node at their planned hour are planned jointly again, with every
  held job, before the per-job fallback (session 10, helper 2).
- ``computegrid-timed-joint``: what the operator runs (``--joint-replan-interval``,
  handlers/joint.py): computegrid-timed on arrival, and every hour the held jobs planned
  together: the LP relaxation over the room known now, rounded to whole jobs (surest first,
  each at its largest share) that keep, from the next hour slot on, the pools' allocatable
  capacity, so a plan may count on room running work gives back (session 12); moves not
  bounded (bounded at the operator's 3 re-plans it lost most of the gain, session 11);
  promises yield to every job without a window; room is counted back at running windowed
  jobs' declared ends; on arrival a job is planned over its whole window (the last-hour
  margin is the joint plan's alone), as in the operator. A job without a window is scored
  on each cluster's power figures averaged over the run such work makes: the run times of
  the jobs of its shape that finished so far in the replay (``RunProfile``, session 14).
  A held job whose start found no room is planned again at most 3 times (the operator's
  ``--max-replans``), then waits for room on its planned cluster until its latest start,
  when it starts wherever it fits (``WaitingForRoom``, session 15).
- ``computegrid-timed-joint-now``: the same with jobs without a window scored on the figures
  of the hour they start in (the operator of sessions 12-13).
- ``computegrid-timed-joint-whole``: the operator of session 11: the same with whole jobs
  (a MILP; its LP's integral part when the MILP finds no plan in time), promises binding
  jobs without a window over their first hour, and no room counted back at declared ends.
- ``computegrid-congestion``: computegrid-timed with a price for room that rises with the
  pool's projected fill (``CongestionPrice``, scheduling/capacity_price.py), every job.
- ``lp-plan-replay``: a clairvoyant diagnostic, not an online policy: the LP bound's own
  optimum (it knows every arrival), each job at its largest-share (cluster, start), replayed
  with whole jobs and pods on nodes; computegrid-timed decides where it cannot be kept
  (sim/lp_replay.py, session 11).
- ``lp-plan-replay-rounded``: the same with the plan rounded to whole jobs that keep the
  LP's capacity rows (room per pool and hour), surest jobs first (``Model.rounded_plan``).
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from computegrid.api.common import Region
from computegrid.scheduling import DEFAULT_POLICY, Decision, FleetState, JobRequest, Policy
from computegrid.scheduling import Scheduler as CoreScheduler
from computegrid.scheduling.state import BoolArray

if TYPE_CHECKING:
    from computegrid.fleet_data.power import PowerCurves
    from computegrid.scheduling.capacity_price import CapacityPrices
    from computegrid.sim.bound_model import LpPlan
    from computegrid.sim.trace import SimJob

POLICY_NAMES = (
    "computegrid",
    "computegrid-timed",
    "computegrid-timed-joint",  # what the operator runs: the default study measures it
    "nearest",
    "round-robin",
    "random",
    "least-loaded",
    "always-west",
    "greedy-carbon",
)
# Run only when named (``--policies``): a variant under study, not in the default table.
OPT_IN_POLICIES = (
    "computegrid-timed-rolling",
    "computegrid-priced",
    "computegrid-timed-batch",
    "computegrid-timed-batch-yield",
    "computegrid-timed-batch-yield-freed",
    "computegrid-timed-batch-yield-retry",
    "computegrid-timed-joint-whole",
    "computegrid-timed-joint-now",
    "computegrid-congestion",
    "lp-plan-replay",
    "lp-plan-replay-rounded",
)
# Diagnostics that replay the bound's own solution (they know every arrival): they need the
# bound solved first, on the same trace.
NEEDS_LP_PLAN = ("lp-plan-replay", "lp-plan-replay-rounded")
KNOWN_POLICIES = POLICY_NAMES + OPT_IN_POLICIES


class Placer(Protocol):
    name: str

    def choose(self, job: JobRequest, state: FleetState) -> int | None: ...


@runtime_checkable
class TimedPlacer(Protocol):
    """A placer that may answer a later start (the engine holds the job until then)."""

    name: str

    def plan(
        self, key: int, job: SimJob, state: FleetState, now_s: float
    ) -> tuple[int, float] | None: ...

    def release(self, key: int) -> None: ...

    def started(self, key: int, job: SimJob, state: FleetState, cluster: int, end_s: float) -> None:
        """A job runs on ``cluster`` until ``end_s`` (its expected end, when it declares one)."""

    def finished(self, key: int, now_s: float) -> None: ...


def has_room(job: JobRequest, state: FleetState) -> BoolArray:
    """Clusters where all the job's pods fit on nodes of its compute type right now."""
    fitting = state.pods_fitting_per_cluster(job) >= job.parallelism
    return np.asarray(fitting, dtype=bool)


def within_budget(job: JobRequest, state: FleetState) -> BoolArray:
    budget = job.latency_budget_ms
    if budget is None:
        return np.ones(state.size, dtype=bool)
    return np.asarray(state.latency_from(job.origin) <= budget, dtype=bool)


class Computegrid:
    """The operator's scheduling core, unchanged."""

    def __init__(self, policy: Policy = DEFAULT_POLICY, name: str = "computegrid") -> None:
        self.name = name
        self.scheduler = CoreScheduler(policy)

    def choose(self, job: JobRequest, state: FleetState) -> int | None:
        result = self.scheduler.schedule(job, state)
        return result.index if isinstance(result, Decision) else None


class Nearest:
    name = "nearest"

    def choose(self, job: JobRequest, state: FleetState) -> int | None:
        ok = has_room(job, state) & within_budget(job, state)
        if not ok.any():
            return None
        rtt = np.where(ok, state.latency_from(job.origin), np.inf)
        return int(np.argmin(rtt))  # first minimum: ties by name


class RoundRobin:
    name = "round-robin"

    def __init__(self) -> None:
        self.pointer = 0

    def choose(self, job: JobRequest, state: FleetState) -> int | None:
        ok = has_room(job, state) & within_budget(job, state)
        if not ok.any():
            return None
        order = (np.arange(state.size) + self.pointer) % state.size
        pick = int(order[np.argmax(ok[order])])
        self.pointer = (pick + 1) % state.size
        return pick


class Random:
    name = "random"

    def __init__(self, seed: int = 0) -> None:
        self.rng = random.Random(seed)

    def choose(self, job: JobRequest, state: FleetState) -> int | None:
        ok = np.flatnonzero(has_room(job, state) & within_budget(job, state))
        if len(ok) == 0:
            return None
        return int(ok[self.rng.randrange(len(ok))])


class LeastLoaded:
    name = "least-loaded"

    def choose(self, job: JobRequest, state: FleetState) -> int | None:
        ok = has_room(job, state) & within_budget(job, state)
        asked = state.asked(job)
        if not ok.any() or asked is None:
            return None
        index, amounts = asked
        alloc, free = state.cluster_totals()
        with np.errstate(divide="ignore", invalid="ignore"):
            share = (free[:, index] - job.parallelism * amounts) / alloc[:, index]
        score = np.where(ok, np.nan_to_num(share, nan=-1.0).mean(axis=1), -np.inf)
        return int(np.argmax(score))


class AlwaysWest:
    name = "always-west"

    def choose(self, job: JobRequest, state: FleetState) -> int | None:
        west = state.cached(
            ("sim-west",),
            lambda: np.array([c.region is Region.WEST for c in state.clusters], dtype=bool),
        )
        ok = has_room(job, state) & west
        if not ok.any():
            return None
        rtt = np.where(ok, state.latency_from(job.origin), np.inf)
        return int(np.argmin(rtt))


class GreedyCarbon:
    name = "greedy-carbon"

    def choose(self, job: JobRequest, state: FleetState) -> int | None:
        ok = has_room(job, state) & within_budget(job, state)
        if not ok.any():
            return None
        return int(np.argmin(np.where(ok, state.carbon, np.inf)))


def make_placer(
    name: str,
    *,
    seed: int = 0,
    policy: Policy | None = None,
    curves: PowerCurves | None = None,
    prices: CapacityPrices | None = None,
    lp_plan: LpPlan | None = None,
) -> Placer:
    """A fresh placer (round-robin and random keep state across one replay)."""
    if name in NEEDS_LP_PLAN:
        from computegrid.sim.lp_replay import LpPlanReplay

        if curves is None or lp_plan is None:
            raise ValueError(f"{name} needs the power curves and the LP bound's plan")
        return LpPlanReplay(curves, lp_plan, policy or DEFAULT_POLICY, name=name)
    if name == "computegrid":
        return Computegrid(policy or DEFAULT_POLICY)
    if name.startswith(("computegrid-timed-batch", "computegrid-timed-joint")):
        from computegrid.scheduling.run_profile import RunProfile
        from computegrid.sim.batch import FREED_REPLAN_GAP_S, MAX_REPLANS, ComputegridBatch

        if curves is None:
            raise ValueError(f"{name} needs the power curves (its forecast)")
        yields: dict[str, Any] = {"unknown_run_h": 0.0}
        freed = {**yields, "replan_on_free_s": FREED_REPLAN_GAP_S}
        joint = {
            **yields,
            "overbook": True,
            "releases": True,
            "operator_mirror": True,
            "max_replans": MAX_REPLANS,
            "name": "computegrid-timed-joint",
        }
        variants: dict[str, dict[str, Any]] = {
            "computegrid-timed-batch": {},
            "computegrid-timed-batch-yield": yields,
            "computegrid-timed-batch-yield-freed": freed,
            "computegrid-timed-batch-yield-retry": {**yields, "replan_failed_starts": True},
            # What the operator runs (handlers/joint.py, session 12): the LP rounded to whole
            # jobs within the pools' allocatable capacity, promises yielding to every job
            # without a window, room counted back at running windowed jobs' declared ends,
            # planned on arrival as the operator plans (``operator_mirror``); a job without a
            # window scored over the run such work makes (session 14).
            "computegrid-timed-joint": {**joint, "run_profile": RunProfile()},
            "computegrid-timed-joint-now": {**joint, "name": "computegrid-timed-joint-now"},
            # What it ran in session 11: whole jobs (a MILP), promises binding jobs without a
            # window over their first hour.
            "computegrid-timed-joint-whole": {
                "integer": True,
                "operator_mirror": True,
                "name": "computegrid-timed-joint-whole",
            },
        }
        if name in variants:
            return ComputegridBatch(curves, policy or DEFAULT_POLICY, **variants[name])
    if name == "computegrid-congestion":
        from computegrid.scheduling.capacity_price import CongestionPrice
        from computegrid.sim.timed import ComputegridTimed

        if curves is None:
            raise ValueError(f"{name} needs the power curves (its forecast)")
        return ComputegridTimed(curves, policy or DEFAULT_POLICY, congestion=CongestionPrice())
    if name in ("computegrid-timed", "computegrid-timed-rolling", "computegrid-priced"):
        from computegrid.sim.timed import ComputegridTimed

        if curves is None:
            raise ValueError(f"{name} needs the power curves (its forecast)")
        if name == "computegrid-priced" and prices is None:
            raise ValueError(f"{name} needs prices for room (--prices FILE)")
        return ComputegridTimed(
            curves,
            policy or DEFAULT_POLICY,
            rolling=name == "computegrid-timed-rolling",
            prices=prices if name == "computegrid-priced" else None,
        )
    placers: dict[str, type] = {
        "nearest": Nearest,
        "round-robin": RoundRobin,
        "least-loaded": LeastLoaded,
        "always-west": AlwaysWest,
        "greedy-carbon": GreedyCarbon,
    }
    if name == "random":
        return Random(seed)
    if name not in placers:
        raise ValueError(f"unknown policy {name!r}; known: {', '.join(KNOWN_POLICIES)}")
    placer: Placer = placers[name]()
    return placer
