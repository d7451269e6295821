"""The life of a ComputeJob after placement, pure: the dispatch state machine and mirroring.

A layer of its own, below ``fleet`` and ``dispatch`` and above the scheduling core, because
both the fleet (which keeps the members' Job copies) and the handlers read its types, and it
must stay free of I/O so its transitions can be tested table by table.
"""

from computegrid.lifecycle import machine
from computegrid.lifecycle.machine import (
    FINISHED,
    Action,
    Copy,
    Do,
    Health,
    Member,
    Room,
    Situation,
    Step,
)
from computegrid.lifecycle.mirror import Mirrored, copy_of, mirror

__all__ = [
    "FINISHED",
    "Action",
    "Copy",
    "Do",
    "Health",
    "Member",
    "Mirrored",
    "Room",
    "Situation",
    "Step",
    "copy_of",
    "machine",
    "mirror",
]
