"""The restart harness reads what the operator's start clock writes (handlers/startclock.py →
tests/tools/restartrun.py): the same steps, in the same order, from a real JSON log line."""

from __future__ import annotations

import itertools
import json
import logging
from pathlib import Path

import pytest
from tests.tools.restartrun import median_steps, steps_of, summarize

from computegrid.handlers.startclock import STEPS, StartClock


def test_the_harness_reads_the_line_the_clock_logs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock = StartClock()
    with caplog.at_level(logging.INFO, logger="computegrid.startup"):
        clock.member("tianfu", "probed")
        clock.member("tianfu", "synced")
        for step in STEPS:
            clock.note(step)
        clock.note("first_member_job")  # noted once: no second line
    lines = [r.getMessage() for r in caplog.records if r.name == "computegrid.startup"]
    assert len(lines) == 1
    log = tmp_path / "operator.log"
    log.write_text(
        "not json\n" + json.dumps({"message": lines[0], "severity": "info"}) + "\n",
        encoding="utf-8",
    )
    steps = steps_of(log)
    assert steps is not None
    assert [s for s in steps if s in STEPS] == list(STEPS)
    assert all(steps[a] <= steps[b] for a, b in itertools.pairwise(STEPS))
    assert steps["first_member_job"] == clock.at["first_member_job"]
    assert steps["cpu_s"] > 0
    assert steps["members"].startswith("tianfu:probed=")


def test_an_older_build_gives_no_steps(tmp_path: Path) -> None:
    log = tmp_path / "old.log"
    log.write_text(json.dumps({"message": "Scheduled: placed on x"}) + "\n", encoding="utf-8")
    assert steps_of(log) is None
    assert steps_of(tmp_path / "missing.log") is None


def test_summaries() -> None:
    assert summarize([3.0, 1.0, 2.0]) == {
        "n": 3, "median": 2.0, "max": 3.0, "min": 1.0, "all": [3.0, 1.0, 2.0]
    }  # fmt: skip
    assert median_steps([{"a": 1.0, "b": 4.0}, {"a": 3.0, "b": 2.0, "members": "x"}]) == {
        "a": 2.0,
        "b": 3.0,
    }
