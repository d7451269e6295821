"""``computegrid sim``: bad input is one line and exit 2; --json has the issue's shape."""

from __future__ import annotations

import json
import os

import pytest

from computegrid.cli import main


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--jobs", "0"], "--jobs and --seeds must be at least 1"),
        (["--fleet", "mars"], "mars: no such file"),
        (["--trace", "/no/such/trace.csv"], "not 'synthetic' and no such file"),
        (["--policies", "nearest,teleport"], "unknown teleport"),
        (["--util", "1.5"], "--util must be in (0, 1]"),
        (["--scale", "0"], "--scale must be at least 1"),
        (["--bound-milp-time-limit", "0"], "--bound-milp-time-limit must be above 0"),
        (["--bound-instants", "-1"], "--bound-instants must be 0 or more"),
        (["--policies", "computegrid-priced"], "computegrid-priced needs --prices FILE"),
        (
            ["--policies", "computegrid-priced", "--prices", "/no/prices.json"],
            "--prices /no/prices.json: No such file",
        ),
    ],
)
def test_bad_input_is_one_line_and_exit_2(capsys, argv, message):
    assert main(["sim", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("computegrid sim: error: ")
    assert message in err
    assert "\n" not in err


def test_a_bad_policy_file_names_the_field(tmp_path, capsys):
    path = tmp_path / "policy.yaml"
    path.write_text("weights:\n  low: {Carbon: 1}\n", encoding="utf-8")
    assert main(["sim", "--policy-file", str(path), "--jobs", "10", "--seeds", "1"]) == 2
    assert "policy.yaml" in capsys.readouterr().err


def test_json_has_the_shape_of_the_issue(capsys):
    code = main(["sim", "--jobs", "60", "--seeds", "2", "--days", "0.5", "--json", "--quiet"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out["policies"]) == {
        "computegrid", "computegrid-timed", "computegrid-timed-joint", "nearest",
        "round-robin", "random", "least-loaded", "always-west", "greedy-carbon",
    }  # fmt: skip
    # the operator's policy is measured against starting every job now, like the per-job one
    assert set(out["vs_start_now"]) == {"computegrid-timed", "computegrid-timed-joint"}
    for m in out["policies"].values():
        for key in ("carbon_t", "cost_cny", "latency_violations", "overcommits",
                    "mean_wait_s", "ratio_to_bound", "captured_savings"):  # fmt: skip
            assert isinstance(m[key], (int, float)), key
        assert m["ratio_to_bound"] > 0
    assert out["lower_bound"]["carbon_t"] > 0
    assert out["lower_bound"]["method"] == "lp" and "milp" not in out["lower_bound"]
    assert "ratio_to_lp_bound" not in out["policies"]["computegrid"]
    assert out["policies"]["nearest"]["savings_vs_nearest"] == 0
    assert out["policies"]["computegrid"]["latency_violations"] == 0
    assert out["study"]["seeds"] == [0, 1]


def test_report_writes_markdown_and_four_plots(tmp_path, capsys):
    out = tmp_path / "report"
    code = main(["sim", "--jobs", "60", "--seeds", "2", "--days", "0.5", "--quiet",
                 "--policies", "computegrid,always-west", "--report", str(out)])  # fmt: skip
    assert code == 0
    table = capsys.readouterr().out
    assert table.splitlines()[0].startswith("policy")
    assert "nearest" in table  # added: savings are measured against it
    text = (out / "report.md").read_text(encoding="utf-8")
    assert "| computegrid |" in text and "lower bound (lp)" in text
    for png in ("carbon_by_policy", "placement_map", "hourly_carbon", "pareto"):
        data = (out / f"{png}.png").read_bytes()
        assert data.startswith(b"\x89PNG") and len(data) > 5000


def bound_study(tmp_path, capsys, *bound_args: str) -> tuple[dict, str]:
    """A two-seed study with these bound options: its JSON summary and its report.md."""
    out = tmp_path / "report"
    code = main(["sim", "--jobs", "60", "--seeds", "2", "--days", "0.5", "--json", "--quiet",
                 "--policies", "computegrid,nearest", *bound_args, "--report",
                 str(out)])  # fmt: skip
    assert code == 0
    return json.loads(capsys.readouterr().out), (out / "report.md").read_text(encoding="utf-8")


def assert_bound_is_the_larger(summary: dict, other: list[float]) -> None:
    """Seed by seed the reported bound is the larger of the LP and the other valid bound,
    never below the LP; the ratios use it."""
    bound = summary["lower_bound"]
    for carbon, lp, tight in zip(bound["per_seed"], bound["lp_per_seed"], other, strict=True):
        assert carbon == pytest.approx(max(lp, tight))
        assert lp <= tight * (1 + 1e-6)
    cg = summary["policies"]["computegrid"]
    assert cg["ratio_to_bound"] <= cg["ratio_to_lp_bound"] * (1 + 1e-6)


def test_a_mixed_integer_bound_states_its_dual_bound_incumbent_and_gap(tmp_path, capsys):
    summary, report = bound_study(tmp_path, capsys, "--bound-integral", "gpu")
    bound = summary["lower_bound"]
    assert bound["method"] == "milp-gpu"
    milp = bound["milp"]
    assert milp["integral"] == "gpu"
    for key in ("dual_bound_t", "incumbent_t", "gap", "solve_s", "status", "integral_jobs"):
        assert len(milp[key]) == 2, key
    assert_bound_is_the_larger(summary, milp["dual_bound_t"])
    assert "MILP's dual bound" in report


def test_capacity_at_instants_tightens_the_bound_the_ratios_use(tmp_path, capsys):
    summary, report = bound_study(tmp_path, capsys, "--bound-instants", "5")
    bound = summary["lower_bound"]
    assert bound["method"] == "lp+instants"
    assert_bound_is_the_larger(summary, bound["instants"]["carbon_t"])
    assert "held at the instants" in report


def test_native_writes_to_stdout_go_to_stderr_while_the_study_runs(capfd):
    # HiGHS' MILP prints to the process's stdout (fd 1) whatever its display option says;
    # `--json` promises one object on stdout, so the study runs with fd 1 sent to stderr.
    from computegrid.cli.sim import solver_chatter_to_stderr

    with solver_chatter_to_stderr():
        os.write(1, b"HighsMipSolverData::chatter\n")
    os.write(1, b"{}\n")
    captured = capfd.readouterr()
    assert captured.out == "{}\n"
    assert "HighsMipSolverData::chatter" in captured.err
