"""Plan many deferrable jobs at once: the time-expanded assignment over the jobs still waiting.

The per-job planner (``TimeScheduler``) gives each windowed job its best (cluster, start) in
arrival order, first come first served. ``plan_batch`` instead solves, for all jobs waiting for
a start, the model of the simulator's time-expanded bound restricted to them and to the room
known now (a model-predictive, rolling-horizon controller re-solves it every hour):

    minimise   Σ_o cost_o · x_o  +  penalty · Σ_j s_j
    subject to Σ_{o of j} x_o + s_j = 1                       each job: one option, or slack
               Σ_{o touching slot t on c, pool k} q_jr x_o ≤ room[t, c, k, r]
               x_o ∈ {0, 1}  (the LP relaxation when ``integer`` is false)

``rounded``: the LP relaxation made whole greedily (``rounding.greedy_whole``): jobs by their
largest share, surest first, each at its option of largest share, then cheapest, that still
fits every slot beside the jobs placed before it; a job none of whose options fits is left
unplaced. A plan of whole jobs at the LP's speed: a large batch the MILP cannot solve in
seconds is solved in a fraction of one. The room the rounding keeps is ``room`` unless the
caller gives a looser ``round_room`` (e.g. the pools' allocatable capacity: the LP plans on
the room free now, and the rounding may then promise room that running work will give back,
but never more than the pools hold).

An option ``o`` is a (cluster, start) the caller found feasible (latency budget, compute type,
a pod fits an empty node, start ≤ deadline − duration). It occupies every hour slot its run
touches, whole (like the ``ReservationBook``: conservative, so two plans never share a slot
they could collide in). ``room`` is the caller's view of free capacity per slot from the slot
of ``now_s`` on (free now, plus what running jobs are known to give back by then, less any
reserve); the last slot's room holds beyond the array. A job left in slack keeps whatever plan
it had (the caller decides). Pure: arrays in, a plan out; HiGHS through scipy, with a time
limit: an incumbent found by then is used, none is a failed plan (the caller falls back).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import optimize, sparse

from computegrid.scheduling.forecast import HOUR_S
from computegrid.scheduling.rounding import greedy_whole
from computegrid.scheduling.state import FloatArray, IntArray


@dataclass(frozen=True)
class BatchJob:
    """One waiting job and its options (parallel arrays, one entry per option)."""

    key: str
    type_code: int
    duration_s: float
    demand: FloatArray  # [resources]: all the job's pods together
    cluster: IntArray  # [options]
    start_s: FloatArray  # [options]
    cost: FloatArray  # [options]: the objective of that option (e.g. gCO2e)

    def __post_init__(self) -> None:
        if not len(self.cluster) == len(self.start_s) == len(self.cost):
            raise ValueError(f"{self.key}: cluster, start_s and cost differ in length")
        if self.duration_s <= 0:
            raise ValueError(f"{self.key}: duration_s must be > 0, got {self.duration_s}")


@dataclass(frozen=True)
class BatchPlan:
    """``choice``: key → (cluster, start) for every job the solver placed."""

    choice: dict[str, tuple[int, float]]
    status: str  # "optimal" | "time-limit" (an incumbent, not proven optimal)
    unplaced: tuple[str, ...]  # left in slack: no room for any of their options
    variables: int
    rows: int
    solve_s: float
    shares: dict[str, float] = field(default_factory=dict)  # key → its chosen option's share

    def whole(self) -> BatchPlan:
        """Only the jobs the plan puts wholly on one option (the LP relaxation's integral
        ones); the others are left as if unplaced (they keep whatever plan they had)."""
        kept = {k: v for k, v in self.choice.items() if self.shares.get(k, 1.0) >= 1 - 1e-6}
        left = tuple(k for k in self.choice if k not in kept)
        return dataclasses.replace(self, choice=kept, unplaced=self.unplaced + left)


def occupied_slots(start_s: FloatArray, duration_s: float, first_slot: int) -> IntArray:
    """[options, 2]: the first and one-past-last hour slot of each run, from ``first_slot``.
    A run 10:00-12:30 → slots 10, 11, 12 (whole slots); 10:00-11:00 → 10 only."""
    first = np.floor(start_s / HOUR_S).astype(np.int64)
    last = np.ceil((start_s + duration_s) / HOUR_S).astype(np.int64)
    return np.column_stack([first, np.maximum(last, first + 1)]) - first_slot


def plan_batch(
    jobs: Sequence[BatchJob],
    room: FloatArray,
    now_s: float,
    *,
    integer: bool = True,
    time_limit_s: float = 10.0,
    gap: float = 1e-3,
    rounded: bool = False,
    round_room: FloatArray | None = None,
) -> BatchPlan | None:
    """The cheapest joint choice of options; None when the solver found no plan in time.

    ``room``: [slots, clusters, types, resources] from the hour slot of ``now_s``."""
    if rounded and integer:
        raise ValueError("rounded applies to the LP relaxation (integer=False)")
    started = time.perf_counter()
    first_slot = int(np.floor(now_s / HOUR_S))
    n = len(jobs)
    if n == 0:
        return BatchPlan({}, "optimal", (), 0, 0, 0.0)
    spans = [occupied_slots(j.start_s, j.duration_s, first_slot) for j in jobs]
    if any((s[:, 0] < 0).any() for s in spans):
        raise ValueError("an option starts before the slot of now")
    need = max(int(s[:, 1].max(initial=1)) for s in spans)
    room = _extended(room, need)
    _, clusters, types, resources = room.shape
    sizes = np.array([len(j.cost) for j in jobs], dtype=np.int64)
    nv = int(sizes.sum())
    owner = np.repeat(np.arange(n), sizes)
    cost = np.concatenate([j.cost for j in jobs]).astype(float)
    rows_l: list[IntArray] = []
    cols_l: list[IntArray] = []
    vals_l: list[FloatArray] = []
    offset = 0
    for j, span in zip(jobs, spans, strict=True):
        length = span[:, 1] - span[:, 0]
        option = np.repeat(np.arange(len(j.cost)), length)
        slot = np.repeat(span[:, 0], length) + _ranges(length)
        for r in np.flatnonzero(j.demand > 0):
            cell = ((slot * clusters + j.cluster[option]) * types + j.type_code) * resources + r
            rows_l.append(cell)
            cols_l.append(option + offset)
            vals_l.append(np.full(len(option), float(j.demand[r])))
        offset += len(j.cost)
    cell_all = np.concatenate(rows_l) if rows_l else np.zeros(0, dtype=np.int64)
    cols_all = np.concatenate(cols_l) if cols_l else np.zeros(0, dtype=np.int64)
    vals_all = np.concatenate(vals_l) if vals_l else np.zeros(0)
    used, row = np.unique(cell_all, return_inverse=True)
    a_ub = sparse.csr_matrix((vals_all, (row, cols_all)), shape=(len(used), nv + n))
    b_ub = np.maximum(room.reshape(-1)[used], 0.0)
    a_eq = sparse.csr_matrix(
        (np.ones(nv + n), (np.concatenate([owner, np.arange(n)]), np.arange(nv + n))),
        shape=(n, nv + n),
    )
    penalty = 100.0 * max(float(np.abs(cost).max(initial=0.0)), 1.0)
    objective = np.concatenate([cost, np.full(n, penalty)])
    integrality = np.concatenate([np.full(nv, 1 if integer else 0), np.zeros(n)])
    result = optimize.milp(
        objective,
        constraints=[
            optimize.LinearConstraint(a_ub, -np.inf, b_ub),
            optimize.LinearConstraint(a_eq, 1.0, 1.0),
        ],
        integrality=integrality,
        bounds=optimize.Bounds(0, 1),
        options={"time_limit": time_limit_s, "mip_rel_gap": gap, "presolve": True},
    )
    if result.x is None:
        return None
    x = np.asarray(result.x)
    choice: dict[str, tuple[int, float]] = {}
    shares: dict[str, float] = {}
    unplaced: list[str] = []
    if rounded:
        keep = b_ub if round_room is None else _extended(round_room, need).reshape(-1)[used]
        best_of = _rounded(a_ub[:, :nv].tocsc(), keep, owner, x, cost, n)
    offset = 0
    for i, j in enumerate(jobs):
        share = x[offset : offset + len(j.cost)]
        if x[nv + i] > 0.5 or not len(share) or (rounded and best_of[i] < 0):
            unplaced.append(j.key)
            offset += len(j.cost)
            continue
        # the rounding's option; else the largest share (the MILP's one, the LP's largest)
        best = int(best_of[i]) - offset if rounded else int(np.argmax(share))
        offset += len(j.cost)
        choice[j.key] = (int(j.cluster[best]), float(j.start_s[best]))
        shares[j.key] = float(share[best])
    return BatchPlan(
        choice=choice,
        status="optimal" if result.status == 0 else "time-limit",
        unplaced=tuple(unplaced),
        variables=nv + n,
        rows=len(used) + n,
        solve_s=time.perf_counter() - started,
        shares=shares,
    )


def plan_whole(
    jobs: Sequence[BatchJob], room: FloatArray, now_s: float, *, time_limit_s: float = 10.0
) -> BatchPlan | None:
    """Whole jobs: the MILP; when it finds no plan in time (a large or degenerate batch), the
    LP relaxation's integral part (a job split across options keeps the plan it had). Each
    solve has the time limit; None when neither finds a plan."""
    started = time.perf_counter()
    plan = plan_batch(jobs, room, now_s, integer=True, time_limit_s=time_limit_s)
    if plan is not None:
        return plan
    relaxed = plan_batch(jobs, room, now_s, integer=False, time_limit_s=time_limit_s)
    if relaxed is None:
        return None
    # solve_s: both solves (the MILP's fruitless time is part of what the plan cost)
    return dataclasses.replace(relaxed.whole(), solve_s=time.perf_counter() - started)


def _extended(room: FloatArray, slots: int) -> FloatArray:
    """At least ``slots`` slots: beyond the array, the last slot's room holds."""
    if slots <= room.shape[0]:
        return room
    return np.concatenate([room, np.repeat(room[-1:], slots - room.shape[0], axis=0)])


def _rounded(
    a: sparse.csc_matrix, room: FloatArray, owner: IntArray, x: FloatArray, cost: FloatArray,
    n: int,
) -> IntArray:  # fmt: skip
    """[jobs]: the option column the greedy rounding gives each job, −1 for none."""
    nv = len(owner)
    slack = x[nv:]
    placed = np.flatnonzero(slack[owner] <= 0.5)  # the columns of jobs the LP places
    best = np.full(n, -1, dtype=np.int64)
    for job, col in greedy_whole(a, room, placed, owner, x[:nv], cost):
        if col is not None:
            best[job] = col
    return best


def _ranges(length: IntArray) -> IntArray:
    """0..length[0]-1, 0..length[1]-1, … concatenated: [2, 3] → [0, 1, 0, 1, 2]."""
    ends = np.cumsum(length)
    return np.arange(int(ends[-1]) if len(ends) else 0) - np.repeat(ends - length, length)
