"""The benchmark runner: targets with the median of repeats, load average, --check, closed client sessions."""

import json
import subprocess
import sys

import pytest

from harness.tools import bench


def fixed_scenario(values):
    """A scenario whose successive runs report ``values`` for a target of <= 1.2 (no server, no waits)."""
    runs = iter(values)

    def scenario(size):
        return {"config": {}, "figures": {"ratio": next(runs), "other": 7}, "targets": {"ratio": ["<=", 1.2]}}

    return scenario


def test_targets_report_the_median_of_the_repeats_and_the_load(tmp_path):
    code = bench.main(
        ["demo", "--repeats", "3", "--load", "0", "--out", str(tmp_path)], scenarios={"demo": fixed_scenario([1.0, 9.0, 1.1])}
    )
    assert code == 0  # without --check a miss is reported, not an exit status
    result = json.loads((tmp_path / "demo.json").read_text())
    target = result["targets"]["ratio"]
    assert target["runs"] == [1.0, 9.0, 1.1] and target["measured"] == 1.1 and target["met"] is True
    assert len(result["load_average_1m"]) == 3 and all("start" in load and "end" in load for load in result["load_average_1m"])
    assert "date" not in result and str(tmp_path) not in (tmp_path / "demo.md").read_text().split("Command:")[0]


def test_check_exits_non_zero_with_one_error_line_naming_the_missed_target(tmp_path, capsys):
    scenarios = {"fast": fixed_scenario([1.0]), "slow": fixed_scenario([1.5])}
    assert bench.main(["--repeats", "1", "--load", "0", "--out", str(tmp_path)], scenarios=scenarios) == 0
    capsys.readouterr()
    code = bench.main(
        ["--repeats", "1", "--load", "0", "--out", str(tmp_path), "--check"],
        scenarios={"fast": fixed_scenario([1.0]), "slow": fixed_scenario([1.5])},
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert len(err) == 1 and err[0].startswith("error: ") and "slow.ratio = 1.5" in err[0] and "fast" not in err[0]
    assert json.loads((tmp_path / "slow.json").read_text())["targets"]["ratio"]["met"] is False


def test_check_passes_when_every_target_is_met(tmp_path):
    assert (
        bench.main(
            ["--load", "0", "--repeats", "2", "--out", str(tmp_path), "--check"], scenarios={"ok": fixed_scenario([1.0, 1.1])}
        )
        == 0
    )


def test_a_target_per_key_of_a_figure_is_missed_when_any_key_misses():
    runs = [{"figures": {"r": {"8": 1.0, "128": 1.3}}, "targets": {"r": ["<=", 1.2]}}]
    targets = bench.evaluate_targets(runs)
    assert targets["r"]["met"] is False
    assert bench.missed_targets("s", targets) == ["s.r[128] = 1.3 (target <= 1.2)"]


def test_generated_load_is_described_in_the_report():
    with bench.generated_load(1) as note:
        assert note.startswith("1 busy process")
    with bench.generated_load(0) as note:
        assert note == "none"


@pytest.mark.slow
def test_benchmark_closes_its_client_sessions(tmp_path):
    """No 'Unclosed client session' warning from aiohttp (each scenario closes its clients)."""
    run = subprocess.run(
        [
            sys.executable,
            "-W",
            "always",
            "-m",
            "harness.tools.bench",
            "grading_cost",
            "throughput",
            "client_overhead",
            "--small",
            "--load",
            "0",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr
    assert "nclosed" not in run.stderr and "nclosed" not in run.stdout


def test_readme_table_lists_every_target_with_its_load(tmp_path, capsys):
    bench.main(["miss", "--repeats", "2", "--load", "0", "--out", str(tmp_path)], scenarios={"miss": fixed_scenario([1.4, 1.6])})
    capsys.readouterr()
    assert bench.main(["--table", "--out", str(tmp_path)]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("| [miss]"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[1:6] == ["ratio", "<= 1.2", "1.5", "**no**", "2"]
