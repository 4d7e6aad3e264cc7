"""The import contract (ARCHITECTURE.md), checked on the source with ast: every import counts,
including those inside functions.

- the scoring core (the modules directly in harness/) imports no inspect_ai, lm_eval or verl,
  and none of the adapter, reporting or tool subpackages;
- harness imports neither tasks nor verl_recipes; tasks and verl_recipes never import each other;
- the adapters (harness.evals for Inspect, harness.lmeval for lm-eval) build on the core only;
- reporting (harness.reporting) reads only tables: no Inspect, lm-eval or verl, no adapter, no tool;
- no import circles among our modules.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from tests.helpers.paths import ROOT

PACKAGES = ("harness", "verl_recipes", "tasks")
FRAMEWORKS = ("inspect_ai", "lm_eval", "verl")
SUBPACKAGES = ("harness.evals", "harness.lmeval", "harness.reporting", "harness.tools")


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def our_modules(root: Path) -> dict[str, Path]:
    return {module_name(p, root): p for package in PACKAGES for p in sorted((root / package).rglob("*.py"))}


def imports(name: str, path: Path, known: set[str]) -> Iterator[str]:
    """Every module ``name`` imports (absolute names), at any depth of the file."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:  # `from harness import bench` imports the module harness.bench
                yield f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base


def within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def is_core(name: str) -> bool:
    return within(name, "harness") and not any(within(name, s) for s in SUBPACKAGES)


def violations(root: Path) -> list[str]:
    modules = our_modules(root)
    known = set(modules)
    graph = {name: sorted(set(imports(name, path, known))) for name, path in modules.items()}
    found = []

    def forbid(who, what, why: str) -> None:
        for name, targets in graph.items():
            if who(name):
                found.extend(f"{name} imports {t}: {why}" for t in targets if what(t))

    forbid(is_core, lambda t: any(within(t, f) for f in FRAMEWORKS), "the scoring core imports no framework")
    forbid(is_core, lambda t: any(within(t, s) for s in SUBPACKAGES), "the core does not depend on adapters, reports or tools")
    forbid(
        lambda n: within(n, "harness"),
        lambda t: within(t, "tasks") or within(t, "verl_recipes"),
        "harness imports neither tasks nor verl_recipes",
    )
    forbid(lambda n: within(n, "tasks"), lambda t: within(t, "verl_recipes"), "tasks and verl_recipes are independent")
    forbid(lambda n: within(n, "verl_recipes"), lambda t: within(t, "tasks"), "tasks and verl_recipes are independent")
    for adapter, framework in (("harness.evals", "inspect_ai"), ("harness.lmeval", "lm_eval")):
        others = [s for s in SUBPACKAGES if s != adapter]
        forbid(
            lambda n, a=adapter: within(n, a), lambda t, o=others: any(within(t, s) for s in o), "adapters build on the core only"
        )
        forbid(
            lambda n, a=adapter: within(n, a),
            lambda t, f=framework: any(within(t, x) for x in FRAMEWORKS if x != f),
            f"{adapter} adapts {framework} alone",
        )
    forbid(
        lambda n: within(n, "harness.reporting"),
        lambda t: any(within(t, x) for x in (*FRAMEWORKS, "harness.evals", "harness.lmeval", "harness.tools")),
        "reporting reads only tables",
    )
    found += [
        f"import circle: {' -> '.join(cycle)}" for cycle in cycles({n: [t for t in ts if t in known] for n, ts in graph.items()})
    ]
    return found


def cycles(graph: dict[str, list[str]]) -> list[list[str]]:
    """One cycle per strongly connected component with more than one module (or a self-import)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, []):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1 or node in graph.get(node, []):
                out.append(sorted(component) + [sorted(component)[0]])

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return out


def test_the_import_contract_holds():
    assert violations(ROOT) == []


def test_the_checker_sees_each_kind_of_violation(tmp_path):
    """The checker itself, on a scratch tree with one violation of each rule."""
    files = {
        "harness/__init__.py": "",
        "harness/grading.py": "def f():\n    import inspect_ai\n",  # lazy framework import in the core
        "harness/rubric.py": "from harness.tools import bench\n",  # core -> tool
        "harness/cache.py": "from . import rubric\nimport harness.data\n",
        "harness/data.py": "from harness import cache\n",  # circle cache <-> data
        "harness/tools/__init__.py": "",
        "harness/tools/bench.py": "from verl_recipes.m2_grpo import reward\n",  # harness -> verl_recipes
        "harness/evals/__init__.py": "",
        "harness/evals/scoring.py": "from harness.reporting import pareto\nimport lm_eval\n",
        "harness/lmeval/__init__.py": "",
        "harness/reporting/__init__.py": "",
        "harness/reporting/pareto.py": "from inspect_ai.log import read_eval_log\n",
        "tasks/medqa/medqa.py": "import verl_recipes\n",
        "verl_recipes/__init__.py": "",
        "verl_recipes/m2_grpo/__init__.py": "",
        "verl_recipes/m2_grpo/reward.py": "from tasks.medqa import medqa\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    found = "\n".join(violations(tmp_path))
    for expected in (
        "harness.grading imports inspect_ai: the scoring core imports no framework",
        "harness.rubric imports harness.tools.bench: the core does not depend on adapters",
        "harness.tools.bench imports verl_recipes.m2_grpo.reward: harness imports neither",
        "harness.evals.scoring imports harness.reporting.pareto: adapters build on the core only",
        "harness.evals.scoring imports lm_eval: harness.evals adapts inspect_ai alone",
        "harness.reporting.pareto imports inspect_ai.log: reporting reads only tables",
        "tasks.medqa.medqa imports verl_recipes: tasks and verl_recipes are independent",
        "verl_recipes.m2_grpo.reward imports tasks.medqa.medqa: tasks and verl_recipes are independent",
        "import circle: harness.cache -> harness.data -> harness.cache",
    ):
        assert expected in found, f"missing: {expected}\nfound:\n{found}"


def test_the_eval_set_registry_is_the_only_list_of_data_files():
    """No module but harness/evalsets.py names a registered data file (loaders, the training export's
    hold-out rule, benchmarks, probes and the demo all take them from the registry)."""
    from harness.evalsets import data_files

    names = {f.name for f in data_files()}
    found = []
    for name, path in our_modules(ROOT).items():
        if name == "harness.evalsets":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                found += [f"{name}:{node.lineno} names {n}" for n in names if n in node.value]
    assert found == []
