"""API keys and credentials in base URLs never reach logs, reports, caches or exported files.

A run uses key ``sk-test-SECRET123`` for the model under test and the grader, and base URL
``http://user:pass@127.0.0.1:<port>/v1`` for the model under test (with one grader fault, so error
texts are logged too); then every byte written (the Inspect log, unzipped; the grading cache; the
results table as CSV and parquet; the console) is searched for the secrets. Credentials in base-URL
variables of an `inspect eval` run (the grader role's too) are covered by tests/harness/evals/test_provider.py.
"""

from __future__ import annotations

import asyncio
import logging
import zipfile
from pathlib import Path

import pytest
from inspect_ai import eval as inspect_eval
from inspect_ai.model import GenerateConfig, get_model

from harness.clients import OpenAIChat, redact_url
from harness.evals.logs import results_table
from harness.grading import RubricGrader, parse_grading_prompt
from harness.healthbench import load_file
from harness.tools.sim_server import SimServer
from tests.helpers.paths import FIXTURES, ROOT, shared_file

KEY = "sk-test-SECRET123"
SECRETS = ("SECRET123", "user:pass", "pass@")
DATA = FIXTURES / "reliability_hb.jsonl"


def with_credentials(url: str) -> str:
    return url.replace("http://", "http://user:pass@", 1)


class FailsOnce(SimServer):
    """Every grading request about the knee sample fails (so error texts get logged)."""

    async def _complete(self, request, text, arrived):
        if "swollen and warm" in text and parse_grading_prompt(request["messages"]) is not None:
            self._queued.appendleft("http_500")
        return await super()._complete(request, text, arrived)


def files_text(root: Path) -> dict[str, bytes]:
    """Every file under root as bytes; zip archives (Inspect .eval logs) are opened."""
    out = {}
    for path in root.rglob("*"):
        if not path.is_file():
            continue
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                for member in archive.namelist():
                    out[f"{path}!{member}"] = archive.read(member)
        else:
            out[str(path)] = path.read_bytes()
    return out


def leaks(blobs: dict[str, bytes]) -> list[str]:
    return [f"{name}: {secret}" for name, blob in blobs.items() for secret in SECRETS if secret.encode() in blob]


@pytest.mark.slow  # over ~3 s: the fast loop leaves it out
def test_no_secret_in_log_cache_or_results(monkeypatch, tmp_path, capfd, caplog):
    caplog.set_level(logging.INFO)
    monkeypatch.chdir(ROOT)
    cache = tmp_path / "cache"
    monkeypatch.setenv("M2BENCH_CACHE_DIR", str(cache))
    with SimServer(0.0) as model_srv, FailsOnce(0.0) as grader_srv:
        monkeypatch.setenv("SIMM_BASE_URL", with_credentials(model_srv.base_url))
        monkeypatch.setenv("SIMM_API_KEY", KEY)
        monkeypatch.setenv("SIMG_BASE_URL", grader_srv.base_url)
        monkeypatch.setenv("SIMG_API_KEY", KEY)
        grader = get_model("openai-api/simg/sim-grader", config=GenerateConfig(max_retries=0), memoize=False, max_retries=0)
        [log] = inspect_eval(
            "tasks/healthbench_hard",
            task_args={"data_file": str(DATA), "max_error_fraction": 0.5},
            model=get_model("openai-api/simm/sim-model", memoize=False, max_retries=0),
            model_roles={"grader": grader},
            log_dir=str(tmp_path / "logs"),
            display="none",
            limit=4,
            log_model_api=True,
        )
        assert grader_srv.stats()["grader_calls"] > 0 and model_srv.stats()["model_calls"] == 4  # the URLs worked
    assert log.status == "success"
    assert [s.id for s in log.samples if s.error] == ["rel-4"]  # an error text was logged

    table = results_table([tmp_path / "logs"], include_incomplete=True)  # the run has an errored sample
    assert len(table) == 1
    table.to_csv(tmp_path / "results.csv", index=False)
    table.to_parquet(tmp_path / "results.parquet", index=False)

    blobs = files_text(tmp_path)
    assert any(name.endswith(".eval") or ".eval!" in name for name in blobs)
    assert any("grading.sqlite" in name for name in blobs)
    captured = capfd.readouterr()
    blobs["stdout+stderr"] = (captured.out + captured.err).encode()
    blobs["logging"] = caplog.text.encode()
    assert leaks(blobs) == []


def test_openai_chat_never_shows_credentials(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    with SimServer(0.0, error_rate=1.0, faults=["http_500"]) as srv:
        url = with_credentials(srv.base_url)
        chat = OpenAIChat(url, "sim-grader", api_key=KEY, max_retries=0)
        assert all(s not in text for s in SECRETS for text in (chat.name, repr(chat), str(chat), redact_url(url)))
        example = load_file(DATA)[0]
        from harness.cache import GradingCache

        db = GradingCache(tmp_path / "grading.sqlite")
        grade = asyncio.run(
            RubricGrader(chat, grader_id=chat.name, retry_delay=0.01, cache=db).grade(
                example.prompt, "Drink fluids.", example.rubrics
            )
        )
    assert grade.score is None and grade.errors
    texts = [v.error for v in grade.errors] + [caplog.text]
    assert [t for t in texts for s in SECRETS if s in t] == []


def test_verl_reward_and_export_hold_no_secret(monkeypatch, tmp_path, caplog):
    from verl_recipes.m2_grpo import data, grader, reward

    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("M2BENCH_CACHE_DIR", str(tmp_path / "cache"))
    with SimServer(0.0) as srv:
        monkeypatch.setenv(reward.GRADER_URL_ENV, with_credentials(srv.base_url))
        monkeypatch.setenv(reward.GRADER_MODEL_ENV, "sim-grader")
        monkeypatch.setenv(grader.GRADER_KEY_ENV, KEY)
        reward.reset()
        try:
            example = load_file(DATA)[0]
            result = asyncio.run(reward.rubric_reward(example.prompt, "Drink fluids.", example.rubrics))
            grader_id = reward.engine().grader_id
        finally:
            reward.reset()
    assert result["reward_valid"] == 1.0
    assert all(s not in grader_id for s in SECRETS)
    shared_file("healthbench", "oss_eval_sample500.jsonl")  # the export's training pool on this machine
    export = data.build(data.parse_sources("healthbench"), 0.2, 20)
    data.write(export, tmp_path / "export")
    blobs = files_text(tmp_path)
    assert any(name.endswith("train.parquet") for name in blobs)
    blobs["logging"] = caplog.text.encode()
    assert leaks(blobs) == []
