"""Paths as reports show them: no machine-specific prefix in committed output."""

from pathlib import Path

from harness.data import shown_path


def test_shown_path_hides_machine_specific_prefixes(monkeypatch, tmp_path):
    data, work = tmp_path / "shared" / "data", tmp_path / "checkout"
    monkeypatch.setenv("M2BENCH_DATA_DIR", str(data))
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    assert shown_path(data / "healthbench" / "hard.jsonl") == "$M2BENCH_DATA_DIR/healthbench/hard.jsonl"
    assert shown_path(work / "logs" / "run.eval") == "logs/run.eval"
    assert shown_path("logs/run.eval") == "logs/run.eval"
    assert shown_path(Path("/elsewhere/x.eval")) == "/elsewhere/x.eval"  # nothing to shorten it by
