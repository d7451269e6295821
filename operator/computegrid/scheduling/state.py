"""Cluster snapshots compiled into arrays, so filters and scores run across all clusters at once.

Clusters are sorted by name when compiled: ``argmax`` returns the first maximum, so ties
are broken by cluster name and the result does not depend on the order snapshots came in.
Free capacity is the only thing that changes (``reserve``); everything else is fixed for the
life of a state, which is why per-job static masks and scores can be cached here.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Hashable, Sequence
from typing import Any, cast

import numpy as np
import numpy.typing as npt

from computegrid.api.common import ComputeType
from computegrid.scheduling.latency import LatencyModel
from computegrid.scheduling.snapshot import ClusterSnapshot, JobRequest

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]

TYPE_CODES = {t: i for i, t in enumerate(ComputeType)}
# Cache entries that do not depend on power figures survive ``update_power``.
_POWER_FREE_KEYS = frozenset({"request", "asked", "latency", "masks", "inverse-capacity"})


class FleetState:
    """Arrays over clusters (axis 0, sorted by name) and over nodes, plus per-job caches."""

    def __init__(self, snapshots: Sequence[ClusterSnapshot], latency: LatencyModel) -> None:
        names = [s.name for s in snapshots]
        if len(set(names)) != len(names):
            raise ValueError("cluster names must be unique")
        self.clusters: tuple[ClusterSnapshot, ...] = tuple(sorted(snapshots, key=lambda s: s.name))
        self.names: tuple[str, ...] = tuple(s.name for s in self.clusters)
        self.index = {name: i for i, name in enumerate(self.names)}
        self.latency = latency
        self.size = len(self.clusters)
        resources = {"cpu", "memory", "pods"}
        for snap in self.clusters:
            for node in snap.nodes:
                resources.update(node.allocatable)
        self.resources: tuple[str, ...] = tuple(sorted(resources))
        self.resource_index = {r: i for i, r in enumerate(self.resources)}
        # Nodes ordered by compute type, then cluster: each type is one contiguous block, so
        # the per-job fit check works on a view rather than a gathered copy.
        placed = sorted(
            (
                (i, j, node)
                for i, snap in enumerate(self.clusters)
                for j, node in enumerate(snap.nodes)
            ),
            key=lambda item: (TYPE_CODES[item[2].compute_type], item[0]),
        )
        nodes = [(i, node) for i, _, node in placed]
        # Row of each cluster's j-th node: ``refresh`` rewrites one cluster's rows in place.
        self.cluster_rows: list[IntArray] = [
            np.zeros(len(snap.nodes), dtype=np.int64) for snap in self.clusters
        ]
        for row, (i, j, _) in enumerate(placed):
            self.cluster_rows[i][j] = row
        self.node_cluster: IntArray = np.array([i for i, _ in nodes], dtype=np.int64)
        self.node_type: IntArray = np.array(
            [TYPE_CODES[n.compute_type] for _, n in nodes], dtype=np.int64
        )
        self.node_names: tuple[str, ...] = tuple(n.name for _, n in nodes)
        self.node_row = {name: row for row, name in enumerate(self.node_names)}
        self.rows_by_type: dict[int, slice] = {}
        self.rows_by_type_cluster: dict[tuple[int, int], slice] = {}
        for row, (cluster, node) in enumerate(nodes):
            key = (TYPE_CODES[node.compute_type], cluster)
            before = self.rows_by_type_cluster.get(key, slice(row, row))
            self.rows_by_type_cluster[key] = slice(before.start, row + 1)
        for code in TYPE_CODES.values():
            rows = np.flatnonzero(self.node_type == code)
            start = int(rows[0]) if len(rows) else 0
            self.rows_by_type[code] = slice(start, start + len(rows))
        shape = (len(nodes), len(self.resources))
        self.node_alloc: FloatArray = np.zeros(shape)
        self.node_free: FloatArray = np.zeros(shape)
        for row, (_, node) in enumerate(nodes):
            for r, amount in node.allocatable.items():
                self.node_alloc[row, self.resource_index[r]] = amount
                self.node_free[row, self.resource_index[r]] = amount - node.requested.get(r, 0.0)
        # Per-cluster totals, kept in step with node_free by reserve/release.
        self.cluster_alloc: FloatArray = np.zeros((self.size, len(self.resources)))
        self.cluster_free: FloatArray = np.zeros((self.size, len(self.resources)))
        np.add.at(self.cluster_alloc, self.node_cluster, self.node_alloc)
        np.add.at(self.cluster_free, self.node_cluster, self.node_free)
        self.ready: BoolArray = np.array([s.ready for s in self.clusters], dtype=bool)
        self.known_location: BoolArray = np.array(
            [latency.knows(s.location) for s in self.clusters], dtype=bool
        )
        self.carbon: FloatArray = np.array([s.power.carbon_intensity for s in self.clusters])
        self.renewable: FloatArray = np.array([s.power.renewable_share for s in self.clusters])
        self.price: FloatArray = np.array([s.power.price_per_kwh for s in self.clusters])
        self._cache: dict[tuple[Hashable, ...], Any] = {}
        self.version = 0  # bumped whenever free capacity changes
        # The last job asked about, holding a reference so identity checks are sound.
        self._fit_memo: tuple[JobRequest, int, FloatArray] | None = None
        self._request_memo: tuple[JobRequest, FloatArray | None] | None = None

    def refresh(self, snapshot: ClusterSnapshot) -> bool:
        """Take a new probe of one cluster whose nodes and everything but their requests are
        unchanged: its rows of free capacity are recomputed in place (reservations made on
        them are gone; the caller re-applies the ones still outstanding). False, and nothing
        changed, when anything else differs: then the state must be compiled anew.

        Why: a probe usually changes only what pods request; recompiling every cluster for
        it cost milliseconds per probe and re-applied every reservation of the fleet.
        """
        i = self.index.get(snapshot.name)
        if i is None or not _same_but_requests(self.clusters[i], snapshot):
            return False
        rows = self.cluster_rows[i]
        requested = np.zeros((len(rows), len(self.resources)))
        for j, node in enumerate(snapshot.nodes):
            for r in node.allocatable:  # as compiled: requests count only where allocatable
                requested[j, self.resource_index[r]] = node.requested.get(r, 0.0)
        self.node_free[rows] = self.node_alloc[rows] - requested
        self.cluster_free[i] = self.node_free[rows].sum(axis=0)
        self.clusters = (*self.clusters[:i], snapshot, *self.clusters[i + 1 :])
        self.version += 1
        return True

    # -- capacity -------------------------------------------------------------------------

    def asked(self, job: JobRequest) -> tuple[IntArray, FloatArray] | None:
        """(indices of the resources the job asks for, the per-pod amounts there)."""
        request = self.request_vector(job)
        if request is None:
            return None
        key = ("asked", request.tobytes())
        result: tuple[IntArray, FloatArray] = self.cached(
            key, lambda: (np.flatnonzero(request), request[request > 0])
        )
        return result

    def request_vector(self, job: JobRequest) -> FloatArray | None:
        """The job's per-pod request over ``self.resources``; None if no node has a resource."""
        memo = self._request_memo
        if memo is not None and memo[0] is job:
            return memo[1]
        key = ("request", tuple(sorted(job.pod_resources.items())))
        if key not in self._cache:
            vector = np.zeros(len(self.resources))
            missing = False
            for r, amount in job.pod_resources.items():
                if amount <= 0:
                    continue
                if r not in self.resource_index:
                    missing = True
                    break
                vector[self.resource_index[r]] = amount
            vector[self.resource_index["pods"]] = max(vector[self.resource_index["pods"]], 1.0)
            self._cache[key] = None if missing else vector
        result: FloatArray | None = self._cache[key]
        self._request_memo = (job, result)
        return result

    def pods_fitting_per_node(self, job: JobRequest) -> FloatArray:
        """How many of the job's pods each node could still take (0 on other compute types).

        Memoised for the last (job, capacity version): the filter and ``reserve`` both ask.
        """
        memo = self._fit_memo
        if memo is not None and memo[0] is job and memo[1] == self.version:
            return memo[2]
        fitting = np.zeros(len(self.node_names))
        asked = self.asked(job)
        if asked is None:
            return fitting
        index, amounts = asked
        rows = self.rows_by_type[TYPE_CODES[job.compute_type]]
        fitting[rows] = np.maximum(_whole_pods(self.node_free[rows][:, index], amounts), 0.0)
        self._fit_memo = (job, self.version, fitting)
        return fitting

    def pods_fitting_per_cluster(self, job: JobRequest) -> FloatArray:
        per_node = self.pods_fitting_per_node(job)
        counts = np.bincount(self.node_cluster, weights=per_node, minlength=self.size)
        return cast(FloatArray, counts)

    def cluster_totals(self) -> tuple[FloatArray, FloatArray]:
        """(allocatable, free) summed per cluster, shape [clusters, resources]."""
        return self.cluster_alloc, self.cluster_free

    def reserve(self, cluster: int, job: JobRequest) -> dict[str, int]:
        """Take the job's pods out of the cluster's free capacity, fullest nodes first.

        Packing onto the fullest nodes that still fit keeps whole nodes free for large jobs.
        "Fullest" is best fit by the job's scarcest resource: the fewest of its pods fitting,
        counted in fractions (a 4-GPU pod goes to a node with 4 GPUs free before one with 7,
        where whole pods would tie at 1 and leave a 3-GPU fragment).
        Returns pods per node. Raises ValueError when the job does not fit (a caller bug).
        """
        request = self.request_vector(job)
        asked = self.asked(job)
        if request is None or asked is None:
            raise ValueError(f"{job.name} requests a resource no node has")
        block = self.rows_by_type_cluster.get((TYPE_CODES[job.compute_type], cluster))
        rows = np.arange(block.start, block.stop) if block else np.arange(0)
        index, amounts = asked
        share = _pod_shares(self.node_free[rows][:, index], amounts)
        fits = np.floor(share)
        keep = fits > 0
        rows, fits, share = rows[keep], fits[keep], share[keep]
        order = np.argsort(share, kind="stable")
        rows, fits = rows[order], fits[order]
        self.version += 1
        left = job.parallelism
        placed: dict[str, int] = {}
        for row, fit in zip(rows, fits, strict=True):
            take = int(min(fit, left))
            self.node_free[row] -= take * request
            self.cluster_free[cluster] -= take * request
            placed[self.node_names[row]] = take
            left -= take
            if left == 0:
                return placed
        self.release(placed, job)  # roll back: the job must fit whole
        raise ValueError(f"{job.name} does not fit on {self.names[cluster]}")

    def release(self, placed: dict[str, int], job: JobRequest) -> None:
        """Give back what ``reserve`` took (a finished job in the simulator)."""
        request = self.request_vector(job)
        assert request is not None
        self.version += 1
        for name, count in placed.items():
            row = self.node_row[name]
            self.node_free[row] += count * request
            self.cluster_free[self.node_cluster[row]] += count * request

    def update_power(self, carbon: FloatArray, renewable: FloatArray, price: FloatArray) -> None:
        """New power figures for every cluster (hourly curves in the simulator).

        Drops the cached per-job arrays: the static scores were computed from the old figures.
        """
        for name, array in (("carbon", carbon), ("renewable", renewable), ("price", price)):
            if np.shape(array) != (self.size,):
                raise ValueError(f"{name} needs one value per cluster ({self.size})")
        self.carbon = np.asarray(carbon, dtype=float)
        self.renewable = np.asarray(renewable, dtype=float)
        self.price = np.asarray(price, dtype=float)
        self._cache = {k: v for k, v in self._cache.items() if k[0] in _POWER_FREE_KEYS}

    def with_power(
        self, carbon: FloatArray, renewable: FloatArray, price: FloatArray
    ) -> FleetState:
        """A view of the same clusters and capacity (shared, not copied) with other power
        figures, and a cache of its own: the scores cached here are of this state's figures."""
        view = copy.copy(self)
        view._cache = {}
        view.update_power(carbon, renewable, price)
        return view

    # -- per-job caches -------------------------------------------------------------------

    def cached(self, key: tuple[Hashable, ...], compute: Callable[[], Any]) -> Any:
        """Memoise what depends only on the job's static fields and the fixed fleet."""
        try:
            return self._cache[key]
        except KeyError:
            value = self._cache[key] = compute()
            return value

    def latency_from(self, origin: str) -> FloatArray:
        """RTT in ms from the origin city to every cluster's location.

        Infinite where the model does not know a city: such a cluster fails every budget and
        scores 0 on latency, so no plugin raises ``KeyError`` for one bad MemberCluster.
        """
        model = self.latency

        def rtt(location: str) -> float:
            known = model.knows(origin) and model.knows(location)
            return model.rtt_ms(origin, location) if known else math.inf

        def compute() -> FloatArray:
            return np.array([rtt(c.location) for c in self.clusters], dtype=float)

        result: FloatArray = self.cached(("latency", origin), compute)
        return result


def _whole_pods(free: FloatArray, amounts: FloatArray) -> FloatArray:
    """Per row, whole pods that fit in every column: floor(min(free / amount)).

    Dividing then flooring the minimum is an order of magnitude faster than
    ``np.floor_divide`` on floats (which pays for Python's modulo semantics), and floor is
    monotonic, so one floor of the row's minimum is the same as the minimum of the floors.
    """
    result: FloatArray = np.floor(_pod_shares(free, amounts))
    return result


def _pod_shares(free: FloatArray, amounts: FloatArray) -> FloatArray:
    """Per row, the pods that fit counted in fractions: min(free / amount) over columns."""
    result: FloatArray = (free / amounts).min(axis=1)
    return result


def _same_but_requests(old: ClusterSnapshot, new: ClusterSnapshot) -> bool:
    """Everything a compiled state treats as fixed is equal; only node requests may differ."""
    if old is new:
        return True
    fixed = ("name", "hub", "region", "location", "power", "ready", "not_ready_reason")
    if any(getattr(old, f) != getattr(new, f) for f in fixed):
        return False
    if (old.taints, old.paired_with, dict(old.labels)) != (
        new.taints,
        new.paired_with,
        dict(new.labels),
    ) or len(old.nodes) != len(new.nodes):
        return False
    return all(
        a.name == b.name and a.compute_type == b.compute_type and a.allocatable == b.allocatable
        for a, b in zip(old.nodes, new.nodes, strict=True)
    )
