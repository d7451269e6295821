"""The scheduling policy and the pod policy, read from their ConfigMaps at start and every
``POLL_S`` seconds.

Why poll: each is one object in the release namespace, and the chart grants the operator
``get`` on exactly those (RBAC ``resourceNames``); a watch would need list and watch on every
ConfigMap there. One GET per ConfigMap per half minute costs nothing and is never per job.
A bad policy is refused with the reason (naming the plugin or key) and the old one is kept.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any

from pydantic import ValidationError

from computegrid.api import PodPolicy
from computegrid.fleet_data.policy_file import POLICY_KEY, PolicyKeeper
from computegrid.handlers.runtime import Runtime
from computegrid.scheduling import Scheduler

POLL_S = 30.0
SCHEDULING_ENV = "COMPUTEGRID_POLICY_CONFIGMAP"
POD_ENV = "COMPUTEGRID_POD_POLICY_CONFIGMAP"
log = logging.getLogger("computegrid.policy")


def _ref(env: str) -> tuple[str, str] | None:
    value = os.environ.get(env, "").strip()
    if not value:
        return None
    namespace, _, name = value.partition("/")
    if not namespace or not name:
        log.error("%s=%r: expected namespace/name; ignored", env, value)
        return None
    return namespace, name


class PolicyFollower:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.scheduling = _ref(SCHEDULING_ENV)
        self.pod = _ref(POD_ENV)
        self.keeper = PolicyKeeper(rt.placer.scheduler.policy)
        self.pod_policy: PodPolicy | None = None
        self.errors: dict[str, str] = {}

    async def _read(self, ref: tuple[str, str]) -> dict[str, Any] | None:
        hub = self.rt.fleet.hub
        if hub is None:
            return None
        data: dict[str, Any] | None = await self.rt.writer.call(
            hub.read_configmap, ref[0], ref[1], kind="read"
        )
        return data

    def _refuse(self, what: str, error: str) -> None:
        if self.errors.get(what) != error:
            log.warning("%s refused, the previous one stays: %s", what, error)
        self.errors[what] = error

    def _changed(self) -> None:
        """Jobs refused under the old policy deserve another look."""
        self.rt.fleet.generation += 1
        self.rt.placer.wake.set()

    async def once(self) -> None:
        if self.scheduling is not None:
            data = await self._read(self.scheduling)
            text = None if data is None else data.get(POLICY_KEY)
            outcome = self.keeper.offer(text, "/".join(self.scheduling))
            if outcome.error:
                self._refuse("scheduling policy", outcome.error)
            elif outcome.changed:
                self.errors.pop("scheduling policy", None)
                self.rt.placer.scheduler = Scheduler(outcome.policy)
                log.info("scheduling policy from %s in force", "/".join(self.scheduling))
                self._changed()
        if self.pod is not None:
            data = await self._read(self.pod)
            try:
                policy = PodPolicy.from_configmap_data(data or {})
            except (ValueError, ValidationError) as exc:
                self._refuse("pod policy", str(exc).splitlines()[0])
                return
            if policy != self.pod_policy:
                self.errors.pop("pod policy", None)
                self.pod_policy = policy
                self.rt.controller.pod_policy = policy
                for entry in self.rt.controller.jobs.values():
                    entry.forget_request()
                log.info("pod policy from %s in force", "/".join(self.pod))
                self._changed()

    async def run(self) -> None:
        while True:
            try:
                await self.once()
            except Exception as exc:  # the hub is slow or down: keep what is in force
                log.warning("policies not read: %s", exc)
            await asyncio.sleep(POLL_S)
