import asyncio
import json

from harness.llm_checks import llm_grounding, llm_selector


def test_selector_returns_the_chosen_facts_and_none_on_a_bad_reply():
    async def model(messages, schema):
        assert "1. Double vision" in messages[0]["content"] and schema["required"] == ["facts"]
        return json.dumps({"facts": [2, 9]})

    assert asyncio.run(llm_selector(model)("Does rest help?", ["Double vision", "Better after rest"])) == [1]

    async def broken(messages, schema):
        return "sorry"

    assert asyncio.run(llm_selector(broken)("?", ["a", "b"])) is None  # the caller falls back to the calibrated choice


def test_grounding_check_reads_the_verdict():
    async def model(messages, schema):
        return json.dumps({"explanation": "adds a stroke", "unsupported": "stroke" in messages[0]["content"]})

    check = llm_grounding(model)
    assert asyncio.run(check("I had a stroke.", ["Double vision"])) is True
    assert asyncio.run(check("I see double.", ["Double vision"])) is False
