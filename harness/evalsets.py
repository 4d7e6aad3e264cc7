"""The eval-set registry: every data file m2bench evaluates or trains on, in one place.

Each file has its folder under ``$M2BENCH_DATA_DIR`` (or the cache), its official name, its
official row count (checked when that name is loaded), where it can be downloaded (or where to get
it by hand when there is no direct URL), and its role:

- ``reporting``: scores are reported on it, so training must never see it (the verl export holds
  out every reporting file and every reporting case set);
- ``training``: the pool the verl export draws from (minus anything in a reporting file);
- ``other``: available to evaluate, neither reported by default nor trained on.

Public samples of official files (the only HealthBench rows reachable offline) are registered too,
with the official set they sample. Loaders, the training export, benchmarks, probes and the demo
import their files from here; nothing else lists them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Role = Literal["reporting", "training", "other"]

HEALTHBENCH_URL = "https://openaipublic.blob.core.windows.net/simple-evals/healthbench/"
MEDQA_SOURCE = "https://github.com/jind11/MedQA (Google Drive: data_clean/questions/US/4_options/)"
MEDMCQA_SOURCE = "https://github.com/medmcqa/medmcqa (Google Drive archive data.zip)"
PUBMEDQA_URL = "https://raw.githubusercontent.com/pubmedqa/pubmedqa/master/data/"


@dataclass(frozen=True)
class DataFile:
    dataset: str  # folder under $M2BENCH_DATA_DIR / the cache
    name: str  # file name (the official one, for official files)
    rows: int | None  # official row count, checked on load; None = not checked
    role: Role
    url: str | None = None  # direct download URL; None = get it by hand from ``source``
    source: str = ""  # where to get a file without a URL
    sample_of: str | None = None  # for a public sample: the name of the official file it samples
    sha256: str | None = None  # pinned content hash, checked on every resolve (local, cached or downloaded)


def _healthbench(name: str, rows: int | None, role: Role) -> DataFile:
    return DataFile("healthbench", name, rows, role, HEALTHBENCH_URL + name)


# HealthBench (MIT, OpenAI simple-evals). The full set's pool is also the training pool: the verl
# export takes its rows minus every prompt_id of a reporting file.
HEALTHBENCH = {
    "full": _healthbench("2025-05-07-06-14-12_oss_eval.jsonl", 5000, "training"),
    "hard": _healthbench("hard_2025-05-08-21-00-10.jsonl", 1000, "reporting"),
    "consensus": _healthbench("consensus_2025-05-09-20-00-46.jsonl", 3671, "reporting"),
    "meta_eval": _healthbench("2025-05-07-06-14-12_oss_meta_eval.jsonl", None, "other"),
}
HEALTHBENCH_SUBSETS = ("full", "hard", "consensus")

# Public samples of the official files (see ../shared/data/healthbench/PROVENANCE.md).
HEALTHBENCH_SAMPLES = {
    "full": DataFile("healthbench", "oss_eval_sample500.jsonl", 500, "training", sample_of=HEALTHBENCH["full"].name),
    "hard": DataFile("healthbench", "hard_sample50_seed42.jsonl", 50, "reporting", sample_of=HEALTHBENCH["hard"].name),
    "consensus": DataFile(
        "healthbench", "consensus_context_seeking_hard_104.jsonl", 104, "reporting", sample_of=HEALTHBENCH["consensus"].name
    ),
}

# MedQA-USMLE 4 options (Jin et al. 2020, MIT): the test split is reported, the dev split trains.
MEDQA = {
    "test": DataFile("medqa", "phrases_no_exclude_test.jsonl", 1273, "reporting", source=MEDQA_SOURCE),
    "dev": DataFile("medqa", "phrases_no_exclude_dev.jsonl", 1272, "training", source=MEDQA_SOURCE),
}
MEDMCQA = {"dev": DataFile("medmcqa", "dev.json", 4183, "other", source=MEDMCQA_SOURCE)}
PUBMEDQA = {
    "labeled": DataFile("pubmedqa", "ori_pqal.json", 1000, "other", PUBMEDQA_URL + "ori_pqal.json"),
    "test": DataFile("pubmedqa", "test_ground_truth.json", 500, "other", PUBMEDQA_URL + "test_ground_truth.json"),
}


# simple-evals' HealthBench reference code (MIT, OpenAI), pinned to one commit: the official grader
# template, grader settings, conversation rendering, scoring and meta-eval are read from these files
# as data (harness.simple_evals), and the conformance tests import them. Names keep upstream's layout.
SIMPLE_EVALS_COMMIT = "ee3b0318d8d1d9d72755a4120879be65f7c07e9e"
SIMPLE_EVALS_URL = f"https://raw.githubusercontent.com/openai/simple-evals/{SIMPLE_EVALS_COMMIT}/"


def _simple_evals(name: str, sha256: str) -> DataFile:
    return DataFile("simple_evals", name, None, "other", SIMPLE_EVALS_URL + name, sha256=sha256)


SIMPLE_EVALS = {
    "healthbench_eval": _simple_evals("healthbench_eval.py", "89909957f005762edaded2f0e39fc9b3b242edd55e3ac0ce4c8dd886ac59d167"),
    "healthbench_meta_eval": _simple_evals(
        "healthbench_meta_eval.py", "2e7ff3cebdd37018655fbe45725add3d79142460813f53195b9a91ddfc4153aa"
    ),
    "healthbench_eval_test": _simple_evals(
        "healthbench_eval_test.py", "a9d364172fde46b56a502be91fe47452d83ad2af4a59ed7d9b90d072061128ca"
    ),
    "healthbench_meta_eval_test": _simple_evals(
        "healthbench_meta_eval_test.py", "35da67165b70b08eafa27929e1ed96177c82d14d6850cbde25408342067e24fe"
    ),
    "simple_evals": _simple_evals("simple_evals.py", "30508400525d3b1d91e2803713a8c2c3a98961263f0c3db6287c8414efd854ce"),
    "chat_completion_sampler": _simple_evals(
        "sampler/chat_completion_sampler.py", "d9d7568ad5b04379342b7f269a6028c6945c518bc8baa56969aad035afc8d435"
    ),
    "common": _simple_evals("common.py", "84616c52821a30ae3f55f153a763153fd833cb41b547b09f547b46e6337f8f35"),
    "types": _simple_evals("types.py", "8c7161765cd2a6bd426db2ce493c337da3eafe50d2efacc02a318b16afacfadb"),
}


@dataclass(frozen=True)
class CaseSet:
    file: DataFile
    format: str  # the converter in harness.cases: osce, nejm, mediq, craftmd
    diagnosis_only: bool = False  # keep only rows whose question asks for a diagnosis (consultation sets)
    subset: tuple[str, ...] = ()  # CRAFT-MD: the values of its ``dataset`` column to keep (empty = all)


def _cases(dataset: str, name: str, fmt: str, role: Role, **kwargs) -> CaseSet:
    return CaseSet(DataFile(dataset, name, None, role), fmt, **kwargs)


CRAFTMD_FILE = DataFile(
    "craftmd", "usmle_and_derm_dataset.csv", 2004, "reporting", source="https://github.com/rajpurkarlab/craft-md (data/)"
)

# Consultation case sets (AgentClinic MIT, MediQ CC BY 4.0, CRAFT-MD MIT). Training takes the
# extended AgentClinic-MedQA set minus every case whose (complaint, diagnosis) is in a reporting set.
# ``mediq`` is MediQ's dev set reduced to its diagnosis questions (a consultation ends in a
# diagnosis); ``mediq_all`` keeps every question, for multiple-choice runs with the options shown.
CASE_SETS = {
    "agentclinic_medqa": _cases("agentclinic", "agentclinic_medqa.jsonl", "osce", "reporting"),
    "agentclinic_medqa_extended": _cases("agentclinic", "agentclinic_medqa_extended.jsonl", "osce", "training"),
    "agentclinic_nejm": _cases("agentclinic", "agentclinic_nejm.jsonl", "nejm", "reporting"),
    "agentclinic_nejm_extended": _cases("agentclinic", "agentclinic_nejm_extended.jsonl", "nejm", "other"),
    "mediq": _cases("mediq", "all_dev_good.jsonl", "mediq", "other", diagnosis_only=True),
    "mediq_all": _cases("mediq", "all_dev_good.jsonl", "mediq", "other"),
    "mediq_craftmd": _cases("mediq", "all_craft_md.jsonl", "mediq", "reporting"),
    "craftmd": CaseSet(CRAFTMD_FILE, "craftmd"),
    "craftmd_medqa": CaseSet(CRAFTMD_FILE, "craftmd", subset=("MedQA_USMLE",)),
    "craftmd_derm": CaseSet(CRAFTMD_FILE, "craftmd", subset=("dermatology_public", "dermatology_private")),
}


def data_files() -> list[DataFile]:
    """Every registered file: the exam files, their public samples, the case sets' files and the official reference code."""
    exams = [*HEALTHBENCH.values(), *HEALTHBENCH_SAMPLES.values(), *MEDQA.values(), *MEDMCQA.values(), *PUBMEDQA.values()]
    return exams + list(dict.fromkeys(case_set.file for case_set in CASE_SETS.values())) + list(SIMPLE_EVALS.values())


def reporting_files(dataset: str) -> list[DataFile]:
    """The files of ``dataset`` whose scores are reported (held out from training), samples included."""
    return [f for f in data_files() if f.dataset == dataset and f.role == "reporting"]


def case_sets(role: Role) -> list[str]:
    """Names of the case sets with ``role`` (one name per file and subset: a set whose rows another set holds is left out)."""
    names = [name for name, case_set in CASE_SETS.items() if case_set.file.role == role]
    whole = {CASE_SETS[n].file for n in names if not CASE_SETS[n].subset and not CASE_SETS[n].diagnosis_only}
    return [n for n in names if not (CASE_SETS[n].subset or CASE_SETS[n].diagnosis_only) or CASE_SETS[n].file not in whole]


def official_count(dataset: str, name: str) -> int | None:
    """The row count of a registered file name (samples included), or None."""
    return next((f.rows for f in data_files() if f.dataset == dataset and f.name == name), None)
