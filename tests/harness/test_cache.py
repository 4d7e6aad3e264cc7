"""The grading cache: one read query and one write transaction per graded example, verdicts visible at once."""

import asyncio

from harness.cache import GradingCache
from harness.grading import RubricGrader
from harness.rubric import RubricItem
from tests.helpers.scripted import scripted_grader

RUBRIC = [RubricItem(f"Mentions point {n}", n + 1) for n in range(6)]
CONVERSATION = [{"role": "user", "content": "What should I do about a cough?"}]


def traced(cache: GradingCache) -> list[str]:
    statements: list[str] = []
    cache._db.set_trace_callback(statements.append)
    return statements


def kinds(statements: list[str]) -> dict[str, int]:
    first = [s.split()[0].upper() for s in statements]
    return {k: first.count(k) for k in ("SELECT", "BEGIN", "INSERT")}


def test_batched_grading_reads_once_and_writes_one_transaction_per_example(tmp_path):
    cache = GradingCache(tmp_path / "c.sqlite")
    statements = traced(cache)
    engine = RubricGrader(scripted_grader(lambda c: "2" in c), grader_id="g", mode="batched", cache=cache)

    async def grade_three():
        return await asyncio.gather(*(engine.grade(CONVERSATION, f"reply {n}", RUBRIC) for n in range(3)))

    asyncio.run(grade_three())
    counts = kinds(statements)
    assert counts["SELECT"] == 3  # one query per example, not per criterion
    assert 1 <= counts["BEGIN"] <= 3  # the verdicts of one turn of the loop share a transaction
    assert len(cache) == 3 * len(RUBRIC)


def test_per_criterion_verdicts_of_one_turn_share_a_transaction(tmp_path):
    cache = GradingCache(tmp_path / "c.sqlite")
    statements = traced(cache)
    asyncio.run(RubricGrader(scripted_grader(lambda c: True), grader_id="g", cache=cache).grade(CONVERSATION, "r", RUBRIC))
    counts = kinds(statements)
    assert counts["SELECT"] == 1 and counts["BEGIN"] < len(RUBRIC)
    assert len(cache) == len(RUBRIC)


def test_stored_verdicts_are_read_back_before_they_are_written(tmp_path):
    cache = GradingCache(tmp_path / "c.sqlite")

    async def store_then_read():
        cache.put_many([("a", True, "x"), ("b", False, "y")])
        return cache.get_many(["a", "b", "c"])  # same turn of the loop: not yet written

    assert asyncio.run(store_then_read()) == [(True, "x"), (False, "y"), None]
    assert GradingCache(tmp_path / "c.sqlite").get_many(["a", "b"]) == [(True, "x"), (False, "y")]  # written by then
    assert (cache.hits, cache.misses) == (2, 1)


def test_keys_change_with_every_part_of_what_is_graded():
    base = ("judge", "fp", "per_criterion", CONVERSATION, "r", RUBRIC[0])
    key = GradingCache.key(*base)
    variants = [
        ("judge2", *base[1:]),
        (*base[:4], "r2", RUBRIC[0]),
        (*base[:5], RubricItem(RUBRIC[0].criterion, 99)),
        (*base[:5], RubricItem(RUBRIC[0].criterion, RUBRIC[0].points, ("axis:x",))),
        (*base[:3], [{"role": "user", "content": "other"}], "r", RUBRIC[0]),
    ]
    assert len({key, *(GradingCache.key(*v) for v in variants)}) == 1 + len(variants)
    assert GradingCache.key(*base, epoch=1) != key


def test_criterion_keys_do_not_collide_when_text_moves_between_fields():
    example = GradingCache.example_key("judge", "fp", "per_criterion", CONVERSATION, "r")
    items = [
        RubricItem("ab", 5, ("c",)),
        RubricItem("a", 5, ("bc",)),
        RubricItem("ab", 5, ("c", "")),
        RubricItem("ab", 5, ()),
        RubricItem("ab", 5.0, ("c",)),
        RubricItem("ab\x1f5", 5, ("c",)),
    ]
    keys = [GradingCache.item_key(example, item) for item in items]
    assert len(set(keys)) == len(items)
    assert GradingCache.item_key(example, RubricItem("ab", 5, ("c",))) == keys[0]  # the same criterion, the same key


def test_the_engine_writes_every_verdict_by_the_time_its_last_grading_ends(tmp_path):
    cache = GradingCache(tmp_path / "c.sqlite")
    engine = RubricGrader(scripted_grader(lambda c: "2" in c), grader_id="g", mode="batched", cache=cache)

    async def grade_and_read_from_another_connection():
        await asyncio.gather(*(engine.grade(CONVERSATION, f"reply {n}", RUBRIC) for n in range(3)))
        return len(GradingCache(tmp_path / "c.sqlite"))  # still inside the loop: no delayed write has run yet

    assert asyncio.run(grade_and_read_from_another_connection()) == 3 * len(RUBRIC)


def test_verdicts_arriving_together_share_one_delayed_transaction(tmp_path):
    cache = GradingCache(tmp_path / "c.sqlite")
    statements = traced(cache)

    async def store_over_several_turns():
        for n in range(5):
            cache.put_many([(f"k{n}", True, "x")], within_s=0.2)
            await asyncio.sleep(0)  # a new turn of the loop each time
        written_early = kinds(statements)["BEGIN"]
        await asyncio.sleep(0.3)
        return written_early

    assert asyncio.run(store_over_several_turns()) == 0
    assert kinds(statements)["BEGIN"] == 1 and len(cache) == 5


def test_a_write_left_waiting_by_a_closed_loop_does_not_stop_writes_in_the_next_loop(tmp_path):
    cache = GradingCache(tmp_path / "c.sqlite")

    async def store(key, within_s):
        cache.put_many([(key, True, "x")], within_s=within_s)

    for key, within_s in (("a", 60.0), ("b", 0.0)):  # two loops: the first closes before its delayed write runs
        loop = asyncio.new_event_loop()  # explicit loops (asyncio.run may reuse one where nest_asyncio is applied)
        try:
            loop.run_until_complete(store(key, within_s))
        finally:
            loop.close()
    # "b" was written at the next turn of the second loop, together with "a"
    assert GradingCache(tmp_path / "c.sqlite").get_many(["a", "b"]) == [(True, "x"), (True, "x")]
