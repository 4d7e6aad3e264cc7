"""Leaderboard files: the shipped data validates and cites sources; bad rows name file, line, field."""

import math

import pytest

from harness.errors import DataError, run_cli
from harness.reporting.leaderboard import (
    LEADERBOARD_DIR,
    MODEL_COLUMNS,
    PUBLISHED_COLUMNS,
    ModelRegistry,
    load_models,
    load_own_runs,
    load_published,
    main,
    validate,
)
from harness.results import BASE_COLUMNS, RESULT_COLUMNS

PUBLISHED_HEADER = ",".join(PUBLISHED_COLUMNS)
MODELS_HEADER = ",".join(MODEL_COLUMNS)


def test_shipped_files_validate():
    summary = validate()
    assert any("published.csv" in line for line in summary)


def test_every_published_row_has_a_source_and_a_reference():
    published = load_published()
    assert len(published) > 0
    assert published["source"].str.strip().ne("").all()
    assert published["source_ref"].str.strip().ne("").all()


def test_shipped_registry_marks_closed_models_unknown_and_moe_active_below_total():
    models = load_models()
    unknown = models[models.architecture == "unknown"]
    assert unknown.params_total_b.isna().all() and unknown.params_active_b.isna().all()
    moe = models[models.architecture == "moe"]
    assert (moe.params_active_b < moe.params_total_b).all()
    dense = models[models.architecture == "dense"]
    assert (dense.params_active_b == dense.params_total_b).all()


def test_seed_rows_cover_the_baichuan_model_card():
    published = load_published()
    for benchmark in ("healthbench", "healthbench_hard", "healthbench_consensus"):
        rows = published[published.benchmark == benchmark]
        assert {"Baichuan-M2-32B", "gpt-oss-120b", "gpt-oss-20b", "Kimi-K2"} <= set(rows.model)


def test_registry_finds_models_by_alias_and_without_provider_prefix():
    registry = ModelRegistry(load_models())
    assert registry.find("m2bench/default")["params_total_b"] == pytest.approx(0.135)
    assert registry.find("vllm/baichuan-inc/Baichuan-M2-32B")["model"] == "Baichuan-M2-32B"
    assert registry.find("openai/gpt-oss-120b")["params_active_b"] == pytest.approx(5.1)
    assert registry.find("someone/unknown-model") is None


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def published_row(**fields) -> str:
    """A valid published.csv line (HealthBench Hard, graded as in the paper), with ``fields`` changed."""
    row = {
        "model": "m",
        "benchmark": "healthbench_hard",
        "subset": "hard",
        "score": "30",
        "source": "some paper",
        "source_ref": "Table 2",
        "date": "2025-09-03",
        "grader": "gpt-4.1-2025-04-14",
        "grader_prompt": "simple-evals",
        "n": "1000",
        "reported_by": "authors",
        "reasoning": "not stated",
        "note": "",
        **fields,
    }
    return ",".join(row[c] for c in PUBLISHED_COLUMNS)


MEDQA_ROW = {"benchmark": "medqa", "subset": "test", "grader": "n/a", "grader_prompt": "n/a", "n": "1273"}
# one case per failure kind the validator knows: the field it must name
BAD_PUBLISHED = [
    ({"score": "abc"}, "score"),
    ({"score": "130"}, "score"),
    ({"source": ""}, "source"),
    ({"source_ref": ""}, "source_ref"),
    ({"benchmark": "HealthBench Hard"}, "benchmark"),
    ({"date": "Sept 2025"}, "date"),
    ({"subset": "full"}, "subset"),  # healthbench_hard's subset is hard
    ({"grader": ""}, "grader"),
    ({"grader": "n/a"}, "grader"),  # HealthBench is graded by a model
    ({"grader_prompt": "official"}, "grader_prompt"),
    ({"n": "many"}, "n"),
    ({"n": "0"}, "n"),
    ({"n": "1001"}, "n"),  # more than the 1000 examples of HealthBench Hard
    ({"reported_by": "Baichuan"}, "reported_by"),
    ({"reasoning": "high"}, "reasoning"),
    ({**MEDQA_ROW, "grader": "gpt-4.1"}, "grader"),  # MedQA is answer matching: no grader
    ({**MEDQA_ROW, "grader_prompt": "not stated"}, "grader_prompt"),
    ({}, "model"),  # a duplicate of line 2
]


@pytest.mark.parametrize("fields, field", BAD_PUBLISHED)
def test_bad_published_rows_name_file_line_and_field(tmp_path, fields, field):
    path = write(tmp_path, "published.csv", f"{PUBLISHED_HEADER}\n{published_row()}\n{published_row(**fields)}\n")
    with pytest.raises(DataError) as info:
        load_published(path)
    assert (info.value.line, info.value.field) == (3, field)
    assert f"published.csv:3: field '{field}'" in str(info.value)


def test_allowed_comparability_values_load(tmp_path):
    rows = [
        published_row(),
        published_row(model="b", grader="not stated", grader_prompt="not stated", n="not stated", reported_by="third_party"),
        published_row(model="c", grader_prompt="own", reasoning="thinking"),
        published_row(model="d", reasoning="non-thinking", **MEDQA_ROW),
    ]
    path = write(tmp_path, "published.csv", "\n".join([PUBLISHED_HEADER, *rows]) + "\n")
    assert list(load_published(path)["grader_prompt"]) == ["simple-evals", "not stated", "own", "n/a"]


@pytest.mark.parametrize("fields, field", BAD_PUBLISHED)
def test_validator_command_prints_one_error_line_and_fails(tmp_path, capsys, fields, field):
    """What CI sees: ``python -m harness.reporting.leaderboard FOLDER`` on a bad file."""
    write(tmp_path, "published.csv", f"{PUBLISHED_HEADER}\n{published_row()}\n{published_row(**fields)}\n")
    write(tmp_path, "models.csv", f"{MODELS_HEADER}\nm,,dense,1,,card,\n")
    with pytest.raises(SystemExit) as exit_info:
        run_cli(lambda: main([str(tmp_path)]))
    assert exit_info.value.code != 0
    captured = capsys.readouterr()
    assert captured.out == ""
    [line] = captured.err.splitlines()
    assert line.startswith(f"error: {tmp_path / 'published.csv'}:3: field '{field}' ")


def test_validator_command_passes_on_the_committed_files(capsys):
    with pytest.raises(SystemExit) as exit_info:
        run_cli(lambda: main([]))
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert f"{LEADERBOARD_DIR / 'published.csv'}: {len(load_published())} rows" in out
    assert out.endswith("all leaderboard files are valid\n")


def test_missing_header_column_is_reported_on_line_one(tmp_path):
    path = write(tmp_path, "published.csv", "model,benchmark,score\nm,medqa,80\n")
    with pytest.raises(DataError, match=r"published.csv:1: header lacks column\(s\) subset, source"):
        load_published(path)


def test_unquoted_comma_gives_a_clear_error(tmp_path):
    path = write(tmp_path, "published.csv", f"{PUBLISHED_HEADER}\n{published_row(source='Smith, Jones')}\n")
    with pytest.raises(DataError, match="more values than"):
        load_published(path)


@pytest.mark.parametrize(
    "row, field",
    [
        ("closed,,unknown,100,,card,", "params_total_b"),
        ("moe-model,,moe,100,,card,", "params_active_b"),
        ("moe-model,,moe,10,20,card,", "params_active_b"),
        ("dense-model,,dense,,,card,", "params_total_b"),
        ("dense-model,,dense,7,3,card,", "params_active_b"),
        ("dense-model,,transformer,7,,card,", "architecture"),
        ("dense-model,,dense,-7,,card,", "params_total_b"),
        ("dense-model,,dense,7,,,", "source"),
        ("other,first-model,dense,7,,card,", "aliases"),
    ],
)
def test_bad_model_rows_name_the_field(tmp_path, row, field):
    path = write(tmp_path, "models.csv", f"{MODELS_HEADER}\nfirst-model,,dense,1,,card,\n{row}\n")
    with pytest.raises(DataError) as info:
        load_models(path)
    assert (info.value.line, info.value.field) == (3, field)


def test_dense_active_defaults_to_total_and_unknown_stays_nan(tmp_path):
    path = write(tmp_path, "models.csv", f"{MODELS_HEADER}\nd,,dense,7,,card,\nc,,unknown,,,card,\n")
    models = load_models(path)
    assert models.params_active_b[0] == 7
    assert math.isnan(models.params_total_b[1])


def test_published_model_missing_from_registry_fails_validation(tmp_path):
    write(tmp_path, "published.csv", f"{PUBLISHED_HEADER}\n{published_row()}\n")
    write(tmp_path, "models.csv", f"{MODELS_HEADER}\nother,,dense,1,,card,\n")
    with pytest.raises(DataError, match=r"published.csv:2: field 'model' model 'm' has no row in models.csv"):
        validate(tmp_path)


def test_own_runs_scores_must_be_fractions(tmp_path):
    header = ",".join(BASE_COLUMNS)  # a table written before the label columns existed still loads
    path = write(tmp_path, "own_runs.csv", f"{header}\nm,medqa,,test,84,,10,,inspect,2025-11-25,x.eval\n")
    with pytest.raises(DataError) as info:
        load_own_runs(path)
    assert (info.value.line, info.value.field) == (2, "score")


def test_shipped_own_runs_file_has_the_results_columns():
    header = (LEADERBOARD_DIR / "own_runs.csv").read_text().splitlines()[0]
    assert header.split(",") == RESULT_COLUMNS
