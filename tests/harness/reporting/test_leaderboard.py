"""Leaderboard files: the shipped data validates and cites sources; bad rows name file, line, field."""

import math

import pytest

from harness.errors import DataError
from harness.reporting.leaderboard import (
    LEADERBOARD_DIR,
    MODEL_COLUMNS,
    PUBLISHED_COLUMNS,
    ModelRegistry,
    load_models,
    load_own_runs,
    load_published,
    validate,
)
from harness.results import BASE_COLUMNS, RESULT_COLUMNS

PUBLISHED_HEADER = ",".join(PUBLISHED_COLUMNS)
MODELS_HEADER = ",".join(MODEL_COLUMNS)
GOOD_ROW = "m,healthbench_hard,hard,30,some paper,Table 2,2025-09-03,"


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


@pytest.mark.parametrize(
    "row, line, field",
    [
        ("m,healthbench_hard,hard,abc,paper,Table 2,2025-09-03,", 3, "score"),
        ("m,healthbench_hard,hard,130,paper,Table 2,2025-09-03,", 3, "score"),
        ("m,healthbench_hard,hard,30,,Table 2,2025-09-03,", 3, "source"),
        ("m,healthbench_hard,hard,30,paper,,2025-09-03,", 3, "source_ref"),
        ("m,HealthBench Hard,hard,30,paper,Table 2,2025-09-03,", 3, "benchmark"),
        ("m,healthbench_hard,hard,30,paper,Table 2,Sept 2025,", 3, "date"),
        (GOOD_ROW, 3, "model"),  # duplicate of line 2
    ],
)
def test_bad_published_rows_name_file_line_and_field(tmp_path, row, line, field):
    path = write(tmp_path, "published.csv", f"{PUBLISHED_HEADER}\n{GOOD_ROW}\n{row}\n")
    with pytest.raises(DataError) as info:
        load_published(path)
    assert (info.value.line, info.value.field) == (line, field)
    assert f"published.csv:{line}" in str(info.value)


def test_missing_header_column_is_reported_on_line_one(tmp_path):
    path = write(tmp_path, "published.csv", "model,benchmark,score\nm,medqa,80\n")
    with pytest.raises(DataError, match=r"published.csv:1: header lacks column\(s\) subset, source"):
        load_published(path)


def test_unquoted_comma_gives_a_clear_error(tmp_path):
    path = write(tmp_path, "published.csv", f"{PUBLISHED_HEADER}\nm,medqa,test,80,Smith, Jones,Table 1,2025-01,note,extra\n")
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
    write(tmp_path, "published.csv", f"{PUBLISHED_HEADER}\n{GOOD_ROW}\n")
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
