"""Every Kopf handler of computegrid, each a thin wrapper.

What Kopf does here: the hub login, peering (a paused replica's daemons stop), a daemon per
MemberCluster, liveness, and the startup and cleanup of the controller. The hub's
ComputeJobs are followed by our own list + watch (``jobfeed``: Kopf's per-event pipeline cost
a third of the event loop for a handler that only handed the body over). Everything else is
``controller``/``placer``.

Why no finalizer on ComputeJobs: deleting a job (or its namespace) never hangs on an
unreachable member. The member Job is deleted as soon as the deletion is seen, and a Job
whose ComputeJob is gone is collected when its member's watch shows it again (the hub
confirms by name first), like Kubernetes' own garbage collector does for owner references.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any

import kopf

from computegrid.api import GROUP, VERSION
from computegrid.fleet import Capacity, Fleet, HubClient, HubWriter
from computegrid.fleet_data import load_latency_model
from computegrid.handlers import heap, metrics
from computegrid.handlers.controller import Controller
from computegrid.handlers.jobfeed import JobFeed
from computegrid.handlers.members import handle_delete_membercluster, run_member
from computegrid.handlers.options import OperatorOptions
from computegrid.handlers.placer import Placer
from computegrid.handlers.policies import PolicyFollower
from computegrid.handlers.runtime import Runtime, get_runtime, set_runtime
from computegrid.handlers.startclock import CLOCK
from computegrid.scheduling import DEFAULT_POLICY, Scheduler

OPTIONS = OperatorOptions.from_env()
FINALIZER = f"{GROUP}/finalizer"
MC = (GROUP, VERSION, "memberclusters")
log = logging.getLogger("computegrid.operator")


LIST_PAGE = 500


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, logger: Any, **_: Any) -> None:
    """Kopf settings, the fleet, the controller and the metrics endpoint."""
    heap.limit_arenas()  # before the thread pools below make their threads
    settings.persistence.finalizer = FINALIZER  # MemberClusters only (their delete handler)
    settings.posting.enabled = True
    settings.posting.level = logging.WARNING
    if OPTIONS.worker_limit:
        settings.queueing.worker_limit = OPTIONS.worker_limit
    settings.execution.max_workers = 4
    settings.networking.request_timeout = 30
    settings.networking.connect_timeout = 10
    # Silent watch freezes are known: make the server end each watch and the client notice;
    # Kopf reconnects (and relists after 410) on its own.
    settings.watching.server_timeout = 120
    settings.watching.client_timeout = 150
    settings.watching.connect_timeout = 10
    settings.watching.reconnect_backoff = 1.0
    # Kopf lists only MemberClusters now, but a list in one answer holds all of it parsed at
    # once (10,000 ComputeJobs were ~180 MB, seen with tracemalloc): pages of 500.
    settings.watching.chunk_size = LIST_PAGE
    settings.peering.standalone = not OPTIONS.peering
    if OPTIONS.peering:
        settings.peering.name = OPTIONS.peering
        settings.peering.priority = OPTIONS.priority
        settings.peering.mandatory = True
    hub = HubClient.from_kubeconfig(OPTIONS.hub_kubeconfig or os.environ.get("KUBECONFIG") or None)
    fleet = Fleet(hub, hub_name=OPTIONS.hub_name, threshold=OPTIONS.failure_threshold)
    latency = load_latency_model()
    capacity = Capacity(latency)
    writer = HubWriter(hub)
    writer.on_write = lambda kind: metrics.HUB_WRITES.labels(kind=kind).inc()
    writer.on_drop = metrics.EVENTS_DROPPED.inc
    controller = Controller(OPTIONS, fleet, capacity, writer)
    placer = Placer(controller, Scheduler(DEFAULT_POLICY))
    await placer.list_members()  # if the hub does not answer, the placer lists them later
    feed = JobFeed(hub, controller, OPTIONS.namespace_list)
    placer.following = lambda: bool(feed.watches)  # a paused standby's cache is stale
    runtime = Runtime(OPTIONS, fleet, latency, capacity, writer, controller, placer, feed)
    metrics.QUEUE_DEPTH.set_function(lambda: len(controller.queue))
    metrics.WAITING.set_function(lambda: len(placer.waiting))
    writer.start()
    controller.start()
    placer.start()
    follower = PolicyFollower(runtime)
    try:
        await follower.once()  # the policies in force before the first placement
    except Exception as exc:  # the built-in ones until the hub answers
        logger.warning("policies not read at start: %s", exc)
    controller.tasks.append(asyncio.create_task(follower.run(), name="policies"))
    controller.tasks.append(asyncio.create_task(heap.trim_every(), name="heap-trim"))
    set_runtime(runtime)
    if not OPTIONS.peering:  # peered: while it leads (handlers/jobfeed.py)
        runtime.feed.start()
    metrics.serve(OPTIONS.metrics_port)
    CLOCK.note("started")
    logger.info("computegrid operator started with %s", OPTIONS)


@kopf.on.cleanup()
async def cleanup(**_: Any) -> None:
    runtime = get_runtime()
    runtime.feed.stop()
    await runtime.placer.stop()
    await runtime.controller.stop()
    await runtime.writer.stop()
    runtime.fleet.close()
    set_runtime(None)


@kopf.on.login()
def login(**kwargs: Any) -> Any:
    """The hub only: the service account in a pod, else the kubeconfig (never the members')."""
    return kopf.login_with_service_account(**kwargs) or kopf.login_with_kubeconfig(**kwargs)


@kopf.daemon(*MC, cancellation_timeout=5.0)
async def membercluster_daemon(
    body: kopf.Body, name: str, uid: str, stopped: Any, **_: Any
) -> None:
    runtime = get_runtime()
    if OPTIONS.peering:  # Kopf runs daemons only while this replica leads
        runtime.feed.hold()
    try:
        await run_member(runtime, name, body, uid, stopped)
    finally:
        if OPTIONS.peering:
            runtime.feed.release()


@kopf.on.delete(*MC)
async def delete_membercluster(name: str, **_: Any) -> None:
    await handle_delete_membercluster(get_runtime(), name)


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
    if not verbose:
        # Kopf logs every handled event at INFO ("Handler ... succeeded"): one line per watch
        # event is noise at thousands of jobs. Its warnings and errors still show; the
        # operator's own lines (decisions, member health) are on the computegrid.* loggers.
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
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


CLOCK.note("imported")
