"""Capacity held at instants, not only on average per bucket (``--bound-instants``, session 13).

The LP's capacity rows (``sim/bound_model.py``) hold on average over each hour: a job that
ends at 10:30 and one that starts at 10:00 may share a pool's room in the 10:00 bucket at
half each, which no schedule can do at 10:15. A pool's use is a step function of time that
rises only when a job starts, so a schedule that keeps capacity at every instant keeps this
row at any instant ``t``:

    Σ_j q_jr · [s_j ≤ t < e_j] · x_jcs ≤ cap_ckr          (pool c·k, resource r)

Every schedule of the offered starts that the LP's rows admit and that keeps capacity at
every instant keeps these rows too, so the LP with any set of them is still ≤ its carbon,
and ≥ the LP without them: a valid, tighter bound.

Which instants: row generation. Each compute type's block (``Model.block``: independent of
the others) is solved again with a row at every start where the current solution overfills
a pool, until no start does or the rounds run out. HiGHS keeps its basis between rounds
(highspy: rows added to the model it holds, dual simplex from there), which scipy's
``linprog`` cannot: 2 min instead of over 15 for 5,000 jobs. Only an *optimal* solve
counts; every round's optimum is a valid bound, and the figure is the last one's.
``violated_left`` says how many instants the last solution still overfills (0: capacity
holds at every instant, pooled over each cluster's nodes; still no pods on nodes, still
fractions of jobs).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

import highspy
import numpy as np
import numpy.typing as npt
from scipy import sparse

from computegrid.sim.bound_model import Block, Model

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
TOLERANCE = 1e-6  # a pool counts as overfilled above cap · (1 + TOLERANCE)


@dataclass(frozen=True)
class Instants:
    """The LP with capacity rows at the instants row generation found overfilled."""

    carbon_t: float  # the bound: the LP's blocks re-solved with the instant rows
    rounds: int  # optimal re-solves that counted (over all blocks)
    rows: int  # instant rows added
    violated_left: int  # instants the last solution still overfills (0: none)
    slack_jobs: int  # jobs the last solution leaves (partly) unplaced: then approximate
    status: str
    solve_s: float
    x: FloatArray  # [columns + jobs]: the last optimum of every block (the LP's where none)


def overfilled(model: Model, x: FloatArray, columns: IntArray) -> dict[int, FloatArray]:
    """Per pool, the starts at which ``x`` (over ``columns``) uses more than the pool holds."""
    pool = model.pool_of_column()
    live = columns[columns < len(model.jv)]
    live = live[x[live] > 1e-9]
    found: dict[int, FloatArray] = {}
    resources = model.cap_shape[2]
    for p in np.unique(pool[live]):
        cols = live[pool[live] == p]
        s, e = model.sv[cols], model.ev[cols]
        ts = np.unique(s)
        s_order, e_order = np.argsort(s), np.argsort(e)
        over: list[FloatArray] = []
        for r in range(resources):
            cap = model.pool_cap[p * resources + r]
            q = model.demand[model.jv[cols], r] * x[cols]
            if cap <= 0 or not (q > 0).any():
                continue
            # use(t) = Σ q over columns started by t − Σ q over columns ended by t
            begun = np.concatenate([[0.0], np.cumsum(q[s_order])])
            ended = np.concatenate([[0.0], np.cumsum(q[e_order])])
            use = (begun[np.searchsorted(s[s_order], ts, side="right")]
                   - ended[np.searchsorted(e[e_order], ts, side="right")])  # fmt: skip
            over.append(ts[use > cap * (1 + TOLERANCE) + TOLERANCE])
        bad = np.unique(np.concatenate(over)) if over else np.zeros(0)
        if len(bad):
            found[int(p)] = bad
    return found


def instant_rows(
    model: Model, instants: Mapping[int, FloatArray], columns: IntArray
) -> sparse.csr_matrix:
    """One row per (pool, resource, instant) over ``columns``, divided by the pool's
    capacity (right-hand side 1): memory in bytes would otherwise swamp HiGHS' tolerances."""
    pool = model.pool_of_column()
    resources = model.cap_shape[2]
    position = np.full(len(model.jv) + model.jobs, -1, dtype=np.int64)
    position[columns] = np.arange(len(columns))
    rows: list[IntArray] = []
    cols: list[IntArray] = []
    vals: list[FloatArray] = []
    k = 0
    placements = columns[columns < len(model.jv)]
    for p, ts in instants.items():
        mine = placements[pool[placements] == p]
        for t in ts:
            active = mine[(model.sv[mine] <= t) & (t < model.ev[mine])]
            for r in range(resources):
                cap = model.pool_cap[p * resources + r]
                q = model.demand[model.jv[active], r]
                use = q > 0
                if cap <= 0 or not use.any():
                    continue
                rows.append(np.full(int(use.sum()), k))
                cols.append(position[active[use]])
                vals.append(q[use] / cap)
                k += 1
    if not k:
        return sparse.csr_matrix((0, len(columns)))
    return sparse.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
        shape=(k, len(columns)),
    )


def instants_bound(
    model: Model, lp_x: FloatArray, lp_job_kg: FloatArray, rounds: int, time_limit_s: float
) -> Instants:
    """Each block whose LP optimum overfills a pool at some start, re-solved with rows at
    those starts, ``rounds`` times at most; the other blocks keep their LP values."""
    started = time.perf_counter()
    total_kg = float(lp_job_kg.sum())
    solved = added = left = slack = 0
    statuses: list[str] = []
    final = lp_x.copy()
    for k in np.unique(model.job_type).tolist():
        block = model.block([k])
        found = overfilled(model, lp_x, block.columns)
        lp_kg = block_kg = float(lp_job_kg[block.jobs].sum())
        x = lp_x[block.columns]
        highs = _highs(block, time_limit_s) if found and rounds > 0 else None
        for _ in range(rounds):
            if highs is None or not found:
                break
            extra = instant_rows(model, found, block.columns)
            _add_rows(highs, extra, np.full(extra.shape[0], -highspy.kHighsInf),
                      np.ones(extra.shape[0]))  # fmt: skip
            added += extra.shape[0]
            highs.run()
            status = highs.getModelStatus()
            if status != highspy.HighsModelStatus.kOptimal:  # only an optimum is a bound
                statuses.append(f"type {k}: {highs.modelStatusToString(status)}")
                break
            solved += 1
            x = np.asarray(highs.getSolution().col_value)
            final[block.columns] = x
            # the objective only rises with rows; carbon with slack at its cheapest need not
            block_kg = max(block_kg, float(model.job_carbon_kg(final)[block.jobs].sum()))
            found = overfilled(model, final, block.columns)
        left += sum(len(ts) for ts in found.values())
        slack += int((x[block.columns >= len(model.jv)] > 1e-6).sum())
        total_kg += block_kg - lp_kg
    return Instants(
        carbon_t=total_kg / 1e3,
        rounds=solved,
        rows=added,
        violated_left=left,
        slack_jobs=slack,
        status="; ".join(statuses) or "optimal",
        solve_s=time.perf_counter() - started,
        x=final,
    )


def _highs(block: Block, time_limit_s: float) -> highspy.Highs:
    """The block's LP held by HiGHS, capacity rows per unit of capacity (as the rows above)."""
    highs = highspy.Highs()  # type: ignore[no-untyped-call]  # highspy types its methods only
    highs.setOptionValue("output_flag", False)
    highs.setOptionValue("time_limit", float(time_limit_s))
    count = len(block.columns)
    highs.addVars(count, np.zeros(count), np.ones(count))
    highs.changeColsCost(count, np.arange(count, dtype=np.int32), block.objective)
    a_ub, b_ub = block.per_unit_rows()
    _add_rows(highs, a_ub, np.full(len(b_ub), -highspy.kHighsInf), b_ub)
    once = np.ones(len(block.jobs))
    _add_rows(highs, block.a_eq, once, once)  # each job placed once (slack included)
    return highs


def _add_rows(highs: highspy.Highs, a: sparse.spmatrix, lower: FloatArray,
              upper: FloatArray) -> None:  # fmt: skip
    a = sparse.csr_matrix(a)
    highs.addRows(a.shape[0], lower, upper, a.nnz, a.indptr[:-1].astype(np.int32),
                  a.indices.astype(np.int32), a.data)  # fmt: skip
