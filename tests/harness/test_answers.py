"""The one answer extractor on realistic model outputs (Inspect, lm-eval and the verl reward share it)."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.answers import ChoiceAnswer, as_options, extract_choice, score_choice

OPTIONS = {
    "A": "Disclose the error to the patient and put it in the operative report",
    "B": "Tell the attending that he cannot fail to disclose this mistake",
    "C": "Report the physician to the ethics committee",
    "D": "Refuse to dictate the operative report",
}

# (reply, expected letter or None, expected status)
CASES = [
    ("Answer: C", "C", "ok"),
    ("ANSWER: b", "B", "ok"),
    ("(C)", "C", "ok"),
    ("C", "C", "ok"),
    ("c.", "C", "ok"),
    ("the answer is C.", "C", "ok"),
    ("The answer is c", "C", "ok"),
    ("**Answer:** D", "D", "ok"),
    ("The correct option is D.", "D", "ok"),
    ("Final answer: \\boxed{B}", "B", "ok"),
    ("The answer is therefore most likely (B).", "B", "ok"),
    ("C. Report the physician to the ethics committee", "C", "ok"),
    ("(B) Tell the attending that he cannot fail to disclose this mistake", "B", "ok"),
    ("B) Tell the attending", "B", "ok"),
    ("I would report the physician to the ethics committee.", "C", "ok"),
    ("The resident should refuse to dictate the operative report.", "D", "ok"),
    ("The answer is not A but C", "C", "ok"),
    ("It is not A, but C.", "C", "ok"),
    ("The answer is C, not A.", "C", "ok"),
    ("Initially I thought the answer is A, but the final answer is C.", "C", "ok"),
    ("Let's consider each option: A is tempting. (B) fits best.\nANSWER: B", "B", "ok"),
    ("<think>Maybe the answer is A.</think>\nThe answer is D", "D", "ok"),
    ("A 45-year-old man should be told everything.", None, "no_answer"),
    ("the answer is a difficult one", None, "no_answer"),
    ("I don't know.", None, "no_answer"),
    ("", None, "no_answer"),
    ("The answer is E", None, "no_answer"),
    ("A or C", None, "ambiguous"),
    ("The answer is A or C.", None, "ambiguous"),
    ("Answer: A, B", None, "ambiguous"),
    ("(A) is wrong, (B) is right", None, "ambiguous"),
    ("A. Because the patient must know. Reporting (C) would be premature.", None, "ambiguous"),
]


@pytest.mark.parametrize("reply,letter,status", CASES)
def test_extract_choice(reply, letter, status):
    got = extract_choice(reply, OPTIONS)
    assert (got.letter, got.status) == (letter, status), got


@pytest.mark.parametrize("reply,letter,status", CASES)
def test_score_choice_counts_ambiguous_and_missing_as_wrong(reply, letter, status):
    for correct in "ABCD":
        expected = 1.0 if status == "ok" and letter == correct else 0.0
        assert score_choice(reply, OPTIONS, correct) == expected
    if letter:
        assert score_choice(reply, OPTIONS, letter.lower()) == 1.0


def test_letters_follow_the_options_given():
    three = {"A": "yes", "B": "no", "C": "maybe"}
    assert extract_choice("Answer: D", three).status == "no_answer"
    assert extract_choice("Maybe.", three) == ChoiceAnswer("C", "ok", "mention")
    assert extract_choice("Answer: C", ["yes", "no", "maybe"]).letter == "C"
    assert as_options(["x", "y"]) == {"A": "x", "B": "y"}


def test_short_option_texts_are_not_echo_matched():
    opts = {"A": "5", "B": "10", "C": "15", "D": "20"}
    assert extract_choice("After 5 days the count was 10.", opts).status == "no_answer"
    assert extract_choice("Answer: (B)", opts).letter == "B"


WORDS = ["patient", "fever", "renal", "biopsy", "likely", "therefore", "because", "shows", "the", "of", "with", "acute"]


@given(
    texts=st.lists(
        st.text(alphabet="abcdefghijklmnopqrstuvwxyz ", min_size=3, max_size=30).filter(lambda t: t.strip()),
        min_size=4,
        max_size=4,
        unique=True,
    ),
    letter=st.sampled_from("ABCD"),
    reasoning=st.lists(st.sampled_from(WORDS), max_size=40),
    style=st.sampled_from(["ANSWER: {}", "The answer is ({}).", "Final answer: **{}**", "the answer is {}."]),
)
def test_a_final_statement_always_decides(texts, letter, reasoning, style):
    options = dict(zip("ABCD", texts))
    reply = " ".join(reasoning) + "\n" + style.format(letter if "{}." not in style else letter.lower())
    got = extract_choice(reply, options)
    assert (got.letter, got.status) == (letter, "ok")
    assert score_choice(reply, options, letter) == 1.0
