"""Every Kopf handler of computegrid, each a thin wrapper around a ``handle_*`` function.

Settings live in the one ``@kopf.on.startup`` below; timer intervals come from
``OperatorOptions`` (the environment) because decorators are evaluated at import.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import kopf

from computegrid.api import GROUP, VERSION
from computegrid.fleet import Fleet, HubSecrets
from computegrid.fleet_data import load_latency_model
from computegrid.handlers import metrics
from computegrid.handlers.computejobs import (
    handle_create_computejob,
    handle_delete_computejob,
    handle_sync_computejob,
    handle_update_computejob,
)
from computegrid.handlers.members import handle_delete_membercluster, handle_probe_membercluster
from computegrid.handlers.options import OperatorOptions
from computegrid.handlers.runtime import Runtime, get_runtime, set_runtime
from computegrid.scheduling import DEFAULT_POLICY, Scheduler

OPTIONS = OperatorOptions.from_env()
FINALIZER = f"{GROUP}/finalizer"
CJ = (GROUP, VERSION, "computejobs")
MC = (GROUP, VERSION, "memberclusters")


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, logger: Any, **_: Any) -> None:
    """Kopf settings, the fleet registry and the metrics endpoint."""
    settings.persistence.finalizer = FINALIZER
    # Our own Events (decisions, failures) are posted explicitly; Kopf's log lines become
    # Events only from WARNING up, or every timer tick would post one.
    settings.posting.enabled = True
    settings.posting.level = logging.WARNING
    # Unlimited by default; a limit below the number of indexed objects deadlocks startup.
    if OPTIONS.worker_limit:
        settings.queueing.worker_limit = OPTIONS.worker_limit
    settings.execution.max_workers = 8  # sync handlers only; member calls use the fleet pool
    settings.networking.request_timeout = 30
    settings.networking.connect_timeout = 10
    # Silent watch freezes are known: make the server end each watch and the client notice.
    settings.watching.server_timeout = 120
    settings.watching.client_timeout = 150
    settings.watching.connect_timeout = 10
    settings.peering.standalone = not OPTIONS.peering
    if OPTIONS.peering:
        settings.peering.name = OPTIONS.peering
        settings.peering.priority = OPTIONS.priority
        settings.peering.mandatory = True
    secrets = HubSecrets(OPTIONS.hub_kubeconfig or os.environ.get("KUBECONFIG") or None)
    fleet = Fleet(secrets, threshold=OPTIONS.failure_threshold)
    set_runtime(Runtime(OPTIONS, fleet, load_latency_model(), Scheduler(DEFAULT_POLICY)))
    metrics.serve(OPTIONS.metrics_port)
    logger.info("computegrid operator started with %s", OPTIONS)


@kopf.on.cleanup()
async def cleanup(**_: Any) -> None:
    runtime = get_runtime()
    runtime.fleet.close()
    set_runtime(None)


@kopf.on.login()
def login(**kwargs: Any) -> Any:
    """The hub only: the service account in a pod, else the kubeconfig (never the members')."""
    return kopf.login_with_service_account(**kwargs) or kopf.login_with_kubeconfig(**kwargs)


@kopf.index(*CJ)
def cj_remotes(uid: str, status: kopf.Status, **_: Any) -> dict[str, Any]:
    """ComputeJob uid → the member its Job runs on (None before dispatch)."""
    return {uid: (status.get("remote") or {}).get("cluster")}


@kopf.index(*MC)
def mc_names(name: str, **_: Any) -> dict[str, bool]:
    """The registered members: placement waits until each has been probed once."""
    return {name: True}


@kopf.on.create(*CJ)
async def create_computejob(body: kopf.Body, patch: kopf.Patch, **kw: Any) -> None:
    await handle_create_computejob(get_runtime(), body, patch, set(kw["mc_names"]))


@kopf.on.update(*CJ, field="spec")
async def update_computejob(body: kopf.Body, patch: kopf.Patch, diff: kopf.Diff, **_: Any) -> None:
    await handle_update_computejob(get_runtime(), body, patch, diff)


@kopf.timer(*CJ, interval=OPTIONS.sync_interval, initial_delay=OPTIONS.sync_interval)
async def sync_computejob(body: kopf.Body, patch: kopf.Patch, **kw: Any) -> None:
    await handle_sync_computejob(get_runtime(), body, patch, set(kw["mc_names"]))


@kopf.on.delete(*CJ)
async def delete_computejob(body: kopf.Body, retry: int, **_: Any) -> None:
    await handle_delete_computejob(get_runtime(), body, retry)


@kopf.timer(*MC, interval=OPTIONS.probe_interval)
async def probe_membercluster(body: kopf.Body, name: str, patch: kopf.Patch, **kw: Any) -> None:
    index: kopf.Index[str, Any] = kw["cj_remotes"]  # the index above, passed by name
    await handle_probe_membercluster(get_runtime(), body, name, patch, index)


@kopf.on.delete(*MC)
async def delete_membercluster(body: kopf.Body, name: str, **_: Any) -> None:
    await handle_delete_membercluster(get_runtime(), body, name)


def run_operator(
    options: OperatorOptions, *, verbose: bool = False, json_logs: bool = False
) -> None:
    """Run the operator until interrupted (what ``computegrid run`` calls).

    ``json_logs``: one JSON object per line with the object's reference (structured logs for
    a log pipeline); otherwise Kopf's readable format.
    """
    namespaces = options.namespace_list
    log_format = kopf.LogFormat.JSON if json_logs else kopf.LogFormat.FULL
    kopf.configure(verbose=verbose, log_format=log_format, log_refkey="object")
    kopf.run(
        clusterwide=not namespaces,
        namespaces=namespaces,
        standalone=not options.peering,
        peering_name=options.peering or None,
        priority=options.priority,
        liveness_endpoint=(
            f"http://0.0.0.0:{options.liveness_port}/healthz" if options.liveness_port else None
        ),
    )
