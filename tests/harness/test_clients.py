"""Credentials never travel inside base URLs."""

from harness.clients import move_url_credentials


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
