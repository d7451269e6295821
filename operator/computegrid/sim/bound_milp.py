"""The mixed-integer part of the bound (``sim/bound.py``): chosen jobs placed whole.

``mixed_bound`` solves the MILP over the compute-type blocks that hold the integral jobs
(``Model.block``; the other blocks keep their LP values) and reports HiGHS' dual bound, the
valid figure, beside the best whole-job point known: HiGHS' incumbent or, when that is worse
or has none without slack, ``rounded``'s greedy rounding of the LP optimum. The incumbent is
only an upper end for the mixed optimum (how far the dual bound might still rise), never the
bound.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import optimize

from computegrid.scheduling.rounding import greedy_whole
from computegrid.sim.bound_model import Block, Model

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Mixed:
    """The mixed-integer bound: the LP with the chosen jobs placed whole."""

    integral: str  # "gpu" | "all"
    integral_jobs: int
    block_jobs: int  # jobs in the MILP's blocks (the integral jobs' compute types)
    variables: int
    dual_bound_t: float  # proved: every whole-job schedule's carbon is ≥ this
    incumbent_t: float | None  # the best point of the mixed model known (None: none)
    incumbent_from: str  # "highs" | "rounded" | "none"
    gap: float | None  # (incumbent − dual bound) / incumbent
    status: str
    solve_s: float
    # the dual bound proves some job needs slack: the figure is then no carbon bound
    slack_forced: bool


def mixed_bound(
    model: Model, whole: npt.NDArray[np.bool_], lp_x: FloatArray, lp_job_kg: FloatArray,
    integral: str, time_limit_s: float,
) -> Mixed:  # fmt: skip
    """The MILP over the blocks holding the ``whole`` jobs, the LP's values elsewhere."""
    started = time.perf_counter()
    block = model.block(np.unique(model.job_type[whole]).tolist())
    rest_kg = float(lp_job_kg.sum() - lp_job_kg[block.jobs].sum())
    owner = model.job_of_column()[block.columns]
    is_slack = block.columns >= len(model.jv)  # a slack column stays continuous: a relaxation
    binary = whole[owner] & ~is_slack
    if not len(block.columns):  # no job to place whole: the LP is the mixed optimum
        return Mixed(integral, 0, 0, 0, rest_kg / 1e3, rest_kg / 1e3, "none", 0.0,
                     "no integral job", time.perf_counter() - started, False)  # fmt: skip
    a_ub, b_ub = block.per_unit_rows()
    res = optimize.milp(
        block.objective,
        constraints=[
            optimize.LinearConstraint(a_ub, -np.inf, b_ub),
            optimize.LinearConstraint(block.a_eq, 1.0, 1.0),
        ],
        integrality=binary.astype(np.int64),
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
    known: list[tuple[float, str]] = []
    if res.x is not None and not (np.where(is_slack, res.x, 0.0) > 1e-6).any():
        known.append((float(block.objective @ np.asarray(res.x)), "highs"))
    rounded_kg = rounded(block, lp_x[block.columns], binary, owner)
    if rounded_kg is not None:
        known.append((rounded_kg, "rounded"))
    best = min(known, default=None)
    incumbent_t = None if best is None else (rest_kg + best[0]) / 1e3
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
        incumbent_from="none" if best is None else best[1],
        gap=gap,
        status=str(res.message),
        solve_s=time.perf_counter() - started,
        slack_forced=slack_forced,
    )


def rounded(
    block: Block, x_lp: FloatArray, binary: npt.NDArray[np.bool_], owner: npt.NDArray[np.int64]
) -> float | None:
    """The objective of a whole-job point near the LP optimum (None if greedy rounding fails).

    Fractional jobs keep their LP values (slack included, priced); the whole jobs, largest
    LP share first, each take their column with the largest share (then the cheapest) that
    still fits every capacity row. Feasible for the mixed model, so its objective is ≥ the
    mixed optimum.
    """
    a = block.a_ub.tocsc()
    x = np.where(binary, 0.0, x_lp)
    used = a @ x
    taken = greedy_whole(
        a, block.b_ub, np.flatnonzero(binary), owner, x_lp, block.objective, used=used
    )
    chosen = [col for _, col in taken if col is not None]
    if len(chosen) < len(taken):  # a whole job fits nowhere beside the others
        return None
    x[chosen] = 1.0
    return float(block.objective @ x)
