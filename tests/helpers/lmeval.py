"""Running the lm-eval tasks of tasks/lm_eval in-process, as `lm_eval --output_path` would."""

import json

from harness.lmeval.tasks import TASK_DIR


def run_lmeval(lm, tasks, out_dir, limit):
    """simple_evaluate on tasks/lm_eval, results written as `lm_eval --output_path` does."""
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager
    from lm_eval.utils import handle_non_serializable

    manager = TaskManager(include_path=str(TASK_DIR), include_defaults=False)
    results = simple_evaluate(model=lm, tasks=tasks, task_manager=manager, limit=limit, log_samples=False, bootstrap_iters=0)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "results_test.json").write_text(json.dumps(results, default=handle_non_serializable))
    return results
