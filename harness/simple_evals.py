"""The official HealthBench grading reference (openai/simple-evals at a pinned commit), read as data.

Nothing of it is restated in our code. The files are resolved like any data file
(``harness.evalsets.SIMPLE_EVALS``: ``$M2BENCH_DATA_DIR/simple_evals/``, the cache, or a download
from the pinned URL; sha256-checked wherever found), and their source is parsed with ``ast`` for:

- the grader template (a string literal followed by ``.strip()``) and the order in which its
  placeholders are replaced (conversation, then rubric item: a rubric item that happens to hold a
  placeholder is left alone, a conversation that does is not, exactly as upstream);
- the conversation rendering (the f-string per message and the separator it is joined with);
- the rubric-item rendering (the f-string of ``RubricItem.__str__``) and, for the meta-eval, what is
  put in the rubric-item slot (the criterion text alone);
- the role of the grader prompt message, the grader the CLI uses for HealthBench (model, system
  message, max tokens) and the sampler's default temperature;
- the clean-up applied to a grader reply before ``json.loads`` (``parse_json_to_dict``).

A file whose shape differs from what is expected is a ``DataError`` naming the file and what is
missing, never a silent fallback.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import importlib
import re
import sys
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from harness.data import resolve
from harness.errors import DataError
from harness.evalsets import SIMPLE_EVALS

# what a placeholder of the grader template is replaced with
CONVERSATION, RUBRIC_ITEM, CRITERION = "conversation", "rubric_item", "criterion"


@dataclass(frozen=True)
class FString:
    """An f-string read from the reference: literal text and ``(object, field)`` slots, filled with ``format(value, "")``."""

    parts: tuple[str | tuple[str, str], ...]

    def render(self, get: Callable[[str, str], Any]) -> str:
        """The text, with each ``(object, field)`` slot filled by ``get(object, field)``."""
        return "".join(p if isinstance(p, str) else format(get(*p), "") for p in self.parts)

    def pattern(self, field_patterns: dict[str, str]) -> re.Pattern[str]:
        """A regex matching the rendered text; slot ``field`` becomes a group using ``field_patterns[field]``."""
        regex = "".join(re.escape(p) if isinstance(p, str) else f"(?P<{p[1]}>{field_patterns[p[1]]})" for p in self.parts)
        return re.compile(regex + r"\Z", re.DOTALL)


@dataclass(frozen=True)
class OfficialGrading:
    """What simple-evals sends to its HealthBench grader and how it reads the reply."""

    template: str  # GRADER_TEMPLATE, stripped as upstream strips it
    substitutions: tuple[tuple[str, str], ...]  # (placeholder, CONVERSATION | RUBRIC_ITEM), in the order applied
    meta_eval_substitutions: tuple[tuple[str, str], ...]  # the meta-eval's: (placeholder, CONVERSATION | CRITERION)
    turn: FString  # one message of the conversation: ("m", "role") and ("m", "content") slots
    turn_separator: str
    meta_eval_turn: FString
    meta_eval_turn_separator: str
    rubric_item: FString  # str(RubricItem): ("self", "points") and ("self", "criterion") slots
    prompt_role: str  # the role of the one message holding the grader prompt
    grader_model: str
    system_message: str
    temperature: float
    max_tokens: int
    reply_cleanup: str  # regex removed (re.sub) from the stripped reply before json.loads
    sources: tuple[tuple[str, str], ...]  # (file name, sha256) of the files read


def _fail(path: Path, what: str) -> DataError:
    return DataError(path, f"not the expected simple-evals source: {what}")


def _walk(node: ast.AST, kind: type) -> Iterator[Any]:
    return (n for n in ast.walk(node) if isinstance(n, kind))


def _named(tree: ast.AST, kind: type, name: str, path: Path) -> Any:
    found = next((n for n in _walk(tree, kind) if getattr(n, "name", None) == name), None)
    if found is None:
        raise _fail(path, f"no {kind.__name__} {name!r}")
    return found


def _assignment(tree: ast.AST, name: str, path: Path) -> ast.expr:
    """The value assigned to ``name`` (the first assignment found)."""
    values = _assignments(tree, name)
    if not values:
        raise _fail(path, f"no assignment to {name!r}")
    return values[0]


def _assignments(tree: ast.AST, name: str) -> list[ast.expr]:
    """The values assigned to ``name`` (plain or annotated assignments), in source order."""
    found: list[tuple[int, int, ast.expr]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            target, value = node.target, node.value
        else:
            continue
        if isinstance(target, ast.Name) and target.id == name:
            found.append((node.lineno, node.col_offset, value))
    return [value for *_, value in sorted(found, key=lambda f: f[:2])]


def _string(node: ast.expr, path: Path, what: str) -> str:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    raise _fail(path, f"{what} is not a string literal (line {getattr(node, 'lineno', '?')})")


def _number(node: ast.expr, path: Path, what: str) -> float:
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return node.value
    raise _fail(path, f"{what} is not a number literal (line {getattr(node, 'lineno', '?')})")


def _fstring(node: ast.expr, path: Path, what: str) -> FString:
    """An f-string whose slots are ``obj[key]`` or ``obj.attr`` without conversion or format spec."""
    if not isinstance(node, ast.JoinedStr):
        raise _fail(path, f"{what} is not an f-string (line {getattr(node, 'lineno', '?')})")
    parts: list[str | tuple[str, str]] = []
    for value in node.values:
        if isinstance(value, ast.Constant) and isinstance(value.value, str):
            parts.append(value.value)
            continue
        if not isinstance(value, ast.FormattedValue) or value.conversion != -1 or value.format_spec is not None:
            raise _fail(path, f"{what}: unsupported f-string slot (line {value.lineno})")
        inner = value.value
        if isinstance(inner, ast.Subscript) and isinstance(inner.value, ast.Name):
            parts.append((inner.value.id, _string(inner.slice, path, f"{what} key")))
        elif isinstance(inner, ast.Attribute) and isinstance(inner.value, ast.Name):
            parts.append((inner.value.id, inner.attr))
        else:
            raise _fail(path, f"{what}: unsupported f-string slot (line {value.lineno})")
    return FString(tuple(parts))


def _conversation_rendering(function: ast.AST, path: Path) -> tuple[str, str, FString]:
    """(variable, separator, per-message f-string) of ``var = "<sep>".join([f"..." for m in ...])`` in ``function``."""
    for node in _walk(function, ast.Assign):
        call = node.value
        if (
            len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
            and isinstance(call, ast.Call)
            and isinstance(call.func, ast.Attribute)
            and call.func.attr == "join"
            and isinstance(call.func.value, ast.Constant)
            and len(call.args) == 1
            and isinstance(call.args[0], ast.ListComp)
        ):
            return node.targets[0].id, _string(call.func.value, path, "separator"), _fstring(call.args[0].elt, path, "turn")
    raise _fail(path, "no conversation rendering ('<separator>'.join([f'...' for m in ...]))")


def _replacements(function: ast.AST, path: Path, sources: Callable[[ast.expr], str | None]) -> tuple[tuple[str, str], ...]:
    """The ``.replace(placeholder, value)`` calls that build ``grader_prompt``, in the order they run."""
    values = _assignments(function, "grader_prompt")
    if not values:
        raise _fail(path, "no assignment to 'grader_prompt'")
    done: list[tuple[str, str]] = []
    for value in values:  # statements run in order; within one, the innermost call runs first
        chain: list[tuple[str, str]] = []
        node = value
        while isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "replace":
            source = sources(node.args[1]) if len(node.args) == 2 else None
            if source is None:
                raise _fail(path, f"unexpected replacement value in grader_prompt (line {node.lineno})")
            chain.append((_string(node.args[0], path, "placeholder"), source))
            node = node.func.value
        if not chain:
            raise _fail(path, f"grader_prompt is not built with .replace (line {value.lineno})")
        done.extend(reversed(chain))
    return tuple(done)


def _keyword(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def _default(function: ast.FunctionDef, name: str, path: Path) -> ast.expr:
    args = function.args
    positional = args.posonlyargs + args.args
    defaults = dict(zip([a.arg for a in positional[len(positional) - len(args.defaults) :]], args.defaults))
    defaults.update({a.arg: d for a, d in zip(args.kwonlyargs, args.kw_defaults) if d is not None})
    if name not in defaults:
        raise _fail(path, f"{function.name}() has no default for {name!r}")
    return defaults[name]


def parse_reference(eval_path: Path, meta_path: Path, cli_path: Path, sampler_path: Path) -> OfficialGrading:
    """Read the grading reference out of the four simple-evals source files."""
    trees = {p: ast.parse(p.read_text(encoding="utf-8"), str(p)) for p in (eval_path, meta_path, cli_path, sampler_path)}
    evaluation, meta, cli, sampler = (trees[p] for p in (eval_path, meta_path, cli_path, sampler_path))

    stripped = _assignment(evaluation, "GRADER_TEMPLATE", eval_path)
    if not (
        isinstance(stripped, ast.Call)
        and isinstance(stripped.func, ast.Attribute)
        and stripped.func.attr == "strip"
        and not stripped.args
    ):
        raise _fail(eval_path, "GRADER_TEMPLATE is not '<string literal>.strip()'")
    template = _string(stripped.func.value, eval_path, "GRADER_TEMPLATE").strip()

    cleanup = next(
        (
            _string(call.args[0], eval_path, "parse_json_to_dict pattern")
            for call in _walk(_named(evaluation, ast.FunctionDef, "parse_json_to_dict", eval_path), ast.Call)
            if isinstance(call.func, ast.Attribute) and call.func.attr == "sub" and len(call.args) == 3
        ),
        None,
    )
    if cleanup is None:
        raise _fail(eval_path, "parse_json_to_dict has no re.sub(<pattern>, '', ...)")

    item_str = _named(_named(evaluation, ast.ClassDef, "RubricItem", eval_path), ast.FunctionDef, "__str__", eval_path)
    returned = next(_walk(item_str, ast.Return), None)
    if returned is None or returned.value is None:
        raise _fail(eval_path, "RubricItem.__str__ returns nothing")
    rubric_item = _fstring(returned.value, eval_path, "RubricItem.__str__")

    grade_item = _named(evaluation, ast.FunctionDef, "grade_rubric_item", eval_path)
    convo_var, separator, turn = _conversation_rendering(grade_item, eval_path)

    def eval_source(node: ast.expr) -> str | None:
        if isinstance(node, ast.Name) and node.id == convo_var:
            return CONVERSATION
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "str" and len(node.args) == 1:
            return RUBRIC_ITEM
        return None

    substitutions = _replacements(grade_item, eval_path, eval_source)
    messages = _assignment(grade_item, "messages", eval_path)
    message = messages.elts[0] if isinstance(messages, ast.List) and len(messages.elts) == 1 else None
    role = _keyword(message, "role") if isinstance(message, ast.Call) else None
    if role is None:
        raise _fail(eval_path, "the grader messages are not [dict(content=..., role=...)]")
    prompt_role = _string(role, eval_path, "grader message role")

    meta_call = _named(_named(meta, ast.ClassDef, "HealthBenchMetaEval", meta_path), ast.FunctionDef, "__call__", meta_path)
    meta_var, meta_separator, meta_turn = _conversation_rendering(meta_call, meta_path)

    def meta_source(node: ast.expr) -> str | None:
        if isinstance(node, ast.Name) and node.id == meta_var:
            return CONVERSATION
        if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant) and node.slice.value == "rubric":
            return CRITERION
        return None

    meta_substitutions = _replacements(meta_call, meta_path, meta_source)

    grading_sampler = _assignment(_named(cli, ast.FunctionDef, "main", cli_path), "grading_sampler", cli_path)
    if not isinstance(grading_sampler, ast.Call):
        raise _fail(cli_path, "grading_sampler is not a sampler call")
    model, system, max_tokens = (_keyword(grading_sampler, k) for k in ("model", "system_message", "max_tokens"))
    if model is None or max_tokens is None or not isinstance(system, ast.Name):
        raise _fail(cli_path, "grading_sampler lacks model=, system_message=<NAME> or max_tokens=")
    sampler_init = _named(
        _named(sampler, ast.ClassDef, "ChatCompletionSampler", sampler_path), ast.FunctionDef, "__init__", sampler_path
    )
    temperature = _keyword(grading_sampler, "temperature") or _default(sampler_init, "temperature", sampler_path)
    return OfficialGrading(
        template=template,
        substitutions=substitutions,
        meta_eval_substitutions=meta_substitutions,
        turn=turn,
        turn_separator=separator,
        meta_eval_turn=meta_turn,
        meta_eval_turn_separator=meta_separator,
        rubric_item=rubric_item,
        prompt_role=prompt_role,
        grader_model=_string(model, cli_path, "grading_sampler model"),
        system_message=_string(_assignment(sampler, system.id, sampler_path), sampler_path, system.id),
        temperature=float(_number(temperature, sampler_path, "temperature")),
        max_tokens=int(_number(max_tokens, cli_path, "max_tokens")),
        reply_cleanup=cleanup,
        sources=(),
    )


READ_FILES = ("healthbench_eval", "healthbench_meta_eval", "simple_evals", "chat_completion_sampler")


@functools.lru_cache(maxsize=4)
def _load(paths: tuple[Path, ...], stamps: tuple[tuple[int, int], ...]) -> OfficialGrading:
    reference = parse_reference(*paths)
    sources = tuple((SIMPLE_EVALS[n].name, SIMPLE_EVALS[n].sha256 or "") for n in READ_FILES)
    return dataclasses.replace(reference, sources=sources)


def official_grading() -> OfficialGrading:
    """The official grading reference, resolved (local, cached or downloaded; sha256-checked) and parsed."""
    paths = tuple(resolve(SIMPLE_EVALS[n]) for n in READ_FILES)
    stamps = tuple((p.stat().st_mtime_ns, p.stat().st_size) for p in paths)
    return _load(paths, stamps)


UPSTREAM_PACKAGE = "simple_evals_upstream"


def upstream_module(module: str) -> ModuleType:
    """simple-evals' own module ``module`` (e.g. ``healthbench_eval``), imported from the registered reference files.

    For conformance tests and the peer benchmark, never for scoring. The folder keeps upstream's layout (relative
    imports), so it imports as one package under a name of ours; the files are resolved (and sha256-checked) like any
    data file. Only what is not installed is stubbed (``blobfile``, which upstream uses to download data); no bytecode
    is written into the data folder. Raises DataError when the files are not available.
    """
    folder = resolve(SIMPLE_EVALS["healthbench_eval"]).parent
    for file in SIMPLE_EVALS.values():  # the same folder
        resolve(file)
    if "blobfile" not in sys.modules:
        try:
            import blobfile  # noqa: F401
        except ImportError:
            sys.modules["blobfile"] = types.ModuleType("blobfile")
    if UPSTREAM_PACKAGE not in sys.modules:
        package = types.ModuleType(UPSTREAM_PACKAGE)
        package.__path__ = [str(folder)]
        sys.modules[UPSTREAM_PACKAGE] = package
    writes = sys.dont_write_bytecode
    sys.dont_write_bytecode = True
    try:
        return importlib.import_module(f"{UPSTREAM_PACKAGE}.{module}")
    finally:
        sys.dont_write_bytecode = writes
