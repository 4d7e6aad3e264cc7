"""verl agent loop ``m2_consultation``: the policy is the doctor, the harness patient simulator answers.

Built on verl's current multi-turn API (``verl.experimental.agent_loop.AgentLoopBase``,
registered by name; rows select it with ``agent_name``; ``config/agent_loops.yaml`` registers
it in every rollout worker). The episode itself is the harness's: ``run_consultation`` with
``ChatDoctor`` (the JSON tool protocol) and ``PatientSimulator``, unchanged. Only the chat
callable is verl-specific: ``TokenChat`` keeps the token stream, so doctor tokens get
``response_mask`` 1 and patient/exam/test text gets 0 (not trained on).

The reward (consultation rubric score via ``reward.compute_score``) is computed here, at the end
of the episode, and returned as ``reward_score`` with the same extra keys as every other row.
"""

from __future__ import annotations

import json
from typing import Any
from uuid import uuid4

from verl.experimental.agent_loop.agent_loop import AgentLoopBase, AgentLoopOutput, register
from verl.utils.profiler import simple_timer

from harness.consultation import ChatDoctor, run_consultation
from harness.patient import PatientSimulator
from verl_recipes.m2_grpo import reward
from verl_recipes.m2_grpo.consultation import MODE, case_of, patient_chat

DEFAULT_TURNS = 8


class TokenChat:
    """``async chat(messages) -> str`` for ChatDoctor, generating through verl's rollout server."""

    def __init__(self, loop: AgentLoopBase, sampling_params: dict[str, Any], response_length: int):
        self.loop, self.sampling_params, self.response_length = loop, sampling_params, response_length
        self.request_id = uuid4().hex
        self.token_ids: list[int] = []
        self.response_mask: list[int] = []
        self.logprobs: list[float] = []  # stays empty unless the server returns log_probs (as in ToolAgentLoop)
        self.seen: list[dict[str, str]] = []
        self.turns = self.observations = 0
        self.metrics: dict[str, Any] = {}
        self.out_of_budget = False

    @property
    def prompt_length(self) -> int:
        return len(self.token_ids) - len(self.response_mask)

    async def __call__(self, messages: list[dict[str, str]]) -> str:
        if self.out_of_budget:
            return ""
        if not self.token_ids:
            self.token_ids = await self.loop.ct_build_initial_tokens(messages)
        else:  # the new observation (patient reply / findings) enters with mask 0
            merged, mask, logprobs = await self.loop.ct_merge_context_msg(
                self.seen, messages, self.token_ids, self.response_mask, self.logprobs or None
            )
            if len(mask) >= self.response_length:
                self.out_of_budget = True
                return ""
            self.token_ids, self.response_mask = merged.token_ids, mask
            if logprobs is not None:
                self.logprobs = logprobs
            self.observations += 1
        with simple_timer("generate_sequences", self.metrics):
            output = await self.loop.server_manager.generate(
                request_id=self.request_id, prompt_ids=self.token_ids, sampling_params=self.sampling_params
            )
        merged, mask, logprobs = await self.loop.ct_merge_assistant_token(
            self.token_ids,
            output.token_ids,
            self.response_mask,
            self.logprobs if (self.logprobs or output.log_probs) else None,
            assistant_logprobs=output.log_probs or None,
        )
        self.token_ids, self.response_mask = merged.token_ids, mask
        if logprobs is not None:
            self.logprobs = logprobs
        self.turns += 1
        text = self.loop.tokenizer.decode(output.token_ids, skip_special_tokens=True)
        self.seen = [*messages, {"role": "assistant", "content": text}]
        if len(self.response_mask) >= self.response_length:
            self.out_of_budget = True
        return text


@register("m2_consultation")
class ConsultationAgentLoop(AgentLoopBase):
    def __init__(self, *args, **kwargs):
        kwargs.pop("tools", None)
        super().__init__(*args, **kwargs)
        self.response_length = self.rollout_config.response_length
        self.max_turns = self.rollout_config.multi_turn.max_assistant_turns or DEFAULT_TURNS
        overlong = (self.config.reward.get("reward_kwargs") or {}).get("overlong_buffer_cfg") or {}
        self.overlong_keys = bool(overlong.get("enable") and overlong.get("log"))  # dapo logs these for other rows

    async def run(self, sampling_params: dict[str, Any], **kwargs) -> AgentLoopOutput:
        extra_info = dict(kwargs.get("extra_info") or {})
        case = case_of(extra_info)
        chat = TokenChat(self, sampling_params, self.response_length)
        doctor = ChatDoctor(chat, MODE)
        doctor.messages = [dict(m) for m in kwargs["raw_prompt"]][:1]  # the row's system prompt (same text)
        patient = PatientSimulator(case, patient_chat())
        episode = await run_consultation(case, doctor, patient, self.max_turns, MODE)
        record = json.dumps(episode.to_dict())
        final = doctor.messages[-1]["content"] if doctor.messages[-1]["role"] == "assistant" else ""
        with simple_timer("compute_score", chat.metrics):
            result = await reward.compute_score(
                reward.CONSULTATION, final, kwargs["reward_model"]["ground_truth"], {**extra_info, "transcript": record}
            )
        info: dict[str, Any] = dict(result)
        if self.overlong_keys:
            info.update(overlong_reward=0.0, overlong=False)
        n = self.response_length
        return AgentLoopOutput(
            prompt_ids=chat.token_ids[: chat.prompt_length],
            response_ids=chat.token_ids[chat.prompt_length :][:n],
            response_mask=chat.response_mask[:n],
            response_logprobs=chat.logprobs[:n] if chat.logprobs else None,
            reward_score=result["score"],
            num_turns=chat.turns + chat.observations + 1,  # as ToolAgentLoop: prompt + assistant + user turns
            metrics=chat.metrics,
            extra_fields={"reward_extra_info": info, "transcript": record, "turn_scores": [], "tool_rewards": []},
        )
