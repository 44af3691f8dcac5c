"""Figures for the report, drawn with matplotlib's Agg backend and returned as base64 PNG (no files).

Per parameter: one spaghetti panel per arm (each subject's values over the scheduled visits), the mean
with its 95% CI by arm, and the mean change from baseline with its 95% CI. For AEs: subjects (%) with each
reported term, by arm. Colours are the Okabe-Ito palette (safe for colour-blind readers).
"""

from __future__ import annotations

import base64
import io
import multiprocessing
import os
from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor

import matplotlib

matplotlib.use("Agg")

from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from adapter.endpoints.adverse import AeTableRow
from adapter.endpoints.dataset import Analysis, unit_label
from adapter.endpoints.summary import SummaryRow

# A fixed title position spares matplotlib a layout search on every draw (the figures render ~25% faster).
_RC = {"axes.titley": 1.02}
PALETTE = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9"]
MAX_TERMS = 15


def arm_colours(analysis: Analysis) -> dict[str, str]:
    return {a.id: PALETTE[i % len(PALETTE)] for i, a in enumerate(analysis.study.arms)}


def _png(fig: Figure) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _visit_axis(ax, analysis: Analysis, visits: Sequence) -> None:  # type: ignore[no-untyped-def]
    ax.set_xticks([v.target_day for v in visits])
    ax.set_xticklabels([f"{v.id}\nday {v.target_day}" for v in visits], fontsize=8)
    ax.yaxis.set_major_locator(MaxNLocator(nbins=5))
    ax.tick_params(labelsize=8)
    ax.grid(axis="y", color="#dddddd", linewidth=0.6)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


@matplotlib.rc_context(_RC)
def parameter_figure(analysis: Analysis, summary: Sequence[SummaryRow], param_id: str) -> str:
    """Spaghetti by arm (top row), mean +/- 95% CI and change +/- 95% CI by arm (bottom row)."""
    study = analysis.study
    param = study.parameter(param_id)
    assert param is not None
    unit = unit_label(param)
    ylabel = f"{param.id} ({unit})" if unit else param.id
    visits = list(study.visits)
    day_of = {v.id: v.target_day for v in visits}
    colours = arm_colours(analysis)
    arms = list(study.arms)
    ncols = max(2, len(arms))
    fig = Figure(figsize=(4.2 * ncols, 7.4))
    grid = fig.add_gridspec(
        2, ncols * 2, hspace=0.65, wspace=0.9, left=0.08, right=0.98, top=0.9, bottom=0.09
    )
    lines: dict[str, dict[str, list[tuple[int, float]]]] = defaultdict(lambda: defaultdict(list))
    for row in analysis.scheduled(param_id):
        if row.value is not None:
            lines[row.arm][row.subject_id].append((day_of[row.visit], row.value))
    top_axes = []
    for i, arm in enumerate(arms):
        ax = fig.add_subplot(grid[0, 2 * i : 2 * i + 2], sharey=top_axes[0] if top_axes else None)
        top_axes.append(ax)
        subjects = lines.get(arm.id, {})
        segments = [sorted(points) for points in subjects.values()]
        alpha = 0.55 if len(segments) <= 60 else max(0.06, 30 / len(segments))
        ax.add_collection(LineCollection(segments, colors=colours[arm.id], linewidths=0.9, alpha=alpha))
        xs = [x for seg in segments for x, _ in seg]
        ys = [y for seg in segments for _, y in seg]
        if len(segments) <= 200 and xs:
            ax.scatter(xs, ys, s=7, color=colours[arm.id], alpha=min(1.0, alpha + 0.2), linewidths=0)
        ax.autoscale_view()
        ax.set_xlim(min(day_of.values()) - 12, max(day_of.values()) + 12)
        ax.set_title(f"{arm.name} (n = {len(segments)} with data)", fontsize=10)
        ax.set_ylabel(ylabel, fontsize=9)
        _visit_axis(ax, analysis, visits)
    stats = {(r.arm, r.visit, r.variable): r for r in summary if r.param == param_id}
    half = ncols
    mean_ax = fig.add_subplot(grid[1, 0:half])
    change_ax = fig.add_subplot(grid[1, half : 2 * half])
    offsets = {a.id: (i - (len(arms) - 1) / 2) * 4 for i, a in enumerate(arms)}
    for ax, variable, title in (
        (mean_ax, "value", "Mean with 95% CI"),
        (change_ax, "change", "Mean change from baseline with 95% CI"),
    ):
        for arm in arms:
            pts = [
                (day_of[v.id] + offsets[arm.id], s)
                for v in visits
                if (s := stats.get((arm.id, v.id, variable))) is not None and s.mean is not None
            ]
            if not pts:
                continue
            x = [p[0] for p in pts]
            y = [p[1].mean for p in pts]
            low = [p[1].mean - p[1].ci_low if p[1].ci_low is not None else 0 for p in pts]
            high = [p[1].ci_high - p[1].mean if p[1].ci_high is not None else 0 for p in pts]
            ax.errorbar(
                x,
                y,
                yerr=[low, high],
                color=colours[arm.id],
                marker="o",
                markersize=4,
                capsize=3,
                linewidth=1.4,
                label=arm.name,
            )
        if variable == "change":
            ax.axhline(0, color="#888888", linewidth=0.8, linestyle="--")
            ax.set_ylabel(f"change ({unit})" if unit else "change", fontsize=9)
        else:
            ax.set_ylabel(ylabel, fontsize=9)
        ax.set_title(title, fontsize=10)
        ax.set_xlim(min(day_of.values()) - 12, max(day_of.values()) + 12)
        _visit_axis(ax, analysis, visits)
    handles, labels = mean_ax.get_legend_handles_labels()
    if handles:  # one legend for both bottom panels, between the rows, never over the data
        fig.legend(
            handles,
            labels,
            fontsize=9,
            frameon=False,
            loc="center",
            ncol=len(labels),
            bbox_to_anchor=(0.5, 0.49),
        )
    fig.suptitle(f"{param.name}", fontsize=12, fontweight="bold", y=0.99)
    return _png(fig)


_JOB: tuple[Analysis, Sequence[SummaryRow]] | None = None


def _parameter_job(param_id: str) -> str:
    assert _JOB is not None
    return parameter_figure(_JOB[0], _JOB[1], param_id)


def parameter_figures(
    analysis: Analysis, summary: Sequence[SummaryRow], param_ids: Sequence[str], workers: int | None = None
) -> dict[str, str]:
    """Every parameter's figure, drawn side by side in forked worker processes when the machine has
    several cores: rendering is most of the report's time and holds the GIL. Workers inherit the analysis
    by fork (nothing is pickled but the PNGs); where fork is not available they are drawn one by one."""
    global _JOB
    workers = min(workers or os.cpu_count() or 1, len(param_ids))
    if workers < 2 or "fork" not in multiprocessing.get_all_start_methods():
        return {p: parameter_figure(analysis, summary, p) for p in param_ids}
    _JOB = (analysis, summary)
    try:
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
            return dict(zip(param_ids, pool.map(_parameter_job, param_ids), strict=True))
    finally:
        _JOB = None


@matplotlib.rc_context(_RC)
def ae_figure(analysis: Analysis, rows: Sequence[AeTableRow]) -> str | None:
    """Horizontal bars: % of subjects with each treatment-emergent term, by arm (most frequent first)."""
    terms = []
    for r in rows:
        if r.category.startswith("term:") and r.category not in terms:
            terms.append(r.category)
    by = {(r.arm, r.category): r for r in rows}
    terms = [t for t in terms if any(by[(a.id, t)].subjects for a in analysis.study.arms)][:MAX_TERMS]
    if not terms:
        return None
    arms = list(analysis.study.arms)
    colours = arm_colours(analysis)
    height = max(2.5, 0.42 * len(terms) * max(1, len(arms) / 2) + 1.2)
    fig = Figure(figsize=(9, height))
    fig.subplots_adjust(left=0.3, right=0.97, top=1 - 0.6 / height, bottom=0.7 / height)
    ax = fig.add_subplot(1, 1, 1)
    bar = 0.8 / len(arms)
    for i, arm in enumerate(arms):
        ys = [k + (i - (len(arms) - 1) / 2) * bar for k in range(len(terms))]
        pct = [by[(arm.id, t)].subjects_pct or 0 for t in terms]
        ax.barh(ys, pct, height=bar * 0.95, color=colours[arm.id], label=arm.name)
        for y, p, t in zip(ys, pct, terms, strict=True):
            n = by[(arm.id, t)].subjects
            if n:
                ax.text(p + 0.5, y, f"{n}", va="center", fontsize=7, color="#333333")
    ax.set_yticks(range(len(terms)))
    ax.set_yticklabels([t.split(":", 1)[1] for t in terms], fontsize=9)
    ax.invert_yaxis()
    ax.set_xlabel("subjects with the event (% of the arm's treated subjects)", fontsize=9)
    ax.set_title("Treatment-emergent adverse events by reported term", fontsize=11)
    ax.legend(fontsize=8, frameon=False, loc="lower right")
    ax.grid(axis="x", color="#dddddd", linewidth=0.6)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return _png(fig)
