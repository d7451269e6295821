"""Kopf calls every handler that touches the controller on the event loop."""

from __future__ import annotations

import inspect

import kopf

from computegrid.handlers import operator


def test_every_resource_handler_is_a_coroutine() -> None:
    """Kopf runs a plain function in its thread pool: there a handler would touch the
    controller's asyncio queue from another thread (not thread-safe; it happened to the
    ComputeJob handler, which is now our own watch). Only the login, which touches nothing of
    ours, may be plain."""
    registry = kopf.get_default_registry()
    handlers = [
        h
        for resource_registry in (registry._watching, registry._spawning, registry._changing)
        for h in resource_registry.get_all_handlers()
    ]
    ours = {h.fn.__name__: h.fn for h in handlers if h.fn.__module__ == operator.__name__}
    assert {"membercluster_daemon", "delete_membercluster"} <= set(ours)
    plain = sorted(name for name, fn in ours.items() if not inspect.iscoroutinefunction(fn))
    assert plain == [], f"handlers Kopf would run in a thread: {plain}"


def test_kopf_does_not_watch_computejobs() -> None:
    """The hub's ComputeJobs are followed by ``handlers.jobfeed`` alone: a Kopf handler on
    them would bring back Kopf's per-event pipeline (and a second watch)."""
    registry = kopf.get_default_registry()
    plurals = {
        selector.plural or selector.any_name
        for resource_registry in (registry._watching, registry._spawning, registry._changing)
        for h in resource_registry.get_all_handlers()
        for selector in [h.selector]
        if selector is not None
    }
    assert "memberclusters" in plurals
    assert "computejobs" not in plurals
