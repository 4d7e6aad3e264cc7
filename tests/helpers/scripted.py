"""Scripted models for unit tests only: deterministic graders and Inspect mock models."""

from __future__ import annotations

import json
import re
from collections.abc import Callable

from inspect_ai.model import ModelOutput, ModelUsage, get_model

from harness.grading import is_batched_prompt

CRITERION = re.compile(r"<criterion>(.*?)</criterion>", re.DOTALL)


def verdict_reply(prompt: str, decide: Callable[[str], bool]) -> str:
    """A grader reply for a per-criterion or batched prompt: decide(criterion text) -> met."""
    criteria = CRITERION.findall(prompt)
    if len(criteria) == 1 and not is_batched_prompt(prompt):
        return json.dumps({"explanation": "scripted", "criteria_met": decide(criteria[0])})
    return json.dumps({str(n): {"explanation": "scripted", "criteria_met": decide(c)} for n, c in enumerate(criteria, 1)})


def scripted_grader(decide: Callable[[str], bool]):
    """An engine grader callable that answers from ``decide``; counts its calls."""

    async def grade(messages, json_schema=None):
        grade.calls += 1
        return verdict_reply(messages[-1]["content"], decide)

    grade.calls = 0
    return grade


def mock_model(reply: Callable[[str], str], name: str = "mockllm/model"):
    """An Inspect mock model replying ``reply(last user text)``; usage is set so no tokenizer is needed."""

    def output(input, tools, tool_choice, config):
        text = reply(input[-1].text if input else "")
        out = ModelOutput.from_content(model=name, content=text)
        out.usage = ModelUsage(input_tokens=1, output_tokens=1, total_tokens=2)
        return out

    return get_model(name, custom_outputs=output, memoize=False)


def scripted_grader_model(decide: Callable[[str], bool]):
    return mock_model(lambda prompt: verdict_reply(prompt, decide))
