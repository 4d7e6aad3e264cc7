import asyncio

import pytest

from harness.rubric_generator import (
    DIAGNOSIS_TAG,
    SECTIONS,
    RubricGenerationError,
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
        (sections(history=[{"criterion": "asks x", "points": 2}, {"criterion": "asks x", "points": 1}]), "duplicate criterion"),
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
    items = asyncio.run(generate_rubric(make_case(), gen, "scripted"))
    assert len(gen.calls) == 2 and len(items) == len(SECTIONS)


def test_vignette_rubric_drops_conversation_axes():
    rubric = asyncio.run(case_rubric(make_case(), scripted(sections()), "scripted", vignette=True))
    assert not any(t in ("axis:history", "axis:tests", "axis:communication") for i in rubric for t in i.tags)
    assert any(DIAGNOSIS_TAG in i.tags for i in rubric)
