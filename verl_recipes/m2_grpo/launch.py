"""``python -m verl_recipes.m2_grpo [--dry-run] key=value ...``: data, config, reward check, launch.

Our own keys: ``model=`` (policy path), ``data=healthbench,medqa,consultation``, ``stage=1|2|3``.
Every other ``key=value`` is a Hydra override of verl's trainer config (``trainer.n_gpus_per_node=8``).
The config is verl's ``ppo_trainer`` composed with ``config/m2_grpo.yaml`` (Hydra), checked with
verl's own ``validate_config``; training runs ``python -m verl.trainer.main_ppo`` with the same
config path and overrides, so what the dry run prints is exactly what verl gets.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

from harness.errors import ArgumentError, M2BenchError

CONFIG_DIR = Path(__file__).resolve().parent / "config"
CONFIG_NAME = "m2_grpo"
STAGES = {"1": "stage1_verifiable", "2": "stage2_rubric", "3": "stage3_consultation"}
USAGE = """usage: python -m verl_recipes.m2_grpo [--dry-run] [model=PATH] [data=healthbench,medqa,consultation]
                                  [stage=1|2|3] [HYDRA_OVERRIDE ...]

  --dry-run   build the data, compose and validate the verl config, check the reward on a few
              samples, print the resolved config and the launch command, then stop (no GPU needed)
"""


class NoGPU(M2BenchError):
    """Training was asked for on a machine without a usable GPU."""


def parse_args(argv: list[str]) -> tuple[bool, list[str]]:
    """(dry_run, Hydra overrides) from our command line."""
    dry_run = False
    overrides: list[str] = []
    for arg in argv:
        if arg in ("--dry-run", "--dry_run"):
            dry_run = True
            continue
        if arg.startswith("-") or "=" not in arg:
            raise ArgumentError("argument", arg, "--dry-run or key=value overrides (see --help)")
        key, value = arg.split("=", 1)
        if key == "model":
            overrides.append(f"actor_rollout_ref.model.path={value}")
        elif key == "data":
            from verl_recipes.m2_grpo.data import parse_sources

            overrides.append(f"m2.data=[{','.join(parse_sources(value))}]")
        elif key == "stage":
            name = STAGES.get(value.removeprefix("stage"), value)
            if name not in STAGES.values():
                raise ArgumentError("stage", value, list(STAGES))
            overrides.append(f"stage={name}")
        else:
            overrides.append(arg)
    return dry_run, overrides


def compose(overrides: list[str]):
    """verl's trainer config + ours + overrides, as verl's main_ppo would compose it."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base=None):
        return hydra_compose(config_name=CONFIG_NAME, overrides=overrides)


def data_overrides(cfg, overrides: list[str]) -> tuple[list[str], Path]:
    """Fixed paths the launcher adds: absolute data files and the agent loop registry file."""
    data_dir = Path(cfg.m2.data_dir).expanduser().resolve()
    extra = [
        f"data.train_files={data_dir / 'train.parquet'}",
        f"data.val_files={data_dir / 'val.parquet'}",
        f"actor_rollout_ref.rollout.agent.agent_loop_config_path={CONFIG_DIR / 'agent_loops.yaml'}",
    ]
    keys = {o.split("=", 1)[0].lstrip("+") for o in overrides}
    return [o for o in extra if o.split("=", 1)[0] not in keys] + overrides, data_dir


def validate(cfg) -> None:
    """verl's own checks: validate_config plus the typed dataclasses of the main sections."""
    import warnings

    from verl.trainer.ppo.utils import need_critic, need_reference_policy
    from verl.utils.config import omega_conf_to_dataclass, validate_config

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "critic disabled for grpo" is intended
        validate_config(cfg, use_reference_policy=need_reference_policy(cfg), use_critic=need_critic(cfg))
    omega_conf_to_dataclass(cfg.algorithm)
    omega_conf_to_dataclass(cfg.actor_rollout_ref.rollout)
    from verl.trainer.ppo.reward import get_custom_reward_fn, resolve_reward_manager_cls

    resolve_reward_manager_cls(cfg)  # the reward manager name is registered
    if get_custom_reward_fn(cfg) is None:  # our compute_score loads the way verl loads it
        raise ArgumentError("reward.custom_reward_function.path", cfg.reward.custom_reward_function.path, "a module path")


def launch_command(overrides: list[str]) -> list[str]:
    return [
        sys.executable,
        "-m",
        "verl.trainer.main_ppo",
        f"--config-path={CONFIG_DIR}",
        f"--config-name={CONFIG_NAME}",
        *overrides,
    ]


def gpu_problem() -> str | None:
    """Why training cannot start here, or None."""
    try:
        import torch

        if not torch.cuda.is_available() or torch.cuda.device_count() == 0:
            return "no CUDA GPU is visible (torch.cuda.is_available() is False)"
    except ImportError:
        return "torch is not installed"
    missing = [m for m in ("transfer_queue",) if importlib.util.find_spec(m) is None]
    engines = [m for m in ("vllm", "sglang") if importlib.util.find_spec(m) is not None]
    if missing or not engines:
        return (
            "verl's GPU extras are missing (need transfer_queue and vllm or sglang): "
            "pip install 'verl[vllm]==0.9.1' on the GPU machine"
        )
    return None


def no_gpu(problem: str) -> NoGPU:
    return NoGPU(f"cannot train: {problem}. Use --dry-run to check data, config and reward without a GPU.")


def check_gpus(cfg) -> None:
    problem = gpu_problem()
    if problem is None:
        import torch

        have, want = torch.cuda.device_count(), int(cfg.trainer.n_gpus_per_node)
        if have < want:
            problem = f"trainer.n_gpus_per_node={want} but this node has {have} GPU(s); set trainer.n_gpus_per_node={have}"
    if problem:
        raise no_gpu(problem)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if any(a in ("-h", "--help") for a in argv):
        print(USAGE)
        return 0
    try:
        dry_run, overrides = parse_args(argv)
        if not dry_run:
            if problem := gpu_problem():  # stop at once, before any work
                raise no_gpu(problem)
        cfg = compose(overrides)
        overrides, data_dir = data_overrides(cfg, overrides)
        cfg = compose(overrides)
        validate(cfg)
        from verl_recipes.m2_grpo import data

        export = data.build(cfg.m2.data, float(cfg.m2.val_fraction), cfg.m2.max_rows_per_source)
        paths = data.write(export, data_dir)
        print(f"data: {paths['train']} ({len(export.train)} rows), {paths['val']} ({len(export.val)} rows)")
        command = launch_command(overrides)
        if dry_run:
            from omegaconf import OmegaConf

            from verl_recipes.m2_grpo.check import reward_check

            print("reward check (verl reward manager + harness scorers):")
            results = asyncio.run(reward_check(cfg, paths))
            for line in results:
                print("  " + json.dumps(line))
            print("resolved config:")
            print(OmegaConf.to_yaml(cfg, resolve=True))
            print("launch command:")
            print(shlex.join(command))
            print("dry run complete: nothing was trained.")
            return 0
        check_gpus(cfg)
        print("launching: " + shlex.join(command), flush=True)
        return subprocess.call(command, env={**os.environ, "HYDRA_FULL_ERROR": "1"})
    except M2BenchError as exc:  # our clear errors: no stack trace
        print(f"m2_grpo: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # Hydra/verl config errors: show the message, not the trace
        if type(exc).__module__.split(".")[0] in ("hydra", "omegaconf"):
            print(f"m2_grpo: config error: {exc}", file=sys.stderr)
            return 2
        raise


def run_cli() -> None:
    raise SystemExit(main())
