"""Power draw of a job and what it costs in carbon and money per hour on a cluster.

Every constant is an estimate, for comparing clusters, not for billing:
- GPU 400 W: the board power of an NVIDIA A100 SXM (NVIDIA A100 datasheet), a common
  training GPU in Chinese AI centres.
- CPU 10 W per core: a 64-core server CPU at 280 W TDP (AMD EPYC 7763 datasheet) is 4.4 W a
  core; the rest of the server (fans, disks, NICs) roughly doubles that.
- Memory 0.375 W per GiB: a 32 GiB DDR4 RDIMM draws about 12 W under load (vendor figures).
- PUE: the caps of the clusters' approval letters, 1.25 in demand hubs and 1.2 in resource
  hubs (hubs.yaml program_targets cluster_pue_cap_*).
"""

from __future__ import annotations

from computegrid.api.common import GPU, Region
from computegrid.scheduling.snapshot import ClusterSnapshot, JobRequest

GIB = 2**30
GPU_W = 400.0
CPU_W_PER_CORE = 10.0
MEMORY_W_PER_GIB = 0.375
PUE: dict[Region, float] = {Region.EAST: 1.25, Region.CENTRAL: 1.25, Region.WEST: 1.2}


def it_power_kw(job: JobRequest) -> float:
    """IT power of all the job's pods: 2 pods × (8 cores × 10 W + 4 GPU × 400 W + 32 GiB × 0.375 W)
    = 2 × 1692 W = 3.384 kW."""
    r = job.pod_resources
    watts = (
        r.get("cpu", 0.0) * CPU_W_PER_CORE
        + r.get(GPU, 0.0) * GPU_W
        + r.get("memory", 0.0) / GIB * MEMORY_W_PER_GIB
    )
    return job.parallelism * watts / 1000.0


def hourly_footprint(job: JobRequest, cluster: ClusterSnapshot) -> tuple[float, float]:
    """(gCO2e, CNY) per hour of running the job on the cluster, facility overhead included."""
    kw = it_power_kw(job) * PUE[cluster.region]
    return kw * cluster.power.carbon_intensity, kw * cluster.power.price_per_kwh
