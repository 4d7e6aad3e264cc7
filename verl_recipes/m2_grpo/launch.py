"""``python -m verl_recipes.m2_grpo [--dry-run | --cpu-steps N] key=value ...``: data, config, checks, launch.

Our own keys: ``model=`` (policy path), ``data=healthbench,medqa,consultation``, ``stage=1|2|3``.
Every other ``key=value`` is a Hydra override of verl's trainer config (``trainer.n_gpus_per_node=8``).
The config is verl's ``ppo_trainer`` composed with ``config/m2_grpo.yaml`` (Hydra), checked with
verl's own ``validate_config``; training runs ``python -m verl.trainer.main_ppo`` with the same
config path and overrides, so what the dry run prints is exactly what verl gets. A real launch
first checks its judges: a grader endpoint (and a patient, for consultation data) must be
configured (``grader.endpoint``) and answer one request, unless ``m2.allow_embedded_grader=true``.
``--cpu-steps N`` runs N real GRPO steps on the CPU (``cpu_steps.py``).
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import ArgumentError, M2BenchError

CONFIG_DIR = Path(__file__).resolve().parent / "config"
CONFIG_NAME = "m2_grpo"
STAGES = {"1": "stage1_verifiable", "2": "stage2_rubric", "3": "stage3_consultation"}
USAGE = """usage: python -m verl_recipes.m2_grpo [--dry-run | --cpu-steps N [--report-dir DIR]] [model=PATH]
                                  [data=healthbench,medqa,consultation] [stage=1|2|3] [HYDRA_OVERRIDE ...]

  --dry-run       build the data, compose and validate the verl config, check the reward on a few
                  samples, print the resolved config and the launch command, then stop (no GPU needed)
  --cpu-steps N   N real GRPO steps on the CPU with the embedded model as the policy and verl's own
                  agent loops, reward manager, advantage, loss and optimizer; without grader/patient
                  endpoints the simulated server plays both (a plumbing check); writes a metrics table
                  and chart to --report-dir (default reports/m2_grpo)
"""
DEFAULT_REPORT_DIR = "reports/m2_grpo"


class NoGPU(M2BenchError):
    """Training was asked for on a machine without a usable GPU."""


class LaunchError(M2BenchError):
    """A launch check failed (judges not configured or not answering)."""


@dataclass
class Command:
    dry_run: bool = False
    cpu_steps: int = 0
    report_dir: str = DEFAULT_REPORT_DIR
    overrides: list[str] = field(default_factory=list)


def parse_args(argv: list[str]) -> Command:
    """Our command line: flags, our own keys, Hydra overrides."""
    command = Command()
    args = list(argv)
    while args:
        arg = args.pop(0)
        if arg in ("--dry-run", "--dry_run"):
            command.dry_run = True
            continue
        if arg.split("=", 1)[0] in ("--cpu-steps", "--report-dir"):
            flag, _, value = arg.partition("=")
            if not value:
                if not args:
                    raise ArgumentError(flag, "(missing)", "a value")
                value = args.pop(0)
            if flag == "--report-dir":
                command.report_dir = value
            elif not value.isdigit() or int(value) < 1:
                raise ArgumentError("--cpu-steps", value, "a positive number of steps")
            else:
                command.cpu_steps = int(value)
            continue
        if arg.startswith("-") or "=" not in arg:
            raise ArgumentError("argument", arg, "--dry-run, --cpu-steps N or key=value overrides (see --help)")
        key, value = arg.split("=", 1)
        if key == "model":
            command.overrides.append(f"actor_rollout_ref.model.path={value}")
        elif key == "data":
            from verl_recipes.m2_grpo.data import parse_sources

            command.overrides.append(f"m2.data=[{','.join(parse_sources(value))}]")
        elif key == "stage":
            name = STAGES.get(value.removeprefix("stage"), value)
            if name not in STAGES.values():
                raise ArgumentError("stage", value, list(STAGES))
            command.overrides.append(f"stage={name}")
        else:
            command.overrides.append(arg)
    if command.dry_run and command.cpu_steps:
        raise ArgumentError("--cpu-steps", command.cpu_steps, "either --dry-run or --cpu-steps, not both")
    return command


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


def judge_roles(cfg) -> list[str]:
    """The model roles a run needs: the grader always, the patient when consultations are in the data."""
    return ["grader", *(["patient"] if "consultation" in list(cfg.m2.data) else [])]


def check_judges(cfg, ping: bool = True) -> list[str]:
    """A real launch's checks: each role configured (or the embedded model explicitly allowed) and
    each endpoint answering one request. Returns the lines saying which models judge and simulate."""
    from verl_recipes.m2_grpo import grader

    lines, pinged = [], set()
    for role in judge_roles(cfg):
        found = grader.endpoint(role)
        if found is None and not cfg.m2.allow_embedded_grader:
            raise LaunchError(
                f"no {role} configured: set {grader.role_env(role, 'BASE_URL')} and {grader.role_env(role, 'MODEL')} "
                "(an OpenAI-compatible server), or pass m2.allow_embedded_grader=true to let the embedded 135M CPU model "
                f"play the {role} (far too slow and weak for training)"
            )
        if found is not None and ping and (found.base_url, found.model) not in pinged:
            pinged.add((found.base_url, found.model))
            try:
                reply = asyncio.run(
                    found.client(max_retries=1, timeout=60, max_tokens=4)([{"role": "user", "content": "Reply OK."}])
                )
            except Exception as exc:  # any transport or HTTP failure: one line naming the endpoint
                raise LaunchError(f"the {role} endpoint ({grader.describe(role)}) did not answer a test request: {exc}") from None
            if reply is None:
                raise LaunchError(f"the {role} endpoint ({grader.describe(role)}) gave no reply to a test request")
        lines.append(f"{role}: {grader.describe(role)}")
    return lines


def cpu_run(command: Command) -> int:
    """``--cpu-steps N``: real GRPO steps on the CPU, metrics table and chart in the report dir."""
    import os
    import time

    from harness.tools.sim_server import SimServer
    from verl_recipes.m2_grpo import cpu_steps, data, grader

    overrides = [*cpu_steps.CPU_DEFAULTS, f"actor_rollout_ref.model.path={cpu_steps.embedded_model_dir()}", *command.overrides]
    cfg = compose(overrides)
    overrides, data_dir = data_overrides(cfg, overrides)
    cfg = compose(overrides)
    validate(cfg)
    export = data.build(cfg.m2.data, float(cfg.m2.val_fraction), cfg.m2.max_rows_per_source)
    sim = all(grader.endpoint(role) is None for role in judge_roles(cfg))
    started = time.perf_counter()
    saved = {k: os.environ.get(k) for k in (grader.role_env(r, w) for r in grader.ROLES for w in ("BASE_URL", "MODEL"))}
    server = SimServer(latency_s=0.05).start() if sim else None
    try:
        if server is not None:
            os.environ.update(
                {grader.role_env("grader", "BASE_URL"): server.base_url, grader.role_env("grader", "MODEL"): "sim-grader"}
            )
            print(f"note: {cpu_steps.SIM_NOTE}")
        for line in check_judges(cfg, ping=False):
            print(line)
        print(f"policy: {cpu_steps.MODEL_DESCRIPTION} (trainable float32 copy); {command.cpu_steps} steps", flush=True)
        grader.reset()
        run = asyncio.run(cpu_steps.run_steps(cfg, command.cpu_steps, export.train, data_dir / "cpu_steps", sim_grader=sim))
    finally:
        grader.reset()
        if server is not None:
            server.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    shown = ["python -m verl_recipes.m2_grpo", f"--cpu-steps {command.cpu_steps}", *command.overrides]
    paths = cpu_steps.write_report(run, " ".join(shown), Path(command.report_dir))
    print(cpu_steps.report_table(run))
    for rec in run.steps:
        timing = {k.split("/", 1)[1]: round(v, 1) for k, v in rec.metrics.items() if k.startswith("timing_s/")}
        print(f"step {rec.step} seconds: {timing}")
    print(f"wall time {time.perf_counter() - started:.0f} s; table {paths['table']}, chart {paths['chart']}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if any(a in ("-h", "--help") for a in argv):
        print(USAGE)
        return 0
    try:
        parsed = parse_args(argv)
        if parsed.cpu_steps:
            return cpu_run(parsed)
        dry_run, overrides = parsed.dry_run, parsed.overrides
        cfg = compose(overrides)
        overrides, data_dir = data_overrides(cfg, overrides)
        cfg = compose(overrides)
        validate(cfg)
        if not dry_run:  # stop at once, before any work: judges first, then the GPU
            print("\n".join(check_judges(cfg)))
            if problem := gpu_problem():
                raise no_gpu(problem)
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
        print(f"m2_grpo: error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # Hydra/verl config errors: show the message, not the trace
        if type(exc).__module__.split(".")[0] in ("hydra", "omegaconf"):
            print(f"m2_grpo: error: config: {' '.join(str(exc).split())}", file=sys.stderr)
            return 2
        raise


def run_cli() -> None:
    raise SystemExit(main())
