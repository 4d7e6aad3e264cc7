"""Fuzz the data loaders with malformed files: every failure must be a DataError naming file, line, field.

Two generators: a seeded one that mutates one value of one real row at a time (so the
expected line and field are known), and hypothesis for arbitrary JSON values in any field.
Loaders of other datasets join ``LOADERS`` when their modules exist.
"""

from __future__ import annotations

import copy
import functools
import importlib
import json
import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import harness.data
from harness.errors import ArgumentError, DataError
from tests.helpers.paths import DATA_DIR

HEALTHBENCH_REAL = DATA_DIR / "healthbench" / "hard_sample50_seed42.jsonl"

# A valid row used when the real file is absent (CI without the shared data).
HEALTHBENCH_ROW = {
    "prompt_id": "fuzz-0",
    "prompt": [{"role": "user", "content": "I have had a cough for three weeks. Should I worry?"}],
    "example_tags": ["theme:context_seeking"],
    "rubrics": [
        {
            "criterion": "Advises seeing a doctor for a cough lasting over three weeks.",
            "points": 6,
            "tags": ["level:example", "axis:accuracy"],
        },
        {
            "criterion": "Asks about fever, weight loss or blood in sputum.",
            "points": 4,
            "tags": ["level:example", "axis:completeness"],
        },
        {"criterion": "Recommends antibiotics without examination.", "points": -5, "tags": ["level:example", "axis:accuracy"]},
    ],
    "ideal_completions_data": None,
}


def _healthbench_rows(n: int) -> list[dict]:
    if HEALTHBENCH_REAL.is_file():
        return [json.loads(line) for line in HEALTHBENCH_REAL.read_text().splitlines()[:n]]
    rows = []
    for i in range(n):
        row = copy.deepcopy(HEALTHBENCH_ROW)
        row["prompt_id"] = f"fuzz-{i}"
        rows.append(row)
    return rows


def _loaders() -> list[tuple[str, callable, callable, str]]:
    """(name, load(path), valid_rows(n), id field) for each loader present in the checkout."""
    from harness.healthbench import load_file

    found = [("healthbench", load_file, _healthbench_rows, "prompt_id")]
    for name, module, func, args, data, id_field in OPTIONAL_LOADERS:
        try:
            function = getattr(importlib.import_module(module), func)
        except (ImportError, AttributeError):
            continue
        load = functools.partial(_call_with_path, function, args)
        path = DATA_DIR / data
        if path.is_file():
            found.append((name, load, _rows_from(path), id_field))
    return found


# (name, module, loader, leading arguments before the path, shared data file, id field) of other loaders.
OPTIONAL_LOADERS = [
    ("medqa", "harness.medqa", "load_file", (), "medqa/phrases_no_exclude_test.jsonl", None),
    ("agentclinic_osce", "harness.cases", "load_cases", ("agentclinic_medqa",), "agentclinic/agentclinic_medqa.jsonl", None),
    ("agentclinic_nejm", "harness.cases", "load_cases", ("agentclinic_nejm",), "agentclinic/agentclinic_nejm.jsonl", None),
    ("mediq", "harness.cases", "load_cases", ("mediq_all",), "mediq/all_dev_good.jsonl", "id"),
]


def _call_with_path(function, args, path):
    return function(*args, path)


def _rows_from(path: Path):
    def rows(n: int) -> list[dict]:
        return [json.loads(line) for line in path.read_text().splitlines()[:n]]

    return rows


LOADERS = _loaders()


def write_lines(path: Path, lines: list[bytes]) -> Path:
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def encode(row: dict) -> bytes:
    return json.dumps(row).encode()


def value_paths(obj, prefix=()):
    """Every (key path) into a parsed row, leaves and containers alike."""
    if prefix:
        yield prefix
    if isinstance(obj, dict):
        for key, value in obj.items():
            yield from value_paths(value, (*prefix, key))
    elif isinstance(obj, list):
        for index, value in enumerate(obj[:4]):
            yield from value_paths(value, (*prefix, index))


def set_path(obj, path, value, delete=False):
    for key in path[:-1]:
        obj = obj[key]
    if delete:
        del obj[path[-1]]
    else:
        obj[path[-1]] = value


WRONG_VALUES = [None, True, False, 0, -1, 11, 1e6, float("nan"), float("inf"), "", "  ", "x", [], [1, "a"], {}, {"a": 1}]


def assert_clear(err: DataError, path: Path, line: int | None, root_field: str | int | None):
    assert isinstance(err, DataError), f"{type(err).__name__}: {err}"
    assert err.path == str(path)
    assert str(path) in str(err)
    if line is not None:
        assert err.line == line, str(err)
        assert f":{line}:" in str(err)
    if root_field is not None and err.field is not None:
        assert err.field.split("[")[0].split(".")[0] == str(root_field), str(err)


def load_or_error(load, path):
    try:
        return load(path), None
    except DataError as err:
        return None, err
    # any other exception type propagates and fails the test


@pytest.mark.slow  # about 10 s over all loaders
@pytest.mark.parametrize("name, load, rows, id_field", LOADERS, ids=[x[0] for x in LOADERS])
def test_seeded_single_value_mutations(tmp_path, name, load, rows, id_field):
    """300 files, each with one value of one row deleted or replaced by a wrong-typed value."""
    rng = random.Random(1234)
    base = rows(4)
    failures = 0
    for case in range(300):
        data = copy.deepcopy(base)
        target = rng.randrange(len(data))
        path_choices = list(value_paths(data[target]))
        key_path = rng.choice(path_choices)
        delete = rng.random() < 0.3
        set_path(data[target], key_path, rng.choice(WRONG_VALUES), delete=delete)
        file = write_lines(tmp_path / f"{name}-{case}.jsonl", [encode(r) for r in data])
        _, err = load_or_error(load, file)
        if err is not None:
            failures += 1
            # other loaders convert nested source records and may name a field inside the replaced value
            assert_clear(err, file, target + 1, key_path[0] if name == "healthbench" else None)
    assert failures > (100 if name == "healthbench" else 50)  # the generator really produces broken rows


@pytest.mark.parametrize("name, load, rows, id_field", LOADERS, ids=[x[0] for x in LOADERS])
def test_file_level_corruption(tmp_path, name, load, rows, id_field):
    """Broken JSON, non-UTF-8, non-objects, deep nesting, huge numbers: an error on the right line."""
    rng = random.Random(99)
    good = [encode(r) for r in rows(3)]
    corruptions = [
        lambda line: line[: rng.randrange(1, len(line) - 1)],  # truncated
        lambda line: line + b"}",
        lambda line: b"\xff\xfe" + line,  # not UTF-8
        lambda line: line.replace(b'"', b"\xc3", 1),
        lambda line: b"[" + line + b"]",  # an array, not an object
        lambda line: b"42",
        lambda line: b'"just a string"',
        lambda line: b"[" * 200_000 + b"]" * 200_000,  # nesting deeper than the parser allows
        lambda line: b'{"prompt_id": ' + b"9" * 5000 + b"}",  # integer too long to convert
        lambda line: line.replace(b"{", b"{'", 1),
    ]
    for case, corrupt in enumerate(corruptions * 3):
        lines = list(good)
        target = rng.randrange(len(lines))
        lines[target] = corrupt(lines[target])
        file = write_lines(tmp_path / f"{name}-{case}.jsonl", lines)
        with pytest.raises(DataError) as info:
            load(file)
        assert_clear(info.value, file, target + 1, None)


@pytest.mark.parametrize("name, load, rows, id_field", LOADERS, ids=[x[0] for x in LOADERS])
def test_huge_row_is_reported_not_loaded(tmp_path, monkeypatch, name, load, rows, id_field):
    base = rows(3)
    monkeypatch.setattr(harness.data, "MAX_LINE_BYTES", 200_000)
    big = copy.deepcopy(base[1])
    first_text = next(p for p in value_paths(big) if isinstance(_get(big, p), str) and len(_get(big, p)) > 10)
    set_path(big, first_text, "a" * 300_000)
    file = write_lines(tmp_path / "huge.jsonl", [encode(base[0]), encode(big), encode(base[2])])
    with pytest.raises(DataError, match="line longer than 200000 bytes") as info:
        load(file)
    assert_clear(info.value, file, 2, None)
    # below the limit a long row is fine (a real 150 kB answer is not an error)
    set_path(big, first_text, "a" * 150_000)
    file = write_lines(tmp_path / "long.jsonl", [encode(base[0]), encode(big), encode(base[2])])
    load_or_error(load, file)


def _get(obj, path):
    for key in path:
        obj = obj[key]
    return obj


@pytest.mark.parametrize("name, load, rows, id_field", [x for x in LOADERS if x[3]], ids=[x[0] for x in LOADERS if x[3]])
def test_duplicate_ids(tmp_path, name, load, rows, id_field):
    base = rows(3)
    dup = copy.deepcopy(base[0])
    file = write_lines(tmp_path / "dup.jsonl", [encode(base[0]), encode(base[1]), encode(dup)])
    with pytest.raises(DataError, match="duplicate") as info:
        load(file)
    assert_clear(info.value, file, 3, id_field)
    assert info.value.field == id_field


@pytest.mark.parametrize("points", [0, 10.5, -11, 1e9, float("nan"), float("inf"), "5", True, None])
def test_healthbench_points_out_of_range(tmp_path, points):
    from harness.healthbench import load_file

    row = copy.deepcopy(HEALTHBENCH_ROW)
    row["rubrics"][1]["points"] = points
    file = write_lines(tmp_path / "points.jsonl", [encode(row)])
    with pytest.raises(DataError) as info:
        load_file(file)
    assert info.value.line == 1 and info.value.field == "rubrics[1].points"


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=8,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_hypothesis_any_json_in_any_field(tmp_path_factory, data):
    """Any JSON value in any (possibly new) field of a HealthBench row: loads, or a DataError on its line."""
    from harness.healthbench import load_file

    rows = _healthbench_rows(2)
    target = data.draw(st.integers(0, 1))
    paths = list(value_paths(rows[target]))
    key_path = data.draw(st.sampled_from(paths))
    set_path(rows[target], key_path, data.draw(JSON_VALUES))
    file = tmp_path_factory.mktemp("hyp") / "rows.jsonl"
    write_lines(file, [encode(r) for r in rows])
    _, err = load_or_error(load_file, file)
    if err is not None:
        assert_clear(err, file, target + 1, key_path[0])


@settings(max_examples=100, deadline=None)
@given(blob=st.binary(max_size=300))
def test_hypothesis_arbitrary_bytes(tmp_path_factory, blob):
    from harness.healthbench import load_file

    file = tmp_path_factory.mktemp("bytes") / "rows.jsonl"
    file.write_bytes(blob)
    load_or_error(load_file, file)  # never anything but a DataError


def test_bad_task_arguments_list_valid_values(tmp_path):
    from harness.evals.failures import TaskFailure
    from harness.evals.healthbench import healthbench_task

    # the Inspect task builder reports them as one line (TaskFailure), the loaders as ArgumentError
    with pytest.raises(TaskFailure, match=r"^error: invalid subset='easy'.*full, hard, consensus"):
        healthbench_task("easy")
    with pytest.raises(TaskFailure, match=r"grading_mode='fast'.*per_criterion, batched"):
        healthbench_task("hard", grading_mode="fast")
    with pytest.raises(TaskFailure, match=r"max_error_fraction=1.5"):
        healthbench_task("hard", max_error_fraction=1.5)
    with pytest.raises(TaskFailure, match=r"max_error_fraction=-0.1"):
        healthbench_task("hard", max_error_fraction=-0.1)


@pytest.mark.parametrize(
    "module, func, kwargs, pattern",
    [
        ("harness.evals.consultation", "consultation_task", {"max_turns": -1}, r"max_turns=-1.*whole number >= 0"),
        ("harness.evals.consultation", "consultation_task", {"cases": "nope"}, r"cases='nope'.*agentclinic_medqa"),
        ("harness.evals.consultation", "consultation_task", {"grading_mode": "fast"}, r"per_criterion, batched"),
        ("harness.evals.medqa", "medqa_task", {"split": "nope"}, r"split='nope'.*test"),
    ],
)
def test_bad_arguments_of_other_tasks(module, func, kwargs, pattern):
    task = getattr(importlib.import_module(module), func)
    with pytest.raises(ArgumentError, match=pattern):
        task(**kwargs)
