"""verl agent loop ``m2_consultation``: the policy is the doctor, the harness patient simulator answers.

Built on verl's current multi-turn API (``verl.experimental.agent_loop.AgentLoopBase``,
registered by name; rows select it with ``agent_name``; ``config/agent_loops.yaml`` registers
it in every rollout worker). The episode itself is the harness's: ``run_consultation`` with
``ChatDoctor`` (the JSON tool protocol) and ``PatientSimulator``, unchanged. Only the chat
callable is verl-specific: ``TokenChat`` keeps the token stream, so doctor tokens get
``response_mask`` 1 and patient/exam/test text gets 0 (not trained on), and it carries verl's
``TokenOutput`` through as ``ToolAgentLoop`` does (extra fields, preemption count, routed experts;
an aborted generation ends the episode).

The loop computes no reward: it records the episode in ``extra_fields["transcript"]`` and verl's
reward worker scores it like every other row (the configured reward manager with the stage's
reward kwargs and overlong penalty; ``reward_manager.M2RewardManager`` hands the transcript to
``reward.compute_score``).
"""

from __future__ import annotations

import json
from typing import Any
from uuid import uuid4

from verl.experimental.agent_loop.agent_loop import AgentLoopBase, AgentLoopOutput, register
from verl.utils.profiler import simple_timer
from verl.workers.rollout.replica import TokenOutput

from harness.consultation import ChatDoctor, run_consultation
from harness.patient import PatientSimulator
from verl_recipes.m2_grpo.consultation import MODE, case_of, patient_chat

DEFAULT_TURNS = 8
SPEC_DECODE_KEYS = ("spec_num_draft_tokens", "spec_num_accepted_tokens", "spec_num_verify_steps")  # summed over turns


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
        self.extra_fields: dict[str, Any] = {}
        self.routed_experts: Any = None
        self.out_of_budget = self.aborted = False

    @property
    def prompt_length(self) -> int:
        return len(self.token_ids) - len(self.response_mask)

    @property
    def done(self) -> bool:
        return self.out_of_budget or self.aborted

    async def __call__(self, messages: list[dict[str, str]]) -> str:
        if self.done:
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
        self.carry(output)
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

    def carry(self, output: TokenOutput) -> None:
        """What ``ToolAgentLoop`` keeps of each ``TokenOutput``: preemptions (summed), the first turn's
        extra fields (then the newest ``max_global_steps`` and summed speculative-decoding counts),
        the routed experts of the whole stream (the newest turn's covers it), the abort."""
        preempted = output.num_preempted if output.num_preempted is not None else None
        if "num_preempted" not in self.metrics:
            self.metrics["num_preempted"] = preempted if preempted is not None else -1
        elif preempted is not None:
            self.metrics["num_preempted"] += preempted
        if not self.extra_fields:
            self.extra_fields.update(output.extra_fields)
        else:
            if output.extra_fields.get("max_global_steps"):
                self.extra_fields["max_global_steps"] = output.extra_fields["max_global_steps"]
            for key in SPEC_DECODE_KEYS:
                if key in output.extra_fields and key in self.extra_fields:
                    self.extra_fields[key] = int(self.extra_fields[key]) + int(output.extra_fields[key])
        if output.routed_experts is not None:
            self.routed_experts = output.routed_experts
        if output.stop_reason in ("aborted", "abort"):
            self.aborted = True


@register("m2_consultation")
class ConsultationAgentLoop(AgentLoopBase):
    def __init__(self, *args, **kwargs):
        kwargs.pop("tools", None)
        super().__init__(*args, **kwargs)
        self.response_length = self.rollout_config.response_length
        self.max_turns = self.rollout_config.multi_turn.max_assistant_turns or DEFAULT_TURNS

    async def run(self, sampling_params: dict[str, Any], **kwargs) -> AgentLoopOutput:
        extra_info = dict(kwargs.get("extra_info") or {})
        case = case_of(extra_info)
        chat = TokenChat(self, sampling_params, self.response_length)
        doctor = ChatDoctor(chat, MODE)
        doctor.messages = [dict(m) for m in kwargs["raw_prompt"]][:1]  # the row's system prompt (same text)
        patient = PatientSimulator(case, patient_chat())
        episode = await run_consultation(case, doctor, patient, self.max_turns, MODE)
        n = self.response_length
        prompt_ids = chat.token_ids[: chat.prompt_length]
        extra_fields = {
            **chat.extra_fields,
            "transcript": json.dumps(episode.to_dict()),
            "aborted": chat.aborted,
            "turn_scores": [],
            "tool_rewards": [],
        }
        return AgentLoopOutput(
            prompt_ids=prompt_ids,
            response_ids=chat.token_ids[chat.prompt_length :][:n],
            response_mask=chat.response_mask[:n],
            response_logprobs=chat.logprobs[:n] if chat.logprobs else None,
            routed_experts=chat.routed_experts[: len(prompt_ids) + n] if chat.routed_experts is not None else None,
            num_turns=chat.turns + chat.observations + 1,  # as ToolAgentLoop: prompt + assistant + user turns
            metrics=chat.metrics,
            extra_fields=extra_fields,
        )
