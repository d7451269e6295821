"""Seeded synthetic fleets and job streams for the benchmark and the property tests.

Pure (``random.Random`` with a seed; no clock): the same seed gives the same fleet and jobs.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import replace

from computegrid.api.common import GPU, ComputeType, LatencySensitivity, Region
from computegrid.scheduling.snapshot import ClusterSnapshot, JobRequest, NodeCapacity, PowerMix

GIB = 2**30


def synthetic_fleet(
    count: int, locations: Sequence[str], *, nodes: int = 4, seed: int = 0
) -> list[ClusterSnapshot]:
    """``count`` clusters spread over ``locations`` with varied power and 1-3 compute types."""
    rng = random.Random(seed)
    clusters = []
    for i in range(count):
        types = [ComputeType.GENERAL]
        if rng.random() < 0.7:
            types.append(ComputeType.INTELLIGENT)
        if rng.random() < 0.2:
            types.append(ComputeType.SUPERCOMPUTING)
        node_list = []
        for n in range(nodes):
            kind = types[n % len(types)]
            gpu = 8.0 if kind is ComputeType.INTELLIGENT else 0.0
            alloc = {"cpu": 96.0, "memory": 512.0 * GIB, "pods": 110.0}
            if gpu:
                alloc[GPU] = gpu
            node_list.append(NodeCapacity(f"c{i:04d}-n{n}", alloc, {}, kind))
        clusters.append(
            ClusterSnapshot(
                name=f"c{i:04d}",
                hub=f"hub{i % 8}",
                region=rng.choice(list(Region)),
                location=locations[i % len(locations)],
                power=PowerMix(
                    renewable_share=rng.uniform(0.1, 0.9),
                    carbon_intensity=rng.uniform(120, 750),
                    price_per_kwh=rng.uniform(0.3, 0.7),
                ),
                nodes=tuple(node_list),
                paired_with=frozenset(rng.sample(list(locations), k=min(2, len(locations)))),
            )
        )
    return clusters


def synthetic_jobs(count: int, origins: Sequence[str], *, seed: int = 1) -> list[JobRequest]:
    """A mix of CPU and GPU jobs of every latency class from the given origins."""
    rng = random.Random(seed)
    jobs = []
    for i in range(count):
        kind = rng.choices(list(ComputeType), weights=[6, 3, 1])[0]
        resources = {"cpu": float(rng.choice([1, 2, 4, 8])), "memory": rng.choice([2, 8, 32]) * GIB}
        if kind is ComputeType.INTELLIGENT:
            resources[GPU] = float(rng.choice([1, 2, 4]))
        jobs.append(
            JobRequest(
                name=f"job-{i}",
                origin=rng.choice(list(origins)),
                pod_resources=resources,
                parallelism=rng.choice([1, 1, 2, 4]),
                compute_type=kind,
                sensitivity=rng.choices(list(LatencySensitivity), weights=[2, 3, 5])[0],
            )
        )
    return jobs


def reprobed(snapshot: ClusterSnapshot, salt: int) -> ClusterSnapshot:
    """The cluster probed again: a new snapshot in which one node (chosen by ``salt``) has
    pods requesting a different amount of CPU, as a probe between two decisions brings."""
    nodes = list(snapshot.nodes)
    j = salt % len(nodes)
    node = nodes[j]
    used = min(node.allocatable.get("cpu", 0.0), float((salt * 7) % 48))
    nodes[j] = replace(node, requested={**node.requested, "cpu": used})
    return replace(snapshot, nodes=tuple(nodes))
