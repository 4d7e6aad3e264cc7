"""The launcher: verl config composition and validation, stages, documented overrides, launch checks
(judges configured and answering, no-GPU refusal), the dry run."""

import os
import re
import shlex
import subprocess
import sys

import pytest

from harness.errors import ArgumentError
from harness.tools.sim_server import SimServer
from tests.helpers.paths import ROOT, shared_file
from verl_recipes.m2_grpo import check, launch, reward

ROLE_VARS = [f"M2BENCH_{role}_{what}" for role in ("GRADER", "PATIENT") for what in ("BASE_URL", "MODEL", "API_KEY")]


def test_composed_config_has_the_m2_grpo_settings_and_passes_verls_validation():
    overrides = launch.parse_args(["model=/models/tiny", "trainer.n_gpus_per_node=1"]).overrides
    cfg = launch.compose(overrides)
    launch.validate(cfg)  # verl's validate_config + typed dataclasses; raises on a bad config
    actor = cfg.actor_rollout_ref.actor
    assert cfg.algorithm.adv_estimator == "grpo" and cfg.algorithm.use_kl_in_reward is False
    assert actor.use_kl_loss is False and actor.loss_agg_mode == "token-mean"
    assert (actor.clip_ratio_low, actor.clip_ratio_high) == (0.2, 0.28)
    assert cfg.actor_rollout_ref.rollout.n == 8
    assert cfg.reward.reward_kwargs.overlong_buffer_cfg.enable is True
    assert cfg.reward.reward_kwargs.max_resp_len == cfg.data.max_response_length
    assert cfg.reward.custom_reward_function.path == "pkg://verl_recipes.m2_grpo.reward"
    assert cfg.actor_rollout_ref.model.path == "/models/tiny"
    assert cfg.m2.stage == 2 and list(cfg.m2.data) == ["healthbench"]


@pytest.mark.parametrize("stage,data,multi_turn", [("1", ["medqa"], False), ("stage3", ["consultation", "healthbench"], True)])
def test_stages(stage, data, multi_turn):
    cfg = launch.compose(launch.parse_args([f"stage={stage}"]).overrides)
    assert list(cfg.m2.data) == data and cfg.actor_rollout_ref.rollout.multi_turn.enable is multi_turn
    launch.validate(cfg)


@pytest.mark.slow
def test_a_config_verl_rejects_is_reported():
    overrides = launch.parse_args(["actor_rollout_ref.actor.loss_agg_mode=bogus"]).overrides
    with pytest.raises(Exception, match="Invalid loss_agg_mode: bogus"):
        launch.validate(launch.compose(overrides))
    code = launch.main(["--dry-run", "actor_rollout_ref.actor.loss_agg_mode=bogus"])
    assert code == 2  # reported as a config error, not a stack trace


def test_bad_arguments():
    with pytest.raises(ArgumentError, match="stage"):
        launch.parse_args(["stage=4"])
    with pytest.raises(ArgumentError, match="data"):
        launch.parse_args(["data=pubmedqa"])
    with pytest.raises(ArgumentError, match="--dry-run"):
        launch.parse_args(["--fast"])
    with pytest.raises(ArgumentError, match="--cpu-steps"):
        launch.parse_args(["--cpu-steps", "zero"])
    assert launch.parse_args(["--cpu-steps", "3", "--report-dir=out", "stage=1"]).cpu_steps == 3


def documented_commands() -> list[list[str]]:
    """Every `python -m verl_recipes.m2_grpo ...` line of the READMEs' bash blocks, as argument lists."""
    commands = []
    for readme in (ROOT / "README.md", ROOT / "verl_recipes" / "m2_grpo" / "README.md"):
        for block in re.findall(r"```bash\n(.*?)```", readme.read_text(), re.DOTALL):
            for line in block.replace("\\\n", " ").splitlines():
                if line.startswith("python -m verl_recipes.m2_grpo "):
                    commands.append(shlex.split(line.split("python -m verl_recipes.m2_grpo ", 1)[1], comments=True))
    return commands


@pytest.mark.slow  # composes and validates verl's config (seconds each)
def test_every_documented_command_composes_and_validates():
    commands = documented_commands()
    assert len(commands) >= 8
    for args in commands:
        parsed = launch.parse_args(args)
        launch.validate(launch.compose(parsed.overrides))


@pytest.mark.slow  # composes and validates verl's config (seconds each)
def test_a_launch_without_a_grader_fails_with_one_clear_line(monkeypatch, capsys):
    for name in ROLE_VARS:
        monkeypatch.delenv(name, raising=False)
    assert launch.main(["data=medqa", "trainer.n_gpus_per_node=1"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("m2_grpo: error: no grader configured")
    assert "M2BENCH_GRADER_BASE_URL" in err and "m2.allow_embedded_grader=true" in err


@pytest.mark.slow  # composes and validates verl's config (seconds each)
def test_a_stage_3_launch_with_only_half_a_patient_is_refused(monkeypatch, capsys):
    for name in ROLE_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("M2BENCH_PATIENT_BASE_URL", "http://127.0.0.1:9/v1")
    assert launch.main(["stage=3", "m2.allow_embedded_grader=true", "trainer.n_gpus_per_node=1"]) == 2
    assert "set both M2BENCH_PATIENT_BASE_URL and M2BENCH_PATIENT_MODEL" in capsys.readouterr().err


@pytest.mark.slow  # composes and validates verl's config (seconds each)
def test_a_grader_that_does_not_answer_stops_the_launch(monkeypatch, capsys):
    for name in ROLE_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("M2BENCH_GRADER_BASE_URL", "http://127.0.0.1:9/v1")  # nothing listens on port 9
    monkeypatch.setenv("M2BENCH_GRADER_MODEL", "judge")
    assert launch.main(["data=medqa", "trainer.n_gpus_per_node=1"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "grader endpoint (judge at http://127.0.0.1:9/v1) did not answer" in err


@pytest.mark.slow  # composes and validates verl's config (seconds each)
def test_a_launch_checks_the_judges_then_the_gpu(monkeypatch, capsys):
    for name in ROLE_VARS:
        monkeypatch.delenv(name, raising=False)
    with SimServer(latency_s=0.0) as srv:
        monkeypatch.setenv("M2BENCH_GRADER_BASE_URL", srv.base_url)
        monkeypatch.setenv("M2BENCH_GRADER_MODEL", "sim-grader")
        code = launch.main(["stage=3", "trainer.n_gpus_per_node=1"])
        assert srv.stats()["calls"] == 1  # one test request, shared by grader and patient (the same endpoint)
    out, err = capsys.readouterr()
    assert f"grader: sim-grader at {srv.base_url}" in out
    assert f"patient: sim-grader at {srv.base_url} (the grader's endpoint" in out
    if launch.gpu_problem() is not None:
        assert code == 2 and "cannot train" in err


@pytest.mark.slow
def test_without_a_gpu_training_stops_at_once_with_a_clear_message():
    if launch.gpu_problem() is None:
        pytest.skip("this machine can train")
    run = subprocess.run(
        [sys.executable, "-m", "verl_recipes.m2_grpo", "data=medqa", "m2.allow_embedded_grader=true"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 2
    assert "cannot train: no CUDA GPU" in run.stderr and "--dry-run" in run.stderr
    assert "Traceback" not in run.stderr + run.stdout


class ByteTokenizer:
    """Enough tokenizer for verl's reward manager (it only decodes response ids)."""

    def encode(self, text):
        return list(text.encode("utf-8"))

    def decode(self, ids, skip_special_tokens=True):
        return bytes(int(i) for i in ids).decode("utf-8", errors="replace")


async def always_met(messages, json_schema=None):
    return '{"explanation": "scripted", "criteria_met": true}'


@pytest.mark.slow
def test_dry_run_offline_through_verls_reward_manager(tmp_path, monkeypatch, capsys):
    shared_file("medqa", "phrases_no_exclude_dev.jsonl")
    shared_file("healthbench", "oss_eval_sample500.jsonl")
    monkeypatch.setattr(check, "check_tokenizer", ByteTokenizer)
    reward.reset()
    reward.configure(always_met, grader_id="scripted", cache=False)
    try:
        code = launch.main(["--dry-run", "data=medqa,healthbench", f"m2.data_dir={tmp_path}", "trainer.n_gpus_per_node=1"])
    finally:
        reward.reset()
    out = capsys.readouterr().out
    assert code == 0, out
    assert (tmp_path / "train.parquet").is_file() and (tmp_path / "val.parquet").is_file()
    lines = [line for line in out.splitlines() if line.startswith("  {")]
    assert len(lines) == 3  # MedQA right + wrong, one HealthBench row
    assert '"reward": 1.0' in lines[0] and '"reward": 0.0' in lines[1] and '"reward_valid": 1.0' in lines[2]
    command = out.split("launch command:\n", 1)[1].splitlines()[0]
    assert "-m verl.trainer.main_ppo" in command and f"data.train_files={tmp_path}/train.parquet" in command
    assert "adv_estimator: grpo" in out and "dry run complete" in out


@pytest.mark.slow
def test_dry_run_command_with_the_embedded_grader(tmp_path):
    shared_file("medqa", "phrases_no_exclude_dev.jsonl")
    shared_file("healthbench", "oss_eval_sample500.jsonl")
    env = {**os.environ, "M2BENCH_GRADING_CACHE": "0"}
    env.pop("M2BENCH_GRADER_BASE_URL", None)
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "verl_recipes.m2_grpo",
            "--dry-run",
            "data=medqa,healthbench",
            f"m2.data_dir={tmp_path}",
            "trainer.n_gpus_per_node=1",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        env=env,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert '"grader": "m2bench/default"' in run.stdout and "dry run complete" in run.stdout
