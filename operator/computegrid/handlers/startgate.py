"""When a (re)started operator may place its first job: as soon as it knows every member.

Why wait at all: a member's running Jobs take room, and they are the copies the dispatch
checks before it creates one (exactly once, issue 12); a placement made before a member's
first probe and Job list could fill a member that is full, or miss a copy. Why not a fixed
wait: on a quiet machine every member is known in a second or two, and on a crowded one a
fixed wait both delays the first placement and, when it runs out, places before a slow but
healthy member is known.

So the gate opens when every MemberCluster listed at start has been probed and its Jobs
listed (or cannot be used at all: an invalid spec), and a Ready one's forecast read (flat
figures on a failed read): a job placed before that would be scored on the node labels' flat
figures while the member's own forecast is a ConfigMap read away. A member that answered and
is down (its probe failed, or its Job list failed) is waited for at most ``DOWN_WAIT_S`` from
the start: it may be down for a long time, and jobs that can go elsewhere should not wait for
it (nothing is placed on it, and a job recorded there is the state machine's to wait for). A
member that has not answered at all is in its first probe, bounded by the client's timeouts;
only ``LIMIT_S`` (a member that never starts) bounds that wait. The gate stays open once open.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from computegrid.fleet import MemberState

DOWN_WAIT_S = 10.0  # longest the first placement waits for a member that answered and is down
LIMIT_S = 120.0  # longest it waits for any member


@dataclass(frozen=True)
class Verdict:
    open: bool
    probed: bool  # every expected member was probed once (well or not), or is unusable
    synced: bool  # every expected member's Jobs are listed, or it is unusable
    why: str  # which members it waited for, when the gate opened without them


def judge(
    expected: set[str],
    members: Mapping[str, MemberState],
    unusable: set[str],
    waited_s: float,
) -> Verdict:
    """Whether placement may begin ``waited_s`` after the placer started."""
    unknown: list[str] = []
    down: list[str] = []
    silent: list[str] = []
    for name in sorted(expected - unusable):
        state = members.get(name)
        if state is not None and state.probed and state.synced and _forecast_known(state):
            continue
        unknown.append(name)
        answered_down = state is not None and (
            bool(state.watch_error) or (state.probed and not state.ready)
        )
        (down if answered_down else silent).append(name)
    probed = all(n in unusable or (n in members and members[n].probed) for n in expected)
    synced = all(n in unusable or (n in members and members[n].synced) for n in expected)
    if not unknown:
        return Verdict(True, probed, synced, "")
    if not silent and waited_s >= DOWN_WAIT_S:
        return Verdict(True, probed, synced, f"members down: {', '.join(down)}")
    if waited_s >= LIMIT_S:
        return Verdict(True, probed, synced, f"members not known: {', '.join(unknown)}")
    return Verdict(False, probed, synced, "")


def _forecast_known(state: MemberState) -> bool:
    """A Ready member's forecast was read once (handlers/members.py: after each probe that
    finds it Ready); a member that is not Ready is not placed on, so nothing waits for it."""
    return not state.ready or state.forecast is not None


@dataclass
class StartGate:
    """The placer's gate; ``judge`` decides, this remembers that it opened."""

    expected: set[str] | None = None  # MemberClusters listed at start (None: not yet listed)
    started: float = field(default_factory=time.monotonic)
    opened: bool = False

    def check(self, members: Mapping[str, MemberState], unusable: set[str]) -> Verdict:
        waited = time.monotonic() - self.started
        if self.expected is None:  # who to wait for is not known: only the limit opens it
            return Verdict(waited >= LIMIT_S, False, False, "the MemberClusters never listed")
        verdict = judge(self.expected, members, unusable, waited)
        self.opened = self.opened or verdict.open
        return verdict

    def next_deadline(self) -> float:
        """Seconds until the next bound may open the gate on its own."""
        waited = time.monotonic() - self.started
        for bound in (DOWN_WAIT_S, LIMIT_S):
            if waited < bound:
                return bound - waited
        return 0.0
