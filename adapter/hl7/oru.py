"""ORU^R01 -> DiagnosticReport, Observation and Provenance (HL7 V2-to-FHIR IG, design.md where silent).

Identity (design.md): Observation = stable_id("obs", MSH-4, filler order number (OBR-3, else ORC-3),
OBX-3 code^system, OBX-4); DiagnosticReport = stable_id("dr", MSH-4, filler order number); Provenance =
stable_id("prov", MSH-4, MSH-10, SHA-256 of the wire-form message). An order without a filler number
falls back to its placer number (OBR-2/ORC-2), marked so the two number spaces never collide.

Only study parameters are sent (lab-codes.yaml); everything else is accounted as ignored with a reason.
Patients are referenced, never emitted (the roster path emits them). Order numbers stay inside the
hospital: they are hashed into ids, not copied into resources. `meta.lastUpdated` is MSH-7 with a status
rank (dtm.version_stamp), so P, then F, then C of one result merge to the C version in NDJSON folders.

Times: Observation.effective = OBX-14, else OBR-7, else SPM-17 (site timezone when no offset; a date
stays a date); DiagnosticReport.effective = OBR-7 (a period with OBR-8), issued = OBR-22. NTE after an
OBX -> Observation.note; NTE after OBR is left unmapped (IG). DiagnosticReport.status = OBR-25 (table
0123), or, when OBR-25 is empty, derived from its results (values.py has the status tables).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from adapter.hl7 import values as v
from adapter.hl7.codes import Identified, LabDictionary
from adapter.hl7.dtm import to_datetime, to_instant, to_moment, version_stamp
from adapter.hl7.header import MalformedMessage
from adapter.hl7.message import Message, Segment
from adapter.hl7.obx import LOINC, QUANTITATIVE, Triplet, read_unit, read_value, triplets
from adapter.hl7.route import match_subject
from adapter.ids import patient_id, sha256_hex, stable_id
from adapter.model import Resource, SegmentAccount
from adapter.roster import Roster
from adapter.study import StudyConfig

CATEGORY_LAB = {
    "coding": [
        {
            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
            "code": "laboratory",
            "display": "Laboratory",
        }
    ]
}
AGENT = "adapter (HL7 v2 lab ingestion)"

_NOT_NEEDED = "not needed by the study (minimum necessary)"
SEGMENT_REASONS = {
    "SFT": "sending software: not needed by the study",
    "PD1": _NOT_NEEDED,
    "NK1": _NOT_NEEDED,
    "PV1": "visit: " + _NOT_NEEDED,
    "PV2": "visit: " + _NOT_NEEDED,
    "IN1": _NOT_NEEDED,
    "IN2": _NOT_NEEDED,
    "GT1": _NOT_NEEDED,
    "AL1": _NOT_NEEDED,
    "DG1": _NOT_NEEDED,
    "ROL": _NOT_NEEDED,
    "PRT": "participation: " + _NOT_NEEDED,
    "TQ1": "timing/quantity: " + _NOT_NEEDED,
    "TQ2": "timing/quantity: " + _NOT_NEEDED,
    "CTD": "contact data: " + _NOT_NEEDED,
    "CTI": "clinical trial identification: enrollment comes from the roster",
    "FT1": "financial transaction: " + _NOT_NEEDED,
    "DSC": "continuation pointer: " + _NOT_NEEDED,
    "EVN": _NOT_NEEDED,
}


@dataclass
class MapContext:
    """What the ORU mapper reads besides the message."""

    study: StudyConfig
    roster: Roster
    dictionary: LabDictionary
    tz: ZoneInfo


@dataclass
class MapResult:
    resources: list[Resource]
    segments: list[SegmentAccount]
    reason: str | None = None  # why nothing was sent, when nothing was


@dataclass
class _Result:
    obx: Segment
    notes: list[Segment] = field(default_factory=list)


@dataclass
class _Order:
    orc: Segment | None = None
    obr: Segment | None = None
    notes: list[Segment] = field(default_factory=list)
    results: list[_Result] = field(default_factory=list)
    specimens: list[Segment] = field(default_factory=list)


@dataclass
class _Patient:
    pid: Segment
    orders: list[_Order] = field(default_factory=list)
    others: list[Segment] = field(default_factory=list)


class _Accounts:
    """One SegmentAccount per segment; anything left unaccounted at the end is reported as such."""

    def __init__(self, message: Message) -> None:
        self._segments = message.segments
        self._done: dict[int, SegmentAccount] = {}

    def mapped(self, seg: Segment, resources: list[str] | None = None, reason: str | None = None) -> None:
        self._done[seg.position] = SegmentAccount(
            seg.position, seg.safe_name, "mapped", reason, resources or []
        )

    def ignored(self, seg: Segment, reason: str) -> None:
        self._done[seg.position] = SegmentAccount(seg.position, seg.safe_name, "ignored", reason)

    def has(self, seg: Segment) -> bool:
        return seg.position in self._done

    def all(self) -> list[SegmentAccount]:
        for seg in self._segments:
            if seg.position not in self._done:
                self.ignored(seg, "not used by the mapping")
        return [self._done[p] for p in sorted(self._done)]


def _ignore_reason(seg: Segment) -> str:
    name = seg.name
    if seg.safe_name != name:
        return "malformed segment (no valid segment name)"
    if name.startswith("Z"):
        return "Z-segment (site-defined): not mapped"
    return SEGMENT_REASONS.get(name, f"{name} is not expected in ORU^R01: not mapped")


def _group(message: Message, accounts: _Accounts) -> list[_Patient]:
    """Segments into patients -> orders -> results (a flat walk: tolerant of SPM/OBX order quirks)."""
    patients: list[_Patient] = []
    order: _Order | None = None
    pending_orc: Segment | None = None
    last: str = ""
    for seg in message.segments[1:]:
        name = seg.name
        patient = patients[-1] if patients else None
        if name == "PID":
            patients.append(_Patient(seg))
            order, pending_orc, last = None, None, "PID"
            continue
        if patient is None:
            accounts.ignored(seg, "before any PID segment: not attributable to a patient")
            continue
        if name == "ORC":
            pending_orc, order, last = seg, None, "ORC"
            patient.others.append(seg)
        elif name == "OBR":
            order = _Order(orc=pending_orc, obr=seg)
            patient.orders.append(order)
            pending_orc, last = None, "OBR"
        elif name == "OBX":
            if order is None:
                order = _Order(orc=pending_orc)
                patient.orders.append(order)
                pending_orc = None
            order.results.append(_Result(seg))
            last = "OBX"
        elif name == "NTE":
            if last == "OBX" and order and order.results:
                order.results[-1].notes.append(seg)
            elif last in ("OBR", "ORC", "SPM") and order is not None:
                order.notes.append(seg)
            else:
                patient.others.append(seg)
        elif name == "SPM" and order is not None:
            order.specimens.append(seg)
            last = "SPM"
        else:
            patient.others.append(seg)
    return patients


def _code_key(codes: list[Triplet]) -> str:
    code, _text, system = next((t for t in codes if t[0]), ("", "", ""))
    return f"{code}^{system}"


class _OruMapper:
    def __init__(self, message: Message, ctx: MapContext) -> None:
        self.msg = message
        self.ctx = ctx
        self.dictionary = ctx.dictionary
        self.header = message.header
        self.facility = message.header.sending_facility
        self.accounts = _Accounts(message)
        moment = to_moment(self.header.timestamp, ctx.tz, date_only_ok=True)
        if moment is None:
            raise MalformedMessage("MSH-7 (date/time of message) is missing or unreadable")
        self.moment = moment
        self.resources: list[Resource] = []
        self.drs: dict[str, Resource] = {}
        self.seen: set[tuple[str, str, str]] = set()
        self._stamps: dict[str, str] = {}
        self._times: dict[str, str | None] = {}

    def stamp(self, status: str) -> dict[str, str]:
        """meta with lastUpdated = MSH-7 plus the status rank (dtm.version_stamp)."""
        stamp = self._stamps.get(status)
        if stamp is None:
            stamp = self._stamps[status] = version_stamp(self.moment, v.STATUS_RANK.get(status, 0))
        return {"lastUpdated": stamp}

    def when(self, text: str) -> str | None:
        """A DTM as FHIR dateTime in the site timezone (memoised: a message repeats its times)."""
        if text not in self._times:
            self._times[text] = to_datetime(text, self.ctx.tz) if text else None
        return self._times[text]

    # -- the message ---------------------------------------------------------------------------------
    def run(self) -> MapResult:
        msh = self.msg.segments[0]
        patients = _group(self.msg, self.accounts)
        if not patients:
            raise MalformedMessage("no PID segment")
        for patient in patients:
            self.patient(patient)
        produced = [f"{r['resourceType']}/{r['id']}" for r in self.resources]
        reason = None
        if produced:
            prov = self.provenance(produced)
            self.resources.append(prov)
            self.accounts.mapped(msh, [f"Provenance/{prov['id']}"], "; ".join(self.msg.notes) or None)
        else:
            self.accounts.mapped(msh, [], "; ".join(self.msg.notes) or None)
            reason = "no study results in the message"
        return MapResult(self.resources, self.accounts.all(), reason)

    def patient(self, patient: _Patient) -> None:
        ids = [patient.pid.value(3, 1, r).strip() for r in range(1, len(patient.pid.repetitions(3)) + 1)]
        subject = match_subject([i for i in ids if i], self.ctx.roster)
        group = [patient.pid, *patient.others]
        for order in patient.orders:
            group += [s for s in (order.orc, order.obr) if s is not None]
            group += order.notes + order.specimens
            for result in order.results:
                group += [result.obx, *result.notes]
        if subject is None:
            for seg in group:
                self.accounts.ignored(seg, "patient not enrolled")
            return
        ref = f"Patient/{patient_id(self.ctx.study.study.key, subject.subject_id)}"
        self.accounts.mapped(patient.pid, [], "subject reference (pseudonymised)")
        for seg in patient.others:
            if seg.name == "ORC":
                continue
            if seg.name == "NTE":
                self.accounts.ignored(seg, "note on the patient: " + _NOT_NEEDED)
            else:
                self.accounts.ignored(seg, _ignore_reason(seg))
        for order in patient.orders:
            self.order(order, ref)
        for seg in patient.others:
            if seg.name == "ORC" and not self.accounts.has(seg):
                self.accounts.ignored(seg, "order without results")

    # -- one order -----------------------------------------------------------------------------------
    def order(self, order: _Order, subject: str) -> None:
        obr, orc = order.obr, order.orc
        filler = (obr.value(3) if obr else "").strip() or (orc.value(3) if orc else "").strip()
        placer = (obr.value(2) if obr else "").strip() or (orc.value(2) if orc else "").strip()
        order_key = filler or (f"placer:{placer}" if placer else "")
        observations: list[Resource] = []
        for result in order.results:
            obs = self.result(result, order, order_key, subject)
            if obs is not None:
                observations.append(obs)
        for nte in order.notes:
            self.accounts.ignored(nte, "note on the order: left unmapped (HL7 V2-to-FHIR IG)")
        if not observations:
            for seg in (orc, obr, *order.specimens):
                if seg is not None:
                    self.accounts.ignored(seg, "order without study results")
            return
        refs = [f"Observation/{o['id']}" for o in observations]
        if obr is None:
            if orc is not None:
                self.accounts.mapped(orc, [], "order identity (no OBR: no DiagnosticReport)")
            for spm in order.specimens:
                self.accounts.ignored(spm, "specimen: " + _NOT_NEEDED)
            return
        dr = self.report(obr, order, order_key, subject, observations)
        dr_ref = f"DiagnosticReport/{dr['id']}"
        self.accounts.mapped(
            obr, [dr_ref], None if filler else "no filler order number: identity from placer"
        )
        if orc is not None:
            self.accounts.mapped(orc, [dr_ref], "order identity")
        for spm in order.specimens:
            used = not obr.value(7).strip() and spm.value(17).strip()
            if used:
                self.accounts.mapped(spm, refs, "collection time (OBR-7 empty)")
            else:
                self.accounts.ignored(spm, "specimen: " + _NOT_NEEDED)

    def effective(self, order: _Order) -> str | None:
        if order.obr is not None:
            value = self.when(order.obr.value(7).strip())
            if value:
                return value
        for spm in order.specimens:
            value = self.when(spm.value(17).strip())
            if value:
                return value
        return None

    def report(
        self, obr: Segment, order: _Order, order_key: str, subject: str, observations: list[Resource]
    ) -> Resource:
        dr_id = stable_id("dr", self.facility, order_key)
        refs = [{"reference": f"Observation/{o['id']}"} for o in observations]
        existing = self.drs.get(dr_id)
        if existing is not None:  # a second OBR of the same order in this message: one report
            existing["result"] += [r for r in refs if r not in existing["result"]]
            return existing
        code_status = obr.value(25).strip().upper()
        status = v.OBR_STATUS.get(code_status) or _derived_status([o["status"] for o in observations])
        dr: Resource = {
            "resourceType": "DiagnosticReport",
            "id": dr_id,
            "meta": self.stamp(status),
            "status": status,
            "code": self.service_code(obr),
            "subject": {"reference": subject},
        }
        start = self.effective(order)
        end = self.when(obr.value(8).strip())
        if start and end and end >= start:
            dr["effectivePeriod"] = {"start": start, "end": end}
        elif start:
            dr["effectiveDateTime"] = start
        elif "effectiveDateTime" in observations[0]:
            dr["effectiveDateTime"] = observations[0]["effectiveDateTime"]
        issued = to_instant(obr.value(22), self.ctx.tz)
        if issued:
            dr["issued"] = issued
        dr["result"] = refs
        self.drs[dr_id] = dr
        self.resources.insert(len(self.resources) - len(observations), dr)
        return dr

    def service_code(self, obr: Segment) -> dict[str, Any]:
        codings = []
        text = obr.value(4, 9).strip()
        for code, label, system in triplets(obr, 4):
            if not code:
                continue
            text = text or label
            if self.dictionary.is_loinc_system(system):
                codings.append({"system": LOINC, "code": code})
            elif self.dictionary.is_local_system(system):
                codings.append({"system": self.dictionary.local_uri, "code": code})
        out: dict[str, Any] = {}
        if codings:
            out["coding"] = codings
        out["text"] = text or "Laboratory report"
        return out

    # -- one result ----------------------------------------------------------------------------------
    def result(self, result: _Result, order: _Order, order_key: str, subject: str) -> Resource | None:
        obx = result.obx
        codes = triplets(obx, 3)
        ident, why = self.dictionary.identify(codes)
        if ident is None:
            return self._skip(result, why or "not a study parameter")
        status_code = obx.value(11).strip().upper()
        if status_code in v.OBX_NO_RESULT:
            return self._skip(result, f"OBX-11 {status_code} ({v.OBX_NO_RESULT[status_code]}): no result")
        notes: list[str] = []
        status = v.OBX_STATUS.get(status_code)
        if status is None:
            status = "unknown"
            notes.append("OBX-11 empty or not in table 0085: status unknown")
        if not order_key:
            raise MalformedMessage(
                f"OBX at segment {obx.position}: study result without filler or placer order number "
                "(OBR-3/ORC-3, OBR-2/ORC-2)"
            )
        code_key = _code_key(codes)
        subid = obx.value(4).strip()
        key = (order_key, code_key, subid)
        if key in self.seen:
            return self._skip(result, "same order, code and OBX-4 as an earlier result in this message")
        unit_text, unit, unit_note = read_unit(obx, ident, self.dictionary)
        element, value = read_value(obx, unit_text, unit, self.dictionary, self.ctx.tz, notes)
        if element == "valueString" and not value.strip():
            element, value = None, None  # e.g. an SN of empty components
        if element is None and status not in v.VALUELESS_STATUSES:
            return self._skip(result, value or "OBX-5 empty: no result to send")
        if element is None:
            value = None
        self.seen.add(key)
        quantitative = element in QUANTITATIVE
        if unit_note and (quantitative or (unit is None and unit_text)):
            notes.append(unit_note)
        loinc, loinc_note = self.dictionary.choose_loinc(ident, unit, quantitative)
        if loinc_note:
            notes.append(loinc_note)
        obs_id = stable_id("obs", self.facility, order_key, code_key, subid)
        obs: Resource = {
            "resourceType": "Observation",
            "id": obs_id,
            "meta": self.stamp(status),
            "status": status,
            "category": [CATEGORY_LAB],
            "code": self.result_code(obx, codes, ident, loinc),
            "subject": {"reference": subject},
        }
        effective = self.result_time(obx, order, notes)
        if effective:
            obs["effectiveDateTime"] = effective
        if element is not None:
            obs[element] = value
        flags = [obx.value(8, 1, r) for r in range(1, len(obx.repetitions(8)) + 1)]
        interpretation, unknown = v.interpretation(flags)
        if interpretation:
            obs["interpretation"] = interpretation
        if unknown:
            notes.append(f"OBX-8 code(s) not in table 0078 dropped: {', '.join(unknown)}")
        texts = []
        ref = f"Observation/{obs_id}"
        for nte in result.notes:
            text = "\n".join(t for t in (nte.text(3, r) for r in range(1, len(nte.repetitions(3)) + 1)) if t)
            if text.strip():
                texts.append({"text": text})
                self.accounts.mapped(nte, [ref], "Observation.note")
            else:
                self.accounts.ignored(nte, "empty note")
        if texts:
            obs["note"] = texts
        rr = v.reference_range(obx.text(7).rstrip(obx.encoding.component), unit_text, unit, self.dictionary)
        if rr:
            obs["referenceRange"] = [rr]
        self.accounts.mapped(obx, [ref], "; ".join(notes) or None)
        self.resources.append(obs)
        return obs

    def _skip(self, result: _Result, reason: str) -> None:
        self.accounts.ignored(result.obx, reason)
        for nte in result.notes:
            self.accounts.ignored(nte, "note of a result that is not sent")
        return None

    def result_code(
        self, obx: Segment, codes: list[Triplet], ident: Identified, loinc: Any
    ) -> dict[str, Any]:
        codings: list[dict[str, str]] = []
        if loinc is not None:
            codings.append({"system": LOINC, "code": loinc.code, "display": loinc.display})
        lab = ident.lab_loinc
        if lab and self.dictionary.study_loinc(lab) is None:
            codings.append({"system": LOINC, "code": lab})  # a site-declared equivalent (lab-codes.yaml)
        if ident.local_code:
            codings.append({"system": self.dictionary.local_uri, "code": ident.local_code})
        text = obx.value(3, 9).strip() or next((t for _c, t, _s in codes if t), "") or ident.parameter.name
        out: dict[str, Any] = {}
        if codings:
            out["coding"] = codings
        out["text"] = text
        return out

    def result_time(self, obx: Segment, order: _Order, notes: list[str]) -> str | None:
        raw = obx.value(14).strip()
        if raw:
            value = self.when(raw)
            if value:
                return value
            notes.append("OBX-14 unreadable: time taken from the order")
        value = self.effective(order)
        if value is None:
            notes.append("no observation time (OBX-14, OBR-7, SPM-17 empty)")
        return value

    def provenance(self, produced: list[str]) -> Resource:
        raw = self.msg.raw
        digest = sha256_hex(raw)
        header = self.header
        entities = []
        label = f"HL7 v2 {header.message_type} from {header.sending_application}/{self.facility}"
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
            "meta": self.stamp(""),
            "target": [{"reference": ref} for ref in produced],
            "recorded": to_instant(header.timestamp, self.ctx.tz, date_only_ok=True),
            "agent": [{"who": {"display": AGENT}}],
            "entity": entities,
        }


def _derived_status(statuses: list[str]) -> str:
    """DiagnosticReport.status when OBR-25 is empty: from its results (the IG calls it an error)."""
    known = set(statuses)
    if "unknown" in known:
        return "unknown"
    if len(known) == 1:
        return known.pop()
    if known <= {"final", "amended", "corrected", "cancelled", "entered-in-error"}:
        for status in ("corrected", "amended", "final"):
            if status in known:
                return status
    return "partial"


def map_oru(message: Message, ctx: MapContext) -> MapResult:
    """Map one parsed ORU message; MalformedMessage (with a reason) when it cannot be converted."""
    return _OruMapper(message, ctx).run()
