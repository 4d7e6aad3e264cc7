"""Consultation with the embedded model in every role, one case x every persona (see README.md here).

    cd <repo> && M2BENCH_DATA_DIR=../shared/data HF_HUB_OFFLINE=1 python reports/consultation/run_embedded.py

Doctor, grader (bound explicitly) and patient (its offline default) are all m2bench/default
(SmolLM2-135M). With --generated-rubric the rubric generator (offline default) writes rubric items
too; its rubrics fail validation on every attempt, so by default this run grades the case-derived
items only. Writes reports/consultation/embedded_personas.md; the Inspect log
goes to logs/consultation_embedded/ (not committed).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from inspect_ai import eval as inspect_eval  # noqa: E402

from harness.evals.consultation import consultation_task  # noqa: E402
from harness.patient import PERSONAS  # noqa: E402

CASES, MAX_TURNS = "agentclinic_medqa", 2
GENERATED = "--generated-rubric" in sys.argv  # the 135M generator's rubrics fail validation: off by default here
task = consultation_task(
    CASES, max_turns=MAX_TURNS, persona="all", grading_mode="batched", max_error_fraction=0.99, generated_rubric=GENERATED
)
task.dataset = task.dataset[: len(PERSONAS)]  # the first case, once per persona
[log] = inspect_eval(task, model="m2bench/default", model_roles={"grader": "m2bench/default"}, log_dir="logs/consultation_embedded")
metrics = {k: m.value for s in (log.results.scores if log.results else []) for k, m in s.metrics.items()}
rows = []
for sample in log.samples or []:
    score = (sample.scores or {}).get("consultation_scorer")
    meta = score.metadata if score else {}
    m = meta.get("metrics", {})
    rows.append(
        f"| {sample.metadata['persona']} | {'error: ' + sample.error.message[:60] if sample.error else f'{score.value:.3f}'} | "
        f"{m.get('diagnostic_accuracy', '-')} | {m.get('critical_fact_recall', '-')} | {m.get('hallucination_rate', '-')} | "
        f"{m.get('false_denial_rate', '-')} | {m.get('leak_rate', '-')} | {m.get('grader_all_met', '-')} | {(meta.get('tokens') or {}).get('doctor', '-')} |"
    )
lines = [
    "# Consultation, embedded model in every role",
    "",
    f"Command: `python reports/consultation/run_embedded.py{' --generated-rubric' if GENERATED else ''}` (case {CASES}-0, "
    f"myasthenia gravis; every persona; max_turns={MAX_TURNS}; batched grading; doctor, grader and patient all m2bench/default = "
    f"SmolLM2-135M on CPU; rubric: {'case items + generated items' if GENERATED else 'case-derived items only (-T generated_rubric=false)'}).",
    f"Status: {log.status}; samples: {len(log.samples or [])}; patient and rubric generator used their offline default (the log's warnings say so).",
    "",
    "| persona | score | diagnostic_accuracy | critical_fact_recall | hallucination_rate | false_denial_rate | leak_rate | grader_all_met | doctor tokens |",
    "|---|---|---|---|---|---|---|---|---|",
    *rows,
    "",
    "Run metrics: " + ", ".join(f"{k}={v:.3f}" for k, v in sorted(metrics.items()) if not k.endswith("_std")),
]
Path("reports/consultation/embedded_personas.md").write_text("\n".join(lines) + "\n")
print("\n".join(lines))
