"""Credentials never travel inside base URLs; failed calls are bounded and say why."""

import asyncio
import socket

import pytest

from harness.clients import EndpointError, OpenAIChat, failure_cause, move_url_credentials
from harness.tools.sim_server import SimServer


def test_credentials_move_from_base_urls_into_api_keys():
    env = {
        "SIMG_BASE_URL": "http://user:s%40cret@127.0.0.1:8000/v1",  # password with an escaped @
        "OPENAI_BASE_URL": "https://token-only@api.example.org/v1",
        "LOCAL_BASE_URL": "http://u:p@localhost:9/v1",
        "LOCAL_API_KEY": "already-set",
        "PLAIN_BASE_URL": "http://localhost:8000/v1?x=a@b",  # an @ outside the authority is not a credential
        "HOME": "/root",
    }
    moved = move_url_credentials(env)
    assert sorted(moved) == ["LOCAL_BASE_URL", "OPENAI_BASE_URL", "SIMG_BASE_URL"]
    assert env["SIMG_BASE_URL"] == "http://127.0.0.1:8000/v1" and env["SIMG_API_KEY"] == "s@cret"
    assert env["OPENAI_BASE_URL"] == "https://api.example.org/v1" and env["OPENAI_API_KEY"] == "token-only"
    assert env["LOCAL_BASE_URL"] == "http://localhost:9/v1" and env["LOCAL_API_KEY"] == "already-set"  # a set key wins
    assert env["PLAIN_BASE_URL"] == "http://localhost:8000/v1?x=a@b" and "PLAIN_API_KEY" not in env
    assert move_url_credentials(env) == []  # nothing left to move


# ---- bounded failures: the error names the endpoint and the cause -----------------------------


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # nothing listens once the socket is closed


def test_unreachable_endpoint_fails_naming_endpoint_and_cause():
    port = closed_port()
    chat = OpenAIChat(f"http://user:s3cret@127.0.0.1:{port}/v1", "judge", max_retries=1)
    with pytest.raises(EndpointError) as caught:
        asyncio.run(chat([{"role": "user", "content": "hi"}]))
    message = str(caught.value)
    assert f"http://127.0.0.1:{port}/v1/chat/completions failed after 2 attempts" in message
    assert "connection refused" in message and "s3cret" not in message and "\n" not in message


def test_persistent_server_error_is_retried_a_bounded_number_of_times():
    with SimServer(0.0, error_rate=1.0, faults=["http_500"]) as srv:
        chat = OpenAIChat(srv.base_url, "judge", max_retries=2)
        with pytest.raises(EndpointError, match="failed after 3 attempts: RetryableHTTPError: HTTP 500"):
            asyncio.run(chat([{"role": "user", "content": "hi"}]))
        assert srv.stats()["calls"] == 3


def test_failure_cause_looks_beneath_retry_wrappers():
    from tenacity import Future, RetryError

    try:
        try:
            raise ConnectionRefusedError(111, "Connection refused")
        except OSError as low:
            raise RuntimeError("Connection error.") from low
    except RuntimeError as sdk:
        attempt = Future(1)
        attempt.set_exception(sdk)
        wrapped = RetryError(attempt)
    assert failure_cause(wrapped) == "connection refused (ConnectionRefusedError: [Errno 111] Connection refused)"
    assert failure_cause(TimeoutError()) == "timed out (TimeoutError)"
    assert failure_cause(ValueError("bad\nreply")) == "ValueError: bad reply"
