"""From the API's ComputeJob to the core's JobRequest: quantities parsed, annotations read.

The origin city must already be resolved to a key of the latency model (the caller does that
with the city table); everything else that can be wrong raises ``JobError`` naming the field.
"""

from __future__ import annotations

from collections.abc import Sequence

from computegrid.api.common import Region
from computegrid.api.compute_job import (
    AnnotationError,
    ComputeJob,
    latency_sensitivity,
    max_latency_ms,
)
from computegrid.api.pod_policy import PodPolicy
from computegrid.api.quantities import QuantityError, parse_quantity
from computegrid.scheduling.snapshot import (
    ClusterSelector,
    DataInput,
    JobData,
    JobRequest,
    JobToleration,
    NetworkModel,
    SelectorRequirement,
)
from computegrid.scheduling.timeshift import Window, window_for


class JobError(ValueError):
    """A ComputeJob the product cannot schedule as written; the message names the field."""


def pod_resources(job: ComputeJob) -> dict[str, float]:
    out = {}
    for name, quantity in job.spec.resources.items():
        try:
            out[name] = float(parse_quantity(quantity))
        except QuantityError as exc:
            raise JobError(f"spec.resources[{name}]: {exc}") from None
    return out


DEFAULT_POD_POLICY = PodPolicy()  # restricted everywhere, no priority classes


def to_request(
    job: ComputeJob,
    origin: str,
    *,
    check_pod_policy: bool = True,
    pod_policy: PodPolicy = DEFAULT_POD_POLICY,
    data: JobData | None = None,
) -> JobRequest:
    """The core's view of a job whose origin city resolved to ``origin``.

    ``data`` is the job's ``spec.data`` with its places resolved and the network to price it
    (``job_data``; fleet_data builds both), None for a job without data.

    The pod template must pass ``pod_policy`` for the job's namespace (JobError with the
    first refusal, naming field, level and rule).
    """
    if check_pod_policy:
        violations = pod_policy.violations(job.spec.template, job.metadata.namespace)
        if violations:
            raise JobError(violations[0])
    try:
        sensitivity = latency_sensitivity(job)
        budget = max_latency_ms(job)
    except AnnotationError as exc:
        raise JobError(str(exc)) from None
    placement = job.spec.placement
    selector = None
    if placement.cluster_selector is not None:
        sel = placement.cluster_selector
        selector = ClusterSelector(
            match_labels=tuple(sorted(sel.match_labels.items())),
            match_expressions=tuple(
                SelectorRequirement(r.key, r.operator, tuple(r.values))
                for r in sel.match_expressions
            ),
        )
    regions = (
        frozenset(Region(r) for r in placement.allowed_regions)
        if placement.allowed_regions
        else None
    )
    meta = job.metadata
    return JobRequest(
        name=f"{meta.namespace}/{meta.name}" if meta.namespace else meta.name,
        origin=origin,
        pod_resources=pod_resources(job),
        parallelism=job.spec.parallelism,
        compute_type=job.spec.compute_type,
        sensitivity=sensitivity,
        max_latency_ms=budget,
        allowed_regions=regions,
        selector=selector,
        tolerations=tuple(
            JobToleration(t.key, t.operator, t.value, t.effect) for t in placement.tolerations
        ),
        pinned_cluster=placement.pinned_cluster,
        data=data,
    )


def job_data(
    job: ComputeJob,
    locations: Sequence[str],
    network: NetworkModel,
    now_s: float | None = None,
) -> JobData | None:
    """``spec.data`` for the core: ``locations`` are its places resolved (city keys, or member
    cluster names as written), in order. The transfer budget is the time left at ``now_s``
    before the latest start that still meets ``spec.timing``'s deadline (None: no deadline or
    no clock). None when the job declares no data."""
    items = job.spec.data
    if not items:
        return None
    if len(locations) != len(items):
        raise ValueError(f"spec.data has {len(items)} inputs, {len(locations)} places resolved")
    timing = job.spec.timing
    run_hours = timing.duration_s / 3600 if timing is not None else None
    budget = None
    if timing is not None and now_s is not None:
        budget = timing.deadline_s - timing.duration_s - now_s
    return JobData(
        inputs=tuple(
            DataInput(where, item.size_gib) for where, item in zip(locations, items, strict=True)
        ),
        network=network,
        run_hours=run_hours,
        transfer_budget_s=budget,
    )


def to_window(job: ComputeJob, now_s: float) -> Window:
    """The job's window at ``now_s``: from ``spec.timing`` (none: start now; high class: now)."""
    try:
        sensitivity = latency_sensitivity(job)
    except AnnotationError as exc:
        raise JobError(str(exc)) from None
    timing = job.spec.timing
    if timing is None:
        return Window(now_s)
    return window_for(
        sensitivity,
        now_s,
        deadline_s=timing.deadline_s,
        duration_s=timing.duration_s,
        not_before_s=timing.not_before_s,
    )
