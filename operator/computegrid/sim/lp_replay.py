"""``lp-plan-replay``: the LP bound's own plan replayed in the engine. Diagnostic, not a policy.

**Clairvoyant: it knows every arrival.** The plan comes from the bound's LP optimum over the
whole trace (``Bound.plan``, ``Model.largest_share``): each job's (cluster, start) with the
largest share. The engine then carries it out as it carries out any held start, with whole
jobs, pods on nodes and the overcommit check:

- a job planned for a later start is held until then on its planned cluster (a promise in the
  per-job planner's book, so fallbacks see it); at its start, if its pods fit there node by
  node it starts, else the per-job planner (``computegrid-timed``) decides from that moment;
- a job planned to start at its arrival starts then on the planned cluster if its pods fit,
  else the per-job planner decides at once;
- a planned start checks only that the pods fit node by node (the LP knows nothing of the
  policy's filters, e.g. CriticalHeadroom, so neither does the plan); the fallback applies them;
- a job the LP left to slack, or whose planned start passed while it waited in the queue
  (the engine queues an arrival shaped like the last waiting job without asking), goes to
  the per-job planner too.

``lp-plan-replay-rounded`` replays the same optimum rounded to whole jobs that keep the LP's
capacity rows (``Model.rounded_plan``: room per pool and hour, surest jobs first), so that a
failed start is no longer the LP's fractions overfilling a pool. Each failed start is
counted as ``failed_fragmented`` (the pool's summed room was there, no set of nodes could
take the pods) or ``failed_pool_short`` (the pool itself was short at that instant).

What it measures: how much of the gap between an online policy and the bound is not knowing
the future. If this replay lands near the bound, the gap is information; if it lands as far
off as the online policies, the LP's relaxations (fractions of jobs, room averaged per hour
and summed per pool, no pods on nodes) account for it.
"""

from __future__ import annotations

from collections import Counter

from computegrid.fleet_data.power import PowerCurves
from computegrid.scheduling import DEFAULT_POLICY, FleetState, Policy, ReservationBook
from computegrid.scheduling.timeshift import pool_totals
from computegrid.sim.bound_model import LpPlan
from computegrid.sim.timed import ComputegridTimed
from computegrid.sim.trace import SimJob

EPS_S = 1e-6
# The counts, in the order they are reported.
COUNTS = (
    "held",  # planned for a later start, held
    "held_started",  # ... and started there at its planned start
    "held_failed",  # ... whose pods did not fit there then: the per-job planner decided
    "now_started",  # planned to start at arrival, started there
    "now_failed",  # ... whose pods did not fit there: the per-job planner decided
    "no_plan",  # the LP left the job to slack (or it had no column)
    "plan_passed",  # first asked after its planned start (it had queued): per-job planner
    # Of the held and now failures: the pool (summed over the cluster's nodes of the job's
    # compute type) had the room, but no set of nodes could take the pods ...
    "failed_fragmented",
    # ... or the pool itself was short (the LP's room is per hour on average, its jobs split)
    "failed_pool_short",
)


class LpPlanReplay:
    """Follows an ``LpPlan``; ``computegrid-timed`` decides wherever the plan cannot be kept."""

    def __init__(
        self, curves: PowerCurves, plan: LpPlan, policy: Policy = DEFAULT_POLICY,
        name: str = "lp-plan-replay",
    ) -> None:  # fmt: skip
        self.name = name
        self.plan_of = plan
        self.fallback = ComputegridTimed(curves, policy)
        self.asked: set[int] = set()  # jobs whose plan has been consulted (once each)
        self.held: dict[int, int] = {}  # job held on its LP plan → its planned cluster
        self.counts: Counter[str] = Counter({k: 0 for k in COUNTS})

    def plan(
        self, key: int, job: SimJob, state: FleetState, now_s: float
    ) -> tuple[int, float] | None:
        if key in self.held:  # asked again at its planned start: its pods did not fit there
            self._failed(job, state, self.held.pop(key))
            self.counts["held_failed"] += 1
            return self.fallback.plan(key, job, state, now_s)
        if key in self.asked:  # a fallback's job, waiting or planned again
            return self.fallback.plan(key, job, state, now_s)
        self.asked.add(key)
        cluster = int(self.plan_of.cluster[key])
        at = float(self.plan_of.start_s[key])
        if cluster < 0:
            self.counts["no_plan"] += 1
            return self.fallback.plan(key, job, state, now_s)
        if at < now_s - EPS_S:
            self.counts["plan_passed"] += 1
            return self.fallback.plan(key, job, state, now_s)
        if at > now_s + EPS_S:
            self._open_book(state)
            self.fallback.promise(key, job.request, state, cluster, at, job.duration_s)
            self.held[key] = cluster
            self.counts["held"] += 1
            return cluster, at
        if state.pods_fitting_per_cluster(job.request)[cluster] >= job.request.parallelism:
            self.counts["now_started"] += 1
            return cluster, now_s
        self.counts["now_failed"] += 1
        self._failed(job, state, cluster)
        return self.fallback.plan(key, job, state, now_s)

    def _failed(self, job: SimJob, state: FleetState, cluster: int) -> None:
        """Why the pods did not fit on ``cluster`` now: fragments, or the pool was short."""
        vector = state.request_vector(job.request)
        _, free = pool_totals(job.request, state)
        pooled = vector is not None and bool(
            (free[cluster] >= job.request.parallelism * vector - 1e-9).all()
        )
        self.counts["failed_fragmented" if pooled else "failed_pool_short"] += 1

    def _open_book(self, state: FleetState) -> None:
        if self.fallback.book is None:  # the planner opens it at its first decision
            self.fallback.book = ReservationBook(state.size, len(state.resources))

    def release(self, key: int) -> None:
        self.fallback.release(key)

    def started(self, key: int, job: SimJob, state: FleetState, cluster: int, end_s: float) -> None:
        if self.held.pop(key, None) is not None:
            self.counts["held_started"] += 1
        self._open_book(state)  # the planner learns every windowed job's end, the plan's too
        self.fallback.started(key, job, state, cluster, end_s)

    def finished(self, key: int, now_s: float) -> None:
        self.fallback.finished(key, now_s)

    def choose(self, job: object, state: FleetState) -> int | None:
        raise NotImplementedError("the engine calls plan() on a time-aware placer")

    def diagnostics(self) -> dict[str, int]:
        return {k: int(self.counts[k]) for k in COUNTS} | {"split_jobs": self.plan_of.split_jobs}

    def report(self) -> str:
        return f"{self.name}: " + ", ".join(f"{k} {v}" for k, v in self.diagnostics().items())
