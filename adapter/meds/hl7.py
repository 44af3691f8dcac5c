"""HL7 v2 pharmacy messages -> FHIR R4: RDE^O11 (encoded order) -> MedicationStatement, RAS^O17
(administration) -> MedicationAdministration, each message with a Provenance.

Called by the HL7 front door (adapter/hl7/convert.py) after its roster check, on the parsed Message.
The facts read are the HIS CSV's; both paths build resources with adapter/meds/statement.py.

RDE, per ORC group: drug RXE-2 (CE: code^text^system, alternate triplet too; ATC, RxNorm or local codes,
else the name through drugs.yaml); dose RXE-3 (RXE-4 max kept in the text) in RXE-5 units; timing from the
TQ1 after RXE (else the order's TQ1, else v2.3 RXE-1 TQ): times per day from TQ1-3 (table 0335: QD, BID,
TID, QID, QnH, ...) or the count of TQ1-4 explicit times, start TQ1-7, end TQ1-8 (start falls back to
ORC-15, then ORC-9); route RXR-1 (text: no verified route code). Status from ORC-1/ORC-5: DC/OD -> stopped
(end = ORC-15/ORC-9/MSH-7 when no TQ1-8), CA/OC -> not-taken (cancelled before use: endpoint extraction
must not count it), HD -> on-hold, otherwise completed if an end date is known, else active.
Identity: study, subject, sending facility (MSH-4), filler order number ORC-3 (else placer ORC-2, marked),
so NW, XO and DC of one order are versions of one MedicationStatement; `meta.lastUpdated` = MSH-7 plus a
rank (NW < XO < HD/RL < DC/CA) so the latest state wins in NDJSON merges.

RAS, per RXA: drug RXA-5, amount RXA-6 in RXA-7 units, given at RXA-3 (to RXA-4), route from the RXR after
the RXA (else the order's), status RXA-20 (CP/PA -> completed, RE/NA -> not-done) and RXA-21 D ->
entered-in-error. Identity: the order's keys + RXA-1 + RXA-2 (RXA-3 when RXA-2 is empty).

A message is converted whole or not at all: one bad order rejects it, naming the segment and field.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

from adapter.converters import ConvertContext
from adapter.hl7.dtm import to_datetime, to_instant, to_moment, version_stamp
from adapter.hl7.header import MalformedMessage
from adapter.hl7.message import Message, Segment
from adapter.hl7.route import match_subject
from adapter.ids import sha256_hex, stable_id
from adapter.meds.dose import Dose, DoseError, parse_amount, parse_unit
from adapter.meds.drugs import DrugMap, DrugMatch, DrugNotFound, load_drug_map, normalise_code_system
from adapter.meds.statement import MedicationFacts, medication_administration, medication_statement
from adapter.model import Conversion, InputAccount, Resource, SegmentAccount
from adapter.roster import Subject

KIND = "hl7"
AGENT = "adapter (HL7 v2 pharmacy ingestion)"
_NOT_NEEDED = "not needed by the study (minimum necessary)"
SEGMENT_REASONS = {
    "SFT": "sending software: " + _NOT_NEEDED,
    "PD1": _NOT_NEEDED,
    "NK1": _NOT_NEEDED,
    "PV1": "visit: " + _NOT_NEEDED,
    "PV2": "visit: " + _NOT_NEEDED,
    "IN1": _NOT_NEEDED,
    "IN2": _NOT_NEEDED,
    "GT1": _NOT_NEEDED,
    "AL1": "allergies: " + _NOT_NEEDED,
    "NTE": "note (free text, may identify): not mapped",
    "RXO": "order as requested: the encoded order (RXE) is mapped instead",
    "RXC": "compound components: not mapped",
    "TQ2": "timing relationship: not mapped",
    "OBX": "order observation: not mapped",
    "PRT": "participation: " + _NOT_NEEDED,
    "FT1": "financial transaction: " + _NOT_NEEDED,
    "BLG": "billing: " + _NOT_NEEDED,
    "CTI": "clinical trial identification: enrollment comes from the roster",
    "CDO": "cumulative dosage: not mapped",
}

# HL7 table 0335 repeat patterns -> administrations per day
_PER_DAY = {
    "QD": 1,
    "OD": 1,
    "DAILY": 1,
    "QAM": 1,
    "QPM": 1,
    "QHS": 1,
    "QN": 1,
    "HS": 1,
    "AM": 1,
    "PM": 1,
    "BID": 2,
    "TID": 3,
    "QID": 4,
    "ONCE": None,
    "PRN": None,
}
_EVERY_N_HOURS = re.compile(r"^Q(\d{1,2})H$")
_ORDER_RANK = {
    "NW": 0,
    "OK": 0,
    "SN": 0,
    "XO": 1,
    "XX": 1,
    "RP": 1,
    "SC": 1,
    "HD": 2,
    "RL": 2,
    "OH": 2,
    "DC": 3,
    "OD": 3,
    "DR": 3,
    "CA": 3,
    "OC": 3,
    "CR": 3,
}


class PharmacyError(ValueError):
    """One order or administration cannot be converted: `where` names the segment and field."""

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(f"{where}: {reason}")


@dataclass
class _Order:
    orc: Segment | None
    before: list[Segment] = field(default_factory=list)  # TQ1/RXO/RXR... of the order as requested
    rxe: Segment | None = None
    after: list[Segment] = field(default_factory=list)  # TQ1/RXR... of the encoded order
    rxas: list[tuple[Segment, list[Segment]]] = field(default_factory=list)

    def first(self, name: str) -> Segment | None:
        """The encoded order's segment if there is one, else the requested order's."""
        return next((s for s in self.after if s.name == name), None) or next(
            (s for s in self.before if s.name == name), None
        )


def _group(message: Message) -> tuple[list[Segment], list[_Order]]:
    """Header-level segments and the ORC groups of a pharmacy message (a tolerant flat walk)."""
    top: list[Segment] = []
    orders: list[_Order] = []
    for seg in message.segments[1:]:
        name = seg.name
        if name == "ORC":
            orders.append(_Order(seg))
            continue
        if not orders:
            if name in ("RXE", "RXA"):
                orders.append(_Order(None))
            else:
                top.append(seg)
                continue
        order = orders[-1]
        if name == "RXE" and order.rxe is None:
            order.rxe = seg
        elif name == "RXA":
            order.rxas.append((seg, []))
        elif order.rxas:
            order.rxas[-1][1].append(seg)
        elif order.rxe is not None:
            order.after.append(seg)
        else:
            order.before.append(seg)
    return top, orders


class _Mapper:
    def __init__(self, message: Message, ctx: ConvertContext, subject: Subject) -> None:
        self.msg = message
        self.ctx = ctx
        self.subject = subject
        self.header = message.header
        self.facility = message.header.sending_facility
        self.tz = ctx.study.tz
        self.drugs: DrugMap = load_drug_map(ctx.mappings_dir)
        moment = to_moment(self.header.timestamp, self.tz, date_only_ok=True)
        if moment is None:
            raise PharmacyError("MSH-7", "date/time of message is missing or unreadable")
        self.moment: datetime = moment
        self.segments: dict[int, SegmentAccount] = {}

    # -- accounting ------------------------------------------------------------------------------
    def mapped(self, seg: Segment | None, resources: list[str], reason: str | None = None) -> None:
        """Record a segment as mapped; a segment feeding several resources (an ORC of many RXA) lists all."""
        if seg is None:
            return
        known = self.segments.get(seg.position)
        if known is not None and known.status == "mapped":
            known.resources.extend(r for r in resources if r not in known.resources)
            return
        self.segments[seg.position] = SegmentAccount(
            seg.position, seg.safe_name, "mapped", reason, list(resources)
        )

    def ignored(self, seg: Segment, reason: str) -> None:
        self.segments[seg.position] = SegmentAccount(seg.position, seg.safe_name, "ignored", reason)

    def all_segments(self) -> list[SegmentAccount]:
        for seg in self.msg.segments:
            if seg.position not in self.segments:
                name = seg.safe_name
                reason = (
                    "Z-segment (site-defined): not mapped"
                    if name.startswith("Z")
                    else SEGMENT_REASONS.get(name, f"{name} is not used by the pharmacy mapping")
                )
                self.ignored(seg, reason)
        return [self.segments[p] for p in sorted(self.segments)]

    # -- shared pieces -----------------------------------------------------------------------------
    def order_key(self, order: _Order) -> tuple[str, str]:
        if order.orc is not None:
            filler = order.orc.value(3).strip()
            if filler:
                return ("filler", filler)
            placer = order.orc.value(2).strip()
            if placer:
                return ("placer", placer)
        raise PharmacyError("ORC-3", "no filler (ORC-3) or placer (ORC-2) order number: no identity")

    def drug(self, seg: Segment, number: int) -> tuple[DrugMatch, str]:
        """The drug of a CE/CWE field: a mapped code, then a standard code, then the name."""
        where = f"{seg.safe_name}-{number}"
        comps = seg.components(number) + [""] * 6
        triplets = [
            (comps[0].strip(), comps[1].strip(), comps[2].strip()),
            (comps[3].strip(), comps[4].strip(), comps[5].strip()),
        ]
        name = next((t[1] for t in triplets if t[1]), "") or next((t[0] for t in triplets if t[0]), "")
        if not any(t[0] or t[1] for t in triplets):
            raise PharmacyError(where, "empty drug code")
        bare: DrugMatch | None = None
        for code, _text, system in triplets:
            if not code:
                continue
            try:
                normalise_code_system(system)
                match = self.drugs.by_code(code, system)
            except (ValueError, DrugNotFound):
                continue
            if match.entry is not None:
                return match, name
            bare = bare or match
        if bare is not None:
            return bare, name
        for _code, text, _system in triplets:
            if text:
                try:
                    return self.drugs.by_name(text), name
                except DrugNotFound:
                    pass
        raise PharmacyError(where, f"{name!r} is not in drugs.yaml")

    def dose(self, seg: Segment, amount_field: int, unit_field: int, match: DrugMatch) -> Dose | None:
        """The dose of an amount field in the units of a CE field (its code, else its text)."""
        amount = seg.value(amount_field).strip()
        if not amount:
            return None
        try:
            value = parse_amount(amount)
        except DoseError as exc:
            raise PharmacyError(f"{seg.safe_name}-{amount_field}", str(exc)) from None
        where = f"{seg.safe_name}-{unit_field}"
        unit: tuple[str, str] | None = None
        for text in (seg.value(unit_field, 1).strip(), seg.value(unit_field, 2).strip()):
            if text:
                try:
                    unit = parse_unit(text)
                    break
                except DoseError:
                    continue
        if unit is None:
            raise PharmacyError(where, "not a known dose unit (mg, g, ug, mL, IU/U/units, tablet, capsule)")
        if self.drugs.is_insulin(match) and unit[0] != "[IU]":
            raise PharmacyError(where, "an insulin dose must be in units (IU/U/units)")
        return Dose(value, *unit)

    def when(self, seg: Segment | None, number: int, component: int = 1) -> str | None:
        if seg is None:
            return None
        raw = seg.value(number, component).strip()
        if not raw:
            return None
        value = to_datetime(raw, self.tz)
        if value is None:
            raise PharmacyError(f"{seg.safe_name}-{number}", "unreadable date/time")
        return value

    def route(self, rxr: Segment | None) -> str | None:
        if rxr is None:
            return None
        code, text = rxr.value(1, 1).strip(), rxr.value(1, 2).strip()
        found = (self.drugs.route(code) if code else None) or (self.drugs.route(text) if text else None)
        return found.display if found else (text or code or None)

    def stamp(self, rank: int) -> str:
        return version_stamp(self.moment, rank)

    # -- RDE -------------------------------------------------------------------------------------------
    def rde(self, order: _Order) -> Resource:
        rxe = order.rxe
        assert rxe is not None
        key = self.order_key(order)
        match, name = self.drug(rxe, 2)
        dose = self.dose(rxe, 3, 5, match)
        tq1 = order.first("TQ1")
        times, pattern = self.times_per_day(tq1, rxe)
        start = self.when(tq1, 7) if tq1 is not None and tq1.value(7) else self.when(rxe, 1, 4)
        end = self.when(tq1, 8) if tq1 is not None and tq1.value(8) else self.when(rxe, 1, 5)
        orc = order.orc
        control = orc.value(1).strip().upper() if orc is not None else ""
        status_code = orc.value(5).strip().upper() if orc is not None else ""
        start = start or self.when(orc, 15) or self.when(orc, 9)
        if start is None:
            raise PharmacyError("TQ1-7", "no start date/time (TQ1-7, RXE-1.4, ORC-15 and ORC-9 are empty)")
        status = None
        if control in ("DC", "OD", "DR") or status_code == "DC":
            status = "stopped"
            end = (
                end or self.when(orc, 15) or self.when(orc, 9) or to_datetime(self.header.timestamp, self.tz)
            )
        elif control in ("CA", "OC", "CR") or status_code == "CA":
            status = "not-taken"
        elif control in ("HD", "OH") or status_code == "HD":
            status = "on-hold"
        elif status_code == "CM":
            status = "completed"
        rxr = order.first("RXR")
        route = self.route(rxr)
        facts = MedicationFacts(
            subject_id=self.subject.subject_id,
            drug=match,
            original_name=name,
            identity=(self.ctx.study.study.key, self.subject.subject_id, "hl7-rde", self.facility, *key),
            dose=dose,
            times_per_day=times,
            route_text=route,
            start=start,
            end=end,
            text=self.dosage_text(rxe, 3, 5, pattern, rxr, rxe.value(4).strip()),
            status=status,
            last_updated=self.stamp(_ORDER_RANK.get(control, 1)),
            source_kind="hl7-rde",
        )
        resource = medication_statement(facts, self.ctx.study, self.drugs)
        ref = [f"MedicationStatement/{resource['id']}"]
        for seg in (orc, rxe, tq1, rxr):
            self.mapped(seg, ref)
        return resource

    def times_per_day(self, tq1: Segment | None, rxe: Segment) -> tuple[int | None, str]:
        """Administrations per day from TQ1-3 (table 0335), TQ1-4 explicit times, or v2.3 RXE-1.2."""
        if tq1 is not None:
            pattern = tq1.value(3, 1).strip().upper()
            explicit = [
                t for t in (tq1.value(4, 1, r).strip() for r in range(1, len(tq1.repetitions(4)) + 1)) if t
            ]
            where = "TQ1-3"
        else:
            pattern = rxe.value(1, 2).strip().upper()
            explicit = [t for t in rxe.value(1, 2, 1, 2).split(",") if t.strip()] if not pattern else []
            where = "RXE-1"
        if pattern in _PER_DAY:
            return _PER_DAY[pattern], pattern
        hours = _EVERY_N_HOURS.match(pattern)
        if hours and int(hours[1]) and 24 % int(hours[1]) == 0:
            return 24 // int(hours[1]), pattern
        if not pattern and explicit:
            return len(explicit), f"at {', '.join(explicit)}"
        if not pattern:
            return None, ""
        raise PharmacyError(where, "repeat pattern not understood as times per day (QD, BID, TID, QID, QnH)")

    def dosage_text(
        self, seg: Segment, amount: int, unit: int, pattern: str, rxr: Segment | None, maximum: str = ""
    ) -> str:
        unit_text = seg.value(unit, 1).strip() or seg.value(unit, 2).strip()
        dose = seg.value(amount).strip()
        if maximum and maximum != dose:
            dose = f"{dose}-{maximum}"
        parts = [f"{dose} {unit_text}".strip(), pattern]
        if rxr is not None:
            parts.append(rxr.value(1, 2).strip() or rxr.value(1, 1).strip())
        return ", ".join(p for p in parts if p)

    # -- RAS -------------------------------------------------------------------------------------------
    def ras(self, order: _Order, rxa: Segment, followers: list[Segment]) -> Resource:
        key = self.order_key(order)
        match, name = self.drug(rxa, 5)
        completion = rxa.value(20).strip().upper()
        action = rxa.value(21).strip().upper()
        status = "not-done" if completion in ("RE", "NA") else "completed"
        if action == "D":
            status = "entered-in-error"
        try:
            dose = self.dose(rxa, 6, 7, match)
        except PharmacyError:
            if status == "completed":
                raise
            dose = None  # a refused or not-given administration often carries amount 0
        start = self.when(rxa, 3)
        if start is None:
            raise PharmacyError("RXA-3", "no administration date/time")
        end = self.when(rxa, 4)
        rxr = (
            next((s for s in followers if s.name == "RXR"), None)
            or order.first("RXR")
            or next((s for _, segs in order.rxas for s in segs if s.name == "RXR"), None)
        )
        sub_id = rxa.value(2).strip()
        identity = (
            self.ctx.study.study.key,
            self.subject.subject_id,
            "hl7-ras",
            self.facility,
            *key,
            rxa.value(1).strip(),
            sub_id or rxa.value(3).strip(),
        )
        facts = MedicationFacts(
            subject_id=self.subject.subject_id,
            drug=match,
            original_name=name,
            identity=identity,
            dose=dose,
            route_text=self.route(rxr),
            start=start,
            end=end if end and end != start else None,
            text=self.dosage_text(rxa, 6, 7, "", rxr),
            status=status,
            last_updated=self.stamp(3 if action == "D" else 1 if action == "U" else 0),
            source_kind="hl7-ras",
        )
        resource = medication_administration(facts, self.ctx.study, self.drugs)
        ref = [f"MedicationAdministration/{resource['id']}"]
        for seg in (order.orc, rxa, rxr):
            self.mapped(seg, ref)
        return resource

    # -- the message -----------------------------------------------------------------------------------
    def run(self) -> tuple[list[Resource], list[SegmentAccount], str | None]:
        top, orders = _group(self.msg)
        for seg in top:
            if seg.name == "PID":
                self.mapped(seg, [], "subject from PID-3 via the roster")
        resources: list[Resource] = []
        code = self.header.message_code
        for order in orders:
            if code == "RDE":
                if order.rxe is None:
                    if order.orc is not None:
                        self.ignored(order.orc, "order without RXE: nothing to map")
                    continue
                resources.append(self.rde(order))
            else:
                if not order.rxas and order.orc is not None:
                    self.ignored(order.orc, "order without RXA: no administration to map")
                for rxa, followers in order.rxas:
                    resources.append(self.ras(order, rxa, followers))
                if order.rxe is not None:
                    self.ignored(order.rxe, "encoded order in RAS: the administrations (RXA) are mapped")
        reason = None if resources else f"no {'RXE' if code == 'RDE' else 'RXA'} segment to map"
        msh = self.msg.segments[0]
        if resources:
            prov = self.provenance([f"{r['resourceType']}/{r['id']}" for r in resources])
            resources.append(prov)
            self.mapped(msh, [f"Provenance/{prov['id']}"], "; ".join(self.msg.notes) or None)
        else:
            self.mapped(msh, [], "; ".join(self.msg.notes) or None)
        return resources, self.all_segments(), reason

    def provenance(self, produced: list[str]) -> Resource:
        """Which resources this message produced, from which message (MSH-10, SHA-256), when, by whom."""
        digest = sha256_hex(self.msg.raw)
        header = self.header
        label = f"HL7 v2 {header.message_type} from {header.sending_application}/{self.facility}"
        entities = []
        if header.control_id:
            entities.append(
                {
                    "role": "source",
                    "what": {
                        "identifier": {
                            "system": self.ctx.study.system("hl7v2-control-id"),
                            "value": header.control_id,
                        },
                        "display": label,
                    },
                }
            )
        entities.append(
            {
                "role": "source",
                "what": {
                    "identifier": {"system": self.ctx.study.system("hl7v2-message-sha256"), "value": digest},
                    "display": label,
                },
            }
        )
        return {
            "resourceType": "Provenance",
            "id": stable_id("prov", self.facility, header.control_id, digest),
            "meta": {"lastUpdated": self.stamp(0)},
            "target": [{"reference": ref} for ref in produced],
            "recorded": to_instant(header.timestamp, self.tz, date_only_ok=True),
            "agent": [{"who": {"display": AGENT}}],
            "entity": entities,
        }


def _subject(message: Message, ctx: ConvertContext) -> Subject | None:
    pids = message.all("PID")
    if len(pids) != 1:
        raise PharmacyError("PID", f"expected one PID segment, found {len(pids)}")
    pid = pids[0]
    ids = [pid.value(3, 1, r).strip() for r in range(1, len(pid.repetitions(3)) + 1)]
    try:
        return match_subject([i for i in ids if i], ctx.roster)
    except MalformedMessage as exc:
        raise PharmacyError("PID-3", exc.reason) from None


def convert_pharmacy_message(msg: Message, ctx: ConvertContext, source: str, index: int) -> Conversion:
    """One RDE^O11 or RAS^O17 message -> its resources and one account (kind "hl7"); never raises for
    a bad message: it becomes a `rejected` account naming the segment and field."""
    header = msg.header
    account = InputAccount(
        kind=KIND,
        source=source,
        index=index,
        outcome="converted",
        control_id=header.control_id[:199] or None,
        message_type=header.message_type[:40] or None,
    )
    if header.message_code not in ("RDE", "RAS"):
        account.outcome, account.reason = "rejected", f"not a pharmacy message: {header.message_type}"
        return Conversion([], [account])
    try:
        subject = _subject(msg, ctx)
        if subject is None:
            account.outcome, account.reason = "not-enrolled", "patient not enrolled"
            return Conversion([], [account])
        resources, segments, reason = _Mapper(msg, ctx, subject).run()
    except PharmacyError as exc:
        account.outcome, account.reason = "rejected", str(exc)
        account.sha256 = sha256_hex(msg.raw)
        return Conversion([], [account])
    account.outcome = "converted" if resources else "ignored"
    account.reason = reason
    account.resources = [f"{r['resourceType']}/{r['id']}" for r in resources]
    account.segments = segments
    account.sha256 = sha256_hex(msg.raw)
    return Conversion(resources, [account])
