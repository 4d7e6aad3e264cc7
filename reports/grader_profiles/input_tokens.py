"""Grader input tokens per profile and mode on the 50 public Hard rows (replies: the ideal completion, else empty).

    python reports/grader_profiles/input_tokens.py > reports/grader_profiles/input_tokens.txt

Tokens are counted as the simulated server counts them (harness.tools.sim_server.count_tokens); no model is called.
"""

import asyncio

from harness.data import resolve
from harness.evalsets import HEALTHBENCH_SAMPLES
from harness.grading import RubricGrader
from harness.healthbench import load_file
from harness.tools.sim_server import count_tokens

examples = load_file(resolve(HEALTHBENCH_SAMPLES["hard"]))
counts = {}
for profile, mode in (("m2bench", "per_criterion"), ("simple_evals", "per_criterion"), ("m2bench", "batched")):
    tokens = 0

    async def grader(messages, json_schema=None):
        global tokens
        tokens += sum(count_tokens(m["content"]) for m in messages)
        return "{}"  # nothing parses: each criterion is asked once (max_attempts=1)

    engine = RubricGrader(grader, grader_id="count", mode=mode, profile=profile, max_attempts=1)

    async def run(engine: RubricGrader) -> None:
        await asyncio.gather(*(engine.grade(e.prompt, e.ideal_completion or "", e.rubrics) for e in examples))

    asyncio.run(run(engine))
    counts[profile, mode] = tokens
    print(f"{profile:13} {mode:14} {tokens:>8} grader input tokens")
official, ours = counts["simple_evals", "per_criterion"], counts["m2bench", "per_criterion"]
print(f"simple_evals / m2bench per criterion: {official / ours:.2f}x")
