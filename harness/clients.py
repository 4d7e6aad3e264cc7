"""OpenAI-compatible chat client (OpenAI, a local vLLM server, ...) as a grader / chat callable.

Used where Inspect is not running (the verl reward, benchmarks). The ``openai`` client retries
timeouts, 429 and 5xx with exponential backoff; unusable replies are handled by the engine.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any
from urllib.parse import urlsplit, urlunsplit


def redact_url(url: str) -> str:
    """A base URL with any user:password part removed (safe for logs and cache keys)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


class OpenAIChat:
    """``await chat(messages, json_schema=None) -> str`` against ``{base_url}/chat/completions``."""

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None = None,
        *,
        timeout: float = 120.0,
        max_retries: int = 4,
        temperature: float = 0.0,
        max_tokens: int | None = 1024,
        use_schema: bool = True,
        max_connections: int | None = None,
    ):
        self.base_url = base_url
        self.model = model
        self._api_key = api_key or os.environ.get("OPENAI_API_KEY") or "EMPTY"
        self.timeout, self.max_retries = timeout, max_retries
        self.temperature, self.max_tokens, self.use_schema = temperature, max_tokens, use_schema
        self.max_connections = max_connections  # None: the openai default pool (1000, keep-alive 100)
        self._clients: dict[int, Any] = {}  # one client per event loop
        self.calls = 0

    @property
    def name(self) -> str:
        return f"openai-compatible/{self.model}@{redact_url(self.base_url)}"

    def __repr__(self) -> str:  # never shows the key
        return f"OpenAIChat({self.name})"

    def _client(self) -> Any:
        from openai import AsyncOpenAI

        loop_id = id(asyncio.get_running_loop())
        if loop_id not in self._clients:
            http_client = None
            if self.max_connections:  # keep every connection alive at high concurrency
                from openai import DefaultAsyncHttpxClient
                import httpx

                n = self.max_connections
                http_client = DefaultAsyncHttpxClient(limits=httpx.Limits(max_connections=n, max_keepalive_connections=n))
            self._clients[loop_id] = AsyncOpenAI(
                base_url=self.base_url, api_key=self._api_key, timeout=self.timeout, max_retries=self.max_retries,
                http_client=http_client,
            )
        return self._clients[loop_id]

    async def __call__(self, messages: list[dict[str, str]], json_schema: dict | None = None) -> str:
        request: dict[str, Any] = {"model": self.model, "messages": messages, "temperature": self.temperature}
        if self.max_tokens:
            request["max_tokens"] = self.max_tokens
        if self.use_schema and json_schema is not None:
            request["response_format"] = {"type": "json_schema", "json_schema": {"name": "verdict", "schema": json_schema}}
        self.calls += 1
        response = await self._client().chat.completions.create(**request)
        if not response.choices:
            return ""
        return response.choices[0].message.content or ""
