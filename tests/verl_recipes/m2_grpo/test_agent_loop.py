"""The m2_consultation agent loop, end to end on CPU: a real tokenizer and Continuous Token builder,
verl's own instantiation path, a scripted rollout server (verl's TokenOutput), patient and grader;
its episode rewarded by the recipe's reward manager (as verl's reward worker does)."""

import asyncio
import json
import sys

import hydra
import pytest
from omegaconf import OmegaConf
from verl.experimental.agent_loop.agent_loop import DictConfigWrap, ToolListWrap, _agent_loop_registry
from verl.utils.dataset.rl_dataset import RLHFDataset
from verl.workers.rollout.replica import TokenOutput

from harness.cases import load_cases
from harness.consultation import Assessment, score_consultation
from harness.rubric_generator import RUBRIC_SCHEMA, case_rubric
from tests.helpers.paths import shared_file
from tests.helpers.scripted import verdict_reply
from verl_recipes.m2_grpo import agent_loop, consultation, data, launch, reward

pytestmark = pytest.mark.slow  # verl's agent loop with a real tokenizer: about 15 s to set up


GRADER = "scripted-grader"
PATIENT_REPLY = ""  # set by the case fixture to something the record says (the grounded patient drops anything else)
RUBRIC = {
    "diagnosis": [{"criterion": "Names the diagnosis.", "points": 5}],
    "history": [{"criterion": "Asks when the symptoms started.", "points": 3}],
    "tests": [{"criterion": "Orders a chest CT.", "points": 2}],
    "plan": [{"criterion": "Plans treatment.", "points": 2}],
    "safety": [{"criterion": "Gives unsafe advice.", "points": -5}],
    "communication": [{"criterion": "Checks understanding.", "points": 1}],
}


def decide(criterion: str) -> bool:
    criterion = criterion.lower()
    return "names" in criterion or "started" in criterion


async def grade(messages, json_schema=None):
    if json_schema is RUBRIC_SCHEMA:
        return json.dumps(RUBRIC)
    return verdict_reply(messages[-1]["content"], decide)


async def patient(messages):
    return PATIENT_REPLY


class ScriptedServer:
    """verl's ``server_manager.generate``: returns the next scripted doctor turn as a TokenOutput."""

    def __init__(self, tokenizer, turns: list[str], logprobs: bool, stop_reason: str = "completed"):
        self.tokenizer, self.turns, self.logprobs, self.stop_reason = tokenizer, list(turns), logprobs, stop_reason
        self.end = tokenizer.convert_tokens_to_ids("<|im_end|>")
        self.prompts: list[list[int]] = []
        self.generated: list[list[int]] = []

    async def generate(self, request_id, *, prompt_ids, sampling_params, **kwargs):
        self.prompts.append(list(prompt_ids))
        ids = self.tokenizer.encode(self.turns.pop(0), add_special_tokens=False) + [self.end]
        self.generated.append(ids)
        turn = len(self.generated)
        return TokenOutput(
            token_ids=ids,
            log_probs=[-0.25] * len(ids) if self.logprobs else None,
            stop_reason=self.stop_reason,
            num_preempted=1,
            routed_experts=[[turn]] * (len(prompt_ids) + len(ids)),
            extra_fields={"global_steps": 3, "min_global_steps": 3, "max_global_steps": 2 + turn},
        )


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    from harness.local_model import GGUF_FILE, weights_dir

    return AutoTokenizer.from_pretrained(weights_dir(), gguf_file=GGUF_FILE)


@pytest.fixture
def case(monkeypatch):
    shared_file("agentclinic", "agentclinic_medqa.jsonl")
    monkeypatch.setattr(agent_loop, "patient_chat", lambda: patient)
    reward.configure(grade, grader_id=GRADER, cache=False)
    loaded = load_cases("agentclinic_medqa")[0]
    monkeypatch.setattr(sys.modules[__name__], "PATIENT_REPLY", loaded.presenting_complaint)
    yield loaded
    reward.reset()


def doctor_turns(case) -> list[str]:
    return [
        json.dumps({"tool": "ask", "arguments": {"question": "When did the double vision start?"}}),
        json.dumps(
            {
                "tool": "final_assessment",
                "arguments": {"diagnosis": case.diagnosis, "differential": [], "plan": "Confirm with antibody tests."},
            }
        ),
    ]


def run_loop(case, tokenizer, server, response_length: int, max_turns: int = 4, model_type: str = "qwen2"):
    row = data.row(
        reward.CONSULTATION,
        consultation.opening_messages(case),
        "medical_consultation",
        case.diagnosis,
        f"consultation:{case.case_id}",
        agent_name=data.CONSULTATION_AGENT,
        case_id=case.case_id,
        case=case.to_dict(),
    )
    config = OmegaConf.create(
        {
            "actor_rollout_ref": {
                "rollout": {
                    "prompt_length": 2048,
                    "response_length": response_length,
                    "multi_turn": {"max_assistant_turns": max_turns},
                }
            },
            "reward": {"reward_kwargs": {}},
            "data": {},
        }
    )

    # model_type qwen2: the recipe's default policy (Qwen2.5) selects verl's ChatML builder; SmolLM2's
    # tokenizer has the same ChatML template, so it exercises the same boundary handling
    async def main():
        # exactly how verl's AgentLoopWorker._run_agent_loop builds a registered loop
        loop = hydra.utils.instantiate(
            config=_agent_loop_registry[row["agent_name"]],
            trainer_config=DictConfigWrap(config),
            server_manager=server,
            tokenizer=tokenizer,
            processor=None,
            hf_model_type=model_type,
            dataset_cls=RLHFDataset,
            data_config=DictConfigWrap(config.data),
            tools=ToolListWrap([]),
        )
        assert isinstance(loop, agent_loop.ConsultationAgentLoop)
        kwargs = {
            "raw_prompt": row["prompt"],
            "extra_info": row["extra_info"],
            "reward_model": row["reward_model"],
            "data_source": row["data_source"],
            "index": 0,
        }
        return await loop.run({"temperature": 1.0, "top_p": 1.0, "logprobs": server.logprobs}, **kwargs)

    return row, asyncio.run(main())


def test_consultation_loop_masks_doctor_tokens_and_scores_the_episode(case, tokenizer):
    server = ScriptedServer(tokenizer, doctor_turns(case), logprobs=True)
    row, out = run_loop(case, tokenizer, server, response_length=1024)

    # the prompt is the row's chat (system + case opening) as the chat template renders it
    expected_prompt = tokenizer.apply_chat_template(row["prompt"], tokenize=True, add_generation_prompt=True)["input_ids"]
    assert out.prompt_ids == expected_prompt == server.prompts[0]
    # each call extends the previous stream: prompt + doctor turn + observation
    assert len(server.prompts) == 2
    assert server.prompts[1][: len(expected_prompt) + len(server.generated[0])] == expected_prompt + server.generated[0]
    assert server.prompts[1] == out.prompt_ids + out.response_ids[: len(server.prompts[1]) - len(out.prompt_ids)]

    n = len(out.response_ids)
    assert len(out.response_mask) == n == len(out.response_logprobs)
    doctor = [t for t, m in zip(out.response_ids, out.response_mask) if m == 1]
    observation = [t for t, m in zip(out.response_ids, out.response_mask) if m == 0]
    assert doctor == server.generated[0] + server.generated[1]
    assert out.response_ids == server.generated[0] + observation + server.generated[1]  # one contiguous patient block
    assert PATIENT_REPLY in tokenizer.decode(observation)
    assert "final_assessment" not in tokenizer.decode(observation)
    assert PATIENT_REPLY in tokenizer.decode(out.response_ids)
    assert [p for p, m in zip(out.response_logprobs, out.response_mask) if m] == [-0.25] * len(doctor)
    assert not any(p for p, m in zip(out.response_logprobs, out.response_mask) if not m)
    # what is trained on is what the chat template renders for the whole conversation
    turns = doctor_turns(case)
    conversation = [
        *row["prompt"],
        {"role": "assistant", "content": turns[0]},
        {"role": "user", "content": PATIENT_REPLY},
        {"role": "assistant", "content": turns[1]},
    ]
    rendered = tokenizer.apply_chat_template(conversation, tokenize=True)["input_ids"]
    stream = out.prompt_ids + out.response_ids
    assert rendered == stream + tokenizer.encode("\n", add_special_tokens=False)  # the template's newline after the last turn
    assert out.num_turns == 4  # prompt + 2 doctor turns + 1 patient reply, counted like verl's ToolAgentLoop

    record = json.loads(out.extra_fields["transcript"])
    assert record["assessment"]["diagnosis"] == case.diagnosis and record["turns_used"] == 2
    assert [e["content"] for e in record["events"] if e["role"] == "patient"] == [PATIENT_REPLY]

    async def direct():
        rubric = await case_rubric(case, grade, GRADER)
        return await score_consultation(case, record["events"], Assessment(**record["assessment"]), reward.engine(), rubric)

    expected = asyncio.run(direct())
    assert 0 < expected.score < 1
    assert out.reward_score is None  # rewarded by verl's reward worker, like every other row
    assert out.metrics.generate_sequences > 0 and out.metrics.num_preempted == 2  # summed over both turns
    assert out.extra_fields["max_global_steps"] == 4 and out.extra_fields["min_global_steps"] == 3
    assert out.routed_experts == [[2]] * (len(out.prompt_ids) + len(out.response_ids))  # the newest turn's, whole stream

    tensors = out.as_dict()  # the shape verl's postprocessing consumes
    assert tensors["responses"].shape == tensors["response_mask"].shape == tensors["rollout_log_probs"].shape

    # the reward, as verl's reward worker computes it (AgentLoopWorker._compute_score): the recipe's manager
    # with the stage's reward kwargs and the overlong penalty, on the loop's output
    from verl.trainer.ppo.reward import load_reward_manager

    cfg = launch.compose(["data.max_response_length=128", "reward.reward_kwargs.overlong_buffer_cfg.len=64"])

    async def rewarded():  # verl's managers bind the running event loop when built
        return await load_reward_manager(cfg, tokenizer).run_single(reward_input(row, out))

    result = asyncio.run(rewarded())
    info = result["reward_extra_info"]
    assert set(reward.EXTRA_KEYS) <= set(info) and info["reward_valid"] == 1.0 and info["score"] == pytest.approx(expected.score)
    assert info["overlong"] and info["overlong_reward"] < 0  # the response is longer than 128 - 64 tokens
    assert result["reward_score"] == pytest.approx(expected.score + info["overlong_reward"])


def reward_input(row, out):
    """The DataProto verl's agent loop worker sends its reward worker for one output."""
    import numpy as np
    import torch
    from verl import DataProto

    prompts, responses = torch.tensor([out.prompt_ids]), torch.tensor([out.response_ids])
    ids = torch.cat([prompts, responses], 1)
    return DataProto.from_dict(
        tensors={"prompts": prompts, "responses": responses, "input_ids": ids, "attention_mask": torch.ones_like(ids)},
        non_tensors={
            "data_source": np.array([row["data_source"]], dtype=object),
            "reward_model": np.array([row["reward_model"]], dtype=object),
            "extra_info": np.array([row["extra_info"]], dtype=object),
            "tool_extra_fields": np.array([out.extra_fields], dtype=object),
        },
    )


def test_an_aborted_generation_ends_the_episode(case, tokenizer):
    server = ScriptedServer(tokenizer, doctor_turns(case), logprobs=False, stop_reason="aborted")
    _, out = run_loop(case, tokenizer, server, response_length=1024)
    assert len(server.prompts) == 1 and out.extra_fields["aborted"] is True
    assert out.response_ids == server.generated[0]
    assert json.loads(out.extra_fields["transcript"])["assessment"] is None


def test_consultation_loop_stops_at_the_response_budget(case, tokenizer):
    server = ScriptedServer(tokenizer, doctor_turns(case), logprobs=False)
    first = len(tokenizer.encode(doctor_turns(case)[0], add_special_tokens=False)) + 1
    _, out = run_loop(case, tokenizer, server, response_length=first + 5)  # the patient reply does not fit

    assert len(server.prompts) == 1  # no generation after the budget ran out
    assert out.response_ids == server.generated[0] and out.response_mask == [1] * first
    assert out.response_logprobs is None
    record = json.loads(out.extra_fields["transcript"])
    assert record["assessment"] is None


def test_consultation_loop_forces_a_final_assessment_at_the_turn_cap(case, tokenizer):
    server = ScriptedServer(tokenizer, doctor_turns(case), logprobs=True)
    _, out = run_loop(case, tokenizer, server, response_length=1024, max_turns=1)

    assert len(server.prompts) == 2
    observation = tokenizer.decode([t for t, m in zip(out.response_ids, out.response_mask) if m == 0])
    assert PATIENT_REPLY in observation and "Only final_assessment is allowed now" in observation
    record = json.loads(out.extra_fields["transcript"])
    assert record["timed_out"] and record["assessment"]["diagnosis"] == case.diagnosis
    assert [e.get("forced") for e in record["events"] if e["role"] == "doctor"] == [None, True]
    assert out.num_turns == 4 and len(out.response_logprobs) == len(out.response_ids)
