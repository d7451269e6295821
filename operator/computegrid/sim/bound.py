"""The offline lower bound on total carbon: an LP relaxation, optionally mixed-integer, HiGHS.

    minimise   Σ_jc cost_jc · x_jc
    subject to Σ_c x_jc = 1                                     each job placed once
               x_jc = 0 unless c offers j's compute type, j's pod fits one of c's nodes
                    and RTT(origin_j, c) ≤ budget_j                 latency-class feasibility
               Σ_j q_jr · overlap(j, b)/w · x_jc ≤ cap_ckr     per cluster c, pool k,
                                                                resource r, time bucket b
               0 ≤ x_jc ≤ 1, and x_jc ∈ {0, 1} for the jobs made integral (below)

``cost_jc`` is the job's location-based carbon if it ran on ``c`` from its arrival for its
duration (facility power × ∫ hourly intensity). A job without a window runs at its trace
times. **Time-expanded** (issue 9): a job with a deadline has one variable per (cluster,
start) for every start the time-aware policy may choose (``Window.starts``: its arrival, then
each whole hour up to deadline − duration, within 48 h), so ``j`` ranges over (job, start)
choices and "placed once" sums over both. The capacity rows hold on average over each
bucket (of ``w`` hours), which any schedule that respects capacity at every instant
satisfies, and ignore how pods pack onto nodes: both relax, so the optimum is ≤ the carbon
of every schedule that starts each job at one of its offered starts and respects capacity
and budgets. If capacity makes that impossible for some job (a schedule would have to queue
it) the job takes a slack variable, priced far above any placement so it is taken only then,
and counts at its cheapest feasible placement; ``slack_jobs`` reports how many, and the bound
is then approximate.

**Whole jobs** (``integral="gpu"`` or ``"all"``, session 8). The LP may place fractions of a
job: it fills a small green GPU pool to the brim with shares of training jobs, which no
schedule can. With ``integral`` the columns of the chosen jobs (every job asking for a GPU,
or every job) are binary: each such job takes one (cluster, start), whole. The model stays a
relaxation of every whole-job schedule: such a schedule is a point of it with *every* job's
columns 0/1 (not only the chosen ones') and its capacity kept at every instant and on every
node (not only on average per pool), so the mixed-integer optimum is still ≤ its carbon, and
≥ the LP's (one more constraint). A job's columns touch only its own compute type's pools, so
the model is solved as independent blocks (``Model.block``): the MILP over the compute types
of the integral jobs, the LP's values for the rest (a block of an optimal LP solution is
optimal for that block alone). HiGHS stops at a time limit; the figure reported is its
**dual bound** (every branch-and-bound node left open is ≥ it), which is a valid lower bound
whether or not the search finished, never the incumbent (the best whole-job point found,
reported beside it with the gap).

**Capacity at instants** (``instant_rounds`` > 0, session 13; ``sim/bound_instants.py``): the
blocks re-solved with capacity rows at the starts where the LP overfills a pool at that
instant (row generation), another valid bound. ``carbon_t`` is the largest of the LP, the
mixed dual bound and the instants' bound (each valid).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import optimize

from computegrid.api.common import GPU
from computegrid.scheduling import FleetState
from computegrid.sim.bound_instants import Instants, instants_bound
from computegrid.sim.bound_milp import Mixed, mixed_bound
from computegrid.sim.bound_model import LpPlan, allowed_clusters, build_model
from computegrid.sim.metrics import JobArrays
from computegrid.sim.trace import SimJob

FloatArray = npt.NDArray[np.float64]
INTEGRAL = ("none", "gpu", "all")  # which jobs' columns are binary
__all__ = ["INTEGRAL", "Bound", "Instants", "LpPlan", "Mixed", "allowed_clusters", "lower_bound"]


@dataclass(frozen=True)
class Bound:
    carbon_t: float  # the bound: the largest of the LP, the mixed dual bound, the instants'
    method: str  # "lp" | "milp-gpu" | "milp-all", "+instants" when those rows are asked for
    lp_carbon_t: float
    mixed: Mixed | None
    variables: int
    constraints: int
    bucket_hours: float
    slack_jobs: int
    solve_s: float
    status: str
    placement: npt.NDArray[np.float64]  # [jobs, clusters] fractional share in the LP optimum
    job_carbon_kg: FloatArray  # [jobs] each job's carbon in the LP optimum (for diagnosis)
    # [buckets, clusters, types, resources]: the dual price of each capacity row, kg of carbon
    # one more unit of that room over that bucket would save (≥ 0; 0 where no row or unknown).
    # Learned into online prices by sim/prices.py.
    capacity_duals: FloatArray | None = None
    # Each job's (cluster, start) of largest share in the LP optimum (the LP's, also under
    # ``integral``; with ``instant_rounds`` the optimum with capacity at instants): the plan
    # ``lp-plan-replay`` replays in the engine (sim/lp_replay.py).
    plan: LpPlan | None = None
    # The same rounded to whole jobs that keep the LP's capacity rows (``rounded_plan``),
    # only when asked (``lp-plan-replay-rounded``).
    rounded_plan: LpPlan | None = None
    # The LP with capacity rows at instants too (``instant_rounds`` > 0; sim/bound_instants.py)
    instants: Instants | None = None

    @property
    def beside_lp(self) -> bool:
        """A tighter bound than the LP was asked for (the LP is then reported beside it)."""
        return self.mixed is not None or self.instants is not None

    @property
    def proved(self) -> bool:
        """A true lower bound on every whole-job schedule the model covers (no slack)."""
        return self.slack_jobs == 0


def lower_bound(
    jobs: Sequence[SimJob],
    arrays: JobArrays,
    state: FleetState,
    window: Mapping[str, FloatArray],
    *,
    bucket_hours: float | None = None,
    time_limit_s: float = 300.0,
    time_expanded: bool = True,
    integral: str = "none",
    milp_time_limit_s: float = 600.0,
    rounded_plan: bool = False,
    instant_rounds: int = 0,
) -> Bound:
    """Solve the bound on an idle ``state`` (its node inventory gives the capacities)."""
    if integral not in INTEGRAL:
        raise ValueError(f"integral: {integral!r} is not one of {', '.join(INTEGRAL)}")
    started = time.perf_counter()
    n = len(jobs)
    if bucket_hours is None:  # ~1 h; coarser for long traces so the LP stays tractable
        mean_h = float(arrays.duration_s.mean()) / 3600.0 if n else 1.0
        bucket_hours = 1.0 if n * (mean_h + 1) <= 200_000 else 2.0
    model = build_model(jobs, arrays, state, window, bucket_hours, time_expanded)
    nv = len(model.jv)
    lp = optimize.linprog(
        model.objective, A_ub=model.a_ub, b_ub=model.b_ub, A_eq=model.a_eq, b_eq=np.ones(n),
        bounds=(0, 1), method="highs", options={"time_limit": time_limit_s, "presolve": True},
    )  # fmt: skip
    if lp.x is None:
        raise RuntimeError(f"the LP bound did not solve: {lp.message}")
    x = np.asarray(lp.x)
    slack = x[nv:]
    job_kg = model.job_carbon_kg(x)  # a slack share counted at the job's cheapest placement
    lp_t = float(job_kg.sum()) / 1e3
    placement = np.zeros((n, state.size))
    np.add.at(placement, (model.jv, model.cv), x[:nv])  # summed over each job's starts
    duals = np.zeros(math.prod(model.cap_shape) * model.buckets)
    marginals = getattr(getattr(lp, "ineqlin", None), "marginals", None)
    if marginals is not None and len(marginals) == len(model.used):
        duals[model.used] = np.maximum(-np.asarray(marginals), 0.0)  # HiGHS: ≤ 0 minimising
    capacity_duals = duals.reshape(*model.cap_shape, model.buckets).transpose(3, 0, 1, 2)
    slack_jobs = int((slack > 1e-6).sum())
    mixed = None
    if integral != "none":
        whole = np.array([integral == "all" or j.request.pod_resources.get(GPU, 0.0) > 0
                          for j in jobs], dtype=bool)  # fmt: skip
        mixed = mixed_bound(model, whole, x, job_kg, integral, milp_time_limit_s)
        slack_jobs = max(slack_jobs, int(mixed.slack_forced))
    usable = mixed is not None and not mixed.slack_forced
    carbon_t = max(lp_t, mixed.dual_bound_t) if usable and mixed is not None else lp_t
    instants = None
    if instant_rounds > 0:  # both it and the mixed bound are valid: the larger is
        instants = instants_bound(model, x, job_kg, instant_rounds, time_limit_s)
        slack_jobs = max(slack_jobs, instants.slack_jobs)
        carbon_t = max(carbon_t, instants.carbon_t)
    return Bound(
        carbon_t=carbon_t,
        method=("lp" if mixed is None else f"milp-{integral}")
        + ("+instants" if instants is not None else ""),
        lp_carbon_t=lp_t,
        mixed=mixed,
        variables=nv + n,
        constraints=len(model.used) + n,
        bucket_hours=bucket_hours,
        slack_jobs=slack_jobs,
        solve_s=time.perf_counter() - started,
        status=str(lp.message),
        placement=placement,
        job_carbon_kg=job_kg,
        capacity_duals=capacity_duals,
        plan=model.largest_share(x if instants is None else instants.x),
        rounded_plan=model.rounded_plan(x) if rounded_plan else None,
        instants=instants,
    )
