"""LLM versions of the patient simulator's checks, for when a capable model is bound.

- ``llm_selector(model)``: MediQ-style fact selection: the model sees the doctor's question and
  the candidate facts (``harness.grounding.selector_candidates``), numbered, and returns the numbers of
  those that answer it, or None when its reply is unusable. It selects facts verbatim; it never writes
  new ones. The consultation eval uses it when a ``measurement`` (or ``patient``) model is bound.
- ``llm_grounding(model)``: the model sees a patient reply and the facts the patient may state,
  and says whether the reply asserts (or denies) anything the facts do not support. It is measured
  only: the simulator's grounding check in a run is the deterministic ``harness.grounding.check_reply``.

``model`` is a grader-style callable ``async (messages, json_schema) -> str`` (the embedded
model, an OpenAI-compatible client, or an Inspect model through ``harness.evals.scoring.inspect_grader``).
``python -m harness.calibrate --llm ...`` measures both on the labelled probes.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable

from harness.grading import parse_json_object

Model = Callable[[list[dict[str, str]], dict | None], Awaitable[str]]

SELECT_SCHEMA = {
    "type": "object",
    "properties": {"facts": {"type": "array", "items": {"type": "integer"}}},
    "required": ["facts"],
    "additionalProperties": False,
}
GROUNDING_SCHEMA = {
    "type": "object",
    "properties": {"explanation": {"type": "string"}, "unsupported": {"type": "boolean"}},
    "required": ["explanation", "unsupported"],
    "additionalProperties": False,
}

SELECT_PROMPT = """A doctor asked a patient: "{question}"
Which of these recorded facts answer the question? Reply with only a JSON object {{"facts": [numbers]}}
listing the numbers of the facts that answer it (an empty list if none does).

{facts}"""

GROUNDING_PROMPT = """A simulated patient may only state the facts listed below. Read the patient's reply.
Does the reply assert any medical fact (symptom, history, finding, detail) that the facts do not state,
or deny something the facts state? Greetings, feelings, questions and "I have not noticed that" are fine.
Answer with only a JSON object {{"explanation": "<one sentence>", "unsupported": true or false}}.

Facts:
{facts}

Patient's reply: "{reply}" """


def llm_selector(model: Model) -> Callable[[str, list[str]], Awaitable[list[int] | None]]:
    async def select(question: str, facts: list[str]) -> list[int] | None:
        listing = "\n".join(f"{n}. {text}" for n, text in enumerate(facts, 1))
        reply = await model([{"role": "user", "content": SELECT_PROMPT.format(question=question, facts=listing)}], SELECT_SCHEMA)
        obj = parse_json_object(reply) or {}
        numbers = obj.get("facts")
        if not isinstance(numbers, list):
            return None  # unusable: the caller keeps the calibrated choice
        return [n - 1 for n in numbers if isinstance(n, int) and 1 <= n <= len(facts)]

    return select


def llm_grounding(model: Model) -> Callable[[str, list[str]], Awaitable[bool]]:
    async def unsupported(reply: str, facts: list[str]) -> bool:
        listing = "\n".join(f"- {text}" for text in facts) or "- (none)"
        prompt = GROUNDING_PROMPT.format(facts=listing, reply=json.dumps(reply)[1:-1])
        obj = parse_json_object(await model([{"role": "user", "content": prompt}], GROUNDING_SCHEMA)) or {}
        return obj.get("unsupported") is True

    return unsupported
