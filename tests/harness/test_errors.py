"""run_cli: expected failures are one line and a non-zero exit; bugs keep their traceback."""

import pytest

from harness.errors import ArgumentError, DataError, run_cli


def exit_code(main) -> int:
    with pytest.raises(SystemExit) as stop:
        run_cli(main)
    return stop.value.code


def test_our_errors_and_bad_paths_are_one_line_and_exit_2(capsys):
    def bad_data():
        raise DataError("data/x.jsonl", "missing", 3, "prompt")

    assert exit_code(bad_data) == 2
    assert capsys.readouterr().err == "error: data/x.jsonl:3: field 'prompt' missing\n"

    def bad_argument():
        raise ArgumentError("split", "nope", ("test", "dev"))

    assert exit_code(bad_argument) == 2
    assert capsys.readouterr().err == "error: invalid split='nope'; valid values: test, dev\n"

    def bad_path():
        open("/nonexistent/folder/file.txt")

    assert exit_code(bad_path) == 2
    assert capsys.readouterr().err.startswith("error: [Errno 2] No such file or directory")


def test_a_hint_gets_its_own_line(capsys):
    def hinted():
        error = DataError("healthbench/hard.jsonl", "not found")
        error.hint = "pass -T data_file=..."
        raise error

    assert exit_code(hinted) == 2
    assert capsys.readouterr().err.splitlines() == ["error: healthbench/hard.jsonl: not found", "hint: pass -T data_file=..."]


def test_status_and_interrupt(capsys):
    assert exit_code(lambda: 0) == 0
    assert exit_code(lambda: None) == 0
    assert exit_code(lambda: 1) == 1

    def interrupted():
        raise KeyboardInterrupt

    assert exit_code(interrupted) == 130
    assert capsys.readouterr().err == "error: interrupted\n"


def test_a_bug_is_not_hidden():
    def bug():
        raise ZeroDivisionError("a bug")

    with pytest.raises(ZeroDivisionError):
        run_cli(bug)
