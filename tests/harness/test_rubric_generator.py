import asyncio

import pytest

from harness.rubric_generator import (
    DIAGNOSIS_TAG,
    SECTIONS,
    RubricGenerationError,
    build_case_rubric,
    case_rubric,
    deterministic_items,
    generate_rubric,
)
from tests.helpers.cases import make_case, sections


def scripted(*replies):
    queue = list(replies)

    async def gen(messages, json_schema=None):
        gen.calls.append(messages)
        return queue.pop(0) if len(queue) > 1 else queue[0]

    gen.calls = []
    return gen


def test_valid_reply_is_merged_with_case_items_and_cached():
    gen = scripted(sections())
    case = make_case()
    rubric = asyncio.run(case_rubric(case, gen, "scripted"))
    assert any(DIAGNOSIS_TAG in i.tags and "Myasthenia gravis" in i.criterion for i in rubric)
    assert any(i.criterion == "Safety red flag: does the safety thing" and i.points == -5 for i in rubric)
    assert len({i.criterion for i in rubric}) == len(rubric) == len(deterministic_items(case)) + len(SECTIONS)
    again = asyncio.run(case_rubric(case, gen, "scripted"))
    assert again == rubric and len(gen.calls) == 1  # second call served from the disk cache


@pytest.mark.parametrize(
    "bad, problem",
    [
        ("I cannot write rubrics.", "no JSON object"),
        (sections(safety=[{"criterion": "harm", "points": 4}]), "must be negative"),
        (sections(plan=[{"criterion": "plan", "points": 20}]), "outside the valid range"),
        (sections(tests=[{"criterion": "", "points": 2}]), "missing or empty"),
    ],
)
def test_malformed_replies_retried_then_clear_error(bad, problem):
    gen = scripted(bad)
    with pytest.raises(RubricGenerationError, match=problem) as err:
        asyncio.run(generate_rubric(make_case(), gen, "scripted", max_attempts=3))
    assert len(gen.calls) == 3 and "t-1" in str(err.value) and "after 3 attempts" in str(err.value)
    assert "not usable" in gen.calls[-1][-1]["content"]  # the retry names the problem


def test_recovers_after_one_bad_reply():
    gen = scripted("{}", sections())
    generated = asyncio.run(generate_rubric(make_case(), gen, "scripted"))
    assert len(gen.calls) == 2 and len(generated.items) == len(SECTIONS) and generated.dropped == []


def test_duplicates_are_dropped_not_retried_and_the_drop_is_kept_with_the_cached_rubric():
    twice = [{"criterion": "asks about x", "points": 2}, {"criterion": "Asks about x.", "points": 1}]
    gen = scripted(sections(history=twice))
    case = make_case()
    built = asyncio.run(build_case_rubric(case, gen, "scripted"))
    assert len(gen.calls) == 1  # a usable rubric: no retry
    assert sum("asks about x" in i.criterion.lower() for i in built.items) == 1
    assert built.dropped == [{"field": "history[1]", "criterion": "Asks about x.", "reason": "duplicate: same as history[0]"}]
    again = asyncio.run(build_case_rubric(case, gen, "scripted"))
    assert again == built and len(gen.calls) == 1  # served from the cache, drops included


def test_vignette_rubric_drops_conversation_axes():
    rubric = asyncio.run(case_rubric(make_case(), scripted(sections()), "scripted", vignette=True))
    assert not any(t in ("axis:history", "axis:tests", "axis:communication") for i in rubric for t in i.tags)
    assert any(DIAGNOSIS_TAG in i.tags for i in rubric)


def test_concurrent_requests_for_one_case_call_the_generator_once():
    calls = []

    async def slow_generator(messages, json_schema=None):
        calls.append(messages)
        await asyncio.sleep(0.01)  # the other requests arrive while this one is generating
        return sections()

    async def together():
        return await asyncio.gather(*(generate_rubric(make_case(), slow_generator, "slow") for _ in range(3)))

    first, *rest = asyncio.run(together())
    assert len(calls) == 1 and all(r == first for r in rest)
