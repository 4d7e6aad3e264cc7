"""Arguments checked by type and range, never coerced: one ArgumentError naming argument and value."""

import pytest

from harness import arguments
from harness.errors import ArgumentError


@pytest.mark.parametrize(
    "value, expected", [(True, True), ("yes", True), ("1", True), (False, False), ("False", False), (0, False)]
)
def test_flag(value, expected):
    assert arguments.flag("cot", value) is expected


@pytest.mark.parametrize("value", ["maybe", "", 2, None])
def test_flag_refuses_anything_else(value):
    with pytest.raises(ArgumentError, match=r"invalid cot=.*valid values: true, false"):
        arguments.flag("cot", value)


def test_fraction():
    assert arguments.fraction("max_error_fraction", 0) == 0.0
    assert arguments.fraction("max_error_fraction", "0.25") == 0.25
    assert arguments.fraction("p", 1, below_one=False) == 1.0
    for bad in ("abc", 1, -0.1, float("nan"), True, None):
        with pytest.raises(ArgumentError, match="a fraction in"):
            arguments.fraction("max_error_fraction", bad)


def test_whole_numbers_are_never_rounded():
    assert arguments.whole("max_turns", 20) == 20 and arguments.whole("max_turns", "3") == 3 and arguments.whole("n", 2.0) == 2
    for bad in (1.5, "1.5", -1, "x", True):
        with pytest.raises(ArgumentError, match="a whole number >= 0"):
            arguments.whole("max_turns", bad)


def test_data_file_tells_folders_from_missing_files(tmp_path):
    (tmp_path / "rows.jsonl").write_text("{}\n")
    assert arguments.data_file("data_file", tmp_path / "rows.jsonl") == tmp_path / "rows.jsonl"
    with pytest.raises(ArgumentError, match="a data file, not a folder"):
        arguments.data_file("data_file", tmp_path)
    with pytest.raises(ArgumentError, match="not found"):
        arguments.data_file("data_file", tmp_path / "none.jsonl")
