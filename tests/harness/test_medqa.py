"""MedQA loader: the real files, malformed rows (file:line:field), option shuffling, the prompt."""

import json
from collections import Counter

import pytest

from harness.errors import ArgumentError, DataError
from harness.medqa import format_prompt, load_file, load_medqa, shuffle_options
from tests.helpers.paths import FIXTURES, shared_file

SAMPLE = FIXTURES / "medqa_sample.jsonl"


def test_real_test_file_has_1273_valid_rows():
    shared_file("medqa", "phrases_no_exclude_test.jsonl")
    questions = load_medqa("test")
    assert len(questions) == 1273
    assert len({q.id for q in questions}) == 1273
    # answer-letter counts recorded in the data's PROVENANCE.md
    assert Counter(q.answer for q in questions) == {"A": 353, "B": 309, "C": 346, "D": 265}
    assert Counter(q.meta["meta_info"] for q in questions)["step1"] == 679
    assert all(q.answer_text == q.options[q.answer] for q in questions)


def test_real_dev_file_has_1272_rows():
    shared_file("medqa", "phrases_no_exclude_dev.jsonl")
    assert Counter(q.answer for q in load_medqa("dev")) == {"A": 330, "B": 316, "C": 352, "D": 274}


def test_sample_fixture_loads():
    questions = load_medqa("test", data_file=str(SAMPLE))
    assert [q.answer for q in questions] == ["A", "C", "D"]
    assert questions[1].answer_text == "Right coronary artery"
    assert questions[0].id == "test-0001"


def rows():
    return [json.loads(line) for line in SAMPLE.read_text().splitlines()]


def write(tmp_path, data, name="bad.jsonl"):
    path = tmp_path / name
    path.write_text("".join((d if isinstance(d, str) else json.dumps(d)) + "\n" for d in data))
    return path


def broken(change):
    data = rows()
    change(data[1])
    return data


@pytest.mark.parametrize(
    "change,field,words",
    [
        (lambda r: r.pop("question"), "question", "missing"),
        (lambda r: r.update(question="  "), "question", "empty"),
        (lambda r: r["options"].pop("D"), "options", "exactly the keys"),
        (lambda r: r["options"].update(E="Other"), "options", "exactly the keys"),
        (lambda r: r.update(options=["a", "b", "c", "d"]), "options", "expected object"),
        (lambda r: r["options"].update(B=""), "options.B", "empty"),
        (lambda r: r["options"].update(B=3), "options.B", "empty"),
        (lambda r: r["options"].update(B="right coronary artery"), "options", "same text"),
        (lambda r: r.update(answer_idx="E"), "answer_idx", "one of A, B, C, D"),
        (lambda r: r.update(answer_idx="A"), "answer_idx", "answer text is options.C"),
        (lambda r: r.update(answer="Aortic dissection"), None, "does not match options.C"),
    ],
)
def test_malformed_rows_name_file_line_and_field(tmp_path, change, field, words):
    path = write(tmp_path, broken(change))
    with pytest.raises(DataError) as err:
        load_file(path)
    assert err.value.path == str(path)
    assert err.value.line == 2
    assert err.value.field == field
    assert words in str(err.value)
    assert f"{path}:2:" in str(err.value)


def test_bad_json_line(tmp_path):
    path = write(tmp_path, [rows()[0], '{"question": "cut off'])
    with pytest.raises(DataError, match=r":2: invalid JSON"):
        load_file(path)


def test_official_file_name_checks_the_row_count(tmp_path):
    path = write(tmp_path, rows(), "phrases_no_exclude_test.jsonl")
    with pytest.raises(DataError, match="has 3 rows; the official file has 1273"):
        load_medqa("test", data_file=str(path))


def test_missing_file_says_where_to_put_it(tmp_path, monkeypatch):
    monkeypatch.setenv("M2BENCH_DATA_DIR", str(tmp_path / "data"))
    with pytest.raises(DataError) as err:
        load_medqa("dev")
    assert "medqa/phrases_no_exclude_dev.jsonl" in str(err.value)
    assert "jind11/MedQA" in str(err.value)


def test_unknown_split():
    with pytest.raises(ArgumentError, match="valid values: test, dev"):
        load_medqa("train")


def test_shuffle_keeps_the_answer_text_and_is_deterministic():
    questions = load_medqa("test", data_file=str(SAMPLE))
    once = [shuffle_options(q, 7) for q in questions]
    again = load_medqa("test", data_file=str(SAMPLE), shuffle_seed=7)
    assert once == again
    for q, s in zip(questions, once):
        assert s.answer_text == q.answer_text
        assert sorted(s.options.values()) == sorted(q.options.values())
        assert s.meta["original_answer"] == q.answer
    others = [shuffle_options(q, 8) for q in questions]
    assert [s.options for s in others] != [s.options for s in once]


def test_shuffle_moves_answers_on_the_real_file():
    shared_file("medqa", "phrases_no_exclude_test.jsonl")
    plain = load_medqa("test")
    mixed = load_medqa("test", shuffle_seed=1)
    moved = sum(a.answer != b.answer for a, b in zip(plain, mixed))
    assert 0.6 * len(plain) < moved < 0.9 * len(plain)  # 3/4 expected under a uniform shuffle
    assert all(a.answer_text == b.answer_text for a, b in zip(plain, mixed))


def test_prompt_lists_options_and_answer_format():
    q = load_medqa("test", data_file=str(SAMPLE))[1]
    direct, cot = format_prompt(q), format_prompt(q, cot=True)
    assert q.question in direct
    assert "C) Right coronary artery" in direct and "A) Left anterior descending artery" in direct
    assert "ANSWER: $LETTER" in direct and "ABCD" in direct
    assert "step by step" in cot and "step by step" not in direct


def test_a_fractional_shuffle_seed_is_refused_not_rounded():
    from harness.medqa import parse_shuffle_choices

    assert parse_shuffle_choices("7") == 7 and parse_shuffle_choices(0) is None
    with pytest.raises(ArgumentError, match=r"shuffle_choices=1.5"):
        parse_shuffle_choices(1.5)
