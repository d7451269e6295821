"""How long a (re)start took to place its first job, step by step (issue 12: within 10 s).

Each step is noted once, in seconds since the process started (the kernel's start time, so
the interpreter's start and the imports count too), exported as the gauge
``computegrid_startup_seconds{step}``, and the whole timeline is logged on one line when the
first member Job exists: the figure a restart is judged by, and the order of its steps (no
placement before every member's first probe and Job list) for a test to check.
"""

from __future__ import annotations

import logging
import os
import time

from computegrid.handlers import metrics

log = logging.getLogger("computegrid.startup")

# The steps in the order a healthy start takes them.
STEPS = (
    "imported",  # the handlers are imported: Python and every module it needs
    "started",  # Kopf's startup handler done: hub client, controller, policies
    "first_job_seen",  # the hub's ComputeJob watch delivered its first job (Kopf's listing)
    "first_waiting",  # a job reached the placer (listed by the hub's watch, its step: place)
    "members_probed",  # every MemberCluster listed at start probed once (well or not)
    "members_synced",  # every one of their Job watches listed
    "members_known",  # placement may begin (probed and synced, or the member is unusable)
    "first_decision",  # the placer chose a cluster for a job
    "first_member_job",  # that Job exists on its member
)


def process_age() -> float:
    """Seconds since this process started, from /proc (boot-time clock, 10 ms ticks);
    since this module's import where /proc is not there."""
    try:
        with open("/proc/self/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        started = int(fields[19]) / os.sysconf("SC_CLK_TCK")  # field 22: starttime
        return time.clock_gettime(time.CLOCK_BOOTTIME) - started
    except (OSError, ValueError, IndexError, AttributeError):
        return time.monotonic() - _IMPORTED


_IMPORTED = time.monotonic()


class StartClock:
    """The steps of this process's start, each noted once."""

    def __init__(self) -> None:
        self.at: dict[str, float] = {}
        self.members: dict[str, dict[str, float]] = {}  # member → {"probed"|"synced": s}

    def note(self, step: str) -> None:
        if step in self.at:
            return
        self.at[step] = round(process_age(), 3)
        metrics.STARTUP_SECONDS.labels(step=step).set(self.at[step])
        if step == "first_member_job":
            log.info(
                "first member Job %s s after process start (%.2f CPU-s): %s",
                self.at[step],
                time.process_time(),
                self.line(),
            )

    def member(self, name: str, what: str) -> None:
        """A member's first probe ("probed") or first Job list ("synced")."""
        seen = self.members.setdefault(name, {})
        if what not in seen:
            seen[what] = round(process_age(), 3)

    def line(self) -> str:
        steps = " ".join(f"{s}={self.at[s]}" for s in STEPS if s in self.at)
        members = " ".join(
            f"{n}:probed={m.get('probed')},synced={m.get('synced')}"
            for n, m in sorted(self.members.items())
        )
        return f"{steps} | {members}" if members else steps


CLOCK = StartClock()
