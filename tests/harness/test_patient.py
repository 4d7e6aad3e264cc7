import asyncio

import pytest

from harness.errors import ArgumentError
from harness.patient import REDACTED, PatientSimulator
from tests.helpers.cases import echo_facts, make_case


def run(coro):
    return asyncio.run(coro)


def test_unasked_fact_is_not_revealed():
    async def chat(messages):
        return echo_facts(messages)

    sim = PatientSimulator(make_case(), chat)
    reply = run(sim.reply("Do you smoke or drink alcohol?"))
    assert "wine" in reply.text and "stairs" not in reply.text
    assert reply.revealed_fact_ids == ["f3"] and not reply.leaked
    reply = run(sim.reply("Any trouble climbing stairs?"))
    assert "stairs" in reply.text and "f2" in reply.revealed_fact_ids
    assert sim.revealed == ["f3", "f2"]


def test_open_question_reveals_one_fact_at_a_time():
    async def chat(messages):
        return echo_facts(messages)

    sim = PatientSimulator(make_case(), chat)
    assert run(sim.reply("What brings you in today?")).revealed_fact_ids == ["f1"]
    assert run(sim.reply("Tell me more.")).revealed_fact_ids == ["f2"]


def test_leaking_reply_is_regenerated_and_counted():
    drafts = iter(["I read online that it is myasthenia gravis.", "My eyes see double."])

    async def chat(messages):
        return next(drafts)

    sim = PatientSimulator(make_case(), chat, persona="anxious")
    reply = run(sim.reply("How are you?"))
    assert reply.leaked and reply.regenerated and not reply.redacted
    assert reply.text == "My eyes see double." and sim.leaks == 1 and sim.replies == 1


def test_persistent_leak_is_redacted_including_aliases():
    async def chat(messages):
        return "Maybe MG? The test showed decreased muscle response with repetitive stimulation."

    sim = PatientSimulator(make_case(), chat)
    reply = run(sim.reply("What do you think it is?"))
    assert reply.redacted and "MG" not in reply.text and "repetitive stimulation" not in reply.text
    assert REDACTED in reply.text and sim.redactions == 1


@pytest.mark.parametrize(
    "reply, leak",
    [
        ("I think my uterus has ruptured.", True),  # curated "my uterus ruptured", with an auxiliary between
        ("Could my womb have just burst?", True),  # "womb burst"
        ("My uterus is fine, it ruptured nothing.", False),  # the words, but not together
        ("The pain is in my lower tummy.", False),
    ],
)
def test_leak_guard_sees_giveaways_in_other_word_forms_and_with_auxiliaries(reply, leak):
    case = make_case()
    case.diagnosis = "Uterine rupture"
    sim = PatientSimulator(case, chat=None)
    assert bool(sim.leak_terms_in(reply)) is leak


@pytest.mark.parametrize(
    "reply, leak",
    [
        ("My thyroid test came back normal.", True),  # a result of a test not ordered yet
        ("The nerve test showed my muscles tire out.", True),
        ("Her white count was 63,000 last week.", True),
        ("They already tested my blood and the antibody came back positive.", True),
        ("I'm worried about what the tests will show.", False),  # no result reported
        ("I had a scan once, years ago.", False),
        ("My double vision comes and goes.", False),
    ],
)
def test_a_reported_result_of_a_test_not_ordered_is_a_leak(reply, leak):
    sim = PatientSimulator(make_case(), chat=None)
    assert bool(sim.leak_terms_in(reply)) is leak


def test_a_reported_result_is_no_leak_once_the_test_is_ordered():
    sim = PatientSimulator(make_case(), chat=None)
    sim.order_test("TSH")
    assert not sim.leak_terms_in("My TSH came back normal.")


def test_ordered_test_value_is_no_leak():
    async def chat(messages):
        return "You said the decreased muscle response with repetitive stimulation was found."

    sim = PatientSimulator(make_case(), chat)
    assert "Decreased muscle response" in sim.order_test("electromyography (EMG)")
    assert not run(sim.reply("Did you understand the result?")).leaked


def test_lookups_are_deterministic():
    sim = PatientSimulator(make_case(), chat=None)
    assert "Ptosis" in sim.examine("cranial nerves")
    abdomen, chest = sim.examine("abdomen"), sim.order_test("chest x-ray")
    assert "not recorded" in abdomen and "normal" not in abdomen.lower()
    assert "not recorded" in chest and "normal" not in chest.lower()
    assert sim.ordered_tests == [] and sim.examined == ["cranial nerves", "abdomen"]


def test_unknown_persona():
    with pytest.raises(ArgumentError, match="low_health_literacy"):
        PatientSimulator(make_case(), chat=None, persona="pirate")


def test_part_of_the_diagnosis_name_is_caught_as_a_leak():
    async def chat(messages):
        return "My cousin had myasthenia too, I think."

    sim = PatientSimulator(make_case(), chat)
    reply = run(sim.reply("Anything in the family?"))
    assert reply.leaked and "myasthenia" not in reply.text.lower()
    assert sim.leaks == 1


def _long_case():
    from harness.cases import Fact

    case = make_case()
    more = [
        "Takes no regular medicines",
        "Works as a graphic designer",
        "Mother has thyroid disease",
        "No recent infections",
        "Denies chest pain",
        "Sleeps poorly",
        "Eyelids droop in the evening",
        "Chewing tires her jaw",
        "Voice becomes nasal when talking long",
    ]
    case.history += [Fact(f"f{i}", text, "history", False) for i, text in enumerate(more, 4)]
    return case


def test_a_bound_selector_chooses_among_the_best_scored_facts_not_only_those_above_the_threshold():
    """An LLM selector can only drop facts: shown only the thresholded ones, it could never recall more than the
    threshold does. It is shown the best-scored facts (``selector_candidates``) and its choice is what the patient may say."""
    from harness.grounding import selector_candidates, settings

    case, question = _long_case(), "Do you smoke?"
    shown = []

    async def last_one(q, facts):
        shown.append(list(facts))
        return [len(facts) - 1]

    async def chat(messages):
        return echo_facts(messages)

    sim = PatientSimulator(case, chat, selector=last_one)
    expected = selector_candidates(question, case.history, complaint=case.presenting_complaint)
    assert len(sim.candidates(question)) < len(expected) == settings().selector_candidates < len(case.history)
    reply = run(sim.reply(question))
    assert shown == [[f.text for f in expected]]
    assert expected[-1].text in reply.text


def test_an_unusable_selector_reply_falls_back_to_the_calibrated_choice_and_a_greedy_one_is_capped():
    from harness.grounding import settings

    async def chat(messages):
        return echo_facts(messages)

    async def confused(q, facts):
        return None

    async def everything(q, facts):
        return list(range(len(facts)))

    question = "Do your eyelids droop or does chewing tire you?"  # two facts pass the threshold
    plain = run(PatientSimulator(_long_case(), chat).reply(question)).text
    assert run(PatientSimulator(_long_case(), chat, selector=confused).reply(question)).text == plain
    greedy = PatientSimulator(_long_case(), chat, selector=everything)
    run(greedy.reply(question))
    assert len(greedy.revealed) <= settings().retrieval_max + 2
