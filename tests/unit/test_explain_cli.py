"""``computegrid explain`` as a user runs it: real samples, bad input, hostile YAML."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from computegrid.cli import main

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "deploy" / "samples"


def explain_json(path: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> dict:  # type: ignore[type-arg]
    assert main(["explain", "-f", str(path), "-o", "json", *extra]) == 0
    out: dict = json.loads(capsys.readouterr().out)  # type: ignore[type-arg]
    return out


@pytest.mark.parametrize(
    ("sample", "cluster", "max_latency"),
    [
        ("autonomous-driving-beijing.yaml", "jingjinji-zhangjiakou", 5.0),
        ("securities-trading-shanghai.yaml", "yangtze-delta-wujiang", 5.0),
        ("llm-finetune-shanghai.yaml", "chengdu-chongqing-tianfu", None),
        ("video-render-guangzhou.yaml", "chengdu-chongqing-tianfu", None),
        ("analytics-chengdu.yaml", "chengdu-chongqing-tianfu", 20.0),
        ("climate-hpc-hangzhou.yaml", "chengdu-chongqing-tianfu", None),
        ("backup-shenzhen-east-only.yaml", "greater-bay-shaoguan", None),
    ],
)
def test_samples_land_where_the_data_says(
    sample: str, cluster: str, max_latency: float | None, capsys: pytest.CaptureFixture[str]
) -> None:
    out = explain_json(SAMPLES / sample, capsys)
    placement = out["placement"]
    assert placement["cluster"] == cluster
    assert out["phase"] == "Scheduled"
    assert max_latency is None or placement["latencyMs"] <= max_latency
    assert {"hub", "region", "carbonIntensity", "pricePerKWh", "score"} <= placement.keys()
    assert len(out["clusters"]) == 10
    assert sum(c["verdict"] == "chosen" for c in out["clusters"]) == 1


def test_the_low_llm_job_goes_to_the_lowest_carbon_feasible_cluster(
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = explain_json(SAMPLES / "llm-finetune-shanghai.yaml", capsys)
    feasible = [c for c in out["clusters"] if c["verdict"] != "rejected"]
    greenest = min(feasible, key=lambda c: c["carbonIntensity"])
    assert out["placement"]["cluster"] == greenest["cluster"]
    assert greenest["cluster"] not in ("inner-mongolia-horinger", "ningxia-zhongwei")
    assert out["placement"]["carbonSavedGPerHour"] > 0


def test_the_unschedulable_sample_names_every_cluster(capsys: pytest.CaptureFixture[str]) -> None:
    out = explain_json(SAMPLES / "telemedicine-urumqi.yaml", capsys)
    assert out["phase"] == "Pending" and out["placement"] is None
    assert out["diagnosis"].startswith("0/10 clusters can take the job")
    assert all(c["filter"] and c["reason"] for c in out["clusters"])


def test_a_folder_gives_one_report_per_job(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", "-f", str(SAMPLES), "-o", "json"]) == 0
    reports = json.loads(capsys.readouterr().out)
    assert len(reports) == len(list(SAMPLES.glob("*.yaml")))


def test_table_output(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", "-f", str(SAMPLES / "analytics-chengdu.yaml")]) == 0
    text = capsys.readouterr().out
    assert "→ chengdu-chongqing-tianfu" in text
    assert "LatencyBudget: RTT 22.3 ms from chengdu exceeds the medium budget of 20 ms" in text


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "job.yaml"
    path.write_text(text, encoding="utf-8")
    return path


GOOD = (SAMPLES / "llm-finetune-shanghai.yaml").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (GOOD.replace("parallelism: 2", "parallelism: 2\n  gpus: 4"), "spec.gpus: Extra inputs"),
        (
            GOOD.replace('cpu: "8"', 'cpu: "8 cores"'),
            "spec.resources.cpu: '8 cores' is not a quantity",
        ),
        (GOOD.replace("origin: shanghai", "origin: atlantis"), "unknown city 'atlantis'"),
        (GOOD.replace("sensitivity: low", "sensitivity: urgent"), "'urgent' is not one of"),
        (
            GOOD.replace("kind: ComputeJob", "kind: Deployment"),
            "kind: expected ComputeJob, got 'Deployment'",
        ),
        ("", "no YAML document"),
        ("spec: [unclosed", "malformed YAML at line 1"),
        ("- just\n- a list\n", "expected a ComputeJob object, got list"),
        (
            GOOD.replace("restartPolicy: Never", "restartPolicy: Never\n      hostNetwork: true"),
            "spec.template.spec.hostNetwork: baseline: the host's namespaces are refused",
        ),
        (
            GOOD.replace("Escalation: false", "Escalation: false\n            privileged: true"),
            "securityContext.privileged: baseline: must not be true (rule privileged)",
        ),
        (
            "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
            "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n",
            "YAML aliases (*name) are not accepted",
        ),
        ("[" * 5000, "job.yaml: "),
    ],
)
def test_bad_input_is_one_clear_line_and_exit_2(
    text: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["explain", "-f", str(write(tmp_path, text))])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1, err  # one line, no traceback
    assert message in err


def test_missing_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", "-f", "/nonexistent/job.yaml"]) == 2
    assert "no such file" in capsys.readouterr().err


def test_fleet_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(
        """
clusters:
- name: small-west
  hub: gansu
  region: west
  location: 庆阳
  power: {renewableShare: 0.4, carbonIntensity: 300, pricePerKWh: 0.3}
  nodes:
  - {name: gpu, computeType: intelligent, count: 2, allocatable: {cpu: "96", memory: 768Gi, nvidia.com/gpu: "8"}}
- name: down-east
  hub: yangtze-delta
  region: east
  location: shanghai
  ready: false
  power: {renewableShare: 0.2, carbonIntensity: 600, pricePerKWh: 0.6}
  nodes:
  - {name: gpu, computeType: intelligent, allocatable: {cpu: "96", memory: 768Gi, nvidia.com/gpu: "8"}}
""",
        encoding="utf-8",
    )
    out = explain_json(SAMPLES / "llm-finetune-shanghai.yaml", capsys, "--fleet", str(fleet))
    assert out["placement"]["cluster"] == "small-west"
    down = next(c for c in out["clusters"] if c["cluster"] == "down-east")
    assert down["filter"] == "ClusterReady"
    bad = tmp_path / "bad.yaml"
    bad.write_text("clusters:\n- name: x\n  hub: h\n  region: north\n", encoding="utf-8")
    assert (
        main(["explain", "-f", str(SAMPLES / "llm-finetune-shanghai.yaml"), "--fleet", str(bad)])
        == 2
    )
    assert "clusters.0.region" in capsys.readouterr().err


def test_console_script_runs() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "computegrid.cli",
            "explain",
            "-f",
            str(SAMPLES / "analytics-chengdu.yaml"),
            "-o",
            "yaml",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "cluster: chengdu-chongqing-tianfu" in done.stdout


WINDOWED = ROOT / "deploy" / "examples" / "render-with-deadline.yaml"


def test_a_windowed_job_gets_a_start_time_and_the_hours(capsys: pytest.CaptureFixture[str]) -> None:
    # The render from Beijing, medium class (≤ 20 ms), due 2026-04-04T06:00Z, 3 h: from
    # 09:00 Beijing on 3 April the Builtin forecast has Gansu's solar valley at 11:00.
    path = WINDOWED
    out = explain_json(path, capsys, "--now", "2026-04-03T01:00:00Z")
    timing = out["timing"]
    assert out["placement"]["cluster"] == "gansu-qingyang"
    assert timing["startAt"] == "2026-04-03T03:00:00Z" and timing["deferred"] is True
    assert timing["reasons"][0].startswith("start at 11:00 on gansu-qingyang:")
    hours = timing["hours"]
    assert hours[0]["startAt"] == "2026-04-03T01:00:00Z"  # now, then every hour
    # 3 h run due at 06:00Z on the 4th: the last candidate starts at 03:00Z.
    assert hours[-1]["startAt"] == "2026-04-04T03:00:00Z" and len(hours) == 27
    chosen = [h for h in hours if h["chosen"]]
    assert len(chosen) == 1 and chosen[0]["carbon"] == min(h["carbon"] for h in hours[:10])
    assert main(["explain", "-f", str(path), "--now", "2026-04-03T01:00:00Z"]) == 0
    table = capsys.readouterr().out
    assert "<- chosen" in table and "BEST CLUSTER" in table


def test_a_job_without_timing_has_no_timing(capsys: pytest.CaptureFixture[str]) -> None:
    out = explain_json(SAMPLES / "video-render-guangzhou.yaml", capsys)
    assert out["timing"] is None


def test_bad_now_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["explain", "-f", str(WINDOWED), "--now", "2026-04-03T01:00:00"])
    assert info.value.code == 2
    assert "no time zone" in capsys.readouterr().err


def with_data(tmp_path: Path, gib: float) -> Path:
    """The LLM fine-tune sample (Shanghai, 2 pods × 4 GPUs) with a dataset and a 10 h run."""
    text = (SAMPLES / "llm-finetune-shanghai.yaml").read_text()
    extra = (
        f"spec:\n  data: [{{location: 上海, sizeGiB: {gib}}}]\n"
        "  timing: {deadline: '2026-11-29T11:00:00Z', expectedDuration: 10h}\n"
    )
    path = tmp_path / f"data-{gib}.yaml"
    path.write_text(text.replace("spec:\n", extra, 1))
    return path


@pytest.mark.parametrize(
    ("gib", "cluster", "words"),
    [
        # 100 GiB: 54 CNY and 0.1 kg to move against 23 kg saved over the 10 h run → west.
        (100, "chengdu-chongqing-tianfu", "moves 100 GiB from shanghai: 1 min, 0.108 kgCO2e"),
        # 2 TiB: 1,100 CNY to move, more than the carbon saved is worth at the low weights →
        # the cluster in Shanghai's own hub, where moving costs no money.
        (2048, "yangtze-delta-wujiang", "moves 2 TiB from shanghai: 15 min, 2.21 kgCO2e, 0 CNY"),
    ],
)
def test_explain_shows_the_data_transfer(
    gib: float, cluster: str, words: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = with_data(tmp_path, gib)
    out = explain_json(path, capsys, "--now", "2026-11-29T00:00:00Z")
    assert out["placement"]["cluster"] == cluster
    assert out["dataGiB"] == gib
    chosen = next(c for c in out["clusters"] if c["verdict"] == "chosen")
    assert chosen["transfer"].startswith(words)
    assert any(words in r for r in out["placement"]["reasons"])
    assert main(["explain", "-f", str(path), "--now", "2026-11-29T00:00:00Z"]) == 0
    table = capsys.readouterr().out
    assert f"  data: {words}" in table and "  DATA " in table


def test_a_job_without_data_has_no_data_column(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", "-f", str(SAMPLES / "llm-finetune-shanghai.yaml")]) == 0
    table = capsys.readouterr().out
    assert " DATA " not in table and "data:" not in table


def without_window(tmp_path: Path) -> Path:
    """The render from Beijing (medium, ≤ 20 ms: Gansu in reach) with no spec.timing."""
    text = WINDOWED.read_text()
    start = text.index("  timing:\n")
    end = text.index("  template:\n")
    path = tmp_path / "render-now.yaml"
    path.write_text(text[:start] + text[end:])
    return path


@pytest.mark.parametrize(
    ("extra", "cluster", "first_reason"),
    [
        # The figures of now (the clusters' labels): Inner Mongolia, 6 ms away.
        ((), "inner-mongolia-horinger", "Latency"),
        # 11:00 in Beijing: a 3 h run fits Gansu's solar valley (the Builtin forecast) ...
        (("--expected-run", "3h"), "gansu-qingyang", "power figures averaged over an assumed run of 3.0 h"),
        # ... an 8 h one runs on into the evening: Inner Mongolia again.
        (("--expected-run", "8h"), "inner-mongolia-horinger", "power figures averaged over an assumed run of 8.0 h"),
    ],
)  # fmt: skip
def test_a_job_without_a_window_can_be_scored_over_an_expected_run(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    extra: tuple[str, ...],
    cluster: str,
    first_reason: str,
) -> None:
    path = without_window(tmp_path)
    out = explain_json(path, capsys, "--now", "2026-04-03T03:00:00Z", *extra)
    assert out["placement"]["cluster"] == cluster
    assert out["placement"]["reasons"][0].startswith(first_reason)
    assert out["timing"] is None


def test_an_expected_run_leaves_a_windowed_job_to_its_own_duration(
    capsys: pytest.CaptureFixture[str],
) -> None:
    plain = explain_json(WINDOWED, capsys, "--now", "2026-04-03T01:00:00Z")
    assumed = explain_json(
        WINDOWED, capsys, "--now", "2026-04-03T01:00:00Z", "--expected-run", "8h"
    )
    assert assumed == plain


def test_a_bad_expected_run_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["explain", "-f", str(WINDOWED), "--expected-run", "3 hours"])
    assert info.value.code == 2
    assert "'3 hours' is not a duration like 6h, 90m or 1h30m" in capsys.readouterr().err
