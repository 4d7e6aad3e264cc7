"""A latency-simulating OpenAI-compatible server for benchmarks and fault-injection tests.

Real HTTP/1.1 on 127.0.0.1 (stdlib asyncio, keep-alive; sustains hundreds of concurrent
in-flight requests), serving ``POST /v1/chat/completions`` and ``GET /v1/models``. Each reply is sent
``latency_s`` seconds after its request arrived (the server's own work on it included), or later when the
server is busy.

Replies:
- **grader requests** (prompts of either grader profile, read by ``harness.grading.parse_grading_prompt``):
  a JSON verdict per criterion from ``simulated_verdict(criterion)``, which depends only on the
  criterion text, so per-criterion and batched grading, and both profiles, get identical verdicts.
  A single-criterion prompt (or a single-verdict schema) gets ``{"explanation", "criteria_met"}``;
  a batched one ``{"1": {...}, "2": {...}}``.
- **other requests with a JSON schema** (e.g. the rubric generator's): ``schema_instance(schema)``,
  a fixed value that matches the schema (enums take their first value, arrays one element).
- **other requests** (the model under test, the patient): the canned ``model_reply``.

Usage::

    with SimServer(latency_s=0.3) as srv:          # starts a background thread, stops on exit
        chat = OpenAIChat(srv.base_url, "sim")      # base_url = http://127.0.0.1:<port>/v1
        ...
        srv.stats()   # {"calls", "grader_calls", "model_calls", "input_tokens", "grader_input_tokens",
                      #  "cached_input_tokens", "uncached_input_tokens", "grader_cached_input_tokens",
                      #  "grader_uncached_input_tokens", "input_chars", "output_tokens", "max_concurrent",
                      #  "in_flight", "faults": {kind: n}, "server_cpu_s"}

    with SimProcess(latency_s=0.3) as srv:   # same, in a child process (no GIL shared with the
        srv.stats(); srv.reset_stats()         # client, for timing); stats over HTTP

    python -m harness.tools.sim_server --port 8000 --latency 0.3 [--error-rate 0.1 --faults http_500,timeout]

Control routes: ``GET /v1/sim/stats`` (the counters as JSON), ``POST /v1/sim/reset`` (zero them).

Faults (``FAULT_KINDS``): ``http_500``, ``http_429`` (with ``Retry-After: 0``), ``timeout`` (hangs
``hang_s`` seconds, then answers normally; a client with a shorter timeout gives up),
``truncated_json`` (200, the reply content cut in half), ``non_json`` (200, prose content),
``empty`` (200, empty content), ``bad_body`` (200, the HTTP body itself is not valid JSON).
Each request draws a fault with probability ``error_rate`` from a seeded RNG (kind chosen
uniformly from ``faults``), in arrival order. For exact sequences call
``srv.queue_faults(["http_500", None, "timeout"])``: the next requests take those in order
(``None`` = healthy) before the random draw resumes. Attributes (``latency_s``, ``error_rate``,
``faults``, ``model_reply``...) may be changed while the server runs.

Prefix caching (as vLLM's automatic prefix caching or hosted prompt caching): the server keeps the
token blocks (``PREFIX_BLOCK`` tokens each, chained, per model) of every answered request, up to
``prefix_cache_tokens``; a new request's leading blocks found there are *cached* input tokens, the
rest *uncached*. A request's blocks become reusable once it has been answered (conservative: real
servers may reuse them as soon as its prefill is done). ``prefill_s_per_1k`` adds that many seconds of
latency per 1,000 uncached input tokens (default 0), so cached tokens are faster as well as
cheaper. ``stats()`` reports ``cached_input_tokens`` and ``uncached_input_tokens`` (all requests)
and their grader-only counterparts; ``reset_stats()`` also empties the prefix cache.

Token counting: ``count_tokens(text)`` = number of regex word tokens (``\\w+`` runs and single
punctuation marks), over every message's content. On HealthBench Hard grader prompts it counted
0.88x the tokens of the SmolLM2 BPE tokenizer (49k vocabulary); tiktoken is not used (it needs the
network for its vocabulary). Ratios between grading modes hardly depend on the tokenizer.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import random
import re
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter, OrderedDict, deque
from collections.abc import Iterable, Sequence

from harness.grading import parse_grading_prompt

FAULT_KINDS = ("http_500", "http_429", "timeout", "truncated_json", "non_json", "empty", "bad_body")
_TOKEN = re.compile(r"\w+|[^\w\s]")
DEFAULT_MODEL_REPLY = (
    "Thank you for the question. Based on what you describe, this is most often not serious, "
    "but a few signs would need prompt care: severe or worsening pain, fever above 39 C, "
    "shortness of breath, or confusion. If any of these appear, seek urgent medical attention. "
    "Otherwise, rest, drink fluids, and see your doctor if it does not improve within a few days. "
    "Could you tell me your age, how long this has lasted, and any medicines you take?"
)
_STATUS = {200: "OK", 400: "Bad Request", 404: "Not Found", 429: "Too Many Requests", 500: "Internal Server Error"}


PREFIX_BLOCK = 16  # tokens per cached block (vLLM's default block size)


def count_tokens(text: str) -> int:
    """Approximate token count: regex word tokens (``\\w+`` runs and punctuation marks)."""
    return len(tokens(text))


_LINE_TOKENS: dict[str, list[str]] = {}  # tokens of lines seen before (grader prompts repeat most of their lines)
_LINE_MEMO_SIZE = 20_000


def tokens(text: str) -> list[str]:
    """The tokens ``count_tokens`` counts: ``_TOKEN.findall(text)``, line by line with a memo of lines seen
    (no token spans a line break, so the result is the same; the regex was most of the server's CPU)."""
    out: list[str] = []
    for line in text.split("\n"):
        found = _LINE_TOKENS.get(line)
        if found is None:
            if len(_LINE_TOKENS) >= _LINE_MEMO_SIZE:
                _LINE_TOKENS.clear()
            found = _LINE_TOKENS[line] = _TOKEN.findall(line)
        out += found
    return out


class PrefixCache:
    """Chained hashes of full ``PREFIX_BLOCK``-token blocks, least recently used dropped past ``capacity_tokens``."""

    def __init__(self, capacity_tokens: int):
        self.capacity_blocks = max(1, capacity_tokens // PREFIX_BLOCK)
        self._blocks: OrderedDict[int, None] = OrderedDict()

    @staticmethod
    def block_hashes(model: str, toks: Sequence[str], block: int = PREFIX_BLOCK) -> list[int]:
        """One chained hash per full ``block``-token block: equal hashes mean equal prefixes up to that block."""
        chain, out = hash(model), []
        for start in range(0, len(toks) - block + 1, block):
            chain = hash((chain, *toks[start : start + block]))
            out.append(chain)
        return out

    def cached_tokens(self, blocks: Sequence[int]) -> int:
        """Tokens of the longest run of leading ``blocks`` held in the cache."""
        n = 0
        for block in blocks:
            if block not in self._blocks:
                break
            self._blocks.move_to_end(block)
            n += 1
        return n * PREFIX_BLOCK

    def add(self, blocks: Sequence[int]) -> None:
        for block in blocks:
            self._blocks[block] = None
            self._blocks.move_to_end(block)
        while len(self._blocks) > self.capacity_blocks:
            self._blocks.popitem(last=False)


def simulated_verdict(criterion: str, true_rate: float = 0.6) -> bool:
    """Deterministic verdict for a criterion text (sha256 of the stripped text)."""
    digest = hashlib.sha256(criterion.strip().encode("utf-8")).digest()
    return int.from_bytes(digest[:4], "big") / 2**32 < true_rate


def grader_reply(messages: str | list[dict], json_schema: dict | None = None) -> str | None:
    """The simulated grader's reply to a grading prompt (text or chat messages), or None when it is not one."""
    prompt = parse_grading_prompt(messages)
    if prompt is None or not prompt.criteria:
        return None
    criteria = prompt.criteria
    props = (json_schema or {}).get("properties", {})
    single = "criteria_met" in props if props else not prompt.batched
    if single:
        met = simulated_verdict(criteria[0])
        return json.dumps({"explanation": f"simulated: {'met' if met else 'not met'}", "criteria_met": met})
    return json.dumps(
        {str(n): {"explanation": "simulated", "criteria_met": simulated_verdict(c)} for n, c in enumerate(criteria, 1)}
    )


def schema_instance(schema: dict, path: str = "") -> object:
    """A deterministic value matching a simple JSON schema (objects, arrays, enums, strings, numbers, booleans).

    Each string names its place in the value (``simulated value at history[0].criterion``), so strings
    at different places differ, as a real reply's would (the rubric generator rejects duplicates).
    """
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object":
        return {
            name: schema_instance(sub, f"{path}.{name}" if path else name) for name, sub in schema.get("properties", {}).items()
        }
    if kind == "array":
        return [schema_instance(schema.get("items", {"type": "string"}), f"{path}[0]")]
    if kind == "boolean":
        return True
    if kind in ("integer", "number"):
        return 1
    return f"simulated value at {path or 'the top level'}"


class SimServer:
    """OpenAI-compatible server with simulated latency, verdicts and faults (see module doc)."""

    def __init__(
        self,
        latency_s: float = 0.3,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        grader_latency_s: float | None = None,
        jitter_s: float = 0.0,
        error_rate: float = 0.0,
        faults: Sequence[str] = ("http_500",),
        hang_s: float = 30.0,
        seed: int = 0,
        model_reply: str = DEFAULT_MODEL_REPLY,
        models: Sequence[str] = ("sim-model", "sim-grader"),
        prefix_cache_tokens: int = 2_000_000,
        prefill_s_per_1k: float = 0.0,
    ):
        bad = [f for f in faults if f not in FAULT_KINDS]
        if bad:
            from harness.errors import ArgumentError

            raise ArgumentError("faults", ",".join(bad), FAULT_KINDS)
        self.host, self.port = host, port
        self.latency_s, self.grader_latency_s, self.jitter_s = latency_s, grader_latency_s, jitter_s
        self.error_rate, self.faults, self.hang_s = error_rate, tuple(faults), hang_s
        self.model_reply, self.models = model_reply, tuple(models)
        self.prefix_cache_tokens, self.prefill_s_per_1k = prefix_cache_tokens, prefill_s_per_1k
        self._rng = random.Random(seed)
        self._queued: deque[str | None] = deque()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.base_events.Server | None = None
        self._thread: threading.Thread | None = None
        self._tasks: set[asyncio.Task] = set()
        self.reset_stats()

    # ---- lifecycle -------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def start(self) -> SimServer:
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            try:
                self._server = self._loop.run_until_complete(
                    asyncio.start_server(self._handle, self.host, self.port, backlog=2048)
                )
                self.port = self._server.sockets[0].getsockname()[1]
            except BaseException as exc:  # reported to the caller of start()
                failure.append(exc)
                ready.set()
                return
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name="sim-server", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            raise failure[0]
        return self

    def stop(self) -> None:
        if self._loop is None or self._thread is None:
            return

        async def shutdown() -> None:
            if self._server is not None:
                self._server.close()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()
        self._loop = self._thread = None

    def __enter__(self) -> SimServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ---- control and counters --------------------------------------------------------
    def queue_faults(self, kinds: Iterable[str | None]) -> None:
        """The next requests take these faults in order (None = healthy)."""
        kinds = list(kinds)
        bad = [k for k in kinds if k is not None and k not in FAULT_KINDS]
        if bad:
            from harness.errors import ArgumentError

            raise ArgumentError("fault", bad[0], FAULT_KINDS)
        self._queued.extend(kinds)

    def reset_stats(self) -> None:
        self.calls = self.grader_calls = self.model_calls = 0
        self.input_tokens = self.grader_input_tokens = self.input_chars = self.output_tokens = 0
        self.cached_input_tokens = self.grader_cached_input_tokens = 0
        self.prefix_cache = PrefixCache(self.prefix_cache_tokens)
        self.in_flight = self.max_concurrent = 0
        self.fault_counts: Counter[str] = Counter()

    def stats(self) -> dict:
        return {
            "calls": self.calls,
            "grader_calls": self.grader_calls,
            "model_calls": self.model_calls,
            "input_tokens": self.input_tokens,
            "grader_input_tokens": self.grader_input_tokens,
            "cached_input_tokens": self.cached_input_tokens,
            "uncached_input_tokens": self.input_tokens - self.cached_input_tokens,
            "grader_cached_input_tokens": self.grader_cached_input_tokens,
            "grader_uncached_input_tokens": self.grader_input_tokens - self.grader_cached_input_tokens,
            "input_chars": self.input_chars,
            "output_tokens": self.output_tokens,
            "max_concurrent": self.max_concurrent,
            "in_flight": self.in_flight,
            "faults": dict(self.fault_counts),
            "server_cpu_s": time.process_time(),  # CPU seconds of the server's process so far
        }

    # ---- HTTP ------------------------------------------------------------------------
    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None  # a handler always runs inside a task
        self._tasks.add(task)
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                arrived = time.perf_counter()
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = (lines[0].split(" ", 2) + ["", ""])[:3]
                headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)}
                body = await self._read_body(reader, headers)
                # requests that arrived together are all stamped before any is worked on (the next turn of the
                # loop), so none waits for the others' work before its latency starts
                await asyncio.sleep(0)
                status, payload, extra = await self._route(method, path.split("?")[0], body, arrived)
                keep = headers.get("connection", "").lower() != "close"
                out = [
                    f"HTTP/1.1 {status} {_STATUS.get(status, 'Status')}",
                    "Content-Type: application/json",
                    f"Content-Length: {len(payload)}",
                    "Connection: " + ("keep-alive" if keep else "close"),
                    *extra,
                ]
                writer.write(("\r\n".join(out) + "\r\n\r\n").encode("latin-1") + payload)
                await writer.drain()
                if not keep:
                    return
        except (asyncio.CancelledError, ConnectionError):
            pass
        finally:
            self._tasks.discard(task)
            writer.close()

    @staticmethod
    async def _read_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
        if headers.get("transfer-encoding", "").lower() == "chunked":
            chunks = []
            while size := int((await reader.readuntil(b"\r\n")).strip().split(b";")[0], 16):
                chunks.append(await reader.readexactly(size))
                await reader.readexactly(2)
            await reader.readuntil(b"\r\n")
            return b"".join(chunks)
        return await reader.readexactly(int(headers.get("content-length", "0") or 0))

    async def _route(self, method: str, path: str, body: bytes, arrived: float) -> tuple[int, bytes, list[str]]:
        route = path.rstrip("/")
        if route.endswith("/sim/stats"):
            return 200, json.dumps(self.stats()).encode(), []
        if method == "POST" and route.endswith("/sim/reset"):
            self.reset_stats()
            return 200, json.dumps(self.stats()).encode(), []
        if method == "GET" and route.endswith("/models"):
            data = [{"id": m, "object": "model", "created": 0, "owned_by": "m2bench-sim"} for m in self.models]
            return 200, json.dumps({"object": "list", "data": data}).encode(), []
        if method != "POST" or not route.endswith("/chat/completions"):
            return 404, _error(f"no route {method} {path}", "not_found"), []
        try:
            request = json.loads(body or b"{}")
            request["messages"] = [
                {"role": m.get("role"), "content": _content_text(m.get("content"))} for m in request["messages"]
            ]
            text = "\n".join(m["content"] for m in request["messages"])
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            return 400, _error(f"bad request: {exc}", "invalid_request_error"), []
        return await self._complete(request, text, arrived)

    async def _complete(self, request: dict, text: str, arrived: float) -> tuple[int, bytes, list[str]]:
        """The reply to one chat request (``request["messages"]`` with text contents; ``text``: all of them joined),
        sent ``latency`` seconds after the request arrived (``arrived``, a ``time.perf_counter()`` reading): the
        server's own work on it is part of the simulated latency, not added to it."""
        schema = ((request.get("response_format") or {}).get("json_schema") or {}).get("schema")
        reply = grader_reply(request["messages"], schema)
        is_grader = reply is not None
        fault = self._queued.popleft() if self._queued else None
        if fault is None and self.error_rate > 0 and self.faults and self._rng.random() < self.error_rate:
            fault = self._rng.choice(self.faults)
        jitter = self._rng.uniform(0, self.jitter_s) if self.jitter_s else 0.0
        latency = (self.grader_latency_s if is_grader and self.grader_latency_s is not None else self.latency_s) + jitter

        self.calls += 1
        self.grader_calls += is_grader
        self.model_calls += not is_grader
        toks = tokens(text)
        blocks = PrefixCache.block_hashes(str(request.get("model", "")), toks)
        cached = self.prefix_cache.cached_tokens(blocks)
        self.input_tokens += len(toks)
        self.grader_input_tokens += len(toks) if is_grader else 0
        self.cached_input_tokens += cached
        self.grader_cached_input_tokens += cached if is_grader else 0
        latency += self.prefill_s_per_1k * (len(toks) - cached) / 1000
        self.input_chars += len(text)
        self.in_flight += 1
        self.max_concurrent = max(self.max_concurrent, self.in_flight)
        if fault:
            self.fault_counts[fault] += 1
        try:
            await asyncio.sleep(max(0.0, arrived + (self.hang_s if fault == "timeout" else latency) - time.perf_counter()))
        finally:
            self.in_flight -= 1
        if fault is None:
            self.prefix_cache.add(blocks)  # answered: its blocks are reusable from now on
        if fault == "http_500":
            return 500, _error("simulated server error", "server_error"), []
        if fault == "http_429":
            return 429, _error("simulated rate limit", "rate_limit_exceeded"), ["Retry-After: 0"]
        if fault == "bad_body":
            return 200, b'{"id": "chatcmpl-sim", "choices": [{"index": 0, "mess', []
        content = reply if reply is not None else (json.dumps(schema_instance(schema)) if schema else self.model_reply)
        if fault == "truncated_json":
            content = content[: len(content) // 2]
        elif fault == "non_json":
            content = "I think the reply mostly meets the criterion, overall."
        elif fault == "empty":
            content = ""
        self.output_tokens += count_tokens(content)
        return 200, _completion(request.get("model", "sim-model"), content, len(toks)), []


class SimProcess:
    """A SimServer in a child process (``python -m harness.tools.sim_server --port 0``).

    Same keyword arguments as SimServer (latency_s, grader_latency_s, jitter_s, error_rate,
    faults, hang_s, seed); ``stats()``/``reset_stats()`` go over HTTP. Used for timing, so the
    server does not share the client's interpreter lock.
    """

    def __init__(self, latency_s: float = 0.3, **options):
        self.args = ["--port", "0", "--latency", str(latency_s)]
        flags = {
            "grader_latency_s": "--grader-latency",
            "jitter_s": "--jitter",
            "error_rate": "--error-rate",
            "hang_s": "--hang",
            "seed": "--seed",
            "prefix_cache_tokens": "--prefix-cache-tokens",
            "prefill_s_per_1k": "--prefill-per-1k",
        }
        for name, value in options.items():
            if name == "faults":
                self.args += ["--faults", ",".join(value)]
            elif name in flags:
                self.args += [flags[name], str(value)]
            else:
                raise TypeError(f"SimProcess: unknown option {name!r}")
        self.proc: subprocess.Popen | None = None
        self.base_url = ""

    def start(self) -> SimProcess:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "harness.tools.sim_server", *self.args], stdout=subprocess.PIPE, text=True
        )
        assert self.proc.stdout is not None  # stdout=PIPE
        line = self.proc.stdout.readline()
        match = re.search(r"(http://\S+/v1)", line)
        if not match:
            self.stop()
            raise RuntimeError(f"sim server did not start: {line!r}")
        self.base_url = match.group(1)
        return self

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            if self.proc.stdout is not None:
                self.proc.stdout.close()
            self.proc = None

    def stats(self) -> dict:
        with urllib.request.urlopen(self.base_url + "/sim/stats", timeout=10) as resp:
            return json.loads(resp.read())

    def reset_stats(self) -> None:
        request = urllib.request.Request(self.base_url + "/sim/reset", data=b"", method="POST")
        urllib.request.urlopen(request, timeout=10).close()

    def __enter__(self) -> SimProcess:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _content_text(content) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # OpenAI content parts
        return "\n".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def _error(message: str, kind: str) -> bytes:
    return json.dumps({"error": {"message": message, "type": kind, "code": kind}}).encode()


def _completion(model: str, content: str, prompt_tokens: int) -> bytes:
    completion_tokens = count_tokens(content)
    return json.dumps(
        {
            "id": "chatcmpl-sim",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }
    ).encode()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m harness.tools.sim_server", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--latency", type=float, default=0.3, help="seconds per call (default 0.3)")
    parser.add_argument("--grader-latency", type=float, default=None, help="seconds per grader call (default: --latency)")
    parser.add_argument("--jitter", type=float, default=0.0, help="extra uniform random latency, seconds")
    parser.add_argument("--error-rate", type=float, default=0.0)
    parser.add_argument("--faults", default="http_500", help=f"comma-separated, from {','.join(FAULT_KINDS)}")
    parser.add_argument("--hang", type=float, default=30.0, help="seconds a 'timeout' fault hangs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--prefix-cache-tokens", type=int, default=2_000_000, help="prefix cache size in tokens")
    parser.add_argument("--prefill-per-1k", type=float, default=0.0, help="extra seconds per 1,000 uncached input tokens")
    args = parser.parse_args(argv)
    server = SimServer(
        args.latency,
        host=args.host,
        port=args.port,
        grader_latency_s=args.grader_latency,
        jitter_s=args.jitter,
        error_rate=args.error_rate,
        faults=[f for f in args.faults.split(",") if f],
        hang_s=args.hang,
        seed=args.seed,
        prefix_cache_tokens=args.prefix_cache_tokens,
        prefill_s_per_1k=args.prefill_per_1k,
    ).start()
    print(f"sim server on {server.base_url} (latency {args.latency}s, error rate {args.error_rate}); Ctrl-C stops", flush=True)
    import signal

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        while True:
            time.sleep(3600)
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        print(json.dumps(server.stats()), flush=True)
        server.stop()


if __name__ == "__main__":
    main()
