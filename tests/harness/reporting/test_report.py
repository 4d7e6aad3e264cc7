"""Pareto reports from fixture Inspect logs (mockllm) plus hand-made leaderboard files."""

import json
import math
import os
import re

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
from harness.reporting.leaderboard import LEADERBOARD_DIR, MODEL_COLUMNS, PUBLISHED_COLUMNS, load_own_runs
from harness.reporting.report import (
    ANSWER_MATCHING,
    LABEL_GID,
    NOT_COMPARABLE,
    NUMBER_GID,
    OTHER_GRADER,
    PAPER_GRADING,
    UNSTATED_GRADING,
    build,
    comparability_group,
    drawn_points,
    figure,
    markdown,
    write_index,
    write_pareto,
)
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
    assert "small-own" not in main_table and "| small-own (own: inspect, " in apart and reason in apart
    assert "| hard | 75.0 |" in apart


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
        assert image.size == (2100, 1200)
    text = md.read_text()
    rows = [line for line in text.splitlines() if line.startswith("| ") and not line.startswith(("| model", "| run"))]
    assert [r.split(" | ")[0].strip("| ") for r in rows] == [
        "mockllm/model (own: inspect, simple-evals grading, n=1000)",
        "tiny-1b",
        "mid-10b",
        "moe-100b",
        "mockllm/model (own: inspect, n=4, NOT COMPARABLE)",  # the 4-sample log, in its own table
        "closed-x",
    ]
    assert (
        "| mockllm/model (own: inspect, simple-evals grading, n=1000) | GPT-4.1 grader, simple-evals prompt | own (inspect) |"
        in text
    )
    assert "| 0.135 | 0.135 | 75.0 |" in text
    assert "| hard | 75.0 | 25.0 | 4 | data unknown is not an official file; 4 samples (< 100) |" in text
    assert "| closed-x | GPT-4.1 grader, simple-evals prompt | published | 50.0 | 1000 | gpt-4.1 | simple-evals |" in text
    assert "(healthbench_hard_pareto.png)" in text


def test_missing_parameter_count_gives_a_clear_message(boards, logs, tmp_path):
    report = build("healthbench_hard", "total", results_table([logs]), leaderboards=boards)
    assert "mockllm/model" in set(report.unknown.model)
    assert "mockllm/model" not in set(report.points.model)
    message = next(m for m in report.messages if m.startswith("mockllm/model"))
    assert "no parameter count" in message and "models.csv" in message
    _, md = write_pareto(report, tmp_path)
    assert "## Parameter count unknown (listed, not plotted)" in md.read_text()
    assert "| mockllm/model (own: inspect, n=4, NOT COMPARABLE) | hard | 75.0 |" in md.read_text()


def test_unknown_benchmark_and_param_kind_are_argument_errors(boards):
    with pytest.raises(ArgumentError, match="benchmark='nope'.*healthbench_hard, medqa"):
        build("nope", leaderboards=boards, own_runs=boards / "none.csv")
    with pytest.raises(ArgumentError, match="params="):
        build("medqa", "gpu", leaderboards=boards)


def test_add_runs_writes_to_a_git_ignored_file_unless_told_otherwise(logs, tmp_path, monkeypatch, capsys):
    tracked = (LEADERBOARD_DIR / "own_runs.csv").read_bytes()
    monkeypatch.chdir(tmp_path)
    assert main(["add-runs", "--logs", str(logs)]) == 0
    assert len(load_own_runs(tmp_path / "runs" / "own_runs.csv")) == 1
    assert "runs/own_runs.csv: 1 rows" in capsys.readouterr().out
    assert (LEADERBOARD_DIR / "own_runs.csv").read_bytes() == tracked  # the project's leaderboard untouched


@pytest.mark.slow  # over ~3 s: the fast loop leaves it out
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
    printed = capsys.readouterr()
    assert "no parameter count" in printed.err
    # each group's frontier, each point once (the active-parameter run: moe-100b has 5B active)
    assert f"  frontier of {PAPER_GRADING}: tiny-1b, moe-100b, mid-10b\n" in printed.out
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


def test_index_lists_report_outputs_not_the_scripts_that_write_them(tmp_path):
    (tmp_path / "demo").mkdir()
    for name in ("demo/run.md", "demo/run_embedded.py", "demo/run.sh", "demo/run.txt"):
        (tmp_path / name).write_text("x\n")
    index = write_index(tmp_path).read_text()
    assert "[demo/run.md]" in index and "[demo/run.txt]" in index
    assert ".py" not in index and ".sh" not in index


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


# --- comparability groups -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "benchmark, grader, prompt, comparable, group",
    [
        ("healthbench_hard", "gpt-4.1", "simple-evals", True, PAPER_GRADING),
        ("healthbench", "gpt-4.1-2025-04-14", "simple-evals", True, PAPER_GRADING),
        ("healthbench", "openai/gpt-4.1-2025-04-14", "simple-evals", True, PAPER_GRADING),  # own run: provider prefix
        ("healthbench", "openai/gpt-4.1-mini", "simple-evals", True, OTHER_GRADER),  # not the paper's grader
        ("healthbench", "vllm/Qwen/Qwen3-32B", "simple-evals", True, OTHER_GRADER),
        ("healthbench", "gpt-4.1", "not stated", True, UNSTATED_GRADING),
        ("healthbench", "not stated", "not stated", True, UNSTATED_GRADING),
        ("healthbench", "gpt-4.1", "own", True, UNSTATED_GRADING),
        ("healthbench", "gpt-4.1", "m2bench", True, UNSTATED_GRADING),  # own run with m2bench grading
        ("medqa", "n/a", "n/a", True, ANSWER_MATCHING),
        ("medqa", "", "", False, NOT_COMPARABLE),
        ("healthbench", "gpt-4.1", "simple-evals", False, NOT_COMPARABLE),
    ],
)
def test_comparability_group(benchmark, grader, prompt, comparable, group):
    assert comparability_group(benchmark, grader, prompt, comparable) == group


def test_each_group_has_its_own_frontier_and_the_table_names_the_group(boards):
    # moe-100b's source states no grader: it is compared with nothing graded by GPT-4.1
    text = (
        (boards / "published.csv")
        .read_text()
        .replace(
            "moe-100b,healthbench_hard,hard,35,paper B,Fig 2,2025-02," + HB41,
            "moe-100b,healthbench_hard,hard,35,paper B,Fig 2,2025-02,not stated,not stated,not stated,third_party,thinking",
        )
    )
    (boards / "published.csv").write_text(text)
    register(boards, "big-own,,dense,200,,test registry,")
    runs = pd.concat([own_run("big-own", 0.45, grader="vllm/Qwen/Qwen3-32B"), own_run("mid-10b", 0.10, grader_profile="m2bench")])
    report = build("healthbench_hard", "total", runs, leaderboards=boards, own_runs=boards / "none.csv")
    groups = dict(zip(report.points.label, report.points.group))
    assert groups == {
        "tiny-1b": PAPER_GRADING,
        "mid-10b": PAPER_GRADING,
        "big-own (own: inspect, simple-evals grading, n=1000)": OTHER_GRADER,
        "moe-100b": UNSTATED_GRADING,
        "mid-10b (own: inspect, m2bench grading, n=1000, NOT COMPARABLE)": NOT_COMPARABLE,
    }
    # alone in its group, each of moe-100b and big-own is on its group's frontier, though mid-10b (10B, 40) beats
    # moe-100b (100B, 35) and tiny-1b (1B, 20) would not
    assert report.frontiers() == {
        PAPER_GRADING: ["tiny-1b", "mid-10b"],
        OTHER_GRADER: ["big-own (own: inspect, simple-evals grading, n=1000)"],
        UNSTATED_GRADING: ["moe-100b"],
    }
    table = markdown(report, "chart.png", "cmd")
    assert "| moe-100b | grader or prompt not stated or not simple-evals | published | 100 | 5 | 35.0 |" in table
    assert "| big-own (own: inspect, simple-evals grading, n=1000) | other grader, simple-evals prompt | own (inspect) |" in table
    assert f"Groups: {PAPER_GRADING} (2 points); {OTHER_GRADER} (1 points); {UNSTATED_GRADING} (1 points)." in table


def test_different_runs_never_share_a_label(boards):
    register(boards, "small-own,,dense,0.5,,test registry,")
    with (boards / "published.csv").open("a") as handle:  # mid-10b on medqa from a second source, another score
        handle.write("mid-10b,medqa,test,65,paper D,Table 1,2025-04,n/a,n/a,not stated,third_party,non-thinking,\n")
        handle.write("mid-10b,medqa,test,70,paper E,Table 9,2025-05,n/a,n/a,1273,third_party,non-thinking,\n")  # repeats C
    medqa = {"benchmark": "medqa", "subset": "test", "data": "phrases_no_exclude_test.jsonl", "grader": "", "n": 1273}
    runs = pd.concat(
        [
            own_run("small-own", score, grader_profile="", log=log, **medqa)
            for score, log in [(0.5, "a.eval"), (0.6, "b.eval"), (0.6, "c.eval")]
        ]
    )
    report = build("medqa", "total", runs, leaderboards=boards, own_runs=boards / "none.csv")
    drawn = drawn_points(report.points)
    assert len(report.points) == 6 and len(drawn) == 5  # the repeated (mid-10b, 70) is drawn once
    assert drawn["label"].is_unique
    assert sorted(drawn.label) == [
        "mid-10b (65.0)",
        "mid-10b (70.0)",
        "small-own (own: inspect, n=1273) [a.eval]",
        "small-own (own: inspect, n=1273) [b.eval]",
        "small-own (own: inspect, n=1273) [c.eval]",
    ]
    assert report.frontiers() == {
        ANSWER_MATCHING: ["small-own (own: inspect, n=1273) [b.eval]", "small-own (own: inspect, n=1273) [c.eval]", "mid-10b"]
    }


# --- chart layout, measured on the rendered figure -----------------------------------------------------------


def _chart_geometry(fig):
    """Pixel boxes of point labels, marker boxes of every drawn point, line segments: read from the figure's artists."""
    from matplotlib.collections import LineCollection, PathCollection

    renderer = fig.canvas.get_renderer()
    ax = fig.axes[0]
    labels = [t for t in ax.texts if t.get_gid() in (LABEL_GID, NUMBER_GID)]
    boxes = [t.get_window_extent(renderer) for t in labels]
    markers, segments = [], []
    for collection in ax.collections:
        if isinstance(collection, PathCollection):
            sizes = collection.get_sizes()
            for i, (x, y) in enumerate(ax.transData.transform(collection.get_offsets())):
                r = math.sqrt(sizes[i % len(sizes)]) / 2 * fig.dpi / 72
                markers.append(((x - r, y - r, x + r, y + r), (x, y)))
        elif isinstance(collection, LineCollection):  # error bars
            segments += [ax.transData.transform(seg) for seg in collection.get_segments()]
    for line in ax.lines:
        xy = ax.transData.transform(line.get_xydata())
        segments += [xy[i : i + 2] for i in range(len(xy) - 1)]
    return ax, labels, boxes, markers, segments


def _overlap(a, b) -> bool:
    """Axis-aligned boxes (x0, y0, x1, y1) share area."""
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _crosses(box, segment) -> bool:
    """A straight segment passes through a box (sampled every pixel: the chart's segments are straight lines)."""
    (x0, y0), (x1, y1) = segment
    steps = int(max(abs(x1 - x0), abs(y1 - y0))) + 2
    return any(
        box[0] < x0 + (x1 - x0) * k / steps < box[2] and box[1] < y0 + (y1 - y0) * k / steps < box[3] for k in range(steps + 1)
    )


def assert_clean_layout(report):
    fig = figure(report)
    ax, labels, boxes, markers, segments = _chart_geometry(fig)
    renderer = fig.canvas.get_renderer()
    drawn = drawn_points(report.points)
    assert len(drawn) and len(labels) == len(drawn)  # every drawn point has a label (its name or a number)
    names = [t.get_text() for t in labels if t.get_gid() == LABEL_GID]
    assert len(names) == len(set(names))
    everything = fig.get_tightbbox(renderer).transformed(fig.dpi_scale_trans)
    assert fig.bbox.x0 <= everything.x0 and everything.x1 <= fig.bbox.x1  # nothing clipped by the figure edge
    assert fig.bbox.y0 <= everything.y0 and everything.y1 <= fig.bbox.y1
    for i, (text, box) in enumerate(zip(labels, boxes)):
        b = tuple(box.extents)
        assert ax.bbox.x0 <= b[0] and b[2] <= ax.bbox.x1 and ax.bbox.y0 <= b[1] and b[3] <= ax.bbox.y1, text.get_text()
        assert not any(_overlap(b, tuple(other.extents)) for j, other in enumerate(boxes) if j != i), text.get_text()
        assert not any(_overlap(b, m) for m, _ in markers), text.get_text()
        assert not any(_crosses(b, seg) for seg in segments), text.get_text()
    for m, (x, _) in markers:  # every point inside the axes, none sitting on the x axis
        assert ax.bbox.y0 < m[1] and m[3] <= ax.bbox.y1 and ax.bbox.x0 < x < ax.bbox.x1
    return fig, drawn, labels


def test_crowded_chart_layout_has_no_overlaps_and_explains_a_zero_score(boards):
    """Many points at one size, two groups with frontiers, own runs with error bars, a 0-score 3-sample run."""
    with (boards / "published.csv").open("a") as handle:
        for i in range(14):
            handle.write(
                f"model-{i},healthbench_hard,hard,{10 + 2.5 * i},paper Z,Table {i},2025-06,"
                "not stated,not stated,not stated,third_party,not stated,\n"
            )
    for i in range(14):
        register(boards, f"model-{i},,dense,{[7, 8, 70][i % 3]},,card,")
    register(boards, "small-own,m2bench/default,dense,0.135,,test registry,")
    runs = pd.concat(
        [
            own_run("small-own", 0.0, n=3, limited=True, log="three.eval"),
            own_run("small-own", 0.22, log="full.eval"),
            own_run("mid-10b", 0.38, grader_profile="m2bench", log="m2.eval"),
        ]
    )
    report = build("healthbench_hard", "total", runs, leaderboards=boards, own_runs=boards / "none.csv")
    fig, drawn, labels = assert_clean_layout(report)
    zero = [t.get_text() for t in labels if t.get_text().startswith("small-own") and "n=3" in t.get_text()]
    assert zero == ["small-own (own: inspect, simple-evals grading, n=3, NOT COMPARABLE)"]  # explained where it sits


@pytest.mark.slow
@pytest.mark.parametrize("benchmark", ["healthbench", "healthbench_hard", "healthbench_consensus", "medqa"])
@pytest.mark.parametrize("kind", ["total", "active"])
def test_committed_leaderboard_charts_have_a_clean_layout(benchmark, kind, tmp_path):
    report = build(benchmark, kind, own_runs=tmp_path / "none.csv")
    _, drawn, labels = assert_clean_layout(report)
    numbered = [t for t in labels if t.get_gid() == NUMBER_GID]
    assert len(numbered) <= len(drawn) // 5  # most points carry their name


def test_chart_and_table_bytes_are_stable_and_rewritten_only_on_change(boards, tmp_path):
    report = build("healthbench_hard", "total", leaderboards=boards, own_runs=boards / "none.csv")
    png, md = write_pareto(report, tmp_path, "cmd")
    first = (png.read_bytes(), md.read_bytes(), png.stat().st_mtime_ns, md.stat().st_mtime_ns)
    assert b"Matplotlib" not in first[0] and b"Software" not in first[0]  # no version stamp in the PNG
    assert not re.search(r"20\d\d-\d\d-\d\d", md.read_text().replace("2025-01-01", "").replace("2025-02", ""))
    os.utime(png, ns=(1, 1))
    os.utime(md, ns=(1, 1))
    png, md = write_pareto(build("healthbench_hard", "total", leaderboards=boards, own_runs=boards / "none.csv"), tmp_path, "cmd")
    assert (png.read_bytes(), md.read_bytes()) == first[:2]
    assert png.stat().st_mtime_ns == 1 and md.stat().st_mtime_ns == 1  # same content: not rewritten
    write_pareto(report, tmp_path, "another command")
    assert md.stat().st_mtime_ns != 1 and png.stat().st_mtime_ns == 1
