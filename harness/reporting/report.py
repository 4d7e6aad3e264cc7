"""Performance-vs-parameters reports: Pareto charts and tables from published and own results.

Reads only tables: published scores from leaderboards/published.csv (0-100), own runs as a
results table (``harness.results``; scores 0-1, shown x100), parameter counts from
leaderboards/models.csv (a model without one is listed as unknown and not plotted).
Own runs that are not comparable with the published numbers (``harness.comparable``: not the
official file in full, not the official grader profile, self-graded, too few samples) are kept
apart: a separate, labelled layer of the chart and a separate table, never on the frontier.
The command line is ``python -m harness.tools.report``.
"""

from __future__ import annotations

import datetime as dt
import math
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from harness.errors import ArgumentError
from harness.reporting.leaderboard import LEADERBOARD_DIR, ModelRegistry, load_models, load_own_runs, load_published
from harness.reporting.pareto import frontier, params_column
from harness.results import RESULT_COLUMNS, normalize

REPORTS_DIR = Path("reports")
POINT_COLUMNS = [
    "model",
    "origin",
    "subset",
    "params_total_b",
    "params_active_b",
    "params_b",
    "score",
    "stderr",
    "n",
    "grader",
    "source",
    "source_ref",
    "date",
    "log",
    "comparable",
    "why_not_comparable",
    "on_frontier",
]
KIND_LABEL = {"total": "total parameters", "active": "active parameters per token (MoE)"}


@dataclass
class ParetoReport:
    benchmark: str
    kind: str
    points: pd.DataFrame  # plotted: every row has a parameter count
    unknown: pd.DataFrame  # listed only: no parameter count
    messages: list[str] = field(default_factory=list)
    date: str = field(default_factory=lambda: dt.date.today().isoformat())


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def build(
    benchmark: str,
    kind: str = "total",
    runs: pd.DataFrame | None = None,
    own_runs: str | Path | None = None,
    leaderboards: str | Path | None = None,
) -> ParetoReport:
    """Gather published results, the own-runs file and ``runs`` (a results table) for ``benchmark``,
    and mark the Pareto frontier."""
    column = params_column(kind)
    directory = Path(leaderboards) if leaderboards else LEADERBOARD_DIR
    models_path = directory / "models.csv"
    published = load_published(directory / "published.csv")
    registry = ModelRegistry(load_models(models_path))
    frames = [
        f for f in (load_own_runs(Path(own_runs) if own_runs else directory / "own_runs.csv"), runs) if f is not None and len(f)
    ]
    own = normalize(pd.concat(frames, ignore_index=True)) if frames else pd.DataFrame(columns=RESULT_COLUMNS)
    known = sorted(set(published["benchmark"]) | set(own["benchmark"]))
    if benchmark not in known:
        raise ArgumentError("benchmark", benchmark, known or "none: leaderboards/published.csv and own runs are empty")

    rows = []
    for _, r in published[published["benchmark"] == benchmark].iterrows():
        rows.append(
            {
                "model": r["model"],
                "origin": "published",
                "subset": r["subset"],
                "score": r["score"],
                "stderr": math.nan,
                "n": math.nan,
                "grader": r["note"],
                "source": r["source"],
                "source_ref": r["source_ref"],
                "date": r["date"],
                "log": "",
                "comparable": True,
                "why_not_comparable": "",
            }
        )
    for _, r in own[own["benchmark"] == benchmark].iterrows():
        rows.append(
            {
                "model": r["model"],
                "origin": "own",
                "subset": r["subset"],
                "score": 100 * float(r["score"]),
                "stderr": 100 * float(r["stderr"]) if pd.notna(r["stderr"]) else math.nan,
                "n": r["n"],
                "grader": r["grader"],
                "source": "own run",
                "source_ref": Path(str(r["log"])).name,
                "date": r["date"],
                "log": r["log"],
                "comparable": bool(r["comparable"]),
                "why_not_comparable": r["why_not_comparable"],
            }
        )

    messages, seen = [], set()
    for row in rows:
        entry = registry.find(row["model"])
        row["params_total_b"] = entry["params_total_b"] if entry is not None else math.nan
        row["params_active_b"] = entry["params_active_b"] if entry is not None else math.nan
        row["params_b"] = entry[column] if entry is not None else math.nan
        if row["model"] in seen:
            continue
        seen.add(row["model"])
        if entry is None:
            messages.append(
                f"{row['model']}: no parameter count - the model has no row in {_shown(models_path)}; "
                "add one (model, aliases, architecture, params_total_b, params_active_b, source) to plot it. Listed as unknown."
            )
        elif entry["architecture"] == "unknown":
            messages.append(f"{row['model']}: parameter count not public (closed model) - listed as unknown, not plotted.")

    table = pd.DataFrame(rows, columns=[c for c in POINT_COLUMNS if c != "on_frontier"])
    has = table["params_b"].notna()
    points = table[has].reset_index(drop=True)
    points["on_frontier"] = False
    comparable = points["comparable"].astype(bool)
    if comparable.any():  # the frontier is drawn among comparable results only
        points.loc[comparable, "on_frontier"] = frontier(points[comparable], "params_b", "score")
    points = points.sort_values(["params_b", "score"], ascending=[True, False]).reset_index(drop=True)
    unknown = table[~has].sort_values("score", ascending=False).reset_index(drop=True)
    return ParetoReport(benchmark, kind, points, unknown, messages)


def _label_points(ax, points: pd.DataFrame) -> None:
    """Label every point, trying a few offsets so labels do not overlap each other."""
    from matplotlib.transforms import Bbox

    renderer = ax.figure.canvas.get_renderer()
    half = 6.5 * ax.figure.dpi / 72  # marker (and frontier ring) radius in pixels
    centres = ax.transData.transform(points[["params_b", "score"]].to_numpy(dtype=float)) if len(points) else []
    placed = [Bbox.from_extents(x - half, y - half, x + half, y + half) for x, y in centres]
    offsets = [
        (8, 6),
        (8, -12),
        (-8, 6),
        (-8, -12),
        (10, -3),
        (-10, -3),
        (8, 16),
        (8, -22),
        (-8, 16),
        (-8, -22),
        (20, 20),
        (20, -28),
        (-20, 20),
        (-20, -28),
        (0, 30),
        (0, -34),
    ]
    for _, p in points.iterrows():
        text = p["model"]
        if p["origin"] == "own":
            notes = ["own"] + ([f"n={p['n']:.0f}"] if pd.notna(p["n"]) else []) + ([] if p["comparable"] else ["NOT COMPARABLE"])
            text += f" ({', '.join(notes)})"
        for dx, dy in offsets:
            label = ax.annotate(
                text,
                (p["params_b"], p["score"]),
                xytext=(dx, dy),
                textcoords="offset points",
                ha="left" if dx >= 0 else "right",
                fontsize=8,
                color="#b35900" if p["origin"] == "own" else "#1a1a1a",
                bbox={"boxstyle": "round,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.75},
            )
            box = label.get_window_extent(renderer).expanded(1.05, 1.15)
            if not any(box.overlaps(other) for other in placed) or (dx, dy) == offsets[-1]:
                placed.append(box)
                break
            label.remove()


def plot(report: ParetoReport, path: str | Path) -> Path:
    """Write the chart: log x axis, every point labelled, frontier and own runs highlighted."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    points = report.points
    fig, ax = plt.subplots(figsize=(10, 6.5), dpi=150)
    published = points[points["origin"] == "published"]
    own = points[(points["origin"] == "own") & points["comparable"].astype(bool)]
    apart = points[(points["origin"] == "own") & ~points["comparable"].astype(bool)]
    front = points[points["on_frontier"]].sort_values("params_b")
    if len(front):
        ax.step(
            front["params_b"],
            front["score"],
            where="post",
            color="#2ca02c",
            lw=1.5,
            alpha=0.8,
            zorder=1,
            label="Pareto frontier (fewer parameters, higher score)",
        )
        ax.scatter(front["params_b"], front["score"], s=160, facecolors="none", edgecolors="#2ca02c", lw=1.8, zorder=2)
    ax.scatter(published["params_b"], published["score"], s=45, color="#1f77b4", zorder=3, label="published")
    if len(own):
        ax.errorbar(own["params_b"], own["score"], yerr=own["stderr"].fillna(0), fmt="none", ecolor="#ff7f0e", zorder=3)
    layers: list[
        tuple[pd.DataFrame, dict[str, Any], str]
    ] = [  # runs not comparable with published scores get their own layer: hollow grey, never on the frontier
        (own, {"color": "#ff7f0e", "edgecolors": "black", "lw": 0.6}, "own run"),
        (
            apart,
            {"facecolors": "none", "edgecolors": "#7f7f7f", "lw": 1.0},
            "own run, NOT comparable with published scores (see table)",
        ),
    ]
    for layer, style, label in layers:
        if len(layer):
            ax.scatter(layer["params_b"], layer["score"], s=140, marker="*", zorder=4, label=label, **style)
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    if len(points):
        lo, hi = points["params_b"].min(), points["params_b"].max()
        ax.set_xlim(lo / 2.5, hi * 3)
        if len(front):  # the last frontier point dominates everything to its right
            ax.plot(
                [front["params_b"].iloc[-1], hi * 3], [front["score"].iloc[-1]] * 2, color="#2ca02c", lw=1.2, ls=":", zorder=1
            )
        err = points["stderr"].fillna(0)
        smin, smax = (points["score"] - err).min(), (points["score"] + err).max()
        pad = max(3.0, (smax - smin) * 0.12)
        ax.set_ylim(max(0.0, smin - pad), min(100 + pad / 3, smax + pad))
    else:
        ax.text(0.5, 0.5, "no model with a known parameter count", ha="center", transform=ax.transAxes)
    label = KIND_LABEL[report.kind]
    ax.set_xlabel(f"{label[0].upper()}{label[1:]}, billions (log scale)")
    ax.set_ylabel(f"{report.benchmark} score (0-100)")
    ax.set_title(f"{report.benchmark}: score vs {label} - {report.date}")
    ax.grid(True, which="both", alpha=0.25)
    if len(report.unknown):
        listed = ", ".join(
            f"{r.model} {r.score:.1f}" + ("" if r.comparable else " (NOT comparable)") for r in report.unknown.itertuples()
        )
        fig.text(0.01, 0.01, f"Not plotted (parameter count unknown): {listed}", fontsize=7, color="#555555", wrap=True)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    _label_points(ax, points)  # after the layout, so overlap checks use the final positions
    ax.legend(loc="best", fontsize=8)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def _fmt(value, spec: str = "g", missing: str = "unknown") -> str:
    if value is None or value == "" or (isinstance(value, float) and math.isnan(value)):
        return missing
    return format(value, spec)


def _cell(text) -> str:
    if text is None or (isinstance(text, float) and math.isnan(text)):
        return ""
    return str(text).replace("|", "\\|").replace("\n", " ")


def _row(*cells) -> str:
    return "| " + " | ".join(_cell(x) for x in cells) + " |"


def markdown(report: ParetoReport, image_name: str, command: str) -> str:
    """The table that goes with the chart."""
    lines = [
        f"# {report.benchmark}: performance vs parameters ({report.kind})",
        "",
        f"Generated {report.date} by `{command}`. Scores on a 0-100 scale; parameters in billions "
        f"(x axis: {KIND_LABEL[report.kind]}). Frontier = no other model has fewer-or-equal parameters and a higher-or-equal score.",
        "",
        f"![{report.benchmark} Pareto chart]({image_name})",
        "",
        "| model | origin | subset | params total (B) | params active (B) | score | stderr | n | Pareto | source | grader / note |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    comparable = report.points["comparable"].astype(bool)
    for r in report.points[comparable].itertuples():
        lines.append(
            _row(
                r.model,
                r.origin,
                r.subset,
                _fmt(r.params_total_b),
                _fmt(r.params_active_b),
                f"{r.score:.1f}",
                _fmt(r.stderr, ".1f", ""),
                _fmt(r.n, ".0f", ""),
                "yes" if r.on_frontier else "",
                f"{r.source}, {r.source_ref}",
                r.grader,
            )
        )
    apart = pd.concat([report.points[~comparable], report.unknown[~report.unknown["comparable"].astype(bool)]])
    if len(apart):
        lines += [
            "",
            "## Own runs NOT comparable with the published scores",
            "",
            "Kept apart (hollow grey stars on the chart, never on the frontier); the reasons come from",
            "`harness/comparable.py`.",
            "",
            "| model | subset | score | stderr | n | why not comparable | grader | log |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for r in apart.itertuples():
            lines.append(
                _row(
                    r.model,
                    r.subset,
                    f"{r.score:.1f}",
                    _fmt(r.stderr, ".1f", ""),
                    _fmt(r.n, ".0f", ""),
                    r.why_not_comparable,
                    r.grader,
                    r.source_ref,
                )
            )
    unknown = report.unknown[report.unknown["comparable"].astype(bool)]
    if len(unknown):
        lines += [
            "",
            "## Parameter count unknown (listed, not plotted)",
            "",
            "| model | origin | subset | score | source | grader / note |",
            "|---|---|---|---|---|---|",
        ]
        for r in unknown.itertuples():
            lines.append(_row(r.model, r.origin, r.subset, f"{r.score:.1f}", f"{r.source}, {r.source_ref}", r.grader))
    if report.messages:
        lines += ["", "## Notes", ""] + [f"- {m}" for m in report.messages]
    lines += [
        "",
        "Scores from different sources may use different graders and settings; see each source. "
        "Add a result in `leaderboards/published.csv`, a parameter count in `leaderboards/models.csv`.",
        "",
    ]
    return "\n".join(lines)


def write_pareto(report: ParetoReport, out: str | Path = REPORTS_DIR, command: str = "") -> tuple[Path, Path]:
    out = Path(out)
    stem = f"{report.benchmark}_pareto" + ("" if report.kind == "total" else f"_{report.kind}")
    png = plot(report, out / f"{stem}.png")
    md = out / f"{stem}.md"
    md.write_text(
        markdown(
            report,
            png.name,
            command or f"python -m harness.tools.report pareto --benchmark {report.benchmark} --params {report.kind}",
        )
    )
    return png, md


def _report_files(out: Path) -> list[Path]:
    """Files under ``out``, without those git ignores (raw local logs), when ``out`` is in a git checkout."""
    files = [p.resolve() for p in out.rglob("*") if p.is_file()]
    try:
        listed = subprocess.run(
            ["git", "check-ignore", "--stdin"],
            cwd=out,
            input="\n".join(map(str, files)),
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.SubprocessError):
        return files
    ignored = set(listed.stdout.splitlines()) if listed.returncode in (0, 1) else set()
    return [p for p in files if str(p) not in ignored]


def write_index(out: str | Path = REPORTS_DIR) -> Path:
    """reports/README.md: a link to every Pareto chart and table, then any other report files."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tables = sorted(out.glob("*_pareto*.md"))
    lines = [
        "# Reports",
        "",
        "Generated by `python -m harness.tools.report index`; regenerate after adding results.",
        "",
        "## Performance vs parameters (Pareto)",
        "",
    ]
    for md in tables:
        png = md.with_suffix(".png")
        title = md.read_text().splitlines()[0].lstrip("# ").strip() if md.stat().st_size else md.stem
        chart = f" - [chart]({png.name})" if png.exists() else ""
        lines.append(f"- [{title}]({md.name}){chart}")
    if not tables:
        lines.append("(none yet: run `python -m harness.tools.report pareto --benchmark healthbench_hard`)")
    mine = {p.name for md in tables for p in (md, md.with_suffix(".png"))} | {"README.md"}
    others = sorted(
        p.relative_to(out.resolve()).as_posix()
        for p in _report_files(out)
        if not (p.parent == out.resolve() and p.name in mine)
        and not any(x.startswith(".") for x in p.relative_to(out.resolve()).parts)
    )
    if others:
        lines += ["", "## Other reports", ""] + [f"- [{name}]({name})" for name in others]
    index = out / "README.md"
    index.write_text("\n".join(lines) + "\n")
    return index
