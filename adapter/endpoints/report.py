"""`report.html`: one self-contained page (CSS and images inline) a clinician can read and print.

Sections: study header and methods; subjects and Day 1; visit compliance and missingness; per parameter
the summary table, the comparison of arms and the figures; medications; adverse events; data issues.
"""

from __future__ import annotations

import html
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from adapter.endpoints.adverse import AeListingRow, AeTableRow
from adapter.endpoints.comparisons import ComparisonRow
from adapter.endpoints.dataset import NOT_DUE, OUT_OF_WINDOW, UNSCHEDULED, Analysis, unit_label
from adapter.endpoints.homa import INSULIN_TREATED
from adapter.endpoints.output import fmt_p
from adapter.endpoints.plots import ae_figure, arm_colours, parameter_figures
from adapter.endpoints.summary import SummaryRow

CSS = """
body{font-family:"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:#1d2430;margin:0;
 background:#f4f6f9;
 font-size:15px;line-height:1.45}
main{max-width:1180px;margin:0 auto;padding:24px 28px 60px;background:#fff}
h1{font-size:24px;margin:0 0 4px}
h2{font-size:19px;margin:34px 0 10px;padding-bottom:4px;border-bottom:2px solid #dfe4ea}
h3{font-size:16px;margin:24px 0 6px} .sub{color:#4a5566;margin:0 0 14px}
table{border-collapse:collapse;margin:6px 0 14px;font-size:13.5px}
th,td{border:1px solid #d5dbe3;padding:4px 8px;text-align:right;vertical-align:top}
th{background:#eef2f7;font-weight:600} td.l,th.l{text-align:left}
tr.group td{background:#f7f9fb;font-weight:600;text-align:left}
.meta td{text-align:left;border:none;padding:2px 14px 2px 0}
.meta td:first-child{color:#4a5566;white-space:nowrap}
.methods{background:#f7f9fb;border-left:4px solid #0072B2;padding:8px 18px;font-size:14px}
.methods li{margin:3px 0} .note{color:#4a5566;font-size:13px}
.chip{display:inline-block;width:11px;height:11px;border-radius:2px;margin-right:5px;vertical-align:-1px}
img{max-width:100%;height:auto;display:block;margin:6px 0 10px}
.param{page-break-inside:avoid} .warn{color:#a63d00}
td.c0{background:#fde2d9}td.c1{background:#fdf0d5}td.c2{background:#edf7e6}td.c3{background:#dff1f7}
nav a{margin-right:12px;font-size:13.5px}
"""


@dataclass
class ReportInputs:
    analysis: Analysis
    summary: Sequence[SummaryRow]
    comparisons: Sequence[ComparisonRow]
    ae_rows: Sequence[AeTableRow]
    ae_listing: Sequence[AeListingRow]
    source: str
    settings: dict[str, Any]
    conversions: Sequence[dict[str, Any]]
    generated: datetime


def esc(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def num(value: float | None, decimals: int) -> str:
    """A number for reading: fixed decimals, a true minus sign, never "-0.00"."""
    if value is None:
        return ""
    text = f"{value:.{decimals}f}"
    if text.startswith("-") and not text.strip("-0."):
        text = text[1:]
    return text.replace("-", "\u2212")


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], left: int = 1, raw: bool = False) -> str:
    head = "".join(f'<th class="{"l" if i < left else ""}">{esc(h)}</th>' for i, h in enumerate(header))
    body = []
    for row in rows:
        cells = "".join(
            f'<td class="{"l" if i < left else ""}">{c if raw else esc(c)}</td>' for i, c in enumerate(row)
        )
        body.append(f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


class _Report:
    def __init__(self, inputs: ReportInputs) -> None:
        self.i = inputs
        self.a = inputs.analysis
        self.study = self.a.study
        self.cfg = self.a.config
        self.colours = arm_colours(self.a)
        self.arms = list(self.study.arms)
        self.figures: dict[str, str] = {}

    def decimals(self, param: str) -> int:
        return self.cfg.output.display_decimals.get(param, 2)

    def arm_label(self, arm_id: str) -> str:
        arm = self.study.arm(arm_id)
        name = arm.name if arm else arm_id
        return f'<span class="chip" style="background:{self.colours.get(arm_id, "#999")}"></span>{esc(name)}'

    # -- sections ------------------------------------------------------------------------------------
    def header(self) -> str:
        info = self.study.study
        ids = ", ".join(f"{esc(i.value)}" for i in info.identifiers)
        arms = "; ".join(
            f"{esc(a.name)} ({esc(a.id)}, Day 1 = {esc(a.day1.replace('_on', ''))} date)" for a in self.arms
        )
        rows = [
            ("Study", f"{esc(info.title)}"),
            ("Identifiers", ids),
            (
                "Design",
                f"phase {esc(info.phase.replace('phase-', '').replace('-', '/'))}, purpose "
                f"{esc(info.primary_purpose)}",
            ),
            ("Arms", arms),
            ("Site", esc(self.study.site.name)),
            ("Data source", esc(self.i.source)),
            ("Data cut-off", esc(self.a.cutoff or "none (no dated data)")),
            ("Generated", esc(self.i.generated.strftime("%Y-%m-%d %H:%M %Z").strip())),
        ]
        meta = "".join(f"<tr><td>{k}</td><td>{v}</td></tr>" for k, v in rows)
        nav = " ".join(
            f'<a href="#{k}">{v}</a>'
            for k, v in (
                ("methods", "Methods"),
                ("subjects", "Subjects"),
                ("compliance", "Visit compliance"),
                ("results", "Results"),
                ("medications", "Medications"),
                ("ae", "Adverse events"),
                ("issues", "Data issues"),
            )
        )
        return (
            f"<h1>Endpoint report</h1><p class='sub'>{esc(info.title)}</p>"
            f"<table class='meta'>{meta}</table><nav>{nav}</nav>"
        )

    def methods(self) -> str:
        visits = ", ".join(
            f"{esc(v.id)} day {v.target_day} (window {v.window[0]}..{v.window[1]})" for v in self.study.visits
        )
        conv_rows = []
        for c in self.i.conversions:
            formula = "value" + (f" \u00d7 {c['multiply']:g}" if c["multiply"] != 1 else "")
            formula += (f" \u00f7 {c['divide']:g}" if c["divide"] != 1 else "") + (
                f" + {c['add']:g}" if c["add"] else ""
            )
            conv_rows.append(
                [
                    esc(c["param"]),
                    esc(c["from"]),
                    esc(c["to"]),
                    esc(formula if formula != "value" else "same quantity (\u00d7 1)"),
                ]
            )
        conv = _table(
            ["Parameter", "Reported in", "Analysed in", "Standard value ="], conv_rows, left=4, raw=True
        )
        censored = (
            "their limit is used as the value in every statistic (substitution by the detection limit)"
            if self.cfg.censored_values == "limit"
            else "they are left out of every statistic (counted as missing)"
        )
        qm = self.cfg.statistics.quantile_method
        qdesc = "Hyndman & Fan type 7, the default of R and of Excel PERCENTILE.INC" if qm == "linear" else qm
        conf = round(self.cfg.statistics.confidence * 100)
        items = [
            "<b>Study day</b> (CDISC): Day 1 is the infusion date "
            "(cell therapy) or the enrollment date (control); "
            "the day before Day 1 is Day \u22121, there is no "
            "Day 0. Lab dates are the local collection dates "
            f"in {esc(self.study.timezone)}.",
            "<b>Visits and windows</b> (study days, inclusive): "
            f"{visits}. In a window the value closest to the "
            "target day is analysed; on a tie the later one. Values outside every window are kept as "
            "UNSCHEDULED rows. Missing visits are reported and never imputed.",
            "<b>Baseline</b> = the value chosen for the "
            f"{esc(self.cfg.baseline_visit)} visit (the last one on or "
            "before Day 1). Change = value \u2212 baseline; % change = 100 \u00d7 change / baseline.",
            "<b>Units</b> harmonised to each parameter's standard unit (table below). The insulin factor is "
            f"{self.i.settings.get('insulin_pmol_per_uiu', 6.0):g} "
            "pmol/L per \u00b5IU/mL. Original values and "
            "units are kept in endpoints.csv and sdtm/lb.csv.",
            "<b>HOMA1</b> from fasting glucose (mmol/L) and fasting insulin (\u00b5IU/mL) of the same day: "
            "HOMA-IR = G \u00d7 I / 22.5; HOMA-%B = 20 \u00d7 I / "
            "(G \u2212 3.5), undefined when G \u2264 3.5 mmol/L. "
            "Values from subjects on insulin therapy that day are flagged <i>insulin-treated</i> (exogenous "
            "insulin invalidates HOMA1) but kept in the statistics.",
            "<b>Insulin dose</b> (INSDOSE, IU/d) = sum of dose \u00d7 times per day over the insulin "
            "MedicationStatements active on the visit's target "
            "date (Day 1 for baseline); 0 for subjects on no "
            "insulin. INSDOSEKG divides by the latest body weight on or before that date.",
            f"<b>Results reported with a comparator</b> (e.g. &lt;0.1): flagged; {censored}.",
            "<b>Lab statuses</b> analysed: "
            + esc(", ".join(self.cfg.observation_statuses))
            + ". Preliminary results are not analysed (a final result replaces them); cancelled and "
            "entered-in-error results never are.",
            "<b>Descriptive statistics</b>: n, missing (subjects "
            "of the arm without a value), mean, SD (n\u22121), "
            f"median, Q1, Q3 (numpy quantile method \u201c{esc(qm)}\u201d: {esc(qdesc)}), min, max; "
            f"{conf}% CI of the mean from the t distribution.",
            f"<b>Comparison of arms</b> at each post-baseline visit: ANCOVA of the change with baseline as "
            f"covariate (least squares; estimate = arm \u2212 {esc(self.cfg.statistics.reference_arm)}, "
            f"{conf}% CI and p from the t distribution), and "
            "Welch's t-test of the change. Allocation was not "
            "randomised: differences are baseline-adjusted, not randomised treatment effects.",
            "<b>Adverse events</b>: tables count treatment-emergent "
            "events (onset on or after Day 1) among the "
            "arm's treated subjects; each subject once per row, at the worst severity under severity; "
            "related = WHO-UMC " + esc(", ".join(self.cfg.adverse_events.related)) + ".",
            f"<b>Rounding</b>: CSV files keep {self.cfg.output.csv_decimals} "
            "decimals (p-values 4 significant "
            "digits); this page shows each parameter with its display decimals (statistics one more). "
            "Computations use full precision.",
        ]
        return (
            "<h2 id='methods'>Methods</h2><div class='methods'><ul>"
            + "".join(f"<li>{x}</li>" for x in items)
            + f"</ul><p><b>Unit conversions</b></p>{conv}</div>"
        )

    def subjects(self) -> str:
        rows = []
        for arm in self.arms:
            members = [s for s in self.a.subjects if s.arm == arm.id]
            with_day1 = sum(1 for s in members if s.day1)
            rows.append(
                [
                    self.arm_label(arm.id),
                    esc(arm.planned_subjects or ""),
                    str(len(members)),
                    str(with_day1),
                    str(len(members) - with_day1),
                ]
            )
        table = _table(["Arm", "Planned", "Enrolled", "With Day 1", "Without Day 1"], rows, raw=True)
        missing = [s for s in self.a.subjects if s.day1 is None]
        extra = ""
        if missing:
            items = "".join(
                f"<li>{esc(s.subject_id)} ({esc(s.arm)}): {esc(s.day1_problem)}</li>" for s in missing
            )
            extra = (
                f"<p class='warn'>{len(missing)} subject(s) have "
                "no Day 1, so no study days: their values are "
                f"listed as UNSCHEDULED and every visit is missing.</p><ul>{items}</ul>"
            )
        return f"<h2 id='subjects'>Subjects</h2>{table}{extra}"

    def compliance(self) -> str:
        visits = list(self.study.visits)
        counts: dict[tuple[str, str, str], list[int]] = defaultdict(lambda: [0, 0, 0])
        out_of_window: Counter[tuple[str, str]] = Counter()
        for r in self.a.rows:
            if r.visit == UNSCHEDULED:
                if OUT_OF_WINDOW in r.flags:
                    out_of_window[(r.param, r.arm)] += 1
                continue
            cell = counts[(r.param, r.arm, r.visit)]
            cell[1] += 1
            if r.value is not None:
                cell[0] += 1
            if NOT_DUE in r.flags:
                cell[2] += 1
        rows = []
        for p in self.study.parameters:
            row = [esc(p.id)]
            for a in self.arms:
                for v in visits:
                    n, total, not_due = counts[(p.id, a.id, v.id)]
                    share = n / total if total else 0
                    css = "c3" if share >= 0.9 else "c2" if share >= 0.75 else "c1" if share >= 0.5 else "c0"
                    due = f" <span class='note'>({not_due} not due)</span>" if not_due else ""
                    row.append(f"<td class='{css}'>{n}/{total}{due}</td>")
            rows.append(row)
        head = "<th class='l' rowspan='2'>Parameter</th>" + "".join(
            f"<th colspan='{len(visits)}' style='text-align:center'>{self.arm_label(a.id)}</th>"
            for a in self.arms
        )
        head += "</tr><tr>" + "".join(f"<th>{esc(v.id)}</th>" for _a in self.arms for v in visits)
        body = "".join(f"<tr><td class='l'>{r[0]}</td>{''.join(r[1:])}</tr>" for r in rows)
        oow = [
            [esc(p.id)] + [str(out_of_window[(p.id, a.id)]) for a in self.arms]
            for p in self.study.parameters
            if any(out_of_window[(p.id, a.id)] for a in self.arms)
        ]
        oow_html = (
            "<h3>Values outside every window (UNSCHEDULED rows)</h3>"
            + _table(["Parameter"] + [a.id for a in self.arms], oow, raw=True)
            if oow
            else "<p class='note'>No value fell outside the visit windows.</p>"
        )
        return (
            "<h2 id='compliance'>Visit compliance and missingness</h2>"
            "<p class='note'>Subjects with a value / subjects in "
            "the arm. Colours: blue \u2265 90%, green \u2265 75%, "
            "yellow \u2265 50%, red below. <i>Not due</i>: the window had not opened by the data cut-off.</p>"
            f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{oow_html}"
        )

    def parameter(self, param_id: str) -> str:
        p = self.study.parameter(param_id)
        assert p is not None
        d = self.decimals(param_id)
        unit = unit_label(p)
        stats = {(s.arm, s.visit, s.variable): s for s in self.i.summary if s.param == param_id}
        header = ["Visit", "Arm", "n", "Missing", "Mean (SD)", "Median [Q1; Q3]", "Min \u2013 Max"]
        rows: list[list[str]] = []
        for variable, label in (("value", "Value"), ("change", "Change from baseline")):
            rows.append([f"<b>{label}</b>{(' (' + esc(unit) + ')') if unit else ''}", "", "", "", "", "", ""])
            for v in self.study.visits:
                for k, a in enumerate(self.arms):
                    s = stats.get((a.id, v.id, variable))
                    if s is None:
                        continue
                    mean_sd = f"{num(s.mean, d + 1)} ({num(s.sd, d + 1)})" if s.mean is not None else "\u2013"
                    if s.mean is not None and s.sd is None:
                        mean_sd = f"{num(s.mean, d + 1)}"
                    med = (
                        f"{num(s.median, d + 1)} [{num(s.q1, d + 1)}; {num(s.q3, d + 1)}]"
                        if s.n
                        else "\u2013"
                    )
                    rng = f"{num(s.min, d)} \u2013 {num(s.max, d)}" if s.n else "\u2013"
                    cens = f" <span class='note'>({s.censored} censored)</span>" if s.censored else ""
                    visit_label = f"<b>{esc(v.id)}</b>" if k == 0 else ""
                    rows.append(
                        [visit_label, self.arm_label(a.id), f"{s.n}{cens}", str(s.missing), mean_sd, med, rng]
                    )
        table = _table(header, rows, left=2, raw=True)
        comps = [c for c in self.i.comparisons if c.param == param_id]
        comp_rows = []
        for v in self.study.visits:
            anc = next((c for c in comps if c.visit == v.id and c.method == "ancova"), None)
            wel = next((c for c in comps if c.visit == v.id and c.method == "welch"), None)
            if anc is None:
                continue
            for arm in [a for a in self.arms if a.id != self.cfg.statistics.reference_arm]:
                anc = next(
                    (c for c in comps if c.visit == v.id and c.method == "ancova" and c.arm == arm.id), None
                )
                wel = next(
                    (c for c in comps if c.visit == v.id and c.method == "welch" and c.arm == arm.id), None
                )
                comp_rows.append(
                    [
                        esc(v.id),
                        f"{esc(arm.id)} \u2212 {esc(self.cfg.statistics.reference_arm)}",
                        f"{anc.n} / {anc.n_reference}" if anc else "",
                        _estimate(anc, d + 1),
                        esc(fmt_p(anc.p_value)) if anc else "",
                        _estimate(wel, d + 1),
                        esc(fmt_p(wel.p_value)) if wel else "",
                    ]
                )
        comp = _table(
            [
                "Visit",
                "Difference in change",
                "n (arm / ref.)",
                "ANCOVA estimate (95% CI)",
                "p",
                "Welch difference (95% CI)",
                "p",
            ],
            comp_rows,
            left=2,
            raw=True,
        )
        flagged = ""
        if p.kind == "derived":
            n_ins = sum(
                1
                for r in self.a.scheduled(param_id)
                if r.param == param_id and r.value is not None and INSULIN_TREATED in r.flags
            )
            undefined = sum(1 for r in self.a.scheduled(param_id) if r.value is None and r.source_ids)
            flagged = (
                f"<p class='note'>{n_ins} visit value(s) come from insulin-treated subjects (flagged); "
                f"{undefined} visit(s) had a same-day pair but an "
                "undefined index (glucose \u2264 3.5 mmol/L).</p>"
            )
        figure = self.figures[param_id]
        title = f"{esc(p.name)} \u2014 {esc(p.id)}" + (f", {esc(unit)}" if unit else "")
        return (
            f"<div class='param' id='p-{esc(p.id)}'><h3>{title}</h3>{table}{flagged}"
            f"<p class='note'>Change from baseline compared between arms:</p>{comp}"
            f"<img alt='{esc(p.id)} by arm over visits' src='data:image/png;base64,{figure}'></div>"
        )

    def results(self) -> str:
        links = " ".join(f"<a href='#p-{esc(p.id)}'>{esc(p.id)}</a>" for p in self.study.parameters)
        self.figures = parameter_figures(self.a, self.i.summary, [p.id for p in self.study.parameters])
        return (
            "<h2 id='results'>Results by parameter</h2><nav>"
            + links
            + "</nav>"
            + "".join(self.parameter(p.id) for p in self.study.parameters)
        )

    def medications(self) -> str:
        counts: dict[tuple[str, str], list[int]] = defaultdict(list)
        insulin: Counter[tuple[str, str]] = Counter()
        for subject, visit, _target, regimen, _reason in self.a.regimens:
            if regimen is None:
                continue
            counts[(subject.arm, visit.id)].append(regimen.agents)
            if any(m.drug_class == "insulin" for m in regimen.drugs):
                insulin[(subject.arm, visit.id)] += 1
        rows = []
        for v in self.study.visits:
            for a in self.arms:
                values = counts.get((a.id, v.id), [])
                if not values:
                    rows.append([esc(v.id), self.arm_label(a.id), "0", "", "", ""])
                    continue
                mean = sum(values) / len(values)
                dist = ", ".join(f"{k}: {n}" for k, n in sorted(Counter(values).items()))
                rows.append(
                    [
                        esc(v.id),
                        self.arm_label(a.id),
                        str(len(values)),
                        f"{mean:.2f}",
                        esc(dist),
                        str(insulin[(a.id, v.id)]),
                    ]
                )
        table = _table(
            [
                "Visit",
                "Arm",
                "Subjects",
                "Mean number of antidiabetic agents",
                "Distribution (agents: subjects)",
                "On insulin",
            ],
            rows,
            left=2,
            raw=True,
        )
        return (
            "<h2 id='medications'>Antidiabetic medication</h2><p class='note'>On each visit's target date; "
            "agents are distinct ATC codes in A10. Per-drug daily doses are in medications.csv.</p>" + table
        )

    def adverse_events(self) -> str:
        by = {(r.arm, r.category): r for r in self.i.ae_rows}
        cats: list[str] = []
        for r in self.i.ae_rows:
            if r.category not in cats:
                cats.append(r.category)
        header = ["Treatment-emergent AEs"] + [
            x for a in self.arms for x in (f"{a.id}: subjects n (%)", f"{a.id}: events")
        ]
        rows = []
        span = 1 + 2 * len(self.arms)
        first_term = next((c for c in cats if c.startswith("term:")), None)
        for cat in cats:
            label = {
                "any": "Any TEAE",
                "serious": "Serious",
                "related": "Related (possible or stronger)",
            }.get(cat)
            if label is None:
                kind, _, rest = cat.partition(":")
                label = f"\u2003{rest}"
                if cat == "worst-severity:mild":
                    rows.append(
                        f"<tr class='group'><td colspan='{span}'>By worst "
                        "severity (each subject once, at the worst "
                        "severity of their events; events = the events of that severity)</td></tr>"
                    )
                elif kind == "term" and cat == first_term:
                    rows.append(f"<tr class='group'><td colspan='{span}'>By reported term</td></tr>")
            row = [esc(label)]
            for a in self.arms:
                r = by[(a.id, cat)]
                pct = f" ({r.subjects_pct:.1f}%)" if r.subjects_pct is not None else ""
                row += [f"{r.subjects}{pct}", str(r.events)]
            rows.append(
                "<tr>"
                + "".join(f"<td class='{'l' if i == 0 else ''}'>{c}</td>" for i, c in enumerate(row))
                + "</tr>"
            )
        denominators = ", ".join(
            f"{esc(a.name)}: {by[(a.id, 'any')].denominator} treated"
            for a in self.arms
            if (a.id, "any") in by
        )
        head = "".join(f"<th class='{'l' if i == 0 else ''}'>{esc(h)}</th>" for i, h in enumerate(header))
        table = f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
        figure = ae_figure(self.a, self.i.ae_rows)
        img = (
            f"<img alt='adverse events by term and arm' src='data:image/png;base64,{figure}'>"
            if figure
            else "<p class='note'>No treatment-emergent adverse event was reported.</p>"
        )
        serious = [e for e in self.i.ae_listing if e.serious == "Y"]
        serious_html = ""
        if serious:
            serious_html = "<h3>Serious adverse events</h3>" + _table(
                ["Subject", "Arm", "Term", "Onset", "Day", "Severity", "Causality", "Outcome", "TE"],
                [
                    [
                        esc(e.subject_id),
                        esc(e.arm),
                        esc(e.term),
                        esc(e.onset),
                        esc(e.study_day),
                        esc(e.severity),
                        esc(e.causality),
                        esc(e.outcome),
                        esc(e.treatment_emergent),
                    ]
                    for e in serious
                ],
                left=3,
                raw=True,
            )
        non_te = sum(1 for e in self.i.ae_listing if e.treatment_emergent != "Y")
        return (
            "<h2 id='ae'>Adverse events</h2>"
            f"<p class='note'>Treatment-emergent events; denominators: {denominators}. Terms as reported. "
            f"{non_te} event(s) with onset before Day 1 (or unknown) are in ae_listing.csv only.</p>"
            f"{table}{img}{serious_html}"
        )

    def issues(self) -> str:
        counts: Counter[tuple[str, str, bool]] = Counter()
        for issue in self.a.data.issues:
            counts[(issue.resource_type, issue.issue, issue.rejected)] += 1
        rows = [
            [esc(t), esc(text), "rejected" if rejected else "excluded by rule", str(n)]
            for (t, text, rejected), n in sorted(counts.items())
        ]
        read = ", ".join(f"{esc(k)} {v}" for k, v in sorted(self.a.data.counts.items()))
        table = (
            _table(["Resource", "Issue", "Kind", "Count"], rows, left=3, raw=True)
            if rows
            else "<p>Every resource read was usable.</p>"
        )
        return (
            "<h2 id='issues'>Data issues</h2>"
            f"<p class='note'>Resources read: {read}. Each one is listed in data_issues.csv by id.</p>{table}"
        )

    def render(self) -> str:
        parts = [
            self.header(),
            self.methods(),
            self.subjects(),
            self.compliance(),
            self.results(),
            self.medications(),
            self.adverse_events(),
            self.issues(),
        ]
        title = esc(f"{self.study.study.key} endpoint report")
        return (
            f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{title}</title>"
            f"<meta name='viewport' content='width=device-width, initial-scale=1'><style>{CSS}</style></head>"
            f"<body><main>{''.join(parts)}</main></body></html>\n"
        )


def _estimate(row: ComparisonRow | None, decimals: int) -> str:
    if row is None:
        return ""
    if row.estimate is None:
        return f"<span class='note'>{esc(row.note)}</span>"
    return f"{num(row.estimate, decimals)} ({num(row.ci_low, decimals)}; {num(row.ci_high, decimals)})"


def render_report(inputs: ReportInputs) -> str:
    return _Report(inputs).render()
