"""The load harness's own arithmetic: /proc sampling, apiserver counters, percentiles."""

from __future__ import annotations

import os
import time
from collections import Counter
from pathlib import Path

import pytest
from tests.tools.loadrun import hub_writes, main, percentile, proc_sample, requests_by_resource


def test_proc_sample_reads_rss_and_cpu_of_this_process() -> None:
    rss, hwm, cpu = proc_sample(os.getpid())
    deadline = time.process_time() + 0.3
    while time.process_time() < deadline:  # burn a little CPU: the counter must move
        pass
    assert 0 < rss <= hwm * 2  # RSS of the tree; the high-water mark of this process
    assert proc_sample(os.getpid())[2] >= cpu + 0.2


def test_hub_writes_split_computejobs_by_subresource_and_count_events() -> None:
    before = Counter({("computejobs", "", "POST", "201"): 5})
    after = Counter(
        {
            ("computejobs", "", "POST", "201"): 15,
            ("computejobs", "status", "PATCH", "200"): 20,
            ("computejobs", "status", "PATCH", "504"): 3,
            ("computejobs", "", "LIST", "200"): 99,  # a read: not a write
            ("events", "", "POST", "201"): 7,
            ("pods", "", "POST", "201"): 4,  # not the hub's ComputeJob traffic
        }
    )
    assert hub_writes(before, after) == {
        "computejobs POST": 10,
        "computejobs errors 504": 3,
        "computejobs/status PATCH": 23,
        "events POST": 7,
    }
    assert requests_by_resource(before, after)["LIST computejobs"] == 99
    heartbeat = Counter({("leases", "", "PUT", "200"): 30})
    assert requests_by_resource(Counter(), heartbeat) == {}


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.5) == 51.0
    assert percentile(values, 0.99) == 99.0
    assert percentile([], 0.5) is None


def test_cli_names_the_bad_field(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fleet = tmp_path / "fleet.json"
    fleet.write_text("{}")
    with pytest.raises(SystemExit):
        main(["--fleet", str(fleet), "--jobs", "0"])
    assert "--jobs: must be at least 1" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--fleet", str(tmp_path / "none.json")])
    assert "--fleet: no such file" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--fleet", str(fleet), "--rate", "-1"])
    assert "--rate: must be 0 or more" in capsys.readouterr().err
