"""From a ComputeJob body to a decision of the core, and from the decision to status fields.

No Kubernetes calls here: this is the glue between what Kopf hands a handler (raw dicts) and
the pure core, so the words a user reads (conditions, Events) are made in one place.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from computegrid.api import (
    ANN_LATENCY,
    GPU,
    AnnotationError,
    ComputeJob,
    ComputeType,
    LatencySensitivity,
    PodPolicy,
    QuantityError,
    latency_class,
    parse_quantity,
)
from computegrid.dispatch import backoff_limit
from computegrid.fleet_data import UnknownCityError, resolve_city, resolved_job_data
from computegrid.scheduling import Decision, Diagnosis, JobError, JobRequest
from computegrid.scheduling.run_profile import Shape

META_KEYS = ("name", "namespace", "uid", "generation", "labels", "annotations")


class InvalidJob(ValueError):
    """The ComputeJob cannot be scheduled as written; the message says which field and why."""


def parse_job(body: Mapping[str, Any]) -> ComputeJob:
    meta = body.get("metadata") or {}
    raw = {
        "metadata": {k: meta[k] for k in META_KEYS if k in meta},
        "spec": dict(body.get("spec") or {}),
    }
    try:
        return ComputeJob.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise InvalidJob(f"{where}: {first['msg']}") from None


def to_request(cj: ComputeJob, pod_policy: PodPolicy | None = None) -> JobRequest:
    """The core's request; InvalidJob for an unknown city, a bad annotation or pod template.

    ``pod_policy`` is the operator's configured policy; restricted everywhere when None.
    """
    from computegrid.api import ANN_ORIGIN, origin_city
    from computegrid.scheduling import to_request as core_request

    try:
        origin = resolve_city(origin_city(cj)).key
    except AnnotationError as exc:
        raise InvalidJob(str(exc)) from None
    except UnknownCityError as exc:  # the message names the city, this names the field
        raise InvalidJob(f"metadata.annotations[{ANN_ORIGIN}]: {exc}") from None
    try:
        # spec.data's places and the network to price moving it; the transfer budget is
        # counted from now (the request is cached per generation: see docs/sim.md, "Data").
        data = resolved_job_data(cj, now_s=time.time())
        request = (
            core_request(cj, origin, pod_policy=pod_policy, data=data)
            if pod_policy is not None
            else core_request(cj, origin, data=data)
        )
        backoff_limit(cj)
    except (AnnotationError, JobError, UnknownCityError, ValueError) as exc:
        raise InvalidJob(str(exc)) from None
    return request


_COMPUTE_TYPES = frozenset(c.value for c in ComputeType)


def shape_of_body(body: Mapping[str, Any]) -> Shape | None:
    """The job's run-profile shape read straight from its body: what
    ``shape_of(to_request(parse_job(body)))`` gives, without the parse.

    For the hub's finished jobs, which a start lists by the thousand and which are never
    placed again: the full parse costs ~0.15 ms a job, these three fields a twentieth of that
    (``python -m tests.tools.shapebench``). None when one of them is missing or garbled
    (nothing to learn from)."""
    meta, spec = body.get("metadata") or {}, body.get("spec")
    annotations = (meta.get("annotations") or {}) if isinstance(meta, Mapping) else None
    if not isinstance(spec, Mapping) or not isinstance(annotations, Mapping):
        return None
    compute_type = spec.get("computeType", ComputeType.GENERAL.value)
    raw_class = annotations.get(ANN_LATENCY, LatencySensitivity.MEDIUM.value)
    resources = spec.get("resources")
    if (
        not isinstance(compute_type, str)
        or compute_type not in _COMPUTE_TYPES
        or not isinstance(raw_class, str)
        or not isinstance(resources, Mapping)
        or not resources
    ):
        return None
    try:
        sensitivity = latency_class(raw_class)  # as the parse reads it
    except AnnotationError:
        return None
    gpus = _gpus_per_pod(resources.get(GPU))
    if gpus is None:
        return None
    return (compute_type, sensitivity.value, gpus)


def _gpus_per_pod(quantity: object) -> float | None:
    """spec.resources' GPU request as pod_resources reads it (absent: 0); None if garbled."""
    if quantity is None:
        return 0.0
    if not isinstance(quantity, str | int | float):
        return None
    try:
        gpus = float(parse_quantity(quantity))
    except (QuantityError, ArithmeticError):  # an exponent past Decimal's range overflows
        return None
    return gpus if math.isfinite(gpus) and gpus >= 0 else None


def placement_status(decision: Decision, decided_at: str) -> dict[str, Any]:
    """``status.placement``: where, why, the runners-up and what it saves."""
    cluster = decision.cluster
    nearest, carbon, cost = decision.savings_per_hour()
    return {
        "cluster": cluster.name,
        "hub": cluster.hub,
        "region": cluster.region.value,
        "latencyMs": round(decision.latency_ms, 2),
        "carbonIntensity": round(cluster.power.carbon_intensity, 2),
        "pricePerKWh": round(cluster.power.price_per_kwh, 4),
        "score": round(float(decision.score), 2),
        "breakdown": decision.breakdown,
        "reasons": decision.reasons()[:10],
        "alternatives": [{"cluster": c, "score": s} for c, s in decision.alternatives()],
        "nearestCluster": nearest,
        "carbonSavedGPerHour": round(carbon, 2),
        "costSavedCnyPerHour": round(cost, 4),
        "decidedAt": decided_at,
    }


def decision_message(decision: Decision) -> str:
    p = decision.cluster
    return (
        f"placed on {p.name} (hub {p.hub}, {decision.latency_ms:.1f} ms, "
        f"{p.power.carbon_intensity:.0f} gCO2/kWh, {p.power.price_per_kwh:.2f} CNY/kWh, "
        f"score {decision.score:.1f})"
    )


def diagnosis_message(diagnosis: Diagnosis) -> str:
    """One line per cluster, as kubectl describe shows a condition message."""
    lines = [diagnosis.summary()]
    lines += [f"{cluster}: {why}" for cluster, why in sorted(diagnosis.reasons().items())]
    return "; ".join(lines)
