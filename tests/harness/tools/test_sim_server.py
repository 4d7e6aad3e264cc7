"""The latency-simulating OpenAI-compatible server: real HTTP, deterministic verdicts, faults."""

import asyncio
import json

import httpx
import pytest

from harness.clients import EndpointError, OpenAIChat
from harness.errors import ArgumentError
from harness.grading import RubricGrader, batched_prompt, criterion_prompt, grader_profile
from harness.rubric import RubricItem
from harness.tools.sim_server import SimServer, count_tokens, grader_reply, simulated_verdict, tokens

ITEMS = [RubricItem(f"Mentions red-flag symptom number {i}", 5 - i) for i in range(6)]
CONVO = [{"role": "user", "content": "I have a headache."}]


def test_verdicts_depend_only_on_criterion_and_agree_across_prompt_forms():
    verdicts = [simulated_verdict(i.criterion) for i in ITEMS]
    assert len(set(verdicts)) == 2  # this fixture has both outcomes
    one = [json.loads(grader_reply(criterion_prompt(CONVO, "r", i)))["criteria_met"] for i in ITEMS]
    many = json.loads(grader_reply(batched_prompt(CONVO, "other reply", ITEMS)))
    official = [json.loads(grader_reply(grader_profile("simple_evals").messages(CONVO, "r", [i], False))) for i in ITEMS]
    assert one == verdicts == [many[str(n)]["criteria_met"] for n in range(1, len(ITEMS) + 1)]
    assert [v["criteria_met"] for v in official] == verdicts  # the official prompt, read by the same parser
    assert grader_reply("no rubric here") is None


def test_count_tokens_is_word_tokens():
    assert count_tokens("Take 2 tablets, twice a day.") == 8


def test_tokens_of_repeated_lines_equal_the_regex_tokens_of_the_whole_text():
    import random
    import re

    oracle = re.compile(r"\w+|[^\w\s]")
    rng = random.Random(3)
    pieces = ["fever", "39.5", "C,", "naïve", "—", "x\ty", "", " ", "\n", "\r\n", "\u2028", "((a))", "élan-vital", "日本"]
    lines = ["".join(rng.choice(pieces) for _ in range(rng.randint(0, 12))) for _ in range(40)]
    for _ in range(200):  # the same lines again and again, in new orders and joins (served from the line memo)
        text = rng.choice(["\n", " \n", "\n\n", "\t"]).join(rng.choices(lines, k=rng.randint(0, 8)))
        assert tokens(text) == oracle.findall(text), repr(text)


def test_models_route_and_counters():
    with SimServer(latency_s=0.0) as srv:
        models = httpx.get(srv.base_url + "/models").json()
        assert [m["id"] for m in models["data"]] == ["sim-model", "sim-grader"]
        assert httpx.get(srv.base_url + "/nothing").status_code == 404
        reply = asyncio.run(OpenAIChat(srv.base_url, "sim-model", max_retries=0)([{"role": "user", "content": "hi there"}]))
        assert reply == srv.model_reply
        stats = srv.stats()
        assert (stats["calls"], stats["model_calls"], stats["grader_calls"], stats["input_tokens"]) == (1, 1, 0, 2)


@pytest.mark.slow  # over ~1.5 s: the fast loop leaves it out
def test_sustains_128_concurrent_requests_with_latency():
    async def burst(url):
        limits = httpx.Limits(max_connections=200)
        async with httpx.AsyncClient(limits=limits, timeout=30) as client:
            body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
            return await asyncio.gather(*(client.post(url + "/chat/completions", json=body) for _ in range(128)))

    with SimServer(latency_s=0.5) as srv:
        responses = asyncio.run(burst(srv.base_url))
        assert all(r.status_code == 200 for r in responses)
        assert srv.stats()["max_concurrent"] == 128  # all 128 were in flight at once, not served one after another


def test_engine_modes_and_profiles_agree_through_http():
    with SimServer(latency_s=0.0) as srv:
        chat = OpenAIChat(srv.base_url, "sim-grader", max_retries=0)
        grades = {
            (profile, mode): asyncio.run(
                RubricGrader(chat, grader_id="sim", mode=mode, profile=profile).grade(CONVO, "reply", ITEMS)
            )
            for profile, mode in (("m2bench", "per_criterion"), ("m2bench", "batched"), ("simple_evals", "per_criterion"))
        }
        assert srv.stats()["grader_calls"] == 2 * len(ITEMS) + 1
    verdicts = {key: [v.met for v in grade.verdicts] for key, grade in grades.items()}
    assert len(set(map(tuple, verdicts.values()))) == 1
    assert len({grade.score for grade in grades.values()}) == 1 and None not in {g.score for g in grades.values()}


def test_queued_faults_in_order():
    prompt = criterion_prompt(CONVO, "r", ITEMS[0])
    with SimServer(latency_s=0.0, hang_s=5) as srv:
        srv.queue_faults(["http_500", "http_429", "truncated_json", "non_json", "empty", None, "timeout"])
        chat = OpenAIChat(srv.base_url, "sim-grader", max_retries=0, timeout=0.5)

        async def call():
            return await chat([{"role": "user", "content": prompt}])

        with pytest.raises(EndpointError, match="HTTP 500"):
            asyncio.run(call())
        with pytest.raises(EndpointError, match="HTTP 429"):
            asyncio.run(call())
        truncated, prose, empty, healthy = (asyncio.run(call()) for _ in range(4))
        assert json.loads(healthy)["criteria_met"] == simulated_verdict(ITEMS[0].criterion)
        assert healthy.startswith(truncated) and len(truncated) < len(healthy)
        assert "{" not in prose and empty == ""
        with pytest.raises(EndpointError, match="timed out"):
            asyncio.run(call())
        assert srv.stats()["faults"] == {k: 1 for k in ("http_500", "http_429", "truncated_json", "non_json", "empty", "timeout")}


def test_error_rate_is_seeded():
    def run(seed):
        with SimServer(latency_s=0.0, error_rate=0.5, faults=["http_500"], seed=seed) as srv:
            codes = []
            with httpx.Client() as client:
                for _ in range(20):
                    r = client.post(srv.base_url + "/chat/completions", json={"messages": [{"role": "user", "content": "x"}]})
                    codes.append(r.status_code)
            return codes

    first = run(1)
    assert first == run(1) and {200, 500} == set(first)


def test_unknown_fault_is_rejected():
    with pytest.raises(ArgumentError):
        SimServer(faults=["meteor"])


def test_child_process_server_and_control_routes():
    from harness.tools.sim_server import SimProcess

    with SimProcess(latency_s=0.0) as srv:
        prompt = criterion_prompt(CONVO, "r", ITEMS[0])
        reply = asyncio.run(OpenAIChat(srv.base_url, "sim-grader", max_retries=0)([{"role": "user", "content": prompt}]))
        assert json.loads(reply)["criteria_met"] == simulated_verdict(ITEMS[0].criterion)
        stats = srv.stats()
        assert stats["grader_calls"] == 1 and stats["grader_input_tokens"] == count_tokens(prompt)
        srv.reset_stats()
        assert srv.stats()["calls"] == 0
    assert srv.proc is None


def test_a_schema_request_that_is_not_grading_gets_a_value_of_that_schema():
    from harness.rubric_generator import RUBRIC_SCHEMA, generate_rubric
    from tests.helpers.cases import make_case

    with SimServer(latency_s=0.0) as srv:
        chat = OpenAIChat(srv.base_url, "sim-grader")
        items = asyncio.run(generate_rubric(make_case(), chat, "sim-grader", use_cache=False)).items
        plain = asyncio.run(chat([{"role": "user", "content": "Hello"}]))
    assert {t for i in items for t in i.tags if t.startswith("axis:")} == {
        "axis:diagnosis",
        "axis:history",
        "axis:tests",
        "axis:plan",
        "axis:safety",
        "axis:communication",
    }
    assert any(i.points < 0 for i in items) and set(RUBRIC_SCHEMA["properties"]) == {
        "diagnosis",
        "history",
        "tests",
        "plan",
        "safety",
        "communication",
    }
    assert plain == srv.model_reply  # requests without a schema still get the canned reply


# ---- prefix caching ------------------------------------------------------------------------------


def words(n: int, start: int = 0) -> str:
    """``n`` distinct one-token words."""
    return " ".join(f"w{i}" for i in range(start, start + n))


def post(srv: SimServer, model: str, text: str) -> None:
    httpx.post(srv.base_url + "/chat/completions", json={"model": model, "messages": [{"role": "user", "content": text}]})


def test_prefix_cache_counts_the_shared_leading_blocks_of_answered_requests():
    shared = words(40)  # 40 tokens: two full 16-token blocks, 8 tokens of a third
    with SimServer(latency_s=0.0) as srv:
        post(srv, "sim-model", shared + " " + words(30, 1000))
        first = srv.stats()
        assert (first["cached_input_tokens"], first["uncached_input_tokens"]) == (0, 70)
        post(srv, "sim-model", shared + " " + words(30, 2000))  # shares 40 tokens: 32 of them in full blocks
        second = srv.stats()
        assert (second["cached_input_tokens"], second["uncached_input_tokens"]) == (32, 70 + 38)
        post(srv, "sim-grader", shared + " " + words(30, 1000))  # the cache is per model
        assert srv.stats()["cached_input_tokens"] == 32
        post(srv, "sim-model", words(30, 1000) + " " + shared)  # same tokens, another order: no shared prefix
        assert srv.stats()["cached_input_tokens"] == 32
        srv.reset_stats()  # also empties the cache
        post(srv, "sim-model", shared + " " + words(30, 1000))
        assert srv.stats()["cached_input_tokens"] == 0


def test_prefix_cache_drops_the_least_recently_used_blocks_past_its_capacity():
    with SimServer(latency_s=0.0, prefix_cache_tokens=32) as srv:  # room for two blocks
        post(srv, "m", words(32))
        post(srv, "m", words(32, 500))  # evicts the first request's blocks
        post(srv, "m", words(32))
        assert srv.stats()["cached_input_tokens"] == 0
        post(srv, "m", words(32))
        assert srv.stats()["cached_input_tokens"] == 32


def test_grader_requests_are_counted_apart():
    with SimServer(latency_s=0.0) as srv:
        engine = RubricGrader(OpenAIChat(srv.base_url, "sim-grader", max_retries=0), grader_id="g", max_concurrency=1)
        asyncio.run(engine.grade(CONVO, "A reply that is long enough to fill a few blocks " * 4, ITEMS[:3]))
        stats = srv.stats()
        assert stats["grader_cached_input_tokens"] == stats["cached_input_tokens"] > 0  # criteria 2, 3 reuse criterion 1's prefix
        assert stats["grader_uncached_input_tokens"] == stats["grader_input_tokens"] - stats["grader_cached_input_tokens"]


def test_latency_counts_from_arrival_so_the_servers_own_work_is_part_of_it(monkeypatch):
    import time

    waits: list[float] = []
    real_sleep = asyncio.sleep

    async def recording_sleep(delay, *args, **kwargs):
        waits.append(delay)
        return await real_sleep(delay, *args, **kwargs)

    class SlowToRead(SimServer):
        async def _complete(self, request, text, arrived):
            time.sleep(0.3)  # the server's own work on the request: at least 0.3 s
            return await super()._complete(request, text, arrived)

    monkeypatch.setattr(asyncio, "sleep", recording_sleep)
    with SlowToRead(latency_s=0.5) as srv:
        post(srv, "sim-model", "hello")
    latency_waits = [w for w in waits if w != 0]  # the server also yields once (sleep(0)) before working on a request
    assert len(latency_waits) == 1 and 0.0 < latency_waits[0] <= 0.2  # 0.5 s after arrival, not after the 0.3 s of work
