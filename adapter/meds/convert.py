"""The HIS medication CSV export -> MedicationStatement (R4), one per prescription line.

Columns (design page): `mrn,drug,dose,unit,times_per_day,route,start_date,end_date` plus optional `code`,
`code_system` (ATC | RxNorm | local | MA_THUOC; a local code unknown to drugs.yaml falls back to the name).
One InputAccount per row: converted, rejected (file:line: field: reason; an unknown drug is named) or
not-enrolled (nothing else said). Ids come from the record's keys: study, subject, drug, start date and
the row's occurrence number among rows with those keys in the file (so two same-day lines of one insulin,
morning and evening, stay two statements, and a corrected export with a new dose or end date updates the
same resource). The MRN only serves the roster lookup.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from adapter.converters import ConvertContext
from adapter.errors import InputError
from adapter.meds.dose import DoseError, parse_dose, parse_times_per_day
from adapter.meds.drugs import DrugMap, DrugNotFound, load_drug_map, normalise_code_system
from adapter.meds.rows import FieldError, Row, not_before, parse_date, read_rows
from adapter.meds.statement import MedicationFacts, medication_statement
from adapter.model import Conversion, InputAccount

KIND = "meds"
SOURCE_KIND = "his-csv"
REQUIRED = ("mrn", "drug", "dose", "unit", "times_per_day", "route", "start_date", "end_date")


def convert_files(paths: Sequence[Path], ctx: ConvertContext) -> Conversion:
    """Convert HIS medication CSV files; every row is accounted for, bad rows never stop the others."""
    drugs = load_drug_map(ctx.mappings_dir)
    result = Conversion()
    for path in paths:
        result.extend(convert_file(path, ctx, drugs))
    return result


def convert_file(path: Path, ctx: ConvertContext, drugs: DrugMap) -> Conversion:
    result = Conversion()
    try:
        rows = list(read_rows(path, REQUIRED))
    except InputError as exc:
        result.accounts.append(InputAccount(KIND, path.name, 0, "rejected", reason=str(exc)))
        return result
    seen: Counter[tuple[str, ...]] = Counter()
    for row in rows:
        account = InputAccount(KIND, path.name, row.line, "converted", message_type="csv")
        result.accounts.append(account)
        subject = ctx.roster.by_mrn(row.get("mrn")) if row.get("mrn") else None
        if row.get("mrn") and subject is None:
            account.outcome = "not-enrolled"
            continue
        try:
            if subject is None:
                raise FieldError("mrn", "empty")
            facts = row_facts(row, subject.subject_id, ctx, drugs, seen)
        except FieldError as exc:
            account.outcome = "rejected"
            account.reason = f"{path.name}:{row.line}: {exc}"
            continue
        resource = medication_statement(facts, ctx.study, drugs)
        account.resources = [f"MedicationStatement/{resource['id']}"]
        result.resources.append(resource)
    return result


def row_facts(
    row: Row, subject_id: str, ctx: ConvertContext, drugs: DrugMap, seen: Counter[tuple[str, ...]]
) -> MedicationFacts:
    """The normalised facts of one CSV row; FieldError names the first bad field."""
    name = row.get("drug")
    code, system = row.get("code"), row.get("code_system")
    if code:
        try:
            normalise_code_system(system)
        except ValueError as exc:
            raise FieldError("code_system", str(exc)) from None
    try:
        match = drugs.resolve(name, code, system)
    except DrugNotFound as exc:
        raise FieldError("code" if code else "drug", str(exc)) from None
    tz = ctx.study.tz
    start = parse_date(row.get("start_date"), "start_date", tz)
    end = parse_date(row.get("end_date"), "end_date", tz) if row.get("end_date") else None
    key = (ctx.study.study.key, subject_id, SOURCE_KIND, match.key, start[:10])
    seen[key] += 1  # counted before the other checks, so a rejected row keeps its place in the numbering
    if end and not not_before(end, start):
        raise FieldError("end_date", "before start_date")
    try:
        dose = parse_dose(row.get("dose"), row.get("unit"), insulin=drugs.is_insulin(match))
    except DoseError as exc:
        raise FieldError(exc.part, str(exc)) from None
    try:
        times = parse_times_per_day(row.get("times_per_day"))
    except DoseError as exc:
        raise FieldError("times_per_day", str(exc)) from None
    route_raw = row.get("route")
    route = drugs.route(route_raw) if route_raw else None
    return MedicationFacts(
        subject_id=subject_id,
        drug=match,
        original_name=name or code,
        identity=(*key, str(seen[key])),
        dose=dose,
        times_per_day=times,
        route_text=route.display if route else (route_raw or None),
        start=start,
        end=end,
        text=dosage_text(row),
        source_kind=SOURCE_KIND,
    )


def dosage_text(row: Row) -> str:
    """The dosage as the export wrote it: `10 U, 2 times/day, tiêm dưới da`."""
    parts = [f"{row.get('dose')} {row.get('unit')}".strip()]
    if row.get("times_per_day"):
        parts.append(f"{row.get('times_per_day')} times/day")
    if row.get("route"):
        parts.append(row.get("route"))
    return ", ".join(p for p in parts if p)
