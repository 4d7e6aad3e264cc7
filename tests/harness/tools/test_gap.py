import pytest

from harness.tools import gap
from harness.tools.sim_server import SimServer
from tests.helpers.paths import shared_file


def test_a_bad_model_role_is_one_error_line(capsys):
    assert gap.main(["--model", "mockllm/model", "--model-role", "grader"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and "--model-role" in err[0]


@pytest.mark.slow
def test_the_gap_is_one_command_over_both_formats(tmp_path, monkeypatch):
    """CRAFT-MD vignette and conversation on the same cases and answer type, with the simulated server in every role."""
    shared_file("craftmd", "usmle_and_derm_dataset.csv")
    with SimServer(0.0) as srv:
        monkeypatch.setenv("SIM_BASE_URL", srv.base_url)
        monkeypatch.setenv("SIM_API_KEY", "unused")
        roles = [f"{role}=openai-api/sim/sim-{role}" for role in ("grader", "patient", "rubric_generator")]
        argv = ["--model", "openai-api/sim/sim-doctor", *(a for r in roles for a in ("--model-role", r))]
        out = tmp_path / "gap.md"
        assert gap.main([*argv, "--limit", "2", "--max-turns", "1", "--log-dir", str(tmp_path), "--out", str(out)]) == 0
    table = out.read_text()
    assert "| vignette | multiple_choice | 2 |" in table and "| conversation | multiple_choice | 2 |" in table
    assert "vignette -> conversation gap:" in table
