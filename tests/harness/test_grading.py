import asyncio

import pytest

from harness.cache import GradingCache
from harness.grading import RubricGrader, parse_json_object, parse_verdict
from harness.rubric import RubricItem
from tests.helpers.scripted import scripted_grader

CONVERSATION = [{"role": "user", "content": "I have a sore throat."}]
RUBRIC = [
    RubricItem("Advises hydration.", 5, ("axis:accuracy",)),
    RubricItem("Recommends antibiotics.", -4),
    RubricItem("Asks about fever.", 3),
]


def run(coro):
    return asyncio.run(coro)


@pytest.mark.parametrize(
    "reply, met",
    [
        ('{"explanation": "ok", "criteria_met": true}', True),
        ('Sure! Here is my verdict:\n{"explanation": "no", "criteria_met": false}\nThanks.', False),
        ('```json\n{\n  "explanation": "fenced",\n  "criteria_met": true\n}\n```', True),
        ('{"explanation": "string bool", "criteria_met": "false"}', False),
    ],
)
def test_grader_reply_formats(reply, met):
    assert parse_verdict(parse_json_object(reply))[0] is met


@pytest.mark.parametrize("reply", ["", "criteria met", '{"explanation": "x"}', '{"criteria_met": "maybe"}', "[true]"])
def test_garbage_replies_do_not_parse(reply):
    assert parse_verdict(parse_json_object(reply)) is None


def test_garbage_is_retried_then_counted_as_error_not_as_unmet():
    calls = []

    async def grader(messages, schema):
        calls.append(1)
        return "I cannot decide."

    engine = RubricGrader(grader, grader_id="g", max_attempts=3, retry_delay=0)
    result = run(engine.grade(CONVERSATION, "Drink water.", RUBRIC[:1]))
    assert len(calls) == 3
    assert result.verdicts[0].met is None and "unparseable" in result.verdicts[0].error
    assert result.score is None and len(result.errors) == 1


def test_retry_recovers_after_a_bad_reply_and_a_transport_error():
    replies = iter([RuntimeError("HTTP 500"), "garbage", '{"explanation": "e", "criteria_met": true}'])

    async def grader(messages, schema):
        reply = next(replies)
        if isinstance(reply, Exception):
            raise reply
        return reply

    engine = RubricGrader(grader, grader_id="g", max_attempts=3, retry_delay=0)
    result = run(engine.grade(CONVERSATION, "Drink water.", RUBRIC[:1]))
    assert result.verdicts[0].met is True and result.score == 1.0 and result.grader_calls == 3


def decide(criterion):
    return "hydration" in criterion or "antibiotics" in criterion


def test_batched_and_per_criterion_agree_on_identical_verdicts():
    per = run(RubricGrader(scripted_grader(decide), grader_id="g").grade(CONVERSATION, "r", RUBRIC, ["theme:x"]))
    batched_grader = scripted_grader(decide)
    batched = run(RubricGrader(batched_grader, grader_id="g", mode="batched").grade(CONVERSATION, "r", RUBRIC, ["theme:x"]))
    assert per.score == batched.score == pytest.approx((5 - 4) / 8)
    assert per.metrics == batched.metrics
    assert per.grader_calls == 3 and batched.grader_calls == batched_grader.calls == 1


def test_batched_mode_regrades_only_missing_items():
    replies = iter(['{"1": {"explanation": "a", "criteria_met": true}}', '{"1": {"explanation": "b", "criteria_met": false}}'])
    prompts = []

    async def grader(messages, schema):
        prompts.append(messages[0]["content"])
        return next(replies)

    result = run(RubricGrader(grader, grader_id="g", mode="batched", retry_delay=0).grade(CONVERSATION, "r", RUBRIC[:2]))
    assert [v.met for v in result.verdicts] == [True, False]
    assert "Advises hydration" not in prompts[1] and "Recommends antibiotics" in prompts[1]


def test_criteria_are_graded_concurrently():
    in_flight, peak = 0, 0

    async def grader(messages, schema):
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.05)
        in_flight -= 1
        return '{"explanation": "", "criteria_met": true}'

    run(RubricGrader(grader, grader_id="g").grade(CONVERSATION, "r", RUBRIC))
    assert peak == len(RUBRIC)


def test_cache_hits_and_keys(tmp_path):
    cache = GradingCache(tmp_path / "c.sqlite")
    grader = scripted_grader(decide)
    first = run(RubricGrader(grader, grader_id="judge-a", cache=cache).grade(CONVERSATION, "r", RUBRIC))
    again = run(
        RubricGrader(grader, grader_id="judge-a", cache=GradingCache(tmp_path / "c.sqlite")).grade(CONVERSATION, "r", RUBRIC)
    )
    assert grader.calls == 3 and again.grader_calls == 0
    assert [v.met for v in again.verdicts] == [v.met for v in first.verdicts] and all(v.cached for v in again.verdicts)
    run(RubricGrader(grader, grader_id="judge-b", cache=cache).grade(CONVERSATION, "r", RUBRIC))
    assert grader.calls == 6  # another grader model is a cache miss
    key = GradingCache.key("judge-a", "v1", "per_criterion", CONVERSATION, "r", RUBRIC[0])
    assert key != GradingCache.key("judge-a", "v2", "per_criterion", CONVERSATION, "r", RUBRIC[0])
    assert key != GradingCache.key("judge-a", "v1", "per_criterion", CONVERSATION, "r2", RUBRIC[0])


def test_errors_are_not_cached(tmp_path):
    cache = GradingCache(tmp_path / "c.sqlite")

    async def broken(messages, schema):
        return "??"

    run(RubricGrader(broken, grader_id="g", cache=cache, max_attempts=1).grade(CONVERSATION, "r", RUBRIC))
    assert len(cache) == 0
