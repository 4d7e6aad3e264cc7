import pandas as pd

from harness.results import RESULT_COLUMNS, append_results, normalize


def _row(**extra):
    base = {c: "" for c in RESULT_COLUMNS} | {"model": "m", "benchmark": "consultation", "subset": "s", "log": "l", "score": 0.5}
    return {**base, **extra}


def test_doctor_tokens_is_optional_and_kept_when_present(tmp_path):
    assert list(normalize(pd.DataFrame([_row()])).columns) == RESULT_COLUMNS
    with_tokens = normalize(pd.DataFrame([_row(doctor_tokens=123.0)]))
    assert list(with_tokens.columns) == [*RESULT_COLUMNS, "doctor_tokens"] and with_tokens["doctor_tokens"][0] == 123.0
    path = tmp_path / "runs.csv"
    append_results(pd.DataFrame([_row()]), path)  # an older table without the column
    merged = append_results(pd.DataFrame([_row(log="l2", doctor_tokens=7.0)]), path)
    assert len(merged) == 2 and merged["doctor_tokens"].tolist()[1] == 7.0
