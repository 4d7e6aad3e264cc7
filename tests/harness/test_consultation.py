import asyncio
import json

import pytest
from inspect_ai import eval as inspect_eval
from inspect_ai.model import ModelOutput, ModelUsage, get_model

from harness.cases import Case
from harness.consultation import Action, ChatDoctor, run_consultation, score_consultation
from harness.errors import ArgumentError
from harness.evals.consultation import consultation_task
from harness.grading import RubricGrader
from harness.patient import PatientSimulator
from harness.rubric_generator import deterministic_items
from tests.helpers.cases import echo_facts, make_case, sections
from tests.helpers.scripted import mock_model, scripted_grader, scripted_grader_model


def doctor_script(*calls):
    queue = [json.dumps({"tool": t, "arguments": a}) for t, a in calls]

    async def chat(messages):
        return queue.pop(0) if queue else json.dumps({"tool": "ask", "arguments": {"question": "Anything else?"}})

    return ChatDoctor(chat)


async def patient_chat(messages):
    return echo_facts(messages)


FINAL = ("final_assessment", {"diagnosis": "Myasthenia gravis", "differential": ["Lambert-Eaton"], "plan": "pyridostigmine"})


def test_episode_ends_on_final_assessment():
    case = make_case()
    doctor = doctor_script(("ask", {"question": "Trouble climbing stairs?"}), ("order_test", {"name": "electromyography"}), FINAL)
    episode = asyncio.run(run_consultation(case, doctor, PatientSimulator(case, patient_chat), max_turns=10))
    assert episode.turns_used == 3 and not episode.timed_out
    assert episode.assessment.diagnosis == "Myasthenia gravis"
    assert episode.tests_ordered == ["Electromyography"] and episode.revealed_fact_ids == ["f2"]
    assert [e["role"] for e in episode.events] == ["case", "doctor", "patient", "doctor", "order_test", "doctor"]


def test_episode_ends_at_turn_cap():
    case = make_case()
    doctor = doctor_script()  # only ever asks
    episode = asyncio.run(run_consultation(case, doctor, PatientSimulator(case, patient_chat), max_turns=3))
    assert episode.turns_used == 3 and episode.timed_out and episode.assessment is None
    assert episode.events[-2]["content"] == "turn cap reached (3 turns)" and episode.events[-1]["forced"]


def test_forced_final_after_cap_is_kept():
    case = make_case()
    doctor = doctor_script(("ask", {"question": "Any pain?"}), FINAL)
    episode = asyncio.run(run_consultation(case, doctor, PatientSimulator(case, patient_chat), max_turns=1))
    assert episode.timed_out and episode.assessment.diagnosis == "Myasthenia gravis" and episode.turns_used == 1


def test_bad_tool_call_is_an_invalid_turn():
    assert Action.from_call("final_assessment", {"diagnosis": ""}).tool == "invalid"
    assert Action.from_call("prescribe", {}).tool == "invalid"
    with pytest.raises(ArgumentError, match="max_turns"):
        asyncio.run(run_consultation(make_case(), doctor_script(), PatientSimulator(make_case(), patient_chat), max_turns=-1))


def test_score_consultation_uses_the_engine():
    case = make_case()
    doctor = doctor_script(("ask", {"question": "Trouble climbing stairs?"}), FINAL)
    episode = asyncio.run(run_consultation(case, doctor, PatientSimulator(case, patient_chat), max_turns=5))
    rubric = deterministic_items(case)
    grader = scripted_grader(lambda criterion: "Myasthenia" in criterion)
    engine = RubricGrader(grader, grader_id="scripted")
    result = asyncio.run(score_consultation(case, episode, episode.assessment, engine, rubric))
    assert result.diagnosis_correct is True and len(rubric) == len(result.verdicts)
    assert grader.calls == len(rubric) + len(case.critical_facts)  # the rubric, the judge, one check per critical fact
    assert result.grader_calls == grader.calls  # the judge and the critical-fact checks are grader calls too
    assert result.critical_fact_recall == 0.0 and result.elicited_by_embedding == ["f2"]  # this grader meets no fact
    positive = sum(i.points for i in rubric if i.points > 0)
    assert result.score == pytest.approx(10 / positive) and result.metrics["diagnostic_accuracy"] == 1.0
    wrong = asyncio.run(
        score_consultation(case, episode, None, RubricGrader(scripted_grader(lambda c: False), grader_id="x"), rubric)
    )
    assert wrong.diagnosis_correct is False and wrong.score == 0


def _doctor_model():
    """Inspect mock doctor: asks once, then gives a final assessment (real tool calls)."""
    turns = []

    def output(input, tools, tool_choice, config):
        turns.append(1)
        if len(turns) == 1 and len(tools) > 1:
            out = ModelOutput.for_tool_call("mockllm/model", "ask", {"question": "Do you smoke or drink?"})
        else:
            out = ModelOutput.for_tool_call("mockllm/model", "final_assessment", FINAL[1])
        out.usage = ModelUsage(input_tokens=5, output_tokens=5, total_tokens=10)
        return out

    return get_model("mockllm/model", custom_outputs=output, memoize=False)


def test_inspect_task_logs_transcript_facts_and_verdicts(tmp_path):
    from harness.evals import consultation as module

    task = consultation_task("agentclinic_medqa", max_turns=4)
    task.dataset = task.dataset[:1]
    roles = {
        "patient": mock_model(lambda prompt: "I do not smoke and I drink wine occasionally."),
        "grader": scripted_grader_model(lambda criterion: "Myasthenia" in criterion),
        "rubric_generator": mock_model(lambda prompt: sections()),
    }
    [log] = inspect_eval(task, model=_doctor_model(), model_roles=roles, log_dir=str(tmp_path), display="none")
    assert log.status == "success", log.error
    sample = log.samples[0]
    record = sample.metadata["consultation"]
    assert record["turns_used"] == 2 and not record["timed_out"]
    assert [e["role"] for e in record["events"]][:3] == ["case", "doctor", "patient"]
    assert record["tokens"]["doctor"] == 20 and record["tokens"]["patient"] >= 2
    score = sample.scores["consultation_scorer"]
    assert score.metadata["tokens"]["doctor"] == 20  # the doctor's tokens reach the score (they used to be {})
    assert log.results.scores[0].metrics["doctor_tokens"].value == 20
    assert score.metadata["diagnosis_correct"] is True
    assert any(v["criterion"].startswith("Safety red flag") for v in score.metadata["verdicts"])
    assert any(m.role == "tool" and "wine" in m.text for m in sample.messages)
    metrics = log.results.scores[0].metrics
    assert "score" in metrics and "bootstrap_std" in metrics and metrics["diagnostic_accuracy"].value == 1.0
    assert log.eval.metadata["benchmark"] == "consultation" and log.eval.metadata["rubric_graded"] is True
    assert module.PATIENT_ROLE in log.eval.model_roles


@pytest.mark.parametrize(
    "args, name",
    [({"max_turns": -1}, "max_turns"), ({"mode": "oral"}, "mode"), ({"persona": "pirate"}, "persona"), ({"cases": "x"}, "cases")],
)
def test_task_arguments_validated(args, name):
    with pytest.raises(ArgumentError, match=name):
        consultation_task(**args)


def _options_case():
    case = make_case()
    case.options = {"A": "Lambert-Eaton syndrome", "B": "Myasthenia gravis (MG)", "C": "Botulism", "D": "Multiple sclerosis"}
    case.answer_idx = "B"
    return case


def test_multiple_choice_is_asked_after_the_conversation():
    case = _options_case()
    seen = []

    async def chat(messages):
        seen.append(messages[-1]["content"])
        if len(seen) == 1:
            return json.dumps({"tool": "ask", "arguments": {"question": "Trouble climbing stairs?"}})
        return json.dumps({"tool": "final_assessment", "arguments": {"diagnosis": "B. Myasthenia gravis"}})

    episode = asyncio.run(
        run_consultation(case, ChatDoctor(chat), PatientSimulator(case, patient_chat), 1, answer="multiple_choice")
    )
    assert "Options" not in seen[0] and "B. Myasthenia gravis (MG)" in seen[-1]  # options only at the end
    engine = RubricGrader(scripted_grader(lambda c: False), grader_id="scripted")  # the judge says no; the letter decides
    result = asyncio.run(score_consultation(case, episode, episode.assessment, engine, deterministic_items(case)))
    assert result.diagnosis_correct is True and result.diagnosis.decided_by == "option"


def test_free_text_answer_gets_a_multiple_choice_cross_check():
    case = _options_case()
    doctor = doctor_script(FINAL, ("final_assessment", {"diagnosis": "A"}))
    episode = asyncio.run(run_consultation(case, doctor, PatientSimulator(case, patient_chat), 3))
    assert episode.mcq_answer == "A"
    engine = RubricGrader(scripted_grader(lambda c: True), grader_id="scripted")
    result = asyncio.run(score_consultation(case, episode, episode.assessment, engine, deterministic_items(case)))
    assert result.diagnosis.alias and result.diagnosis_correct is True
    assert result.diagnosis.mcq_correct is False and result.metrics["judge_mcq_agreement"] == 0.0


def test_summary_mode_answers_from_a_summary_in_a_fresh_context():
    case = make_case()
    contexts = []

    async def chat(messages):
        contexts.append(list(messages))
        if len(contexts) == 1:
            return json.dumps({"tool": "ask", "arguments": {"question": "Trouble climbing stairs?"}})
        return json.dumps({"tool": "final_assessment", "arguments": {"diagnosis": "Myasthenia gravis"}})

    async def summarizer(messages):
        assert "Patient:" in messages[0]["content"]
        return "Double vision and difficulty climbing stairs."

    episode = asyncio.run(
        run_consultation(case, ChatDoctor(chat), PatientSimulator(case, patient_chat), 1, mode="summary", summarizer=summarizer)
    )
    assert episode.summary.startswith("Double vision") and episode.assessment.diagnosis == "Myasthenia gravis"
    assert len(contexts[-1]) == 2 and "Summary of the consultation" in contexts[-1][-1]["content"]  # system + summary only
    with pytest.raises(ArgumentError, match="summarizer"):
        asyncio.run(run_consultation(case, ChatDoctor(chat), PatientSimulator(case, patient_chat), 1, mode="summary"))


def test_alias_and_non_answer_checks():
    from harness.consultation import alias_match, is_non_answer

    case = load_real_or_make()
    assert alias_match(case, "Generalized MG") and alias_match(case, "ocular myasthenia gravis")
    assert not alias_match(case, "Lambert-Eaton myasthenic syndrome") and not alias_match(case, "not myasthenia gravis")
    for text in ("", "pending", "The diagnosis of the disease is currently pending", "unsure", "Awaiting test results"):
        assert is_non_answer(text), text
    assert not is_non_answer("Myasthenia gravis")


@pytest.mark.parametrize(
    "text, non_answer",
    [
        ("Not certain yet: chest CT to be done", True),  # a hedge, then only the work-up it waits for
        ("Inconclusive at the moment - bloods ordered", True),
        ("Unsure", True),
        ("Uncertain, probably viral pneumonia, CT needed", False),  # names a candidate: the judge decides
        ("Not clear yet, could be gout or pseudogout", False),
        ("Unclear aetiology pneumonia", False),  # no separator after the hedge word: it qualifies a diagnosis
    ],
)
def test_a_hedge_followed_only_by_work_up_is_a_non_answer(text, non_answer):
    from harness.consultation import is_non_answer

    assert is_non_answer(text) is non_answer


@pytest.mark.parametrize(
    "text, non_answer",
    [
        ("diagnosis_diagnosis_diagnosis_diagnosis_", True),  # a placeholder: the 135M doctor's real final answer
        ("Final diagnosis: diagnosis", True),
        ("The diagnosis is: ...", True),
        ("<diagnosis>", True),
        ("Diagnosis: myasthenia gravis", False),
        ("MG", False),
        ("A", False),  # an option letter
        ("b", False),
        ("Diagnosis of exclusion: fibromyalgia", False),
    ],
)
def test_a_placeholder_that_names_no_condition_is_a_non_answer(text, non_answer):
    from harness.consultation import is_non_answer

    assert is_non_answer(text) is non_answer


def load_real_or_make():
    case = make_case()
    case.diagnosis = "Myasthenia gravis"
    return case


@pytest.mark.parametrize(
    "text, non_answer",
    [
        ("Need the biopsy result before I can say", True),  # defers to the work-up and names nothing
        ("Too early to tell", True),
        ("Probably needs an MRI before I can say", True),  # the hedge qualifies the work-up, not a condition
        ("Can't say until the scan is back", True),
        ("I would like the bloods back first", True),
        ("Probably myasthenia gravis, but I need the EMG before I can be sure", False),  # names a candidate
        ("Myasthenia gravis", False),
    ],
)
def test_a_deferral_that_names_no_condition_is_a_non_answer(text, non_answer):
    from harness.consultation import is_non_answer

    assert is_non_answer(text) is non_answer


@pytest.mark.parametrize(
    "diagnosis, answer, accepted",
    [
        ("Meigs syndrome", "Pseudo-Meigs syndrome", False),  # another condition that contains the name
        ("Meigs syndrome", "Meigs syndrome", True),
        (
            "Rupture of the flexor digitorum profundus tendon at its point of insertion",
            "Rupture of the flexor digitorum profundus tendon at its insertion",
            True,
        ),  # one word of a long name left out
        (
            "Rupture of the flexor digitorum profundus tendon at its point of insertion",
            "Rupture of the flexor digitorum superficialis tendon at its point of insertion",
            False,
        ),  # a word changed
        ("Rupture of the flexor digitorum profundus tendon at its point of insertion", "Flexor tendon rupture", False),
        ("Active chronic hepatitis B infection", "Hepatitis B", True),  # only course and kind words left out
        ("Active chronic hepatitis B infection", "Acute hepatitis B", False),  # adds a word that changes the course
        ("Active chronic hepatitis B infection", "Chronic infection", False),  # nothing but qualifiers
        ("Small cell lung cancer", "Lung cancer", False),  # leaves out words that name the kind
    ],
)
def test_alias_check_rejects_look_alike_names_and_accepts_a_long_name_shortened(diagnosis, answer, accepted):
    from harness.consultation import alias_match

    case = make_case()
    case.diagnosis = diagnosis
    assert alias_match(case, answer) is accepted


@pytest.mark.parametrize(
    "diagnosis, answer, accepted",
    [
        ("Posterior urethral valves", "PUV", True),  # the initials of a name of three or more words
        ("Acute interstitial nephritis", "Likely AIN", True),
        ("Acute interstitial nephritis", "not AIN", False),
        ("Acute interstitial nephritis", "ain", False),  # initials count only in capitals
        ("Atrial flutter", "AF", False),  # two words: "AF" is atrial fibrillation
        ("Borderline personality disorder", "Borderline PD", True),  # an abbreviated word spelled out
        ("Paranoid personality disorder", "Borderline PD", False),
        ("Jejunal atresia", "Atresia of the jejunum", True),  # the same words, reordered, adjective for noun
        ("Femoral artery aneurysm", "Aneurysm of the femoral artery", True),
        ("Jejunal atresia", "Atresia of the duodenum", False),
        ("Jejunal atresia", "Jejunal stenosis", False),
    ],
)
def test_alias_check_accepts_initials_abbreviated_words_and_reordered_names(diagnosis, answer, accepted):
    from harness.consultation import alias_match

    case = make_case()
    case.diagnosis = diagnosis
    assert alias_match(case, answer) is accepted


@pytest.mark.parametrize(
    "text, non_answer",
    [
        ("I need more information first", True),
        ("Need more tests to decide", True),
        ("More information is needed", True),
        ("I would need more history before I can say", True),
        ("Likely migraine, but I need more information", False),  # names a candidate
        ("Migraine", False),
        ("Hard to say until the scan results are back.", True),
        ("I can't commit to a diagnosis until we get a CT scan.", True),
        ("Await biopsy results.", True),
        ("Some kind of infection, I'd need cultures to say which one.", True),  # a class, no diagnosis
        ("Hard to say, but probably a migraine.", False),
        ("An itchy papular rash of uncertain cause.", True),  # a finding, no condition
        ("I'd want the Coombs and a repeat bilirubin before saying what this is.", True),
        ("Further imaging needed before a diagnosis.", True),
        ("I'd like the biopsy back before naming a diagnosis.", True),
        ("Unclear, I'd refer him to dermatology.", True),  # a hedge, then only a referral
        ("Some kind of ichthyosis; can't say which without a biopsy.", True),  # a family of conditions, not one
        ("Pneumonia of uncertain cause", False),  # names a condition
    ],
)
def test_asking_for_more_information_or_deferring_is_a_non_answer(text, non_answer):
    from harness.consultation import is_non_answer

    assert is_non_answer(text) is non_answer


def test_critical_fact_recall_is_the_graders_check_with_the_embedding_check_beside_it():
    """The grader decides which critical facts the patient's words convey (paraphrases included); the calibrated
    embedding check runs beside it, their agreement is reported, and it decides alone when the grader fails."""
    case = make_case()  # critical facts: f1 double vision, f2 difficulty climbing stairs
    doctor = doctor_script(("ask", {"question": "Trouble climbing stairs?"}), FINAL)
    episode = asyncio.run(run_consultation(case, doctor, PatientSimulator(case, patient_chat), max_turns=5))
    rubric = deterministic_items(case)

    def scored(decide):
        return asyncio.run(score_consultation(case, episode, episode.assessment, RubricGrader(decide, grader_id="g"), rubric))

    agrees = scored(scripted_grader(lambda c: "Myasthenia" in c or ("patient's words" in c and "stairs" in c)))
    assert agrees.critical_fact_recall == 0.5 and agrees.elicited_fact_ids == ["f2"] and agrees.elicited_by == "grader"
    assert agrees.metrics["elicited_check_agreement"] == 1.0
    differs = scored(scripted_grader(lambda c: "patient's words" in c and "Double vision" in c))
    assert differs.elicited_fact_ids == ["f1"] and differs.metrics["elicited_check_agreement"] == 0.0

    async def no_verdict_on_facts(messages, json_schema=None):
        if "patient's words" in messages[-1]["content"]:
            return "no idea"
        return await scripted_grader(lambda c: True)(messages, json_schema)

    fallback = scored(no_verdict_on_facts)
    assert fallback.elicited_by == "embedding" and fallback.elicited_fact_ids == ["f2"]
    assert "elicited_check_agreement" not in fallback.metrics


def test_no_elicitation_agreement_is_claimed_when_the_patient_never_spoke():
    case = make_case()
    engine = RubricGrader(scripted_grader(lambda c: True), grader_id="g")
    result = asyncio.run(score_consultation(case, [{"role": "case", "content": "..."}], None, engine, deterministic_items(case)))
    assert result.critical_fact_recall == 0.0 and "elicited_check_agreement" not in result.metrics


def test_a_bound_measurement_model_chooses_among_the_selector_candidates_in_the_inspect_run(tmp_path):
    import re

    from harness.grounding import selector_candidates

    prompts = []

    def choose_first(prompt):
        prompts.append(prompt)
        return json.dumps({"facts": [1]})

    task = consultation_task("agentclinic_medqa", max_turns=4)
    task.dataset = task.dataset[:1]
    roles = {
        "patient": mock_model(lambda prompt: "I do not smoke and I drink wine occasionally."),
        "measurement": mock_model(choose_first),
        "grader": scripted_grader_model(lambda criterion: "Myasthenia" in criterion),
        "rubric_generator": mock_model(lambda prompt: sections()),
    }
    [log] = inspect_eval(task, model=_doctor_model(), model_roles=roles, log_dir=str(tmp_path), display="none")
    assert log.status == "success", log.error
    case = Case.from_dict(log.samples[0].metadata["case"])
    shown = selector_candidates("Do you smoke or drink?", case.history, complaint=case.presenting_complaint)
    [prompt] = prompts
    assert re.findall(r"^\d+\. (.+)$", prompt, re.M) == [f.text for f in shown]
    score = log.samples[0].scores["consultation_scorer"]
    assert score.metadata["elicited_by"] == "grader" and "elicited_by_embedding" in score.metadata
    assert "elicited_check_agreement" in log.results.scores[0].metrics
