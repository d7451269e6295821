"""The matrices of the offline bound (``sim/bound.py``): the time-expanded assignment model.

One column per (job, cluster, start) a job may take, then one slack column per job; one
equality row per job ("placed once"), one capacity row per (cluster, compute-type pool,
resource, time bucket) that some column touches. A job's columns touch only the pools of its
own compute type, so the model falls apart into one independent block per compute type
(``Model.block``): the optimum of the whole is the sum of the blocks' optima, and a block can
be solved alone, as a MILP, while the others keep their LP values.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import sparse

from computegrid.scheduling import FleetState, window_for
from computegrid.scheduling.capacity_price import RESOURCES
from computegrid.scheduling.energy import PUE
from computegrid.scheduling.rounding import greedy_whole
from computegrid.scheduling.state import TYPE_CODES
from computegrid.sim.metrics import JobArrays, hourly_integral
from computegrid.sim.trace import SimJob

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


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


@dataclass(frozen=True)
class Model:
    """min objective · [x, s]  s.t.  a_ub [x, s] ≤ b_ub,  a_eq [x, s] = 1,  0 ≤ x, s ≤ 1."""

    jv: IntArray  # [columns]: each column's job
    cv: IntArray  # [columns]: its cluster
    sv: FloatArray  # [columns]: its start, s
    ev: FloatArray  # [columns]: its end, s
    cost_kg: FloatArray  # [columns]: its carbon, kg
    cheapest: FloatArray  # [jobs]: a job's cheapest column (0 with none): a slack job's figure
    penalty: float  # each slack column's price, far above any placement
    job_type: IntArray  # [jobs]: compute-type code
    a_ub: sparse.csr_matrix
    b_ub: FloatArray
    row_type: IntArray  # [capacity rows]: the compute type of the row's pool
    a_eq: sparse.csr_matrix
    used: IntArray  # [capacity rows]: ((cluster · types + type) · resources + r) · buckets + b
    cap_shape: tuple[int, int, int]  # (clusters, types, resources)
    buckets: int
    demand: FloatArray  # [jobs, resources]: what a job takes of each resource (all its pods)
    pool_cap: FloatArray  # [clusters · types · resources]: capacity of each pool, per resource

    def pool_of_column(self) -> IntArray:
        """[columns]: each column's pool, cluster · types + compute type."""
        return self.cv * self.cap_shape[1] + self.job_type[self.jv]

    @property
    def jobs(self) -> int:
        return len(self.cheapest)

    @property
    def objective(self) -> FloatArray:
        return np.concatenate([self.cost_kg, np.full(self.jobs, self.penalty)])

    def job_carbon_kg(self, x: FloatArray) -> FloatArray:
        """[jobs]: each job's carbon at the solution ``x`` (columns, then slack columns), a
        slack share counted at the job's cheapest placement."""
        nv = len(self.jv)
        kg = self.cheapest * x[nv:]
        np.add.at(kg, self.jv, self.cost_kg * x[:nv])
        return kg

    def job_of_column(self) -> IntArray:
        """[columns + jobs]: the job of every column, slack columns included."""
        return np.concatenate([self.jv, np.arange(self.jobs)])

    def largest_share(self, x: FloatArray) -> LpPlan:
        """Each job's (cluster, start) with the largest share in the solution ``x`` (ties:
        the cheaper column); none (cluster −1) for a job whose slack share is larger."""
        n, nv = self.jobs, len(self.jv)
        cluster = np.full(n, -1, dtype=np.int64)
        start = np.full(n, np.nan)
        share = np.zeros(n)
        if nv:
            order = np.lexsort((self.cost_kg, -x[:nv], self.jv))
            first = order[np.r_[True, self.jv[order][1:] != self.jv[order][:-1]]]
            jobs = self.jv[first]
            take = x[first] >= x[nv + jobs] - 1e-12  # a placement at least as large as slack
            cluster[jobs[take]] = self.cv[first[take]]
            start[jobs[take]] = self.sv[first[take]]
            share[jobs[take]] = x[first[take]]
        return LpPlan(cluster, start, share)

    def rounded_plan(self, x: FloatArray) -> LpPlan:
        """A whole-job plan near ``x`` that keeps every capacity row (room per pool, resource
        and bucket, averaged over the bucket; still no pods on nodes): jobs by their largest
        share, surest first, each at its column of largest share (then the cheapest) that
        still fits beside the jobs placed before it (``greedy_whole``, as
        ``bound_milp.rounded``). A job none of whose columns fits keeps its largest-share
        column, room or not."""
        nv = len(self.jv)
        plan = self.largest_share(x)
        cluster, start, share = plan.cluster.copy(), plan.start_s.copy(), plan.share.copy()
        if not nv:
            return plan
        cols = np.flatnonzero(cluster[self.jv] >= 0)  # the columns of jobs the plan places
        a = self.a_ub[:, :nv].tocsc()
        for j, col in greedy_whole(a, self.b_ub, cols, self.jv, x, self.cost_kg):
            if col is not None:
                cluster[j], start[j], share[j] = self.cv[col], self.sv[col], x[col]
        return LpPlan(cluster, start, share)

    def block(self, types: Sequence[int]) -> Block:
        """The sub-model of the jobs of these compute types (independent of the rest)."""
        jobs = np.flatnonzero(np.isin(self.job_type, list(types)))
        cols = np.flatnonzero(np.isin(self.job_of_column(), jobs))
        rows = np.flatnonzero(np.isin(self.row_type, list(types)))
        return Block(
            jobs=jobs,
            columns=cols,
            a_ub=self.a_ub[rows][:, cols],
            b_ub=self.b_ub[rows],
            a_eq=self.a_eq[jobs][:, cols],
            objective=self.objective[cols],
        )


@dataclass(frozen=True)
class LpPlan:
    """One (cluster, start) per job read off a solution of the model (``largest_share``)."""

    cluster: IntArray  # [jobs]: −1 where the job has no column or slack dominates
    start_s: FloatArray  # [jobs]: NaN where cluster is −1
    share: FloatArray  # [jobs]: the chosen column's value (1: the LP placed the job whole)

    @property
    def split_jobs(self) -> int:
        """Jobs the solution did not place whole in one (cluster, start)."""
        return int(((self.share < 1 - 1e-6) & (self.cluster >= 0)).sum())


@dataclass(frozen=True)
class Block:
    jobs: IntArray  # the model's jobs in the block
    columns: IntArray  # the model's columns (slack columns are ``len(jv) + job``)
    a_ub: sparse.csr_matrix
    b_ub: FloatArray
    a_eq: sparse.csr_matrix
    objective: FloatArray

    def per_unit_rows(self) -> tuple[sparse.csr_matrix, FloatArray]:
        """The capacity rows divided by their capacity (a share of the pool ≤ 1): the same
        feasible set, but memory's rows in bytes (up to 1e13) no longer swamp HiGHS'
        tolerances."""
        scale = np.where(self.b_ub > 0, self.b_ub, 1.0)
        return sparse.csr_matrix(sparse.diags(1.0 / scale) @ self.a_ub), self.b_ub / scale


def build_model(
    jobs: Sequence[SimJob],
    arrays: JobArrays,
    state: FleetState,
    window: Mapping[str, FloatArray],
    bucket_hours: float,
    time_expanded: bool = True,
) -> Model:
    n = len(jobs)
    pue = np.array([PUE[c.region] for c in state.clusters])
    cache: dict[Hashable, IntArray] = {}
    job_parts: list[IntArray] = []
    clu_parts: list[IntArray] = []
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
    rows_l: list[IntArray] = []
    cols_l: list[IntArray] = []
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
    return Model(
        jv=jv,
        cv=cv,
        sv=start,
        ev=end,
        cost_kg=cost_kg,
        cheapest=cheapest,
        penalty=penalty,
        job_type=job_type,
        a_ub=a_ub,
        b_ub=cap.reshape(-1)[pool],
        row_type=(pool // len(RESOURCES)) % types,
        a_eq=a_eq,
        used=used,
        cap_shape=(state.size, types, len(RESOURCES)),
        buckets=buckets,
        demand=demand,
        pool_cap=cap.reshape(-1),
    )
