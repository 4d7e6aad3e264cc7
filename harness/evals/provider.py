"""Inspect entry point: registers the ``m2bench/default`` model provider (the embedded model).

Inspect imports this module (its ``inspect_ai`` entry point) when an eval starts, before any model
is created; at that moment credentials are taken out of ``<NAME>_BASE_URL`` variables (into
``<NAME>_API_KEY``), so Inspect never writes them into a log header or a trace file.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from typing import Any

from inspect_ai.model import (
    ChatCompletionChoice,
    ChatMessage,
    ChatMessageAssistant,
    GenerateConfig,
    ModelAPI,
    ModelOutput,
    ModelUsage,
    modelapi,
)
from inspect_ai.tool import ToolCall, ToolChoice, ToolInfo

from harness.clients import move_url_credentials
from harness.local_model import LocalModel

if moved := move_url_credentials(os.environ):
    logging.getLogger(__name__).warning(
        "credentials taken out of %s and into the matching *_API_KEY (Inspect would write them into logs)", ", ".join(moved)
    )


def message_dicts(messages: list[ChatMessage]) -> list[dict[str, str]]:
    """Plain role/content dicts; tool calls and results are written out as text."""
    out = []
    for m in messages:
        text = m.text
        if isinstance(m, ChatMessageAssistant) and m.tool_calls:
            calls = "; ".join(f"{c.function}({json.dumps(c.arguments)})" for c in m.tool_calls)
            text = (text + "\n" if text else "") + f"[called {calls}]"
        role = m.role if m.role in ("system", "user", "assistant") else "user"
        if m.role == "tool":
            text = f"[tool result] {text}"
        out.append({"role": role, "content": text})
    return out


class DefaultModelAPI(ModelAPI):
    """The embedded offline model as an Inspect provider (``--model m2bench/default``)."""

    def __init__(
        self,
        model_name: str,
        base_url: str | None = None,
        api_key: str | None = None,
        config: GenerateConfig | None = None,
        **model_args: Any,
    ) -> None:
        super().__init__(model_name, base_url, api_key, [], config or GenerateConfig())
        if model_name != "default":
            raise ValueError(f"unknown m2bench model {model_name!r}; the embedded model is 'm2bench/default'")
        self.model_args = model_args

    def _lm(self) -> LocalModel:
        return LocalModel.shared()

    def max_tokens(self) -> int | None:
        return 256

    def max_connections(self) -> int:
        return 1

    async def count_text_tokens(self, text: str) -> int:  # its own tokenizer: no tiktoken download
        return max(1, self._lm().count_tokens(text))

    async def generate(
        self, input: list[ChatMessage], tools: list[ToolInfo], tool_choice: ToolChoice, config: GenerateConfig
    ) -> ModelOutput:
        messages = message_dicts(input)
        lm = await asyncio.to_thread(self._lm)
        if tools and tool_choice != "none":
            return await asyncio.to_thread(self._tool_call, lm, messages, tools)
        if config.response_schema is not None:
            gen = await asyncio.to_thread(
                lm.generate_json, messages, config.response_schema.json_schema.model_dump(exclude_none=True)
            )
        else:
            gen = await asyncio.to_thread(lm.generate, messages, config.max_tokens or 256, config.temperature or 0.0, config.seed)
        output = ModelOutput.from_content(model=self.model_name, content=gen.text)
        output.usage = ModelUsage(
            input_tokens=gen.input_tokens, output_tokens=gen.output_tokens, total_tokens=gen.input_tokens + gen.output_tokens
        )
        return output

    def _tool_call(self, lm: LocalModel, messages: list[dict[str, str]], tools: list[ToolInfo]) -> ModelOutput:
        menu = "\n".join(f"- {t.name}: {t.description}" for t in tools)
        prompt = messages + [{"role": "system", "content": f"Reply by calling one of these tools:\n{menu}"}]
        pick = lm.generate_json(prompt, {"type": "object", "properties": {"tool": {"enum": [t.name for t in tools]}}})
        name = json.loads(pick.text)["tool"]
        tool = next(t for t in tools if t.name == name)
        args = lm.generate_json(
            prompt + [{"role": "assistant", "content": f"Calling {name}."}], tool.parameters.model_dump(exclude_none=True)
        )
        call = ToolCall(id=f"call_{abs(hash((name, args.text))) % 10**8}", function=name, arguments=json.loads(args.text))
        message = ChatMessageAssistant(content="", tool_calls=[call], model=self.model_name, source="generate")
        usage_in = pick.input_tokens + args.input_tokens
        usage_out = pick.output_tokens + args.output_tokens
        return ModelOutput(
            model=self.model_name,
            choices=[ChatCompletionChoice(message=message, stop_reason="tool_calls")],
            usage=ModelUsage(input_tokens=usage_in, output_tokens=usage_out, total_tokens=usage_in + usage_out),
        )


@modelapi(name="m2bench")
def m2bench() -> type[ModelAPI]:
    return DefaultModelAPI
