"""Kopf calls every handler that touches the controller on the event loop."""

from __future__ import annotations

import inspect

import kopf

from computegrid.handlers import operator


def test_every_resource_handler_is_a_coroutine() -> None:
    """Kopf runs a plain function in its thread pool: there the ComputeJob handler touched the
    controller's asyncio queue from another thread (not thread-safe). Only the login, which
    touches nothing of ours, may be plain."""
    registry = kopf.get_default_registry()
    handlers = [
        h
        for resource_registry in (registry._watching, registry._spawning, registry._changing)
        for h in resource_registry.get_all_handlers()
    ]
    ours = {h.fn.__name__: h.fn for h in handlers if h.fn.__module__ == operator.__name__}
    assert {"computejob_event", "membercluster_daemon", "delete_membercluster"} <= set(ours)
    plain = sorted(name for name, fn in ours.items() if not inspect.iscoroutinefunction(fn))
    assert plain == [], f"handlers Kopf would run in a thread: {plain}"
