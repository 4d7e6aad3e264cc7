"""Consultation with the embedded model in every role, one case x every persona.

    cd <repo> && M2BENCH_DATA_DIR=../shared/data HF_HUB_OFFLINE=1 python reports/consultation/run_embedded.py

Doctor, grader (bound explicitly), patient and rubric generator (their offline defaults) are all
m2bench/default (SmolLM2-135M). The generator's items that repeat another or ask what the opening
statement says are dropped and listed in the report. --no-generated-rubric grades the
case-derived items only. Writes reports/consultation/embedded_personas.md; the Inspect log goes
to logs/consultation_embedded/ (not committed).
"""

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from inspect_ai import eval as inspect_eval  # noqa: E402

from harness.evals.consultation import consultation_task  # noqa: E402
from harness.patient import PERSONAS  # noqa: E402

CASES, MAX_TURNS = "agentclinic_medqa", 2
GENERATED = "--no-generated-rubric" not in sys.argv
task = consultation_task(
    CASES, max_turns=MAX_TURNS, persona="all", grading_mode="batched", max_error_fraction=0.99, generated_rubric=GENERATED
)
task.dataset = task.dataset[: len(PERSONAS)]  # the first case, once per persona
started = time.monotonic()
[log] = inspect_eval(
    task, model="m2bench/default", model_roles={"grader": "m2bench/default"}, log_dir="logs/consultation_embedded"
)
minutes = (time.monotonic() - started) / 60
metrics = {k: m.value for s in (log.results.scores if log.results else []) for k, m in s.metrics.items()}
rows, dropped = [], {}
for sample in log.samples or []:
    score = (sample.scores or {}).get("consultation_scorer")
    meta = score.metadata if score else {}
    m = meta.get("metrics", {})
    for d in meta.get("rubric_dropped", []):
        dropped[d["field"]] = d
    verdict = meta.get("diagnosis") or {}
    rows.append(
        f"| {sample.metadata['persona']} | {(score.answer if score else '')[:40]!r} | {verdict.get('decided_by', '-')} | {'error: ' + sample.error.message[:60] if sample.error else f'{score.value:.3f}'} | "
        f"{m.get('diagnostic_accuracy', '-')} | {m.get('critical_fact_recall', '-')} | {m.get('hallucination_rate', '-')} | "
        f"{m.get('false_denial_rate', '-')} | {m.get('leak_rate', '-')} | {m.get('grader_all_met', '-')} | {(meta.get('tokens') or {}).get('doctor', '-')} | "
        f"{meta.get('rubric_items', '-')} |"
    )
lines = [
    "# Consultation, embedded model in every role",
    "",
    f"Command: `python reports/consultation/run_embedded.py{'' if GENERATED else ' --no-generated-rubric'}` (case {CASES}-0, "
    f"myasthenia gravis; every persona; max_turns={MAX_TURNS}; batched grading; doctor, grader and patient all m2bench/default = "
    f"SmolLM2-135M on CPU; rubric: {'case items + generated items' if GENERATED else 'case-derived items only (-T generated_rubric=false)'}).",
    f"Status: {log.status}; samples: {len(log.samples or [])}; errors: {sum(bool(s.error) for s in log.samples or [])}; "
    f"wall time about {minutes:.0f} min on a shared 2-core CPU, less the rubric generation when an earlier run left the rubric in the cache; patient and rubric generator used their offline default "
    "(the log's warnings say so).",
    "",
    "| persona | final answer | decided by | score | diagnostic_accuracy | critical_fact_recall | hallucination_rate | false_denial_rate | leak_rate | grader_all_met | doctor tokens | rubric items |",
    "|---|---|---|---|---|---|---|---|---|---|---|---|",
    *rows,
    "",
    f"Generated rubric items dropped ({len(dropped)}; the rest of the rubric was graded):",
    *(f"- {d['field']} {d['criterion']!r}: {d['reason']}" for d in dropped.values()),
    *([] if dropped else ["- none"]),
    "",
    "Run metrics: " + ", ".join(f"{k}={v:.3f}" for k, v in sorted(metrics.items()) if not k.endswith("_std")),
]
Path("reports/consultation/embedded_personas.md").write_text("\n".join(lines) + "\n")
print("\n".join(lines))
