"""One endpoint run: read the source, build the analysis dataset, write every output file.

Output folder (design page, "Endpoint extraction"): endpoints.csv, summary.csv, comparisons.csv,
adverse_events.csv, ae_listing.csv, medications.csv, data_issues.csv, report.html, sdtm/*.csv,
derived/Observation.ndjson (the HOMA Observations, as `--write-back` sends them) and run.json (the
settings, factors and counts of the run, for traceability).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

from adapter.endpoints import homa
from adapter.endpoints.adverse import AeListingRow, AeTableRow, ae_listing, ae_table
from adapter.endpoints.comparisons import ComparisonRow, compare
from adapter.endpoints.config import EndpointsConfig
from adapter.endpoints.dataset import Analysis, build_analysis
from adapter.endpoints.load import load_study_data
from adapter.endpoints.output import fmt, fmt_p, write_csv
from adapter.endpoints.records import Issue
from adapter.endpoints.report import ReportInputs, render_report
from adapter.endpoints.sdtm import DOSE_UNIT, write_sdtm
from adapter.endpoints.source import Source
from adapter.endpoints.summary import SummaryRow, summarise
from adapter.endpoints.units import UnitConverter
from adapter.errors import ConfigError
from adapter.mapping.study import study_id
from adapter.model import Resource
from adapter.ndjson import dumps
from adapter.study import StudyConfig

ENDPOINT_COLUMNS = [
    "subject_id",
    "arm",
    "param",
    "visit",
    "study_day",
    "value",
    "unit",
    "baseline",
    "change",
    "pct_change",
    "source_ids",
    "date",
    "target_day",
    "window",
    "n_in_window",
    "comparator",
    "orig_value",
    "orig_unit",
    "flags",
    "reason",
]
SUMMARY_COLUMNS = [
    "arm",
    "param",
    "visit",
    "variable",
    "n",
    "missing",
    "mean",
    "sd",
    "median",
    "q1",
    "q3",
    "min",
    "max",
    "censored",
    "ci_low",
    "ci_high",
]
COMPARISON_COLUMNS = [
    "param",
    "visit",
    "arm",
    "reference_arm",
    "method",
    "n",
    "n_reference",
    "estimate",
    "ci_low",
    "ci_high",
    "p_value",
    "df",
    "lsmean",
    "lsmean_reference",
    "note",
]
AE_COLUMNS = [
    "arm",
    "category",
    "subjects",
    "subjects_pct",
    "events",
    "denominator",
    "all_subjects",
    "all_subjects_pct",
    "all_events",
    "all_denominator",
]
LISTING_COLUMNS = list(AeListingRow.__dataclass_fields__)
MEDICATION_COLUMNS = [
    "subject_id",
    "arm",
    "visit",
    "target_date",
    "study_day",
    "drug",
    "atc",
    "drug_class",
    "daily_dose",
    "dose_unit",
    "n_antidiabetic_agents",
    "source_id",
    "reason",
]
ISSUE_COLUMNS = ["resource_type", "resource_id", "subject_id", "issue", "kind"]


@dataclass
class EndpointsResult:
    out: Path
    analysis: Analysis
    summary: list[SummaryRow]
    comparisons: list[ComparisonRow]
    ae_rows: list[AeTableRow]
    derived: list[Resource]
    files: dict[str, int] = field(default_factory=dict)

    @property
    def issues(self) -> list[Issue]:
        return self.analysis.data.issues

    @property
    def rejected(self) -> int:
        return sum(1 for i in self.issues if i.rejected)


def _endpoint_rows(analysis: Analysis, decimals: int) -> list[list[str]]:
    out = []
    for r in analysis.rows:
        out.append(
            [
                r.subject_id,
                r.arm,
                r.param,
                r.visit,
                fmt(r.study_day),
                fmt(r.value, decimals),
                r.unit,
                fmt(r.baseline, decimals),
                fmt(r.change, decimals),
                fmt(r.pct_change, 2),
                fmt(r.source_ids),
                fmt(r.date),
                fmt(r.target_day),
                r.window,
                fmt(r.n_in_window) if r.n_in_window else "",
                r.comparator or "",
                fmt(r.orig_value, 6),
                r.orig_unit or "",
                fmt(r.flags),
                r.reason or "",
            ]
        )
    return out


def _medication_rows(analysis: Analysis, decimals: int) -> list[list[str]]:
    out = []
    for subject, visit, target, regimen, reason in analysis.regimens:
        day = fmt(visit.target_day) if target else ""
        base = [subject.subject_id, subject.arm, visit.id, fmt(target), day]
        if regimen is None:
            out.append([*base, "", "", "", "", "", "", "", reason or ""])
            continue
        if not regimen.drugs:
            out.append([*base, "", "", "", "", "", "0", "", "no antidiabetic drug active"])
            continue
        for m in regimen.drugs:
            unit = DOSE_UNIT.get(m.dose_unit or "", m.dose_unit or "")
            out.append(
                [
                    *base,
                    m.drug,
                    m.atc or "",
                    m.drug_class,
                    fmt(m.daily_dose, decimals),
                    f"{unit}/d" if unit else "",
                    str(regimen.agents),
                    f"MedicationStatement/{m.resource_id}",
                    m.dose_problem or "",
                ]
            )
    return out


def derived_observations(analysis: Analysis, insulin_factor: float) -> list[Resource]:
    """The HOMA Observations (defined values only), sorted by id."""
    out = []
    for pair, ir, beta in analysis.homa_values:
        for value in (ir, beta):
            if value.value is not None:
                out.append(homa.observation(analysis.study, pair, value, insulin_factor))
    return sorted(out, key=lambda r: r["id"])


def run_endpoints(
    source: Source,
    out: Path,
    study: StudyConfig,
    config: EndpointsConfig,
    factors: dict[str, float],
    *,
    cutoff: date | None = None,
    progress: Callable[[str, int], None] | None = None,
    now: datetime | None = None,
    report: bool = True,
) -> EndpointsResult:
    """Read `source`, compute every endpoint, write the output folder; return what was computed."""
    converter = UnitConverter(study, config, factors)
    data = load_study_data(source, study, config, converter, progress)
    if not data.subjects:
        raise ConfigError(
            f"{source.description}: no enrolled ResearchSubject of ResearchStudy/{study_id(study)} "
            f"({study.study.key}); is this the right source and study?"
        )
    effective_cutoff = cutoff or data.latest_date()
    analysis = build_analysis(study, config, data, effective_cutoff)
    summary = summarise(analysis)
    comparisons = compare(analysis)
    ae_rows = ae_table(analysis)
    listing = ae_listing(analysis)
    derived = derived_observations(analysis, factors.get("insulin_pmol_per_uiu", 6.0))
    d = config.output.csv_decimals
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, int] = {}
    files["endpoints.csv"] = write_csv(out / "endpoints.csv", ENDPOINT_COLUMNS, _endpoint_rows(analysis, d))
    files["summary.csv"] = write_csv(
        out / "summary.csv",
        SUMMARY_COLUMNS,
        (
            [
                s.arm,
                s.param,
                s.visit,
                s.variable,
                str(s.n),
                str(s.missing),
                fmt(s.mean, d),
                fmt(s.sd, d),
                fmt(s.median, d),
                fmt(s.q1, d),
                fmt(s.q3, d),
                fmt(s.min, d),
                fmt(s.max, d),
                str(s.censored),
                fmt(s.ci_low, d),
                fmt(s.ci_high, d),
            ]
            for s in summary
        ),
    )
    files["comparisons.csv"] = write_csv(
        out / "comparisons.csv",
        COMPARISON_COLUMNS,
        (
            [
                c.param,
                c.visit,
                c.arm,
                c.reference_arm,
                c.method,
                str(c.n),
                str(c.n_reference),
                fmt(c.estimate, d),
                fmt(c.ci_low, d),
                fmt(c.ci_high, d),
                fmt_p(c.p_value),
                fmt(c.df, 2),
                fmt(c.lsmean, d),
                fmt(c.lsmean_reference, d),
                c.note,
            ]
            for c in comparisons
        ),
    )
    files["adverse_events.csv"] = write_csv(
        out / "adverse_events.csv",
        AE_COLUMNS,
        (
            [
                r.arm,
                r.category,
                str(r.subjects),
                fmt(r.subjects_pct, 2),
                str(r.events),
                str(r.denominator),
                str(r.all_subjects),
                fmt(r.all_subjects_pct, 2),
                str(r.all_events),
                str(r.all_denominator),
            ]
            for r in ae_rows
        ),
    )
    files["ae_listing.csv"] = write_csv(
        out / "ae_listing.csv", LISTING_COLUMNS, ([fmt(v) for v in asdict(e).values()] for e in listing)
    )
    files["medications.csv"] = write_csv(
        out / "medications.csv", MEDICATION_COLUMNS, _medication_rows(analysis, d)
    )
    files["data_issues.csv"] = write_csv(
        out / "data_issues.csv",
        ISSUE_COLUMNS,
        (
            [
                i.resource_type,
                i.resource_id,
                i.subject_id or "",
                i.issue,
                "rejected" if i.rejected else "excluded",
            ]
            for i in sorted(data.issues, key=lambda i: (i.resource_type, i.resource_id, i.issue))
        ),
    )
    for domain, count in write_sdtm(analysis, out / "sdtm").items():
        files[f"sdtm/{domain.lower()}.csv"] = count
    derived_dir = out / "derived"
    derived_dir.mkdir(exist_ok=True)
    (derived_dir / "Observation.ndjson").write_text(
        "".join(dumps(r) + "\n" for r in derived), encoding="utf-8"
    )
    files["derived/Observation.ndjson"] = len(derived)
    generated = now or datetime.now(UTC).astimezone(study.tz)
    settings = {**factors}
    if report:
        html = render_report(
            ReportInputs(
                analysis,
                summary,
                comparisons,
                ae_rows,
                listing,
                source.description,
                settings,
                converter.describe(study),
                generated,
            )
        )
        (out / "report.html").write_text(html, encoding="utf-8")
        files["report.html"] = 1
    run = {
        "source": source.description,
        "generated": generated.isoformat(timespec="seconds"),
        "cutoff": fmt(effective_cutoff),
        "cutoff_given": cutoff is not None,
        "settings": settings,
        "conversions": converter.describe(study),
        "config": config.model_dump(mode="json"),
        "resources_read": data.counts,
        "subjects": len(data.subjects),
        "issues": {
            "rejected": sum(1 for i in data.issues if i.rejected),
            "excluded": sum(1 for i in data.issues if not i.rejected),
        },
        "files": files,
    }
    (out / "run.json").write_text(json.dumps(run, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return EndpointsResult(out, analysis, summary, comparisons, ae_rows, derived, files)
