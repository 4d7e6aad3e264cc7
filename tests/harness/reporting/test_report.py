"""Pareto reports from fixture Inspect logs (mockllm) plus hand-made leaderboard files."""

import json

import pytest
from inspect_ai import Task
from inspect_ai import eval as inspect_eval
from inspect_ai.dataset import MemoryDataset, Sample
from inspect_ai.scorer import includes
from inspect_ai.solver import generate
from PIL import Image

from harness.errors import ArgumentError
from harness.evals.logs import results_table
from harness.reporting.leaderboard import MODEL_COLUMNS, PUBLISHED_COLUMNS, load_own_runs
from harness.reporting.report import build, write_index, write_pareto
from harness.tools.report import main
from tests.helpers.scripted import mock_model

PUBLISHED = [
    "tiny-1b,healthbench_hard,hard,20,paper A,Table 1,2025-01-01,",
    "mid-10b,healthbench_hard,hard,40,paper A,Table 1,2025-01-01,",
    "moe-100b,healthbench_hard,hard,35,paper B,Fig 2,2025-02,",
    "closed-x,healthbench_hard,hard,50,paper B,Fig 2,2025-02,",
    "mid-10b,medqa,test,70,paper C,Table 3,2025-03,",
]
MODELS = [
    "tiny-1b,,dense,1,,card,",
    "mid-10b,,dense,10,,card,",
    "moe-100b,,moe,100,5,card,",
    "closed-x,,unknown,,,card,",
]


@pytest.fixture
def boards(tmp_path):
    folder = tmp_path / "leaderboards"
    folder.mkdir()
    (folder / "published.csv").write_text("\n".join([",".join(PUBLISHED_COLUMNS), *PUBLISHED]) + "\n")
    (folder / "models.csv").write_text("\n".join([",".join(MODEL_COLUMNS), *MODELS]) + "\n")
    return folder


def register(folder, row):
    with (folder / "models.csv").open("a") as handle:
        handle.write(row + "\n")


@pytest.fixture(scope="module")
def logs(tmp_path_factory):
    """A real Inspect log: 3 of 4 answers right (accuracy 0.75), task metadata benchmark=healthbench_hard."""
    folder = tmp_path_factory.mktemp("logs")
    samples = [Sample(input=f"question {i}", target="yes" if i < 3 else "no") for i in range(4)]
    task = Task(
        dataset=MemoryDataset(samples, name="fixture"),
        solver=generate(),
        scorer=includes(),
        metadata={"benchmark": "healthbench_hard", "subset": "hard"},
    )
    log = inspect_eval(task, model=mock_model(lambda prompt: "yes"), log_dir=str(folder), display="none")[0]
    assert log.status == "success"
    return folder


def test_frontier_and_rows_with_an_own_run(boards, logs):
    register(boards, "mock-small,mockllm/model,dense,0.135,,test registry,")
    report = build("healthbench_hard", "total", results_table([logs]), leaderboards=boards)
    table = report.points.set_index("model")
    assert list(report.points.model) == ["mockllm/model", "tiny-1b", "mid-10b", "moe-100b"]  # sorted by params
    assert table.loc["mockllm/model", "origin"] == "own"
    assert table.loc["mockllm/model", "score"] == pytest.approx(75.0)
    assert table.loc["mockllm/model", "params_b"] == pytest.approx(0.135)
    assert table.loc["mockllm/model", "n"] == 4
    # own run (0.135B, 75) dominates everything smaller-or-equal in score
    assert list(report.points.model[report.points.on_frontier]) == ["mockllm/model"]
    assert list(report.unknown.model) == ["closed-x"]
    assert any("closed-x" in m and "not public" in m for m in report.messages)


def test_active_params_use_the_moe_active_count(boards):
    report = build("healthbench_hard", "active", leaderboards=boards, own_runs=boards / "none.csv")
    table = report.points.set_index("model")
    assert table.loc["moe-100b", "params_b"] == 5
    assert list(report.points.model[report.points.on_frontier]) == ["tiny-1b", "moe-100b", "mid-10b"]
    total = build("healthbench_hard", "total", leaderboards=boards, own_runs=boards / "none.csv")
    assert list(total.points.model[total.points.on_frontier]) == ["tiny-1b", "mid-10b"]


def test_png_and_table_are_written(boards, logs, tmp_path):
    register(boards, "mock-small,mockllm/model,dense,0.135,,test registry,")
    out = tmp_path / "reports"
    png, md = write_pareto(build("healthbench_hard", "total", results_table([logs]), leaderboards=boards), out)
    assert png == out / "healthbench_hard_pareto.png" and md == out / "healthbench_hard_pareto.md"
    assert png.stat().st_size > 20_000
    with Image.open(png) as image:
        assert image.size == (1500, 975)
    text = md.read_text()
    rows = [line for line in text.splitlines() if line.startswith("| ") and not line.startswith("| model")]
    assert [r.split(" | ")[0].strip("| ") for r in rows] == ["mockllm/model", "tiny-1b", "mid-10b", "moe-100b", "closed-x"]
    assert "| mockllm/model | own | hard | 0.135 | 0.135 | 75.0 |" in text
    assert "| closed-x | published | hard | 50.0 | paper B, Fig 2 |" in text
    assert "(healthbench_hard_pareto.png)" in text


def test_missing_parameter_count_gives_a_clear_message(boards, logs, tmp_path):
    report = build("healthbench_hard", "total", results_table([logs]), leaderboards=boards)
    assert "mockllm/model" in set(report.unknown.model)
    assert "mockllm/model" not in set(report.points.model)
    message = next(m for m in report.messages if m.startswith("mockllm/model"))
    assert "no parameter count" in message and "models.csv" in message
    _, md = write_pareto(report, tmp_path)
    assert "## Parameter count unknown (listed, not plotted)" in md.read_text()
    assert "| mockllm/model | own | hard | 75.0 |" in md.read_text()


def test_unknown_benchmark_and_param_kind_are_argument_errors(boards):
    with pytest.raises(ArgumentError, match="benchmark='nope'.*healthbench_hard, medqa"):
        build("nope", leaderboards=boards, own_runs=boards / "none.csv")
    with pytest.raises(ArgumentError, match="params="):
        build("medqa", "gpu", leaderboards=boards)


def test_cli_adds_runs_once_writes_charts_and_index(boards, logs, tmp_path, capsys):
    own = tmp_path / "own_runs.csv"
    out = tmp_path / "reports"
    for _ in range(2):  # the same log twice: deduplicated by (model, benchmark, subset, log)
        assert main(["add-runs", "--logs", str(logs), "--own-runs", str(own)]) == 0
    assert len(load_own_runs(own)) == 1
    args = [
        "pareto",
        "--benchmark",
        "healthbench_hard",
        "medqa",
        "--own-runs",
        str(own),
        "--leaderboards",
        str(boards),
        "--out",
        str(out),
    ]
    assert main(args) == 0
    assert main(args[:-2] + ["--params", "active", "--out", str(out)]) == 0
    assert "no parameter count" in capsys.readouterr().err
    index = (out / "README.md").read_text()
    for name in [
        "healthbench_hard_pareto.md",
        "healthbench_hard_pareto.png",
        "medqa_pareto.md",
        "healthbench_hard_pareto_active.png",
    ]:
        assert (out / name).is_file() and f"({name})" in index
    assert main(["pareto", "--benchmark", "nope", "--leaderboards", str(boards), "--out", str(out)]) == 2
    assert "invalid benchmark='nope'" in capsys.readouterr().err


def test_index_lists_other_reports_too(tmp_path):
    (tmp_path / "medqa_accuracy.md").write_text("# other helper's report\n")
    (tmp_path / "demo").mkdir()
    (tmp_path / "demo" / "run.md").write_text("# demo\n")
    index = write_index(tmp_path).read_text()
    assert "[medqa_accuracy.md](medqa_accuracy.md)" in index
    assert "[demo/run.md](demo/run.md)" in index
    assert "README.md" not in index.split("## Other reports")[1]


def test_lm_eval_results_are_own_runs_too(boards, tmp_path, capsys):
    register(boards, "smol,HuggingFaceTB/SmolLM2-135M-Instruct,dense,0.135,,test registry,")
    results = tmp_path / "results_2026-11-25.json"
    results.write_text(
        json.dumps(
            {
                "results": {"m2_medqa": {"alias": "m2_medqa", "acc,none": 0.31, "acc_stderr,none": 0.02}},
                "n-samples": {"m2_medqa": {"original": 1273, "effective": 1273}},
                "config": {"model": "hf", "model_args": "pretrained=HuggingFaceTB/SmolLM2-135M-Instruct"},
                "date": 1764028800.0,
            }
        )
    )
    own = tmp_path / "own.csv"
    assert main(["add-runs", "--lmeval", str(results), "--own-runs", str(own)]) == 0
    report = build("medqa", own_runs=own, leaderboards=boards)
    row = report.points.set_index("model").loc["hf/HuggingFaceTB/SmolLM2-135M-Instruct"]
    assert (row["origin"], row["params_b"], row["n"]) == ("own", 0.135, 1273)
    assert row["score"] == pytest.approx(31.0)
    assert list(report.points.model[report.points.on_frontier]) == ["hf/HuggingFaceTB/SmolLM2-135M-Instruct", "mid-10b"]
