"""The operator's options, passed from ``computegrid run`` through the environment.

Why the environment: Kopf's decorators read timer intervals when the handlers module is
imported, and the same module is imported by ``computegrid run`` and by ``kopf run -m``
(tests), so both paths meet in ``COMPUTEGRID_*`` variables rather than in module globals.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, fields

PREFIX = "COMPUTEGRID_"


@dataclass(frozen=True)
class OperatorOptions:
    hub_kubeconfig: str = ""  # empty: in-cluster service account
    namespaces: str = ""  # comma-separated; empty: all namespaces
    peering: str = ""  # empty: standalone
    priority: int = 0
    metrics_port: int = 8080  # 0: no metrics endpoint
    liveness_port: int = 0  # 0: no liveness endpoint
    probe_interval: float = 10.0
    failure_threshold: int = 3
    grace_period: float = 300.0  # a job's spec.failover.gracePeriodSeconds wins
    finished_job_ttl: float = 3600.0  # ttlSecondsAfterFinished once a result is mirrored
    delete_timeout: float = 60.0
    hub_name: str = "hub"
    # The member namespace of a hub namespace: fields {hub} and {namespace} (dispatch.spec).
    tenant_namespace_template: str = "{hub}-{namespace}"
    worker_limit: int = 0  # 0: Kopf's default (unlimited)
    forecast_interval: float = 300.0  # seconds between a member's forecast refreshes
    max_replans: int = 3  # times a Deferred job's plan may change before its start
    # Seconds between joint re-plans of all Deferred jobs (handlers/joint.py), aligned to
    # whole multiples on the planning clock; 0: never (each keeps the plan it got alone).
    joint_replan_interval: float = 3600.0
    # Seconds added to the wall clock for planning in time (windows, forecasts, planned
    # starts): tests run "an hour later" without waiting an hour. 0 in production.
    clock_offset: float = 0.0

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> OperatorOptions:
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for f in fields(cls):
            raw = env.get(PREFIX + f.name.upper())
            if raw is None:
                continue
            kind = type(getattr(cls(), f.name))
            values[f.name] = kind(raw)
        return cls(**values)  # type: ignore[arg-type]

    def to_env(self) -> dict[str, str]:
        return {PREFIX + f.name.upper(): str(getattr(self, f.name)) for f in fields(self)}

    def clock(self) -> float:
        """The planning clock, Unix seconds: the wall clock plus ``clock_offset``."""
        return time.time() + self.clock_offset

    @property
    def namespace_list(self) -> list[str]:
        return [n.strip() for n in self.namespaces.split(",") if n.strip()]
