"""OpenAI-compatible chat client (OpenAI, a local vLLM server, ...) as a grader / chat callable.

Used where Inspect is not running (the verl reward, benchmarks). It speaks the chat-completions
HTTP API directly over aiohttp, which costs about a tenth of the ``openai`` SDK's client CPU per
call (``python -m harness.tools.bench client_overhead``); that matters at 100+ concurrent grader calls
on a small machine. Timeouts, connection errors, HTTP 429 and 5xx are
retried with exponential backoff (honouring ``Retry-After``); unusable replies are left to the
rubric engine, which retries and then records an error.

Bounded by default: ``timeout`` (120 s) limits each attempt, ``max_retries`` (4) the retries, with
backoff waits of at most 0.5 + 1 + 2 + 4 s (or a server's ``Retry-After``, at most 60 s each), so
one call ends within ``(max_retries + 1) * timeout`` plus those waits (615 s with the defaults; an
unreachable server fails in seconds). A call that still fails raises ``EndpointError`` naming the
endpoint (credentials removed) and the underlying cause.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import random
import weakref
from collections.abc import MutableMapping
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit, urlunsplit

if TYPE_CHECKING:
    from harness.grading import Sampling


def redact_url(url: str) -> str:
    """A base URL with any user:password part removed (safe for logs and cache keys)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def move_url_credentials(environ: MutableMapping[str, str]) -> list[str]:
    """Take credentials out of every ``<NAME>_BASE_URL`` variable before a client or log sees them.

    ``http://user:secret@host/v1`` becomes ``http://host/v1``; the password (or the user part when
    there is no password) moves to ``<NAME>_API_KEY`` unless that variable is already set.
    Returns the names of the variables changed.
    """
    changed = []
    for name, value in list(environ.items()):
        if not name.endswith("_BASE_URL") or "@" not in value:
            continue
        parts = urlsplit(value)
        if parts.username is None and parts.password is None:
            continue
        environ[name] = urlunsplit((parts.scheme, parts.netloc.rsplit("@", 1)[1], parts.path, parts.query, parts.fragment))
        key = name[: -len("_BASE_URL")] + "_API_KEY"
        secret = parts.password or parts.username
        if secret and not environ.get(key):
            environ[key] = unquote(secret)
        changed.append(name)
    return changed


def failure_cause(exc: BaseException) -> str:
    """The underlying cause of a failed call, one line: what went wrong beneath the retry and SDK
    wrappers (tenacity's ``RetryError``, the SDK's "Connection error."), e.g.
    ``connection refused (ConnectError: [Errno 111] Connection refused)``."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        last = getattr(current, "last_attempt", None)  # tenacity's RetryError wraps the last attempt
        if last is not None and getattr(last, "failed", False):
            current = last.exception()
        elif isinstance(current, BaseExceptionGroup) and current.exceptions:  # e.g. every address refused
            current = current.exceptions[0]
        else:  # a suppressed context still tells the cause (httpcore hides the OSError that way)
            current = current.__cause__ or current.__context__
    root, text = chain[-1], _one_line(chain[-1])
    if isinstance(root, ConnectionRefusedError) or "connection refused" in text.lower():
        return f"connection refused ({text})"
    if isinstance(root, TimeoutError) or any("timeout" in type(e).__name__.lower() for e in chain):
        return f"timed out ({text})"
    if isinstance(root, OSError):
        return f"connection failed ({text})"
    # otherwise the outermost error beneath the retry wrapper says most (e.g. the SDK's HTTP status error)
    return _one_line(next((e for e in chain if getattr(e, "last_attempt", None) is None), root))[:300]


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class EndpointError(RuntimeError):
    """A model endpoint could not answer after its retries: names the endpoint (no credentials) and the cause."""


class RetryableHTTPError(RuntimeError):
    def __init__(self, status: int, body: str, retry_after: float | None):
        super().__init__(f"HTTP {status}: {body[:200]}")
        self.status, self.retry_after = status, retry_after


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
        parts = urlsplit(base_url)
        self.base_url = base_url
        self._endpoint = redact_url(base_url).rstrip("/") + "/chat/completions"
        self._basic_auth = (parts.username or "", parts.password or "") if parts.username else None
        self.model = model
        self._api_key = api_key or os.environ.get("OPENAI_API_KEY") or "EMPTY"
        self.timeout, self.max_retries = timeout, max_retries
        self.temperature, self.max_tokens, self.use_schema = temperature, max_tokens, use_schema
        self.max_connections = max_connections or 256
        self._sessions: dict[int, tuple[asyncio.AbstractEventLoop, Any]] = {}  # one session per event loop
        self.calls = 0
        _LIVE.add(self)

    @property
    def name(self) -> str:
        return f"openai-compatible/{self.model}@{redact_url(self.base_url)}"

    def __repr__(self) -> str:  # never shows the key
        return f"OpenAIChat({self.name})"

    def _session(self) -> Any:
        import aiohttp

        loop = asyncio.get_running_loop()
        for key, (owner, session) in list(self._sessions.items()):
            if owner.is_closed():  # its loop is gone (asyncio.run returned): drop it quietly
                _abandon(session)
                del self._sessions[key]
        if id(loop) not in self._sessions:
            # credentials in the base URL mean HTTP basic auth (e.g. a proxy); otherwise a bearer key
            auth = aiohttp.BasicAuth(*self._basic_auth) if self._basic_auth else None
            session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self.max_connections),
                headers=None if auth else {"Authorization": f"Bearer {self._api_key}"},
                auth=auth,
                timeout=aiohttp.ClientTimeout(total=self.timeout),
            )
            self._sessions[id(loop)] = (loop, session)
        return self._sessions[id(loop)][1]

    async def _post(self, payload: dict[str, Any]) -> dict[str, Any]:
        import aiohttp

        for attempt in range(self.max_retries + 1):
            try:
                async with self._session().post(self._endpoint, json=payload) as response:
                    if response.status == 429 or response.status >= 500:
                        after = response.headers.get("Retry-After")
                        raise RetryableHTTPError(response.status, await response.text(), _seconds(after))
                    if response.status >= 400:
                        raise RuntimeError(f"HTTP {response.status} from {self._endpoint}: {(await response.text())[:300]}")
                    return await response.json(content_type=None)
            except (TimeoutError, RetryableHTTPError, aiohttp.ClientConnectionError, aiohttp.ClientPayloadError) as exc:
                if attempt == self.max_retries:
                    tries = f"{attempt + 1} attempt" + ("s" if attempt else "")
                    raise EndpointError(f"{self._endpoint} failed after {tries}: {failure_cause(exc)}") from exc
                delay = getattr(exc, "retry_after", None) or min(8.0, 0.5 * 2**attempt) * random.uniform(0.75, 1.0)
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    async def __call__(
        self, messages: list[dict[str, str]], json_schema: dict | None = None, sampling: Sampling | None = None
    ) -> str:
        """One chat completion; ``sampling`` (a grader profile's settings) overrides temperature and max tokens,
        and says whether the schema may be sent as a response format."""
        temperature = sampling.temperature if sampling is not None and sampling.temperature is not None else self.temperature
        max_tokens = sampling.max_tokens if sampling is not None else self.max_tokens
        request: dict[str, Any] = {"model": self.model, "messages": messages, "temperature": temperature}
        if max_tokens:
            request["max_tokens"] = max_tokens
        if self.use_schema and json_schema is not None and (sampling is None or sampling.use_schema):
            request["response_format"] = {"type": "json_schema", "json_schema": {"name": "verdict", "schema": json_schema}}
        self.calls += 1
        data = await self._post(request)
        try:
            return data["choices"][0]["message"]["content"] or ""
        except (KeyError, IndexError, TypeError):
            return ""  # no usable message: the engine treats it as an unparseable reply

    async def aclose(self) -> None:
        """Close the session of the running loop (optional; sessions of finished loops close themselves)."""
        entry = self._sessions.pop(id(asyncio.get_running_loop()), None)
        if entry is not None:
            await entry[1].close()


def _seconds(value: str | None) -> float | None:
    try:
        return min(60.0, float(value)) if value else None
    except ValueError:
        return None


def _abandon(session: Any) -> None:
    """Close a session whose event loop has ended (no awaiting possible), so no warning is printed."""
    connector = session.connector
    if connector is not None and not connector.closed:
        connector._close()


_LIVE: weakref.WeakSet[OpenAIChat] = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    for chat in list(_LIVE):
        for _, session in chat._sessions.values():
            _abandon(session)
