"""Export training data to verl's parquet format, held out from every reporting eval set.

Columns (verl ``RLHFDataset``): ``data_source``, ``prompt`` (chat messages), ``ability``,
``reward_model`` ({style, ground_truth}), ``extra_info`` (the fields below, complex values as
JSON text so every row has the same column schema) and ``agent_name`` (which verl agent loop
rolls the row out: ``single_turn_agent`` or ``m2_consultation``).

Held-out rule (what may train; tests/verl_recipes/m2_grpo/test_data.py checks it). The files and
their roles (reporting / training) come from ``harness.evalsets``:
- MedQA: train/val rows come from the **dev** split only; the **test** split is the reporting
  set, and any dev question whose text also appears in test is dropped.
- HealthBench: rows come from the oss_eval file (the official 5000-row file when it is present
  locally, else its public 500-row sample) **minus every prompt_id found in a reporting file**:
  the Hard and Consensus files (official and the local samples, whichever are present). When
  the official Hard/Consensus files are absent, rows of those sets outside the local samples
  cannot be recognised; the manifest says so (``complete_exclusion: false``). Note the
  ``healthbench`` (full) eval draws from the same oss_eval pool, so report full-set scores of a
  model trained here only on rows it did not train on.
- Consultation: cases of ``agentclinic_medqa_extended`` whose (complaint, diagnosis) is not in
  any consultation reporting set (``harness.evalsets.case_sets("reporting")``).
Within the training pool a stable hash of the item id puts ``val_fraction`` of rows in val.
No credentials are written: rows hold only data-set text and ids.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import evalsets
from harness.data import find_local, read_jsonl
from harness.errors import ArgumentError, DataError

logger = logging.getLogger(__name__)

SOURCES = ("healthbench", "medqa", "consultation")
SINGLE_TURN_AGENT = "single_turn_agent"
CONSULTATION_AGENT = "m2_consultation"
EXTRA_FIELDS = ("index", "item_id", "split", "source_file", "conversation", "example_tags", "options", "case_id", "case")

# the training pools (harness.evalsets role "training"); every reporting file and case set is held out
HEALTHBENCH_TRAIN_FILES = (evalsets.HEALTHBENCH["full"], evalsets.HEALTHBENCH_SAMPLES["full"])
CONSULTATION_TRAIN_SET = "agentclinic_medqa_extended"


@dataclass
class Export:
    """Rows per split plus what was excluded, for the manifest."""

    train: list[dict] = field(default_factory=list)
    val: list[dict] = field(default_factory=list)
    manifest: dict[str, Any] = field(default_factory=dict)


def in_val(item_id: str, fraction: float) -> bool:
    digest = hashlib.sha256(item_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < fraction


def row(
    data_source: str,
    prompt: list[dict[str, str]],
    ability: str,
    ground_truth: str,
    item_id: str,
    agent_name: str = SINGLE_TURN_AGENT,
    style: str = "model",
    **extra: Any,
) -> dict:
    info: dict[str, Any] = {name: "" for name in EXTRA_FIELDS}
    info.update({k: v if isinstance(v, str) else json.dumps(v, ensure_ascii=False) for k, v in extra.items()})
    info["item_id"] = item_id
    info["index"] = 0
    return {
        "data_source": data_source,
        "prompt": prompt,
        "ability": ability,
        "reward_model": {"style": style, "ground_truth": ground_truth},
        "extra_info": info,
        "agent_name": agent_name,
    }


def _split(rows: Iterable[dict], fraction: float, out: Export) -> None:
    for r in rows:
        split = "val" if in_val(r["extra_info"]["item_id"], fraction) else "train"
        r["extra_info"]["split"] = split
        getattr(out, split).append(r)


def _limit(rows: list[dict], limit: int | None) -> list[dict]:
    return rows if not limit else rows[:limit]


def healthbench_ids(path: Path) -> set[str]:
    return {str(obj.get("prompt_id")) for _, obj in read_jsonl(path)}


def healthbench_row(example: Any, source_file: str) -> dict:
    """One HealthBench example as a verl row (rubric as ground truth, conversation in extra_info)."""
    from verl_recipes.m2_grpo.reward import HEALTHBENCH

    return row(
        HEALTHBENCH,
        example.prompt,
        "medical_rubric",
        json.dumps([i.to_dict() for i in example.rubrics], ensure_ascii=False),
        f"healthbench:{example.prompt_id}",
        source_file=source_file,
        conversation=example.prompt,
        example_tags=example.example_tags,
    )


def medqa_row(q: Any, source_file: str) -> dict:
    """One MedQA question as a verl row: the eval's chain-of-thought prompt, the letter as ground truth."""
    from harness.medqa import format_prompt
    from verl_recipes.m2_grpo.reward import MEDQA

    return row(
        MEDQA,
        [{"role": "user", "content": format_prompt(q, cot=True)}],
        "medical_mcq",
        q.answer,
        f"medqa:{q.id}",
        style="rule",
        source_file=source_file,
        options=q.options,
    )


def export_healthbench(fraction: float, limit: int | None, out: Export) -> None:
    from harness.healthbench import load_file

    train_path = next((p for f in HEALTHBENCH_TRAIN_FILES if (p := find_local(f))), None)
    if train_path is None:
        names = ", ".join(f.name for f in HEALTHBENCH_TRAIN_FILES)
        raise DataError(
            Path("healthbench") / HEALTHBENCH_TRAIN_FILES[0].name,
            f"no HealthBench training file; put one of {names} under $M2BENCH_DATA_DIR/healthbench/",
        )
    reporting = evalsets.reporting_files("healthbench")
    eval_paths = [p for f in reporting if (p := find_local(f))]
    excluded: set[str] = set()
    for path in eval_paths:
        excluded |= healthbench_ids(path)
    examples = load_file(train_path)
    kept = [e for e in examples if e.prompt_id not in excluded]
    rows = [healthbench_row(e, train_path.name) for e in kept]
    _split(_limit(rows, limit), fraction, out)
    out.manifest["healthbench"] = {
        "train_file": train_path.name,
        "rows_in_file": len(examples),
        "excluded_eval_files": [p.name for p in eval_paths],
        "excluded_rows": len(examples) - len(kept),
        "complete_exclusion": all(find_local(f) for f in reporting if f.sample_of is None),
    }


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text.strip().lower())


def export_medqa(fraction: float, limit: int | None, out: Export) -> None:
    from harness.medqa import load_medqa

    dev, test = load_medqa("dev"), load_medqa("test")
    test_texts = {_norm(q.question) for q in test}
    kept = [q for q in dev if _norm(q.question) not in test_texts]
    rows = [medqa_row(q, evalsets.MEDQA["dev"].name) for q in kept]
    _split(_limit(rows, limit), fraction, out)
    out.manifest["medqa"] = {
        "train_split": "dev",
        "rows_in_split": len(dev),
        "excluded_eval_split": "test",
        "excluded_rows": len(dev) - len(kept),
    }


def case_key(case: Any) -> str:
    return f"{_norm(case.presenting_complaint)}|{_norm(case.diagnosis)}"


def export_consultation(fraction: float, limit: int | None, out: Export) -> None:
    from harness.cases import load_cases
    from verl_recipes.m2_grpo.consultation import opening_messages
    from verl_recipes.m2_grpo.reward import CONSULTATION

    cases = load_cases(CONSULTATION_TRAIN_SET)
    excluded_keys: set[str] = set()
    used_sets = []
    for name in evalsets.case_sets("reporting"):
        try:
            excluded_keys |= {case_key(c) for c in load_cases(name)}
            used_sets.append(name)
        except DataError as exc:  # an eval set that is not present locally cannot be evaluated either
            logger.warning("consultation eval set %s not available (%s)", name, exc)
    kept = [c for c in cases if case_key(c) not in excluded_keys]
    rows = [
        row(
            CONSULTATION,
            opening_messages(c),
            "medical_consultation",
            c.diagnosis,
            f"consultation:{c.case_id}",
            agent_name=CONSULTATION_AGENT,
            source_file=CONSULTATION_TRAIN_SET,
            case_id=c.case_id,
            case=c.to_dict(),
        )
        for c in kept
    ]
    _split(_limit(rows, limit), fraction, out)
    out.manifest["consultation"] = {
        "train_set": CONSULTATION_TRAIN_SET,
        "cases": len(cases),
        "excluded_eval_sets": used_sets,
        "excluded_rows": len(cases) - len(kept),
    }


EXPORTERS = {"healthbench": export_healthbench, "medqa": export_medqa, "consultation": export_consultation}


def parse_sources(value: str | Iterable[str]) -> list[str]:
    names = [s.strip() for s in (value.split(",") if isinstance(value, str) else value) if s.strip()]
    for name in names:
        if name not in SOURCES:
            raise ArgumentError("data", name, SOURCES)
    if not names:
        raise ArgumentError("data", value, SOURCES)
    return list(dict.fromkeys(names))


def build(sources: str | Iterable[str], val_fraction: float = 0.1, limit: int | None = None) -> Export:
    if not 0 <= val_fraction < 1:
        raise ArgumentError("val_fraction", val_fraction, "a fraction in [0, 1)")
    names = parse_sources(sources)
    out = Export(manifest={"sources": names, "val_fraction": val_fraction})
    for name in names:
        EXPORTERS[name](val_fraction, limit, out)
    for split in (out.train, out.val):
        for n, r in enumerate(split):
            r["extra_info"]["index"] = n
    out.manifest["rows"] = {"train": len(out.train), "val": len(out.val)}
    return out


def write(export: Export, out_dir: str | Path) -> dict[str, Path]:
    """Write train.parquet, val.parquet and manifest.json; returns their paths."""
    import pandas as pd

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"train": out_dir / "train.parquet", "val": out_dir / "val.parquet", "manifest": out_dir / "manifest.json"}
    for split in ("train", "val"):
        rows = getattr(export, split)
        if not rows:
            raise DataError(paths[split], f"no {split} rows for sources {export.manifest.get('sources')}")
        pd.DataFrame(rows).to_parquet(paths[split], index=False)
    paths["manifest"].write_text(json.dumps(export.manifest, indent=2) + "\n")
    return paths


def read(path: str | Path) -> list[dict]:
    import pandas as pd

    return pd.read_parquet(path).to_dict("records")


def main(argv: list[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(description="Export M2 GRPO training data to verl parquet.")
    parser.add_argument("--data", default="healthbench,medqa", help=f"comma list of {', '.join(SOURCES)}")
    parser.add_argument("--out", default="data/m2_grpo")
    parser.add_argument("--val-fraction", type=float, default=0.1)
    parser.add_argument("--limit", type=int, default=None, help="at most this many rows per source")
    args = parser.parse_args(argv)
    export = build(args.data, args.val_fraction, args.limit)
    for name, path in write(export, args.out).items():
        print(f"{name}: {path}")
    print(json.dumps(export.manifest, indent=2))


if __name__ == "__main__":
    main()
