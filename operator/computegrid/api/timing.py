"""``ComputeJob.spec.timing``: when the work must be done and how long it runs.

A job with a window may be started later than its arrival, at a greener or cheaper hour,
as long as it can still finish by its deadline. The checks here are those that need no
clock: a positive duration, RFC 3339 times with a zone, ``notBefore`` before ``deadline``
and room for the duration between them. Whether ``deadline − expectedDuration`` is still
ahead is for the scheduling core, which is told what "now" is.
"""

from __future__ import annotations

import datetime as dt
import re

from pydantic import Field, field_validator, model_validator

from computegrid.api.common import ApiModel

# A Go/Kubernetes-style duration of hours, minutes and seconds: 6h, 90m, 1h30m, 2.5h.
DURATION_PATTERN = r"^([0-9]+(\.[0-9]+)?(h|m|s))+$"
_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(h|m|s)")
_UNIT_S = {"h": 3600.0, "m": 60.0, "s": 1.0}
MAX_DURATION_S = 7 * 86_400.0  # a week: far above any window the planner looks at (48 h)


def duration_seconds(text: str) -> float:
    """``1h30m`` → 5400.0; raises ValueError on anything else."""
    if not re.fullmatch(DURATION_PATTERN, text):
        raise ValueError(f"{text!r} is not a duration like 6h, 90m or 1h30m")
    return sum(float(n) * _UNIT_S[u] for n, u in _PART.findall(text))


def parse_time(text: str) -> dt.datetime:
    """An RFC 3339 time with a zone (``2026-11-30T06:00:00Z``); ValueError otherwise."""
    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValueError(f"{text!r} is not an RFC 3339 time like 2026-11-30T06:00:00Z") from None
    if when.tzinfo is None:
        raise ValueError(f"{text!r} has no time zone (add Z or +08:00)")
    return when


class Timing(ApiModel):
    """The job's window: done by ``deadline``, running about ``expectedDuration``.

    Latency-critical (``high``) jobs and jobs without a window start as soon as placed.
    """

    deadline: str = Field(
        json_schema_extra={"format": "date-time"},
        description="RFC 3339 time by which the job must have finished.",
    )
    expected_duration: str = Field(
        pattern=DURATION_PATTERN,
        description="How long the job runs once started: 6h, 90m, 1h30m.",
    )
    not_before: str | None = Field(
        default=None,
        json_schema_extra={"format": "date-time"},
        description="RFC 3339 time before which the job must not start (optional).",
    )

    @field_validator("deadline", "not_before")
    @classmethod
    def _rfc3339(cls, value: str | None) -> str | None:
        if value is not None:
            parse_time(value)
        return value

    @field_validator("expected_duration")
    @classmethod
    def _positive(cls, value: str) -> str:
        seconds = duration_seconds(value)
        if seconds <= 0:
            raise ValueError(f"{value!r} must be longer than 0")
        if seconds > MAX_DURATION_S:
            raise ValueError(f"{value!r} is longer than a week")
        return value

    @model_validator(mode="after")
    def _fits(self) -> Timing:
        if self.not_before is not None:
            room = parse_time(self.deadline) - parse_time(self.not_before)
            if room.total_seconds() < self.duration_s:
                raise ValueError(
                    f"notBefore {self.not_before} leaves {room.total_seconds() / 3600:g} h "
                    f"before the deadline, less than expectedDuration {self.expected_duration}"
                )
        return self

    @property
    def duration_s(self) -> float:
        return duration_seconds(self.expected_duration)

    @property
    def deadline_s(self) -> float:
        return parse_time(self.deadline).timestamp()

    @property
    def not_before_s(self) -> float | None:
        return None if self.not_before is None else parse_time(self.not_before).timestamp()
