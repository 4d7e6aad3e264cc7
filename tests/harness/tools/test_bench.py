"""Benchmark plumbing (reduced size) and the engine properties the benchmarks rely on."""

import asyncio
import json
import subprocess
import sys

import pytest

import harness.grading as grading
from harness.cache import GradingCache
from harness.grading import RubricGrader
from harness.rubric import RubricItem
from harness.tools import bench
from tests.helpers.paths import ROOT
from tests.helpers.scripted import scripted_grader

ITEMS = [
    RubricItem("Advises urgent care for chest pain", 8),
    RubricItem("Mentions aspirin dose", 3),
    RubricItem("Recommends waiting it out", -6),
    RubricItem("Asks about age", 2),
]
CONVO = [{"role": "user", "content": "I have chest pain."}]


def test_modes_give_identical_scores_for_identical_verdicts():
    decide = lambda c: "aspirin" not in c  # noqa: E731
    grades = {}
    for mode in ("per_criterion", "batched"):
        grader = scripted_grader(decide)
        grades[mode] = (
            asyncio.run(RubricGrader(grader, grader_id="s", mode=mode).grade(CONVO, "Go to the ER.", ITEMS)),
            grader.calls,
        )
    per, batched = grades["per_criterion"], grades["batched"]
    assert per[0].score == batched[0].score == (8 + 2 - 6) / 13
    assert per[0].metrics == batched[0].metrics
    assert (per[1], batched[1]) == (len(ITEMS), 1)


def test_cache_returns_same_verdicts_and_is_keyed_on_grader_and_prompt_text(tmp_path, monkeypatch):
    cache = GradingCache(tmp_path / "c.sqlite")
    first = scripted_grader(lambda c: "age" in c)
    one = asyncio.run(RubricGrader(first, grader_id="judge-a", mode="batched", cache=cache).grade(CONVO, "r", ITEMS))
    again = scripted_grader(lambda c: True)  # would answer differently if asked
    hit = asyncio.run(RubricGrader(again, grader_id="judge-a", mode="batched", cache=cache).grade(CONVO, "r", ITEMS))
    assert again.calls == 0 and [v.met for v in hit.verdicts] == [v.met for v in one.verdicts]
    assert all(v.cached for v in hit.verdicts)
    other_model = asyncio.run(RubricGrader(again, grader_id="judge-b", mode="batched", cache=cache).grade(CONVO, "r", ITEMS))
    assert again.calls == 1 and all(v.met for v in other_model.verdicts)
    monkeypatch.setattr(grading, "_MANY", grading._MANY.replace("Rubric criteria:", "Criteria:"))  # an edited prompt
    grading._fingerprint.cache_clear()
    asyncio.run(RubricGrader(again, grader_id="judge-a", mode="batched", cache=cache).grade(CONVO, "r", ITEMS))
    grading._fingerprint.cache_clear()
    assert again.calls == 2
    other_response = asyncio.run(RubricGrader(again, grader_id="judge-a", mode="batched", cache=cache).grade(CONVO, "r2", ITEMS))
    assert again.calls == 3 and not any(v.cached for v in other_response.verdicts)


def test_identical_pairs_graded_concurrently_are_graded_once():
    scripted = scripted_grader(lambda c: "age" in c)

    async def grader(messages, schema=None):  # takes time, like a real grader, so the gradings overlap
        await asyncio.sleep(0.05)
        return await scripted(messages, schema)

    async def run(engine):
        return await asyncio.gather(*(engine.grade(CONVO, "same reply", ITEMS) for _ in range(5)))

    engine = RubricGrader(grader, grader_id="s", mode="batched")
    grades = asyncio.run(run(engine))
    assert scripted.calls == 1 and engine.shared_in_flight == 4
    assert len({g.score for g in grades}) == 1


@pytest.mark.slow
def test_small_benchmark_writes_reports(tmp_path):
    assert bench.main(["--small", "--load", "0", "--out", str(tmp_path)]) == 0
    for name in bench.SCENARIOS:
        found = tmp_path / f"{name}.json"
        assert found.with_suffix(".md").is_file()
        result = json.loads(found.read_text())
        assert result["machine"]["cores"] and result["config"] and result["figures"] and result["load_average_1m"]
    cost = json.loads((tmp_path / "grading_cost.json").read_text())["figures"]
    assert 0 < cost["grader_calls_ratio"] < 1 and 0 < cost["grader_input_tokens_ratio"] < 1
    assert cost["scores_identical"] is True
    throughput = json.loads((tmp_path / "throughput.json").read_text())["figures"]
    assert set(throughput["wall_time_over_lower_bound"]) == {str(c) for c in bench.SMALL.concurrencies}
    assert all(v >= 0.9 for v in throughput["wall_time_over_lower_bound"].values())  # cannot beat the bound


def test_perfect_prefix_reuse_counts_the_token_trie():
    # tokens a b c d / a b c e / a x / a b c d (a repeat): trie nodes a, b, c, d, e, x
    assert bench.perfect_prefix_reuse(["a b c d", "a b c e", "a x", "a b c d"]) == 6
    assert bench.perfect_prefix_reuse(["p q", "r s"]) == 4


def test_perfect_block_reuse_counts_full_blocks_once_and_every_partial_tail():
    # blocks of 2: "a b|c d" and "a b|c e" share block "a b" only (c d != c e); "a b|c d|x" reuses both blocks
    texts = ["a b c d", "a b c e", "a b c d x"]
    # distinct block chains: (a b), (a b c d), (a b c e) -> 3 blocks x 2 tokens; tails: 0 + 0 + 1
    assert bench.perfect_prefix_reuse(texts, block=2) == 7
    assert bench.perfect_prefix_reuse(texts, block=2) >= bench.perfect_prefix_reuse(texts)  # never below the token trie
    assert bench.perfect_prefix_reuse(["p q r"], block=16) == 3  # a request shorter than a block is never reused


def test_a_child_process_reports_its_own_peak_rss_not_its_parents():
    # ru_maxrss survives fork/exec on Linux (the parent's high-water mark is carried into the child), so a
    # child started by a large benchmark process would report the parent's peak as its own
    ballast = bytearray(300 * 1024 * 1024)  # this process: > 300 MB resident
    ballast[::4096] = b"x" * len(ballast[::4096])
    code = "from harness.tools.bench import peak_rss_mb; print(peak_rss_mb())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert float(out.stdout.strip()) < 200  # the child imports the benchmark module only (about 50 MB)
    del ballast
