"""The offline lower bound on total carbon: an LP relaxation (a MILP when small), HiGHS.

    minimise   Σ_jc cost_jc · x_jc
    subject to Σ_c x_jc = 1                                     each job placed once
               x_jc = 0 unless c offers j's compute type, j's pod fits one of c's nodes
                    and RTT(origin_j, c) ≤ budget_j                 latency-class feasibility
               Σ_j q_jr · overlap(j, b)/w · x_jc ≤ cap_ckr     per cluster c, pool k,
                                                                resource r, time bucket b
               0 ≤ x_jc ≤ 1  (x_jc ∈ {0, 1} for the MILP)

``cost_jc`` is the job's location-based carbon if it ran on ``c`` from its arrival for its
duration (facility power × ∫ hourly intensity). A job without a window runs at its trace
times. **Time-expanded** (issue 9): a job with a deadline has one variable per (cluster,
start) for every start the time-aware policy may choose (``Window.starts``: its arrival, then
each whole hour up to deadline − duration, within 48 h), so ``j`` ranges over (job, start)
choices and "placed once" sums over both. The
capacity rows hold on average over each bucket (of ``w`` hours), which any schedule that
respects capacity at every instant satisfies, and ignore how pods pack onto nodes: both
relax, so the optimum is ≤ the carbon of every schedule that starts each job on arrival and
respects capacity and budgets. If capacity makes that impossible for some job (a schedule
would have to queue it) the job takes a slack variable, priced far above any placement so
it is taken only then, and counts at its cheapest feasible placement; ``slack_jobs`` reports
how many, and the bound is then approximate.
"""

from __future__ import annotations

import time
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import optimize, sparse

from computegrid.scheduling import FleetState, window_for
from computegrid.scheduling.capacity_price import RESOURCES
from computegrid.scheduling.energy import PUE
from computegrid.scheduling.state import TYPE_CODES
from computegrid.sim.metrics import JobArrays, hourly_integral
from computegrid.sim.trace import SimJob

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Bound:
    carbon_t: float
    method: str  # "lp" | "milp" | "lp+milp"
    milp_carbon_t: float | None
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


def allowed_clusters(job: SimJob, state: FleetState) -> npt.NDArray[np.bool_]:
    """Clusters that offer the type, hold one pod on some node, and meet the budget."""
    request = state.request_vector(job.request)
    if request is None:
        return np.zeros(state.size, dtype=bool)
    rows = state.rows_by_type[TYPE_CODES[job.request.compute_type]]
    fits_node = (state.node_alloc[rows] >= request).all(axis=1)
    ok = np.bincount(state.node_cluster[rows], weights=fits_node, minlength=state.size) > 0
    budget = job.request.latency_budget_ms
    if budget is not None:
        ok &= state.latency_from(job.request.origin) <= budget
    return np.asarray(ok, dtype=bool)


def lower_bound(
    jobs: Sequence[SimJob],
    arrays: JobArrays,
    state: FleetState,
    window: Mapping[str, FloatArray],
    *,
    bucket_hours: float | None = None,
    milp_max_vars: int = 2000,
    time_limit_s: float = 300.0,
    time_expanded: bool = True,
) -> Bound:
    """Solve the bound on an idle ``state`` (its node inventory gives the capacities)."""
    started = time.perf_counter()
    n = len(jobs)
    pue = np.array([PUE[c.region] for c in state.clusters])
    if bucket_hours is None:  # ~1 h; coarser for long traces so the LP stays tractable
        mean_h = float(arrays.duration_s.mean()) / 3600.0 if n else 1.0
        bucket_hours = 1.0 if n * (mean_h + 1) <= 200_000 else 2.0
    cache: dict[Hashable, npt.NDArray[np.int64]] = {}
    job_parts: list[npt.NDArray[np.int64]] = []
    clu_parts: list[npt.NDArray[np.int64]] = []
    start_parts: list[FloatArray] = []
    for j, job in enumerate(jobs):
        r = job.request
        key = (r.compute_type, tuple(sorted(r.pod_resources.items())), r.origin,
               r.latency_budget_ms)  # fmt: skip
        if key not in cache:
            cache[key] = np.flatnonzero(allowed_clusters(job, state))
        allowed = cache[key]
        starts = np.array([job.arrival_s])
        if time_expanded and job.deadline_s is not None:
            job_window = window_for(r.sensitivity, job.arrival_s, deadline_s=job.deadline_s,
                                    duration_s=job.duration_s)  # fmt: skip
            starts = job_window.starts(r.sensitivity)
        job_parts.append(np.full(len(allowed) * len(starts), j, dtype=np.int64))
        clu_parts.append(np.tile(allowed, len(starts)))
        start_parts.append(np.repeat(starts, len(allowed)))
    jv = np.concatenate(job_parts) if job_parts else np.zeros(0, dtype=np.int64)
    cv = np.concatenate(clu_parts) if clu_parts else np.zeros(0, dtype=np.int64)
    start = np.concatenate(start_parts) if start_parts else np.zeros(0)
    end = start + arrays.duration_s[jv]
    cost = arrays.it_kw[jv] * pue[cv] * hourly_integral(window["carbon"][:, cv], start, end)
    cost_kg = cost / 1e3
    nv = len(jv)
    # slack per job, priced far above any placement so the LP takes it only when capacity
    # leaves no on-arrival placement at all; the reported carbon counts a slack job at its
    # cheapest feasible placement (jobs with no feasible cluster at 0), flagged by slack_jobs.
    cheapest = np.full(n, np.inf)
    np.minimum.at(cheapest, jv, cost_kg)
    cheapest[~np.isfinite(cheapest)] = 0.0
    penalty = 100.0 * max(float(cost_kg.max(initial=0.0)), 1.0)
    # equality rows: Σ_c x_jc + s_j = 1
    a_eq = sparse.csr_matrix(
        (np.ones(nv + n), (np.concatenate([jv, np.arange(n)]), np.arange(nv + n))),
        shape=(n, nv + n),
    )
    # capacity rows
    types = len(TYPE_CODES)
    res_index = [state.resource_index.get(r) for r in RESOURCES]
    cap = np.zeros((state.size, types, len(RESOURCES)))
    for k in range(types):
        rows = state.rows_by_type[k]
        for ri, idx in enumerate(res_index):
            if idx is not None:
                cap[:, k, ri] = np.bincount(
                    state.node_cluster[rows], weights=state.node_alloc[rows, idx],
                    minlength=state.size,
                )  # fmt: skip
    width = bucket_hours * 3600.0
    buckets = int(np.ceil(float(end.max(initial=0.0)) / width)) + 1
    job_type = np.array([TYPE_CODES[j.request.compute_type] for j in jobs], dtype=np.int64)
    demand = np.zeros((n, len(RESOURCES)))
    for j, job in enumerate(jobs):
        for ri, res in enumerate(RESOURCES):
            demand[j, ri] = job.request.pod_resources.get(res, 0.0) * job.request.parallelism
    rows_l: list[npt.NDArray[np.int64]] = []
    cols_l: list[npt.NDArray[np.int64]] = []
    vals_l: list[FloatArray] = []
    b0 = np.floor(start / width).astype(np.int64)
    b1 = np.floor(np.maximum(end - 1e-9, start) / width).astype(np.int64)
    span = int((b1 - b0).max(initial=0)) + 1
    for off in range(span):
        b = b0 + off
        live = b <= b1
        lo = np.maximum(start, b * width)
        hi = np.minimum(end, (b + 1) * width)
        frac = np.where(live, (hi - lo) / width, 0.0)
        live &= frac > 0
        for ri in range(len(RESOURCES)):
            q = demand[jv, ri]
            use = live & (q > 0)
            v = np.flatnonzero(use)
            row = ((cv[v] * types + job_type[jv[v]]) * len(RESOURCES) + ri) * buckets + b[v]
            rows_l.append(row)
            cols_l.append(v)
            vals_l.append(q[v] * frac[v])
    row_all = np.concatenate(rows_l) if rows_l else np.zeros(0, dtype=np.int64)
    used, row_compact = np.unique(row_all, return_inverse=True)
    a_ub = sparse.csr_matrix(
        (np.concatenate(vals_l) if vals_l else np.zeros(0),
         (row_compact, np.concatenate(cols_l) if cols_l else np.zeros(0, dtype=np.int64))),
        shape=(len(used), nv + n),
    )  # fmt: skip
    pool = used // buckets
    b_ub = cap.reshape(-1)[pool]
    objective = np.concatenate([cost_kg, np.full(n, penalty)])
    lp = optimize.linprog(
        objective, A_ub=a_ub, b_ub=b_ub, A_eq=a_eq, b_eq=np.ones(n), bounds=(0, 1),
        method="highs", options={"time_limit": time_limit_s, "presolve": True},
    )  # fmt: skip
    if lp.x is None:
        raise RuntimeError(f"the LP bound did not solve: {lp.message}")
    x = np.asarray(lp.x)
    slack = x[nv:]
    carbon_t = float(cost_kg @ x[:nv] + cheapest @ slack) / 1e3
    placement = np.zeros((n, state.size))
    np.add.at(placement, (jv, cv), x[:nv])  # summed over each job's starts
    job_kg = cheapest * slack
    np.add.at(job_kg, jv, cost_kg * x[:nv])
    duals = np.zeros(cap.size * buckets)
    marginals = getattr(getattr(lp, "ineqlin", None), "marginals", None)
    if marginals is not None and len(marginals) == len(used):
        duals[used] = np.maximum(-np.asarray(marginals), 0.0)  # HiGHS: ≤ 0 when minimising
    capacity_duals = duals.reshape(state.size, types, len(RESOURCES), buckets).transpose(3, 0, 1, 2)
    milp_t = None
    method = "lp"
    if nv + n <= milp_max_vars:
        mi = optimize.milp(
            objective,
            constraints=[
                optimize.LinearConstraint(a_ub, -np.inf, b_ub),
                optimize.LinearConstraint(a_eq, 1.0, 1.0),
            ],
            integrality=np.ones(nv + n),
            bounds=optimize.Bounds(0, 1),
            options={"time_limit": min(time_limit_s, 5.0)},  # small instances only
        )
        if mi.x is not None and mi.status == 0:
            milp_t = float(cost_kg @ mi.x[:nv] + cheapest @ mi.x[nv:]) / 1e3
            method = "lp+milp"
    return Bound(
        carbon_t=carbon_t,
        method=method,
        milp_carbon_t=milp_t,
        variables=nv + n,
        constraints=len(used) + n,
        bucket_hours=bucket_hours,
        slack_jobs=int((slack > 1e-6).sum()),
        solve_s=time.perf_counter() - started,
        status=str(lp.message),
        placement=placement,
        job_carbon_kg=job_kg,
        capacity_duals=capacity_duals,
    )
