import pytest
from inspect_ai import eval as inspect_eval

from harness.evals.consultation import consultation_task
from tests.helpers.paths import shared_file


@pytest.mark.slow
def test_two_cases_embedded_model_in_every_role(tmp_path):
    """Offline end to end: m2bench/default is doctor, patient, rubric generator and grader."""
    shared_file("agentclinic", "agentclinic_medqa.jsonl")
    task = consultation_task("agentclinic_medqa", max_turns=1, grading_mode="batched", max_error_fraction=0.5)
    task.dataset = task.dataset[:2]
    roles = {role: "m2bench/default" for role in ("patient", "grader", "rubric_generator")}
    [log] = inspect_eval(task, model="m2bench/default", model_roles=roles, log_dir=str(tmp_path), display="none")
    assert log.status == "success", log.error
    assert len(log.samples) == 2
    for sample in log.samples:
        assert sample.error is None  # the 135M generator's repeated items are dropped, not a failed sample
        record = sample.metadata["consultation"]
        assert record["turns_used"] <= 1 and record["events"][0]["role"] == "case"
        meta = sample.scores["consultation_scorer"].metadata
        assert meta["verdicts"] and all(v["criteria_met"] in (True, False) for v in meta["verdicts"])
        assert meta["rubric_generator"] == "m2bench/default" and isinstance(meta["rubric_dropped"], list)
    assert "score" in log.results.scores[0].metrics


def test_craftmd_vignette_multiple_choice_with_scripted_models(tmp_path):
    """CRAFT-MD from its raw CSV: the options are shown with the vignette and the letter is scored."""
    import json

    from inspect_ai.model import ModelOutput, ModelUsage, get_model

    from tests.helpers.cases import sections
    from tests.helpers.scripted import mock_model, scripted_grader_model

    shared_file("craftmd", "usmle_and_derm_dataset.csv")
    task = consultation_task("craftmd_derm", mode="vignette", answer="multiple_choice", benchmark="craftmd")
    task.dataset = task.dataset[:1]  # case_0: Lymphogranuloma venereum = choice A
    assert "Options:" in task.dataset[0].input and "A. Lymphogranuloma venereum" in task.dataset[0].input

    def doctor(input, tools, tool_choice, config):
        out = ModelOutput.for_tool_call("mockllm/model", "final_assessment", {"diagnosis": "A", "differential": [], "plan": "-"})
        out.usage = ModelUsage(input_tokens=3, output_tokens=4, total_tokens=7)  # no tokenizer download
        return out

    roles = {
        "grader": scripted_grader_model(lambda criterion: False),
        "patient": mock_model(lambda prompt: "unused"),
        "rubric_generator": mock_model(lambda prompt: sections(plan=[{"criterion": "Does the diagnosis thing.", "points": 2}])),
    }
    model = get_model("mockllm/model", custom_outputs=doctor, memoize=False)
    [log] = inspect_eval(task, model=model, model_roles=roles, log_dir=str(tmp_path), display="none")
    assert log.status == "success", log.error
    score = log.samples[0].scores["consultation_scorer"]
    assert score.metadata["diagnosis"]["decided_by"] == "option" and score.metadata["diagnosis_correct"] is True
    assert log.eval.metadata["benchmark"] == "craftmd" and log.eval.metadata["split"] == "vignette/multiple_choice"
    assert json.dumps(score.metadata["metrics"])  # plain numbers
    assert score.metadata["rubric_dropped"] == [
        {"field": "plan[0]", "criterion": "Does the diagnosis thing.", "reason": "duplicate: same as diagnosis[0]"}
    ]
    assert "Does the diagnosis thing" not in score.explanation


def test_persona_all_runs_each_case_once_per_persona():
    from harness.patient import PERSONAS

    shared_file("agentclinic", "agentclinic_medqa.jsonl")
    task = consultation_task("agentclinic_medqa", persona="all")
    assert len(task.dataset) == 107 * len(PERSONAS)
    assert {s.metadata["persona"] for s in task.dataset} == set(PERSONAS)
