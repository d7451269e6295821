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
reported beside it with the gap). ``carbon_t`` is the larger of the LP and the mixed dual
bound (both valid).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import optimize, sparse

from computegrid.api.common import GPU
from computegrid.scheduling import FleetState
from computegrid.sim.bound_model import Model, allowed_clusters, build_model
from computegrid.sim.metrics import JobArrays
from computegrid.sim.trace import SimJob

FloatArray = npt.NDArray[np.float64]
INTEGRAL = ("none", "gpu", "all")  # which jobs' columns are binary
__all__ = ["INTEGRAL", "Bound", "Mixed", "allowed_clusters", "lower_bound"]


@dataclass(frozen=True)
class Mixed:
    """The mixed-integer bound: the LP with the chosen jobs placed whole."""

    integral: str  # "gpu" | "all"
    integral_jobs: int
    block_jobs: int  # jobs in the MILP's blocks (the integral jobs' compute types)
    variables: int
    dual_bound_t: float  # proved: every whole-job schedule's carbon is ≥ this
    incumbent_t: float | None  # the best point found (None: none by the time limit)
    gap: float | None  # (incumbent − dual bound) / incumbent
    status: str
    solve_s: float
    # jobs in slack in the best point found (then no incumbent figure): a heuristic's point
    incumbent_slack_jobs: int
    slack_forced: bool  # the dual bound proves some job needs slack: the figure is no bound


@dataclass(frozen=True)
class Bound:
    carbon_t: float  # the bound: the LP's, or the larger of it and the mixed dual bound
    method: str  # "lp" | "milp-gpu" | "milp-all"
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
    # per job: its carbon in the LP optimum, a slack share counted at its cheapest placement
    job_kg = model.cheapest * slack
    np.add.at(job_kg, model.jv, model.cost_kg * x[:nv])
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
        mixed = _mixed(model, whole, job_kg, integral, milp_time_limit_s)
        slack_jobs = max(slack_jobs, int(mixed.slack_forced))
    usable = mixed is not None and not mixed.slack_forced
    return Bound(
        carbon_t=max(lp_t, mixed.dual_bound_t) if usable and mixed is not None else lp_t,
        method="lp" if mixed is None else f"milp-{integral}",
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
    )


def _mixed(
    model: Model, whole: npt.NDArray[np.bool_], lp_job_kg: FloatArray, integral: str,
    time_limit_s: float,
) -> Mixed:  # fmt: skip
    """The MILP over the blocks holding the ``whole`` jobs, the LP's values elsewhere."""
    started = time.perf_counter()
    block = model.block(np.unique(model.job_type[whole]).tolist())
    rest_kg = float(lp_job_kg.sum() - lp_job_kg[block.jobs].sum())
    owner = model.job_of_column()[block.columns]
    is_slack = block.columns >= len(model.jv)  # a slack column stays continuous: a relaxation
    integrality = (whole[owner] & ~is_slack).astype(np.int64)
    if not len(block.columns):  # no job to place whole: the LP is the mixed optimum
        return Mixed(integral, 0, 0, 0, rest_kg / 1e3, rest_kg / 1e3, 0.0, "no integral job",
                     time.perf_counter() - started, 0, False)  # fmt: skip
    # Each capacity row divided by its capacity (a share of the pool ≤ 1): the same feasible
    # set, but memory's rows in bytes (up to 1e13) no longer swamp HiGHS' tolerances.
    scale = np.where(block.b_ub > 0, block.b_ub, 1.0)
    a_ub = sparse.diags(1.0 / scale) @ block.a_ub
    res = optimize.milp(
        block.objective,
        constraints=[
            optimize.LinearConstraint(a_ub, -np.inf, block.b_ub / scale),
            optimize.LinearConstraint(block.a_eq, 1.0, 1.0),
        ],
        integrality=integrality,
        bounds=optimize.Bounds(0, 1),
        options={"time_limit": time_limit_s, "presolve": True},
    )
    dual = res.get("mip_dual_bound")
    if dual is None or not math.isfinite(dual):  # no integer column, or no bound by the limit
        dual = float(res.fun) if res.status == 0 and res.fun is not None else -math.inf
    # The dual bound is on the objective with slack priced in; a schedule without slack has
    # its carbon as objective, so the bound holds for it as it is. But a point without slack
    # costs at most every block job at its dearest column: a dual bound above that says no
    # whole-job point avoids slack, and the figure is then no carbon bound (flagged).
    dearest = np.zeros(model.jobs)
    np.maximum.at(dearest, model.jv, model.cost_kg)
    slack_forced = float(dual) > float(dearest[block.jobs].sum()) * (1 + 1e-9) + 1e-9
    incumbent_t: float | None = None
    slack_jobs = 0
    if res.x is not None:  # the best point found: a carbon figure only without slack
        xb = np.asarray(res.x)
        slack_jobs = int((np.where(is_slack, xb, 0.0) > 1e-6).sum())
        if slack_jobs == 0:
            incumbent_t = (rest_kg + float(block.objective @ xb)) / 1e3
    dual_t = (rest_kg + float(dual)) / 1e3
    gap = None
    if incumbent_t is not None and math.isfinite(dual_t) and incumbent_t > 0:
        gap = max(incumbent_t - dual_t, 0.0) / incumbent_t
    return Mixed(
        integral=integral,
        integral_jobs=int(whole.sum()),
        block_jobs=len(block.jobs),
        variables=len(block.columns),
        dual_bound_t=dual_t,
        incumbent_t=incumbent_t,
        gap=gap,
        status=str(res.message),
        solve_s=time.perf_counter() - started,
        incumbent_slack_jobs=slack_jobs,
        slack_forced=slack_forced,
    )
