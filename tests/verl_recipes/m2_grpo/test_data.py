"""verl parquet export: round trip, held out from the reporting eval sets, no credentials."""

import json

import pytest

from harness.errors import ArgumentError
from harness.medqa import load_medqa
from tests.helpers.paths import shared_file
from verl_recipes.m2_grpo import data
from verl_recipes.m2_grpo.data import healthbench_ids


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    shared_file("healthbench", "oss_eval_sample500.jsonl")
    shared_file("medqa", "phrases_no_exclude_dev.jsonl")
    export = data.build(["healthbench", "medqa"], val_fraction=0.1)
    paths = data.write(export, tmp_path_factory.mktemp("parquet"))
    return export, paths


def test_round_trip(exported):
    export, paths = exported
    for split in ("train", "val"):
        back = data.read(paths[split])
        rows = getattr(export, split)
        assert len(back) == len(rows) > 0
        for got, want in zip(back[:50], rows[:50]):
            assert got["data_source"] == want["data_source"] and got["agent_name"] == want["agent_name"]
            assert [dict(m) for m in got["prompt"]] == want["prompt"]
            assert dict(got["reward_model"]) == want["reward_model"]
            assert {k: got["extra_info"][k] for k in data.EXTRA_FIELDS} == want["extra_info"]
    manifest = json.loads(paths["manifest"].read_text())
    assert manifest["rows"] == {"train": len(export.train), "val": len(export.val)}


def test_columns_are_what_verl_reads(exported):
    export, _ = exported
    for r in export.train[:5] + export.val[:5]:
        assert set(r) == {"data_source", "prompt", "ability", "reward_model", "extra_info", "agent_name"}
        assert r["prompt"][-1]["role"] == "user"
        assert isinstance(r["reward_model"]["ground_truth"], str)
        assert set(r["extra_info"]) == set(data.EXTRA_FIELDS)


def test_no_row_of_the_reporting_eval_sets(exported):
    export, _ = exported
    rows = export.train + export.val
    # the oracle: the public Hard and Consensus samples of this machine, named here, not by the registry
    eval_ids = set()
    for name in ("hard_sample50_seed42.jsonl", "consensus_context_seeking_hard_104.jsonl"):
        eval_ids |= healthbench_ids(shared_file("healthbench", name))
    hb_ids = {r["extra_info"]["item_id"].split(":", 1)[1] for r in rows if r["data_source"] == "m2bench/healthbench"}
    assert hb_ids and not hb_ids & eval_ids
    assert export.manifest["healthbench"]["excluded_rows"] == 8  # 4 in Hard, 4 in Consensus (PROVENANCE.md)
    test_questions = {q.question.strip().lower() for q in load_medqa("test")}
    medqa_rows = [r for r in rows if r["data_source"] == "m2bench/medqa"]
    assert len(medqa_rows) == 1272  # the whole dev split, none of it in test
    assert not any(r["prompt"][0]["content"].split("\n\n")[1].strip().lower() in test_questions for r in medqa_rows)
    assert all(r["extra_info"]["item_id"].startswith("medqa:dev-") for r in medqa_rows)


def test_val_split_is_stable_and_disjoint(exported):
    export, _ = exported
    train = {r["extra_info"]["item_id"] for r in export.train}
    val = {r["extra_info"]["item_id"] for r in export.val}
    assert not train & val
    assert 0.05 < len(val) / (len(train) + len(val)) < 0.15
    again = data.build(["medqa"], val_fraction=0.1)
    assert {r["extra_info"]["item_id"] for r in again.val} == {i for i in val if i.startswith("medqa:")}


def test_no_credentials_in_parquet(tmp_path, monkeypatch):
    shared_file("medqa", "phrases_no_exclude_dev.jsonl")
    secret = "sk-test-DO-NOT-LEAK-1234"
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    monkeypatch.setenv("M2BENCH_GRADER_BASE_URL", f"http://user:{secret}@grader:8000/v1")
    paths = data.write(data.build(["medqa"], limit=50), tmp_path)
    for path in paths.values():
        assert secret.encode() not in path.read_bytes()


def test_bad_source_names_the_valid_ones():
    with pytest.raises(ArgumentError, match="healthbench, medqa, consultation"):
        data.parse_sources("healthbench,gsm8k")
    with pytest.raises(ArgumentError, match="val_fraction"):
        data.build(["medqa"], val_fraction=1.5)


@pytest.mark.slow
def test_the_exported_parquet_loads_through_verls_rlhf_dataset(tmp_path):
    from verl.utils.dataset.rl_dataset import RLHFDataset, collate_fn

    from tests.helpers.verl_cpu import cpu_config, exported_rows

    rows = [group[0] for group in exported_rows().values()]  # one row of each source
    paths = data.write(data.Export(train=rows, val=rows[:1]), tmp_path)
    cfg = cpu_config("data.max_prompt_length=8192")
    from transformers import AutoTokenizer

    from verl_recipes.m2_grpo.cpu_steps import embedded_model_dir

    dataset = RLHFDataset([str(paths["train"])], AutoTokenizer.from_pretrained(embedded_model_dir()), cfg.data)
    assert len(dataset) == len(rows) == 3
    items = [dataset[i] for i in range(len(dataset))]
    for item, row in zip(items, rows):
        assert [dict(m) for m in item["raw_prompt"]] == row["prompt"]  # what the agent loops read
        assert item["data_source"] == row["data_source"] and item["agent_name"] == row["agent_name"]
        assert dict(item["reward_model"]) == row["reward_model"]
        assert {k: item["extra_info"][k] for k in data.EXTRA_FIELDS if k != "index"} == {
            k: row["extra_info"][k] for k in data.EXTRA_FIELDS if k != "index"
        }
    batch = collate_fn(items)
    assert list(batch["agent_name"]) == [r["agent_name"] for r in rows]
    assert sorted(batch["agent_name"]) == ["m2_consultation", "single_turn_agent", "single_turn_agent"]
