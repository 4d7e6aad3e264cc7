"""Credentials in base URL variables never reach what `inspect eval` writes: the log, its trace files."""

import gzip
import os
import subprocess
import sys

import pytest
from inspect_ai.log import read_eval_log

from harness.tools.sim_server import SimServer
from tests.helpers.paths import FIXTURES, ROOT

SECRET = "pw-SECRET-77"


def written(root) -> dict[str, bytes]:
    """Every file under root, decompressed: an Inspect log as the JSON of its content, trace files un-gzipped."""
    out = {}
    for path in root.rglob("*"):
        if path.suffix == ".eval":
            out[f"{path}!json"] = read_eval_log(str(path)).model_dump_json().encode()
        elif path.suffix == ".gz":
            out[str(path)] = gzip.decompress(path.read_bytes())
        elif path.is_file():
            out[str(path)] = path.read_bytes()
    return out


@pytest.mark.slow
def test_inspect_eval_never_writes_base_url_credentials(tmp_path):
    with SimServer(0.0) as model_srv, SimServer(0.0) as grader_srv:
        env = {
            **os.environ,
            "SIMM_BASE_URL": model_srv.base_url.replace("http://", f"http://user:{SECRET}@"),
            "SIMG_BASE_URL": grader_srv.base_url.replace("http://", f"http://judge:{SECRET}@"),
            "SIMM_API_KEY": "sk-not-secret",
            "SIMG_API_KEY": "sk-not-secret",
            "XDG_DATA_HOME": str(tmp_path / "data"),  # Inspect's trace files go under the user data dir
        }
        command = [
            sys.executable, "-m", "inspect_ai", "eval", "tasks/healthbench_hard",
            "--model", "openai-api/simm/sim-model", "--model-role", "grader=openai-api/simg/sim-grader",
            "-T", f"data_file={FIXTURES / 'reliability_hb.jsonl'}", "--limit", "2",
            "--log-dir", str(tmp_path / "logs"), "--display", "plain", "--log-level", "debug",
        ]  # fmt: skip
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
        assert model_srv.stats()["model_calls"] == 2 and grader_srv.stats()["grader_calls"] > 0  # the URLs worked
    files = written(tmp_path)
    assert any(".eval!" in name for name in files)
    assert any("traces" in name for name in files)
    assert [name for name, blob in files.items() if SECRET.encode() in blob] == []
    assert SECRET not in done.stdout + done.stderr
