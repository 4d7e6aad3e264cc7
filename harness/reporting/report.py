"""Performance-vs-parameters reports: Pareto charts and tables from published and own results.

Reads only tables: published scores from leaderboards/published.csv (0-100), own runs as a
results table (``harness.results``; scores 0-1, shown x100), parameter counts from
leaderboards/models.csv (a model without one is listed as unknown and not plotted).

Every point belongs to one comparability group (``comparability_group``): HealthBench scores move
with the grader model and its prompt, so published and own HealthBench points are grouped by grader
(GPT-4.1 with the simple-evals prompt, as in the HealthBench paper; another grader with that prompt;
a grader or prompt not stated or not official). Each group gets its own Pareto frontier and colour;
the table names each point's group. Own runs that are not comparable with the published numbers
(``harness.comparable``: not the official file in full, not the official grader profile,
self-graded, too few samples) form a group of their own: a separate, labelled layer of the chart
and a separate table, never on a frontier.
The command line is ``python -m harness.tools.report``.
"""

from __future__ import annotations

import io
import math
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from harness.errors import ArgumentError
from harness.reporting.leaderboard import (
    BENCHMARKS,
    LEADERBOARD_DIR,
    NOT_STATED,
    ModelRegistry,
    load_models,
    load_own_runs,
    load_published,
)
from harness.reporting.pareto import frontier, params_column
from harness.results import RESULT_COLUMNS, normalize

REPORTS_DIR = Path("reports")
POINT_COLUMNS = [
    "model",
    "label",
    "origin",
    "group",
    "subset",
    "params_total_b",
    "params_active_b",
    "params_b",
    "score",
    "stderr",
    "n",
    "grader",
    "grader_prompt",
    "reported_by",
    "reasoning",
    "harness",
    "source",
    "source_ref",
    "date",
    "log",
    "comparable",
    "why_not_comparable",
    "on_frontier",
]
KIND_LABEL = {"total": "total parameters", "active": "active parameters per token (MoE)"}

# Comparability groups, in the order charts and tables show them.
PAPER_GRADING = "GPT-4.1 grader, simple-evals prompt"
OTHER_GRADER = "other grader, simple-evals prompt"
UNSTATED_GRADING = "grader or prompt not stated or not simple-evals"
ANSWER_MATCHING = "accuracy as published (settings vary, see table)"
NOT_COMPARABLE = "own run, NOT comparable (see table)"
GROUPS = (PAPER_GRADING, OTHER_GRADER, UNSTATED_GRADING, ANSWER_MATCHING, NOT_COMPARABLE)
PAPER_GRADER = re.compile(r"gpt-4\.1(-\d{4}-\d{2}-\d{2})?")  # the HealthBench paper's grader, any snapshot
SIMPLE_EVALS_PROMPT = "simple-evals"


def comparability_group(benchmark: str, grader: str, grader_prompt: str, comparable: bool = True) -> str:
    """The group a point is compared within. ``grader`` may carry a provider prefix (``openai/gpt-4.1``)."""
    if not comparable:
        return NOT_COMPARABLE
    if benchmark in BENCHMARKS and not BENCHMARKS[benchmark][2]:
        return ANSWER_MATCHING
    if grader_prompt != SIMPLE_EVALS_PROMPT or grader in ("", NOT_STATED):
        return UNSTATED_GRADING
    return PAPER_GRADING if PAPER_GRADER.fullmatch(grader.split("/")[-1]) else OTHER_GRADER


def _own_label(run: dict) -> str:
    """An own run's chart label: model, harness and mode (grader profile), sample count, comparability."""
    notes = [str(run["harness"] or "own")]
    if run["grader_prompt"]:
        notes.append(f"{run['grader_prompt']} grading")
    if pd.notna(run["n"]):
        notes.append(f"n={run['n']:.0f}")
    if not run["comparable"]:
        notes.append("NOT COMPARABLE")
    return f"{run['model']} (own: {', '.join(notes)})"


def _distinct(labels: pd.Series, extra: pd.Series) -> pd.Series:
    """``labels`` where unique, else the label with ``extra`` appended."""
    repeated = labels.duplicated(keep=False)
    return labels.where(~repeated, labels + " " + extra)


def drawn_points(points: pd.DataFrame) -> pd.DataFrame:
    """The points a chart draws: every own run, and one point per published (model, parameters, score) however
    many sources report it (the first by group order; the table keeps every row). A model drawn more than once
    gets its score in the label, so no two drawn points share a label."""
    repeated = (points["origin"] == "published") & points.duplicated(["origin", "model", "params_b", "score"])
    drawn = points[~repeated].copy()
    drawn["label"] = _distinct(drawn["label"], drawn["score"].map(lambda v: f"({v:.1f})"))
    return drawn.reset_index(drop=True)


@dataclass
class ParetoReport:
    benchmark: str
    kind: str
    points: pd.DataFrame  # plotted: every row has a parameter count
    unknown: pd.DataFrame  # listed only: no parameter count
    messages: list[str] = field(default_factory=list)

    def frontiers(self) -> dict[str, list[str]]:
        """Labels of each group's frontier points, by group, smallest model first."""
        front = self.points[self.points["on_frontier"]]
        # a result several sources report is one frontier point
        return {g: list(dict.fromkeys(front.loc[front["group"] == g, "label"])) for g in GROUPS if (front["group"] == g).any()}


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
    group them by comparability and mark each group's Pareto frontier."""
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
                "label": r["model"],
                "origin": "published",
                "subset": r["subset"],
                "score": r["score"],
                "stderr": math.nan,
                "n": float(r["n"]) if r["n"] != NOT_STATED else math.nan,
                "grader": r["grader"],
                "grader_prompt": r["grader_prompt"],
                "reported_by": r["reported_by"],
                "reasoning": r["reasoning"],
                "harness": "",
                "source": r["source"],
                "source_ref": r["source_ref"],
                "date": r["date"],
                "log": "",
                "comparable": True,
                "why_not_comparable": "",
                "note": r["note"],
            }
        )
    own_rows = []
    for _, r in own[own["benchmark"] == benchmark].iterrows():
        profile = "" if pd.isna(r["grader_profile"]) else str(r["grader_profile"])
        run = {
            "model": r["model"],
            "origin": "own",
            "subset": r["subset"],
            "score": 100 * float(r["score"]),
            "stderr": 100 * float(r["stderr"]) if pd.notna(r["stderr"]) else math.nan,
            "n": float(r["n"]) if pd.notna(r["n"]) else math.nan,
            "grader": "" if pd.isna(r["grader"]) else str(r["grader"]),
            # the official grader profile is simple-evals' template and code, the published rows' "simple-evals"
            "grader_prompt": SIMPLE_EVALS_PROMPT if profile == "simple_evals" else profile,
            "reported_by": "",
            "reasoning": "",
            "harness": r["harness"],
            "source": "own run",
            "source_ref": Path(str(r["log"])).name,
            "date": r["date"],
            "log": r["log"],
            "comparable": bool(r["comparable"]),
            "why_not_comparable": r["why_not_comparable"],
            "note": "",
        }
        run["label"] = _own_label(run)
        own_rows.append(run)
    if own_rows:  # two runs alike in model, harness, mode and n: their log file names tell them apart
        labels = _distinct(pd.Series([r["label"] for r in own_rows]), pd.Series([f"[{r['source_ref']}]" for r in own_rows]))
        for run, label in zip(own_rows, labels):
            run["label"] = label
    rows += own_rows
    for row in rows:
        row["group"] = comparability_group(benchmark, row["grader"], row["grader_prompt"], row["comparable"])

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

    table = pd.DataFrame(rows, columns=[c for c in POINT_COLUMNS if c != "on_frontier"] + ["note"])
    has = table["params_b"].notna()
    points = table[has].reset_index(drop=True)
    points["on_frontier"] = False
    for group in GROUPS:  # a frontier per group; never among runs that are not comparable
        members = points["group"] == group
        if group != NOT_COMPARABLE and members.any():
            points.loc[members, "on_frontier"] = frontier(points[members], "params_b", "score")
    order = {g: i for i, g in enumerate(GROUPS)}
    points = (
        points.assign(_group=points["group"].map(order))
        .sort_values(["_group", "params_b", "score", "label"], ascending=[True, True, False, True])
        .drop(columns="_group")
        .reset_index(drop=True)
    )
    unknown = table[~has].sort_values(["score", "label"], ascending=[False, True]).reset_index(drop=True)
    return ParetoReport(benchmark, kind, points, unknown, messages)


GROUP_COLOURS = {
    PAPER_GRADING: "#1f77b4",
    OTHER_GRADER: "#9467bd",
    UNSTATED_GRADING: "#ff7f0e",
    ANSWER_MATCHING: "#1f77b4",
    NOT_COMPARABLE: "#7f7f7f",
}
LABEL_COLOURS = {  # darker shades of the group colours, readable as text: a label says its point's group
    PAPER_GRADING: "#17476e",
    OTHER_GRADER: "#5b3a8c",
    UNSTATED_GRADING: "#9a4a00",
    ANSWER_MATCHING: "#17476e",
    NOT_COMPARABLE: "#505050",
}
FIGURE_SIZE, DPI = (14, 8), 150  # inches, dots per inch: 2100 x 1200 pixels
AXES_RECT = (0.06, 0.08, 0.62, 0.85)  # left, bottom, width, height (figure fractions); the key sits to the right
PANEL_LEFT = 0.70
POINT_SIZE, STAR_SIZE, RING_SIZE = 40, 150, 170  # marker areas in points^2
LABEL_FONT = 7.5
LABEL_GID, NUMBER_GID = "point-label", "point-number"  # how the layout test finds the labels
# label offsets from the point, in typographic points: 8 directions at growing distances
OFFSETS = [
    (dx * r, dy * r * 0.8)
    for r in (7, 12, 20, 32, 46)
    for dx, dy in ((1, 1), (1, -1), (-1, 1), (-1, -1), (1, 0), (-1, 0), (0, 1), (0, -1))
]


def _box_hits_segment(box, segment, pad: float) -> bool:
    """Whether an axis-aligned pixel box comes within ``pad`` of an axis-aligned segment ((x0, y0), (x1, y1))."""
    (x0, y0), (x1, y1) = segment
    return min(x0, x1) - pad < box.x1 and max(x0, x1) + pad > box.x0 and min(y0, y1) - pad < box.y1 and max(y0, y1) + pad > box.y0


def _frontier_segments(front: pd.DataFrame, x_end: float) -> list[tuple[tuple[float, float], tuple[float, float]]]:
    """A group's frontier as data-space segments: steps (right, then up) and a dotted run to ``x_end``."""
    xs, ys = list(front["params_b"]), list(front["score"])
    segments = []
    for i in range(len(xs) - 1):
        segments += [((xs[i], ys[i]), (xs[i + 1], ys[i])), ((xs[i + 1], ys[i]), (xs[i + 1], ys[i + 1]))]
    if xs:
        segments.append(((xs[-1], ys[-1]), (x_end, ys[-1])))
    return segments


def _place_labels(ax, drawn: pd.DataFrame, segments: list) -> list[str]:
    """Label every drawn point where the label touches no other label, point or line and stays inside the axes;
    a point whose name fits nowhere gets a number (listed in the key), else none. Returns the key lines."""
    renderer = ax.figure.canvas.get_renderer()
    scale = ax.figure.dpi / 72  # pixels per point
    centres = ax.transData.transform(drawn[["params_b", "score"]].to_numpy(dtype=float)) if len(drawn) else []
    sizes = [RING_SIZE if f else (STAR_SIZE if o == "own" else POINT_SIZE) for f, o in zip(drawn["on_frontier"], drawn["origin"])]
    markers = [
        (x - math.sqrt(a) / 2 * scale, y - math.sqrt(a) / 2 * scale, x + math.sqrt(a) / 2 * scale, y + math.sqrt(a) / 2 * scale)
        for (x, y), a in zip(centres, sizes)
    ]
    pixel_segments = [tuple(map(tuple, ax.transData.transform(list(seg)))) for seg in segments]
    inside = ax.bbox.padded(-2)
    placed: list = []

    def fits(box) -> bool:
        return (
            inside.x0 <= box.x0
            and box.x1 <= inside.x1
            and inside.y0 <= box.y0
            and box.y1 <= inside.y1
            and not any(box.x0 < m[2] + 1 and box.x1 > m[0] - 1 and box.y0 < m[3] + 1 and box.y1 > m[1] - 1 for m in markers)
            and not any(box.x0 < o.x1 + 2 and box.x1 > o.x0 - 2 and box.y0 < o.y1 + 2 and box.y1 > o.y0 - 2 for o in placed)
            and not any(_box_hits_segment(box, seg, 1.5) for seg in pixel_segments)
        )

    def attempt(p, text: str, gid: str) -> bool:
        for dx, dy in OFFSETS:
            label = ax.annotate(
                text,
                (p.params_b, p.score),
                xytext=(dx, dy),
                textcoords="offset points",
                ha="left" if dx > 0 else "right" if dx < 0 else "center",
                va="bottom" if dy > 0 else "top" if dy < 0 else "center",
                fontsize=LABEL_FONT,
                color=LABEL_COLOURS[p.group],
                gid=gid,
                annotation_clip=False,
            )
            box = label.get_window_extent(renderer)
            if fits(box):
                placed.append(box)
                return True
            label.remove()
        return False

    key: list[str] = []
    # own runs first, then frontier points, then the rest: the most important labels get the best places
    order = sorted(range(len(drawn)), key=lambda i: (drawn["origin"].iat[i] != "own", not drawn["on_frontier"].iat[i], i))
    rows = list(drawn.itertuples())
    for i in order:
        if attempt(rows[i], str(rows[i].label), LABEL_GID):
            continue
        number = str(len([k for k in key if not k.startswith("(")]) + 1)
        # the key names the model and score; an own run keeps its whole label (harness, mode, comparability)
        shown = str(rows[i].label) if rows[i].origin == "own" else str(rows[i].model)
        name = f"{shown} {rows[i].score:.1f}"
        key.append(f"{number}: {name}" if attempt(rows[i], number, NUMBER_GID) else f"(unlabelled, crowded) {name}")
    return key


def figure(report: ParetoReport):
    """The chart as a matplotlib Figure: log x axis, every point labelled, a frontier per comparability group,
    own runs as stars, runs not comparable as hollow grey stars; key and notes to the right of the axes."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    drawn = drawn_points(report.points)
    fig = Figure(figsize=FIGURE_SIZE, dpi=DPI)
    canvas = FigureCanvasAgg(fig)  # attaches itself: the renderer the label layout measures with
    ax = fig.add_axes(AXES_RECT)
    ax.set_xscale("log")
    segments: list = []
    if len(drawn):
        lo, hi = drawn["params_b"].min(), drawn["params_b"].max()
        ax.set_xlim(lo / 2.5, hi * 3)
        err = drawn["stderr"].fillna(0)
        smin, smax = (drawn["score"] - err).min(), (drawn["score"] + err).max()
        pad = max(4.0, (smax - smin) * 0.1)
        ax.set_ylim(smin - pad, min(100 + pad / 2, smax + pad))  # below the lowest point: a 0 score is not the axis
    handles = []
    for group in GROUPS:
        members = drawn[drawn["group"] == group]
        if not len(members):
            continue
        colour = GROUP_COLOURS[group]
        front = report.points[(report.points["group"] == group) & report.points["on_frontier"]].sort_values("params_b")
        if len(front):
            group_segments = _frontier_segments(front, hi * 3)
            segments += group_segments
            style = "-" if group in (PAPER_GRADING, ANSWER_MATCHING) else "--"
            for (x0, y0), (x1, y1) in group_segments[:-1]:
                ax.plot([x0, x1], [y0, y1], color=colour, lw=1.5, ls=style, alpha=0.8, zorder=1)
            (x0, y0), (x1, y1) = group_segments[-1]
            ax.plot([x0, x1], [y0, y1], color=colour, lw=1.2, ls=":", zorder=1)
            ringed = members[members["on_frontier"]]
            ax.scatter(ringed["params_b"], ringed["score"], s=RING_SIZE, facecolors="none", edgecolors=colour, lw=1.6, zorder=2)
        published = members[members["origin"] == "published"]
        own = members[members["origin"] == "own"]
        ax.scatter(published["params_b"], published["score"], s=POINT_SIZE, color=colour, zorder=3)
        if len(own):
            with_err = own[own["stderr"].notna()]
            ax.errorbar(with_err["params_b"], with_err["score"], yerr=with_err["stderr"], fmt="none", ecolor=colour, zorder=3)
            segments += [((x, y - e), (x, y + e)) for x, y, e in zip(with_err["params_b"], with_err["score"], with_err["stderr"])]
            hollow = group == NOT_COMPARABLE
            ax.scatter(
                own["params_b"],
                own["score"],
                s=STAR_SIZE,
                marker="*",
                facecolors="none" if hollow else colour,
                edgecolors=colour if hollow else "black",
                lw=1.0 if hollow else 0.6,
                zorder=4,
            )
        marker = "*" if group == NOT_COMPARABLE else "o"
        handles.append(
            Line2D(
                [],
                [],
                color=colour,
                marker=marker,
                ls="-" if len(front) else "",
                mfc="none" if marker == "*" else colour,
                ms=9 if marker == "*" else 6,
                label=f"{group} ({len(members)})",
            )
        )
    if (drawn["origin"] == "own").any():
        handles.append(
            Line2D([], [], color="black", marker="*", ls="", mfc="white", ms=10, label="star: own run (harness, mode)")
        )
    if drawn["on_frontier"].any():
        handles.append(
            Line2D([], [], color="#555555", marker="o", mfc="none", ms=9, ls="", label="ringed: on its group's Pareto frontier")
        )
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}" if v >= 0 else ""))
    label = KIND_LABEL[report.kind]
    ax.set_xlabel(f"{label[0].upper()}{label[1:]}, billions (log scale)")
    ax.set_ylabel(f"{report.benchmark} score (0-100)")
    ax.set_title(f"{report.benchmark}: score vs {label}")
    ax.grid(True, which="both", alpha=0.25)
    if not len(drawn):
        ax.text(0.5, 0.5, "no model with a known parameter count", ha="center", transform=ax.transAxes)
    key = _place_labels(ax, drawn, segments)
    renderer = canvas.get_renderer()
    top = AXES_RECT[1] + AXES_RECT[3]
    if handles:
        legend = fig.legend(
            handles=handles,
            loc="upper left",
            bbox_to_anchor=(PANEL_LEFT, top),
            fontsize=8,
            title="comparability group (points)",
            title_fontsize=8,
            frameon=False,
            alignment="left",
        )
        top = fig.transFigure.inverted().transform(legend.get_window_extent(renderer))[0][1] - 0.02
    notes = []
    if len(report.unknown):
        notes.append(
            f"{len(report.unknown)} results of models without a public parameter count are listed in the table, not plotted."
        )
    if len(report.points) > len(drawn):
        notes.append(
            f"{len(report.points) - len(drawn)} repeated result(s) (same model and score, another source) drawn once, in the first group listed."
        )
    if key:
        notes.append("Numbered points:\n" + "\n".join(key))
    if notes:
        fig.text(PANEL_LEFT, top, "\n".join(notes), fontsize=7, va="top", ha="left", color="#333333", wrap=True)
    return fig


def plot(report: ParetoReport, path: str | Path) -> Path:
    """Write the chart as PNG; the file is rewritten only when its bytes change (no dates or versions inside)."""
    buffer = io.BytesIO()
    figure(report).savefig(buffer, format="png", metadata={"Software": None})
    return _write_if_changed(Path(path), buffer.getvalue())


def _write_if_changed(path: Path, content: bytes) -> Path:
    if not (path.is_file() and path.read_bytes() == content):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
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


def _conditions(r) -> tuple:
    """The table cells saying how a score was obtained and where it was read."""
    return (r.grader, r.grader_prompt, r.reported_by, r.reasoning, f"{r.source}, {r.source_ref}", r.note)


def markdown(report: ParetoReport, image_name: str, command: str) -> str:
    """The table that goes with the chart: every point with its comparability group, then the runs kept apart
    and the models without a parameter count."""
    groups = [g for g in GROUPS if g != NOT_COMPARABLE and (report.points["group"] == g).any()]
    lines = [
        f"# {report.benchmark}: performance vs parameters ({report.kind})",
        "",
        f"Generated by `{command}`. Scores on a 0-100 scale; parameters in billions "
        f"(x axis: {KIND_LABEL[report.kind]}). Points are compared only within their comparability group "
        "(HealthBench: the grader model and prompt as stated by the source; see `leaderboards/README.md`); "
        "each group has its own frontier: no other point of the group has fewer-or-equal parameters "
        "and a higher-or-equal score.",
        "",
        f"![{report.benchmark} Pareto chart]({image_name})",
        "",
        "Groups: " + "; ".join(f"{g} ({int((report.points['group'] == g).sum())} points)" for g in groups) + ".",
        "",
        "| model | group | origin | params total (B) | params active (B) | score | stderr | n | Pareto (in group) "
        "| grader | grader prompt | reported by | reasoning | source | note |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    comparable = report.points["group"] != NOT_COMPARABLE
    for r in report.points[comparable].itertuples():
        lines.append(
            _row(
                r.label,
                r.group,
                f"{r.origin} ({r.harness!s})" if r.harness else r.origin,
                _fmt(r.params_total_b),
                _fmt(r.params_active_b),
                f"{r.score:.1f}",
                _fmt(r.stderr, ".1f", ""),
                _fmt(r.n, ".0f", "not stated"),
                "yes" if r.on_frontier else "",
                *_conditions(r),
            )
        )
    apart = pd.concat([report.points[~comparable], report.unknown[report.unknown["group"] == NOT_COMPARABLE]])
    if len(apart):
        lines += [
            "",
            "## Own runs NOT comparable with the published scores",
            "",
            "Kept apart (hollow grey stars on the chart, never on a frontier); the reasons come from",
            "`harness/comparable.py`.",
            "",
            "| run | subset | score | stderr | n | why not comparable | grader | log |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for r in apart.itertuples():
            lines.append(
                _row(
                    r.label,
                    r.subset,
                    f"{r.score:.1f}",
                    _fmt(r.stderr, ".1f", ""),
                    _fmt(r.n, ".0f", ""),
                    r.why_not_comparable,
                    r.grader,
                    r.source_ref,
                )
            )
    unknown = report.unknown[report.unknown["group"] != NOT_COMPARABLE]
    if len(unknown):
        lines += [
            "",
            "## Parameter count unknown (listed, not plotted)",
            "",
            "| model | group | origin | score | n | grader | grader prompt | reported by | reasoning | source | note |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in unknown.itertuples():
            lines.append(
                _row(
                    r.label,
                    r.group,
                    r.origin,
                    f"{r.score:.1f}",
                    _fmt(r.n, ".0f", "not stated"),
                    *_conditions(r),
                )
            )
    if report.messages:
        lines += ["", "## Notes", ""] + [f"- {m}" for m in report.messages]
    lines += [
        "",
        "Add a result in `leaderboards/published.csv`, a parameter count in `leaderboards/models.csv`.",
        "",
    ]
    return "\n".join(lines)


def write_pareto(report: ParetoReport, out: str | Path = REPORTS_DIR, command: str = "") -> tuple[Path, Path]:
    """Chart and table; each file is rewritten only when its content changes."""
    out = Path(out)
    stem = f"{report.benchmark}_pareto" + ("" if report.kind == "total" else f"_{report.kind}")
    png = plot(report, out / f"{stem}.png")
    command = command or f"python -m harness.tools.report pareto --benchmark {report.benchmark} --params {report.kind}"
    md = _write_if_changed(out / f"{stem}.md", markdown(report, png.name, command).encode())
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


SCRIPT_SUFFIXES = (".py", ".sh")  # the commands that write reports live beside them; the index lists what they wrote


def write_index(out: str | Path = REPORTS_DIR) -> Path:
    """reports/README.md: a link to every Pareto chart and table, then any other report files (not scripts)."""
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
        and p.suffix not in SCRIPT_SUFFIXES
    )
    if others:
        lines += ["", "## Other reports", ""] + [f"- [{name}]({name})" for name in others]
    return _write_if_changed(out / "README.md", ("\n".join(lines) + "\n").encode())
