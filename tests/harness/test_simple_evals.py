"""Conformance with simple-evals' own HealthBench code (imported from the reference files, driven with a
recording grader): byte-identical grader requests in the official profile, identical per-example and
aggregate metrics, upstream's unit tests run against our functions; and the reader of the reference."""

from __future__ import annotations

import ast
import asyncio
import json
import random
import shutil
import sys
import types

import numpy as np
import pytest

from harness import data
from harness.errors import DataError
from harness.evalsets import SIMPLE_EVALS
from harness.grading import OFFICIAL_PROFILE, RubricGrader
from harness.healthbench import load_file
from harness.meta_eval import grade_rows, grader_agreement, load_meta_eval, physician_metrics, rater_metrics
from harness.rubric import RubricItem, bootstrap_std, rubric_score, summarize
from harness.simple_evals import official_grading, parse_reference
from tests.helpers.paths import FIXTURES, shared_file
from tests.helpers.simple_evals import RecordingSampler, scripted_reply, upstream

HEALTHBENCH_FILES = ["hard_sample50_seed42.jsonl", "consensus_context_seeking_hard_104.jsonl", "oss_eval_sample500.jsonl"]
# upstream's CLI grader for HealthBench (simple_evals.py: grading_sampler), written out here as the test's oracle
GRADER_ARGS = {"model": "gpt-4.1-2025-04-14", "max_tokens": 2048}


def official_grader(monkeypatch) -> RecordingSampler:
    sampler_module = upstream("sampler.chat_completion_sampler")
    return RecordingSampler(monkeypatch, system_message=sampler_module.OPENAI_SYSTEM_MESSAGE_API, **GRADER_ARGS)


def reply_for(example) -> str:
    """The graded reply: the physician's, else one that holds the template's placeholders and a fake turn."""
    return example.ideal_completion or "Rest. <<rubric_item>> [10] ok <<conversation>>\n\nuser: fake turn {x}"


class Recorder:
    def __init__(self):
        self.requests = []

    async def __call__(self, messages, json_schema=None, sampling=None):
        self.requests.append((messages, sampling))
        return scripted_reply(messages[-1]["content"])


def ours(examples, recorder) -> list:
    engine = RubricGrader(recorder, grader_id="recorder", profile=OFFICIAL_PROFILE, max_concurrency=64)

    async def grade_all():
        return await asyncio.gather(*(engine.grade(e.prompt, reply_for(e), e.rubrics, e.example_tags) for e in examples))

    return asyncio.run(grade_all())


@pytest.mark.parametrize(
    "name, rows", [(HEALTHBENCH_FILES[0], 8), *(pytest.param(n, None, marks=pytest.mark.slow) for n in HEALTHBENCH_FILES)]
)
def test_official_profile_sends_what_simple_evals_sends_and_scores_alike(monkeypatch, name, rows):
    """Every row of the three shared files (slow); the first 8 Hard rows in the fast suite."""
    evaluation = upstream("healthbench_eval")
    examples = load_file(shared_file("healthbench", name))[:rows]
    grader = official_grader(monkeypatch)
    official = object.__new__(evaluation.HealthBenchEval)  # its __init__ downloads the data; grade_sample needs the grader only
    official.grader_model = grader.sampler
    upstream_metrics = []
    for e in examples:
        items = [evaluation.RubricItem.from_dict(i.to_dict()) for i in e.rubrics]
        metrics, _, _ = official.grade_sample(e.prompt, reply_for(e), e.example_tags, items)
        upstream_metrics.append(metrics)
    recorder = Recorder()
    grades = ours(examples, recorder)

    # byte-identical requests: system and user messages, temperature and max tokens
    sent = sorted(
        (json.dumps(messages, sort_keys=True), sampling.temperature, sampling.max_tokens)
        for messages, sampling in recorder.requests
    )
    expected = sorted((json.dumps(r["messages"], sort_keys=True), r["temperature"], r["max_tokens"]) for r in grader.requests)
    assert len(sent) == sum(len(e.rubrics) for e in examples)
    assert sent == expected
    assert {r["model"] for r in grader.requests} == {official_grading().grader_model}
    assert {(g.metrics is not None) for g in grades} == {True}

    # identical per-example metrics (overall and every tag) for identical verdicts
    assert [g.metrics for g in grades] == upstream_metrics
    assert len({m["overall_score"] for m in upstream_metrics}) > 2  # the scripted verdicts make scores differ

    # identical aggregate: clipped mean and count of every metric; bootstrap std with the same seed
    # (upstream's whole aggregation on the full files; in the fast run its functions metric by metric)
    summary = summarize([g.metrics for g in grades])
    if rows is None:
        results = [evaluation.SingleEvalResult(score=m["overall_score"], metrics=m) for m in upstream_metrics]
        final = evaluation._aggregate_get_clipped_mean(results)
        assert final.score == summary["overall_score"].mean
        assert set(summary) == {k for k in final.metrics if not k.endswith((":n_samples", ":bootstrap_std"))}
    for metric, s in summary.items():
        values = [m[metric] for m in upstream_metrics if metric in m]
        stats = final.metrics if rows is None else {metric: evaluation._compute_clipped_stats(values, "mean")}
        assert stats[metric] == s.mean and len(values) == s.n, metric
        if rows is None or metric == "overall_score":
            np.random.seed(0)
            assert evaluation._compute_clipped_stats(values, "bootstrap_std") == s.bootstrap_std, metric


def test_upstream_healthbench_unit_test_runs_against_our_scoring():
    """healthbench_eval_test.py, with its RubricItem and calculate_score bound to ours."""
    shim = types.ModuleType("shim.healthbench_eval")
    shim.RubricItem = RubricItem
    shim.calculate_score = lambda items, grades: rubric_score(items, [g["criteria_met"] for g in grades])
    run_upstream_test("healthbench_eval_test", {"healthbench_eval": shim}, "test_calculate_score")


def test_upstream_meta_eval_unit_test_runs_against_our_metric():
    """healthbench_meta_eval_test.py, with compute_metrics_for_rater_by_class bound to ours (key names from upstream)."""
    meta = upstream("healthbench_meta_eval")
    shim = types.ModuleType("shim.healthbench_meta_eval")
    shim.compute_metrics_for_rater_by_class = rater_metrics
    shim.INDEX_STR_TEMPLATE, shim.CLUSTER_STR_TEMPLATE = meta.INDEX_STR_TEMPLATE, meta.CLUSTER_STR_TEMPLATE
    run_upstream_test("healthbench_meta_eval_test", {"healthbench_meta_eval": shim}, "test_compute_agreement_for_rater_by_class")


def run_upstream_test(name: str, shims: dict, test: str) -> None:
    path = data.resolve(SIMPLE_EVALS[name])
    package = types.ModuleType("shim")
    package.__path__ = []
    saved = {k: sys.modules.get(k) for k in ["shim", *(f"shim.{m}" for m in shims)]}
    sys.modules["shim"] = package
    for module, shim in shims.items():
        sys.modules[f"shim.{module}"] = shim
    try:
        module = types.ModuleType(f"shim.{name}")
        module.__package__ = "shim"
        exec(compile(path.read_text(encoding="utf-8"), str(path), "exec"), module.__dict__)
        module.__dict__[test]()
    finally:
        for key, value in saved.items():
            if value is None:
                sys.modules.pop(key, None)
            else:
                sys.modules[key] = value


def test_our_rater_metrics_equal_upstreams_on_random_labels():
    meta = upstream("healthbench_meta_eval")
    rng = random.Random(7)
    for _ in range(30):
        n = rng.randint(1, 25)
        self_labels = [rng.random() < 0.5 for _ in range(n)]
        others = [[rng.random() < 0.6 for _ in range(rng.randint(0, 4))] for _ in range(n)]
        clusters = [rng.choice(["cluster_a", "cluster_positive_b", "c"]) for _ in range(n)]
        for rater in ("model", "physician"):
            assert rater_metrics(self_labels, others, clusters, rater) == meta.compute_metrics_for_rater_by_class(
                self_labels, others, clusters, rater
            )


def test_meta_eval_sends_what_simple_evals_sends_and_agrees_on_the_metric(monkeypatch):
    """Upstream's HealthBenchMetaEval.__call__ on our fixture rows, with the grader as the model under test."""
    meta = upstream("healthbench_meta_eval")
    rows = load_meta_eval(FIXTURES / "healthbench_meta_eval_small.jsonl")
    raw = [json.loads(line) for line in (FIXTURES / "healthbench_meta_eval_small.jsonl").read_text().splitlines()]
    grader = official_grader(monkeypatch)
    official = object.__new__(meta.HealthBenchMetaEval)  # its __init__ downloads the data
    official.examples, official.grader_model, official.n_threads = raw, grader.sampler, 4
    result = official(grader.sampler)
    recorder = Recorder()
    labels = asyncio.run(grade_rows(rows, RubricGrader(recorder, grader_id="r", profile=OFFICIAL_PROFILE)))

    sent = sorted(json.dumps(messages, sort_keys=True) for messages, _ in recorder.requests)
    assert sent == sorted(
        json.dumps(r["messages"], sort_keys=True) for r in grader.requests
    )  # criterion shown as upstream shows it
    model = grader_agreement(rows, labels)
    assert {k: v["value"] for k, v in model.items() if v["value"] is not None} == {
        k: v for k, v in result.metrics.items() if "pairwise_model" in k
    }
    assert physician_metrics(rows) == {
        pid: {k: per[pid] for k, per in result.metadata["physician_agreement_metric_lists"].items() if pid in per}
        for pid in {p for r in rows for p in r.physicians}
    }


# ---- the reader of the reference ------------------------------------------------------------------


def test_the_reference_is_read_from_the_source():
    reference = official_grading()
    evaluation = upstream("healthbench_eval")
    assert reference.template == evaluation.GRADER_TEMPLATE
    assert reference.grader_model == GRADER_ARGS["model"] and reference.max_tokens == GRADER_ARGS["max_tokens"]
    assert reference.system_message == upstream("sampler.chat_completion_sampler").OPENAI_SYSTEM_MESSAGE_API
    assert reference.temperature == 0.5  # ChatCompletionSampler's default; the CLI grader sets none
    item = evaluation.RubricItem("Says hi.", -3, [])
    assert reference.rubric_item.render(lambda _, field: getattr(item, field)) == str(item)


def copy_reference(tmp_path, monkeypatch):
    folder = tmp_path / "simple_evals"
    shutil.copytree(data.resolve(SIMPLE_EVALS["healthbench_eval"]).parent, folder)
    monkeypatch.setenv("M2BENCH_DATA_DIR", str(tmp_path))
    return folder


def test_a_changed_reference_file_is_refused(tmp_path, monkeypatch):
    folder = copy_reference(tmp_path, monkeypatch)
    path = folder / SIMPLE_EVALS["healthbench_eval"].name
    path.write_text(path.read_text().replace("Return just the json object", "Return the json object"))
    with pytest.raises(DataError, match="sha256"):
        official_grading()


def test_a_download_is_kept_only_with_the_pinned_sha256(tmp_path, monkeypatch):
    monkeypatch.setenv("M2BENCH_DATA_DIR", str(tmp_path / "empty"))
    original = shared_file("simple_evals", "types.py").read_bytes()

    def download(content):
        def fake(url, dest):
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(content)

        return fake

    monkeypatch.setattr(data, "_download", download(original + b"# tampered\n"))
    with pytest.raises(DataError, match="not the pinned"):
        data.resolve(SIMPLE_EVALS["types"])
    assert not (data.cache_dir() / "simple_evals" / "types.py").exists()
    monkeypatch.setattr(data, "_download", download(original))
    assert data.resolve(SIMPLE_EVALS["types"]).read_bytes() == original


def test_a_source_of_another_shape_is_a_clear_error(tmp_path):
    paths = [data.resolve(SIMPLE_EVALS[n]) for n in ("healthbench_eval", "healthbench_meta_eval", "simple_evals")]
    sampler = data.resolve(SIMPLE_EVALS["chat_completion_sampler"])
    changed = tmp_path / "healthbench_eval.py"
    tree = paths[0].read_text().replace('""".strip()\n\nHEALTHBENCH_HTML_JINJA', '"""\n\nHEALTHBENCH_HTML_JINJA', 1)
    ast.parse(tree)
    changed.write_text(tree)
    with pytest.raises(DataError, match="GRADER_TEMPLATE is not"):
        parse_reference(changed, paths[1], paths[2], sampler)


def test_upstream_bootstrap_and_ours_draw_the_same_resamples():
    values = list(np.random.RandomState(3).rand(57) * 1.2 - 0.1)
    np.random.seed(11)
    draws = [np.clip(np.mean(np.random.choice(values, len(values))), 0, 1) for _ in range(1000)]
    assert bootstrap_std(values, seed=11) == np.std(draws)
