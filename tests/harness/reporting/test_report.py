"""Pareto reports from fixture Inspect logs (mockllm) plus hand-made leaderboard files."""

import json

import pandas as pd
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
from harness.reporting.report import build, markdown, write_index, write_pareto
from harness.results import normalize
from harness.tools.report import main
from tests.helpers.scripted import mock_model

HB41 = "gpt-4.1,simple-evals,1000,authors,not stated"  # graded as in the HealthBench paper
PUBLISHED = [
    f"tiny-1b,healthbench_hard,hard,20,paper A,Table 1,2025-01-01,{HB41},",
    f"mid-10b,healthbench_hard,hard,40,paper A,Table 1,2025-01-01,{HB41},",
    f"moe-100b,healthbench_hard,hard,35,paper B,Fig 2,2025-02,{HB41},",
    f"closed-x,healthbench_hard,hard,50,paper B,Fig 2,2025-02,{HB41},",
    "mid-10b,medqa,test,70,paper C,Table 3,2025-03,n/a,n/a,1273,third_party,non-thinking,",
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


def own_run(model: str, score: float, **labels) -> pd.DataFrame:
    """A results row of an own HealthBench Hard run: comparable unless ``labels`` say otherwise."""
    row = {
        "model": model,
        "benchmark": "healthbench_hard",
        "subset": "hard",
        "split": "",
        "score": score,
        "stderr": 0.01,
        "n": 1000,
        "epochs": 1,
        "data": "hard_2025-05-08-21-00-10.jsonl",
        "limited": False,
        "grader": "openai/gpt-4.1-2025-04-14",
        "grader_profile": "simple_evals",
        "harness": "inspect",
        "date": "2026-01-01",
        "log": f"{model}.eval",
        **labels,
    }
    return normalize(pd.DataFrame([row]))


def test_frontier_and_rows_with_an_own_run(boards):
    register(boards, "small-own,,dense,0.5,,test registry,")
    report = build("healthbench_hard", "total", own_run("small-own", 0.75), leaderboards=boards, own_runs=boards / "none.csv")
    table = report.points.set_index("model")
    assert list(report.points.model) == ["small-own", "tiny-1b", "mid-10b", "moe-100b"]  # sorted by params
    assert table.loc["small-own", "origin"] == "own" and table.loc["small-own", "comparable"]
    assert table.loc["small-own", "score"] == pytest.approx(75.0)
    assert table.loc["small-own", "n"] == 1000
    # a comparable own run (0.5B, 75) dominates everything smaller-or-equal in score
    assert list(report.points.model[report.points.on_frontier]) == ["small-own"]
    assert list(report.unknown.model) == ["closed-x"]
    assert any("closed-x" in m and "not public" in m for m in report.messages)


@pytest.mark.parametrize(
    "labels, reason",
    [
        ({"limited": True, "n": 100}, "cut by --limit"),
        ({"data": "custom:hard_sample50_seed42.jsonl@0a74b97c557a", "n": 50}, "is not an official file"),
        ({"grader_profile": "m2bench"}, "grader profile m2bench"),
        ({"grader": "small-own (self-graded)"}, "graded by the model under test"),
    ],
)
def test_non_comparable_runs_are_kept_apart_and_never_on_the_frontier(boards, tmp_path, labels, reason):
    register(boards, "small-own,,dense,0.5,,test registry,")
    report = build(
        "healthbench_hard", "total", own_run("small-own", 0.75, **labels), leaderboards=boards, own_runs=boards / "none.csv"
    )
    own = report.points.set_index("model").loc["small-own"]
    assert not own["comparable"] and reason in own["why_not_comparable"] and not own["on_frontier"]
    assert list(report.points.model[report.points.on_frontier]) == ["tiny-1b", "mid-10b"]  # as without the run
    main_table, apart = markdown(report, "chart.png", "cmd").split("## Own runs NOT comparable with the published scores")
    assert "small-own" not in main_table and "| small-own | hard | 75.0 |" in apart and reason in apart


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
    runs = pd.concat([results_table([logs]), own_run("mockllm/model", 0.75, log="comparable.eval")])
    png, md = write_pareto(build("healthbench_hard", "total", runs, leaderboards=boards), out)
    assert png == out / "healthbench_hard_pareto.png" and md == out / "healthbench_hard_pareto.md"
    assert png.stat().st_size > 20_000
    with Image.open(png) as image:
        assert image.size == (1500, 975)
    text = md.read_text()
    rows = [line for line in text.splitlines() if line.startswith("| ") and not line.startswith("| model")]
    assert [r.split(" | ")[0].strip("| ") for r in rows] == [
        "mockllm/model",
        "tiny-1b",
        "mid-10b",
        "moe-100b",
        "mockllm/model",  # the 4-sample log: not comparable, in its own table
        "closed-x",
    ]
    assert "| mockllm/model | own | hard | 0.135 | 0.135 | 75.0 |" in text
    assert "| mockllm/model | hard | 75.0 | 25.0 | 4 | data unknown is not an official file; 4 samples (< 100) |" in text
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
    assert "| mockllm/model | hard | 75.0 |" in md.read_text().split("NOT comparable")[1]  # and not comparable


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
