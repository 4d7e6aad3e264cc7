"""Scripted models for unit tests only: deterministic graders and Inspect mock models."""

from __future__ import annotations

import json
from collections.abc import Callable

from inspect_ai.model import ModelOutput, ModelUsage, get_model

from harness.grading import parse_grading_prompt


def is_grading_prompt(prompt: str) -> bool:
    return parse_grading_prompt(prompt) is not None


def verdict_reply(prompt: str, decide: Callable[[str], bool]) -> str:
    """A grader reply for a grading prompt of either profile: decide(criterion text) -> met."""
    parsed = parse_grading_prompt(prompt)
    assert parsed is not None, f"not a grading prompt: {prompt[:200]!r}"
    if not parsed.batched:
        return json.dumps({"explanation": "scripted", "criteria_met": decide(parsed.criteria[0])})
    return json.dumps({str(n): {"explanation": "scripted", "criteria_met": decide(c)} for n, c in enumerate(parsed.criteria, 1)})


def scripted_grader(decide: Callable[[str], bool]):
    """An engine grader callable that answers from ``decide``; counts its calls and keeps the last messages."""

    async def grade(messages, json_schema=None):
        grade.calls += 1
        grade.last_messages = messages
        return verdict_reply(messages[-1]["content"], decide)

    grade.calls = 0
    grade.last_messages = None
    return grade


def mock_model(reply: Callable[[str], str], name: str = "mockllm/model"):
    """An Inspect mock model replying ``reply(last message text)``; usage is set so no tokenizer is needed."""

    def output(input, tools, tool_choice, config):
        text = reply(input[-1].text if input else "")
        out = ModelOutput.from_content(model=name, content=text)
        out.usage = ModelUsage(input_tokens=1, output_tokens=1, total_tokens=2)
        return out

    return get_model(name, custom_outputs=output, memoize=False)


def scripted_grader_model(decide: Callable[[str], bool], name: str = "mockllm/model"):
    return mock_model(lambda prompt: verdict_reply(prompt, decide), name)


def answering_model(answer: str, decide: Callable[[str], bool], name: str = "mockllm/model"):
    """A mock model answering ``answer`` as a doctor, and grading with ``decide`` when handed a grading prompt."""
    return mock_model(lambda prompt: verdict_reply(prompt, decide) if is_grading_prompt(prompt) else answer, name)
