"""Round a fractional assignment of jobs to options (an LP relaxation's) to whole jobs.

Shared by the joint plan (``batch_plan.plan_batch(rounded=True)``) and the
simulator's bound (its MILP incumbent, ``sim/bound_milp.py``, and ``lp-plan-replay-rounded``).
Pure: a constraint matrix, the room, the shares and the costs in; a choice per job out.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse

from computegrid.scheduling.state import FloatArray, IntArray


def greedy_whole(
    a: sparse.csc_matrix,
    room: FloatArray,
    cols: IntArray,
    owner: IntArray,
    share: FloatArray,
    cost: FloatArray,
    used: FloatArray | None = None,
) -> list[tuple[int, int | None]]:
    """Round to whole jobs, greedily: the jobs of ``cols`` (grouped by ``owner``) surest first
    (largest share), each taking its column of largest share, then cheapest, that still fits
    every capacity row (``room``, to a relative 1e-9 of solver noise) beside what ``used``
    already holds (none by default) and the jobs taken before it. (job, its column) per job
    in that order; None where no column fits."""
    used = np.zeros(len(room)) if used is None else used.copy()
    room = room * (1 + 1e-9) + 1e-9
    order = np.lexsort((cost[cols], -share[cols], owner[cols]))
    cols = cols[order]  # grouped by job, each job's columns by share then cost
    cuts = np.flatnonzero(np.r_[True, owner[cols][1:] != owner[cols][:-1]])
    groups = np.split(cols, cuts[1:]) if len(cols) else []
    groups.sort(key=lambda g: -float(share[g[0]]))  # the surest jobs first
    taken: list[tuple[int, int | None]] = []
    for group in groups:
        chosen = None
        for col in group:
            lo, hi = a.indptr[col], a.indptr[col + 1]
            rows, vals = a.indices[lo:hi], a.data[lo:hi]
            if (used[rows] + vals <= room[rows]).all():
                used[rows] += vals
                chosen = int(col)
                break
        taken.append((int(owner[group[0]]), chosen))
    return taken
