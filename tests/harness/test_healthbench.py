import json

import pytest

from harness.errors import ArgumentError, DataError
from harness.healthbench import load_file, load_healthbench
from tests.helpers.paths import FIXTURES, shared_file


def test_real_hard_sample_loads_and_validates():
    examples = load_file(shared_file("healthbench", "hard_sample50_seed42.jsonl"))
    assert len(examples) == 50
    assert sum(len(e.rubrics) for e in examples) == 559  # PROVENANCE.md: 559 rubric items
    assert all(e.prompt and e.prompt[-1]["role"] == "user" for e in examples)


def test_real_consensus_sample_has_two_cluster_criteria_each():
    examples = load_file(shared_file("healthbench", "consensus_context_seeking_hard_104.jsonl"))
    assert len(examples) == 104
    assert all(len(e.rubrics) == 2 and all("level:cluster" in r.tags for r in e.rubrics) for e in examples)


def test_official_file_name_row_count_is_checked(tmp_path):
    src = FIXTURES / "healthbench_mini.jsonl"
    official = tmp_path / "hard_2025-05-08-21-00-10.jsonl"
    official.write_text(src.read_text())
    with pytest.raises(DataError, match="has 3 rows; the official file has 1000"):
        load_healthbench("hard", official)


def test_unknown_subset_lists_valid_values():
    with pytest.raises(ArgumentError, match="full, hard, consensus"):
        load_healthbench("easy")


def write(tmp_path, rows):
    path = tmp_path / "bad.jsonl"
    path.write_bytes(b"\n".join(r if isinstance(r, bytes) else json.dumps(r).encode() for r in rows))
    return path


GOOD = json.loads((FIXTURES / "healthbench_mini.jsonl").read_text().splitlines()[0])


@pytest.mark.parametrize(
    "bad, message",
    [
        (b"{not json", r"bad.jsonl:2: invalid JSON"),
        ({k: v for k, v in GOOD.items() if k != "prompt"}, r"bad.jsonl:2: field 'prompt' missing"),
        ({**GOOD, "prompt_id": 7}, r"bad.jsonl:2: field 'prompt_id' expected string, got int"),
        ({**GOOD, "rubrics": [{**GOOD["rubrics"][0], "points": "5"}]}, r"field 'rubrics\[0\].points' expected number, got str"),
        ({**GOOD, "rubrics": [{**GOOD["rubrics"][0], "points": 50}]}, r"field 'rubrics\[0\].points' 50 is outside"),
        ({**GOOD, "prompt": [{"role": "robot", "content": "hi"}]}, r"field 'prompt\[0\].role' expected one of"),
        (b"\xff\xfe not utf-8", r"bad.jsonl:2: not valid UTF-8"),
        ({**GOOD, "prompt_id": "mini-1"}, r"bad.jsonl:2: field 'prompt_id' duplicate prompt_id"),
    ],
)
def test_malformed_rows_name_file_line_and_field(tmp_path, bad, message):
    path = write(tmp_path, [GOOD, bad])
    with pytest.raises(DataError, match=message):
        load_file(path)
