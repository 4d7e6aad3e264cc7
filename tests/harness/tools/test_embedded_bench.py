"""The embedded-model benchmark's pieces that need no real model: its baseline JSON writer and its report."""

from __future__ import annotations

import json

from harness.grading import VERDICT_SCHEMA
from harness.tools import embedded_bench
from harness.tools.demo import hard_data
from tests.helpers.tiny_llama import tiny_model, tiny_tokenizer


def test_the_baseline_json_writer_writes_a_verdict():
    tokenizer, model = tiny_tokenizer(), tiny_model()
    ids = embedded_bench.old_prompt_ids(tokenizer, [{"role": "user", "content": "w3 w4 w5"}], 16, 1024)
    writer = embedded_bench.OldJsonWriter(tokenizer, model, ids, max_string_tokens=6)
    writer.value(VERDICT_SCHEMA)
    verdict = json.loads(writer.text)
    assert list(verdict) == ["explanation", "criteria_met"] and isinstance(verdict["criteria_met"], bool)


def test_the_workload_is_grader_prompts_and_questions():
    plain, graded = embedded_bench.workload()
    assert len(plain) == len(embedded_bench.QUESTIONS)
    assert len(graded) == sum(len(criteria) for _, _, criteria in embedded_bench.GRADING)
    assert all("<criterion>" in messages[0]["content"] for messages in graded)


def test_the_report_has_fixed_names_and_says_which_targets_were_met(tmp_path):
    record = {"import_s": 9.0, "load_s": 2.0, "stderr_chars": 0}
    speed = {"generate": [{"tokens_per_s": 10.0}], "generate_json": [{"tokens_per_s": 5.0}]}
    result = {
        "config": {"repeats": 1},
        "machine": {"load_average_at_start": [1.0, 1.0, 1.0]},
        "figures": {"load_warm_s": 2.0, "generate_speedup": 3.5, "generate_json_speedup": 2.5},
        "targets": {name: list(target) for name, target in embedded_bench.TARGETS.items()},
        "targets_met": {"load_warm_s": True, "generate_speedup": True, "generate_json_speedup": False},
        "runs": {
            "loads": {"old": [{**record, "load_s": 40.0}], "new_cold": [record], "new_warm": [record]},
            "speed": {"old": speed, "new": speed},
        },
    }
    json_path, md_path = embedded_bench.write(result, tmp_path, "python -m harness.tools.embedded_bench --repeats 1")
    assert (json_path.name, md_path.name) == ("embedded_model.json", "embedded_model.md")
    text = md_path.read_text(encoding="utf-8")
    assert "- generate_speedup >= 3: met (3.5)" in text and "- generate_json_speedup >= 3: NOT met (2.5)" in text
    assert json.loads(json_path.read_text(encoding="utf-8"))["command"].endswith("--repeats 1")


def test_the_fidelity_rows_are_the_conversations_make_demo_runs():
    rows, note = embedded_bench.demo_prompts()
    data_file, _ = hard_data()
    assert data_file is not None  # the shared data holds the public sample, not the official file
    with open(data_file, encoding="utf-8") as f:
        first = [json.loads(line)["prompt"] for line, _ in zip(f, range(embedded_bench.DEMO_ROWS))]
    assert note == "" and rows == [[{"role": m["role"], "content": m["content"]} for m in prompt] for prompt in first]
