"""SDTM-like domains (DM, LB, VS, AE, CM, EX) as CSV, following the HL7 FHIR-to-CDISC Joint Mapping IG
where it speaks, and deriving what it leaves to the tool: LBSTRESN/LBSTRESU (unit harmonisation), --DY
(CDISC study day from RFSTDTC = Day 1), VISIT/VISITNUM (by the configured windows), LBBLFL.

The IG has no EX mapping: EX here is one record per cell-infusion Procedure. --SPID holds the FHIR id so
every record traces back to its resource. Dates are site-local ISO 8601 (--DTC carries no offset).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path

from adapter.endpoints.adverse import ae_listing
from adapter.endpoints.dataset import UNSCHEDULED, Analysis, unit_label
from adapter.endpoints.days import study_day
from adapter.endpoints.output import fmt, write_csv

_SEX = {"male": "M", "female": "F"}
_OUTCOME = {
    "resolved": "RECOVERED/RESOLVED",
    "recovering": "RECOVERING/RESOLVING",
    "ongoing": "NOT RECOVERED/NOT RESOLVED",
    "resolvedWithSequelae": "RECOVERED/RESOLVED WITH SEQUELAE",
    "fatal": "FATAL",
    "unknown": "UNKNOWN",
}
_FREQ = {1.0: "QD", 2.0: "BID", 3.0: "TID", 4.0: "QID", 0.5: "QOD"}
DOSE_UNIT = {"[IU]": "IU", "[iU]": "IU", "mg": "mg", "g": "g", "ug": "ug"}

DM_COLUMNS = [
    "STUDYID",
    "DOMAIN",
    "USUBJID",
    "SUBJID",
    "RFSTDTC",
    "RFXSTDTC",
    "SITEID",
    "BRTHDTC",
    "SEX",
    "ARMCD",
    "ARM",
    "ACTARMCD",
    "ACTARM",
]
LB_COLUMNS = [
    "STUDYID",
    "DOMAIN",
    "USUBJID",
    "LBSEQ",
    "LBTESTCD",
    "LBTEST",
    "LBLOINC",
    "LBORRES",
    "LBORRESU",
    "LBSTRESC",
    "LBSTRESN",
    "LBSTRESU",
    "LBSTAT",
    "LBFAST",
    "LBBLFL",
    "VISITNUM",
    "VISIT",
    "LBDTC",
    "LBDY",
    "LBSPID",
]
VS_COLUMNS = [
    "STUDYID",
    "DOMAIN",
    "USUBJID",
    "VSSEQ",
    "VSTESTCD",
    "VSTEST",
    "VSSTRESC",
    "VSSTRESN",
    "VSSTRESU",
    "VSDTC",
    "VSDY",
    "VSSPID",
]
AE_COLUMNS = [
    "STUDYID",
    "DOMAIN",
    "USUBJID",
    "AESEQ",
    "AESPID",
    "AETERM",
    "AEDECOD",
    "AESEV",
    "AESER",
    "AEREL",
    "AEOUT",
    "AESTDTC",
    "AEENDTC",
    "AESTDY",
    "AEENDY",
]
CM_COLUMNS = [
    "STUDYID",
    "DOMAIN",
    "USUBJID",
    "CMSEQ",
    "CMSPID",
    "CMTRT",
    "CMCLAS",
    "CMCLASCD",
    "CMDOSE",
    "CMDOSU",
    "CMDOSFRQ",
    "CMROUTE",
    "CMSTDTC",
    "CMENDTC",
    "CMENRTPT",
    "CMSTDY",
    "CMENDY",
]
EX_COLUMNS = [
    "STUDYID",
    "DOMAIN",
    "USUBJID",
    "EXSEQ",
    "EXSPID",
    "EXTRT",
    "EXDOSE",
    "EXDOSU",
    "EXROUTE",
    "EXSTDTC",
    "EXENDTC",
    "EXSTDY",
    "EXENDY",
]


def _dtc(day: date | None, moment: datetime | None = None) -> str:
    if moment is not None:
        return moment.replace(tzinfo=None).isoformat(timespec="minutes")
    return day.isoformat() if day else ""


def _dy(day: date | None, day1: date | None) -> str:
    return str(study_day(day, day1)) if day and day1 else ""


class _Domains:
    def __init__(self, analysis: Analysis) -> None:
        self.a = analysis
        self.studyid = analysis.study.study.key
        self.subjects = {s.subject_id: s for s in analysis.subjects}
        self.order = {s.subject_id: i for i, s in enumerate(analysis.subjects)}
        self.visit_index = {v.id: i + 1 for i, v in enumerate(analysis.study.visits)}

    def usubjid(self, subject_id: str) -> str:
        return f"{self.studyid}-{subject_id}"

    def visitnum(self, visit: str | None, day: int | None) -> str:
        if visit in self.visit_index:
            return str(self.visit_index[visit])
        if visit == UNSCHEDULED and day is not None:  # after the last planned visit before it (SDTMIG X.1)
            before = sum(1 for v in self.a.study.visits if v.target_day < day)
            return f"{before}.1"
        return ""

    def dm(self) -> Iterator[list[str]]:
        for s in self.a.subjects:
            arm = self.a.study.arm(s.arm)
            assert arm is not None
            actual = self.a.study.arm(s.actual_arm or s.arm) or arm
            if actual.intervention and s.day1 is None:
                actcd, act = "NOTTRT", "Not Treated"
            else:
                actcd, act = actual.id.upper(), actual.name
            yield [
                self.studyid,
                "DM",
                self.usubjid(s.subject_id),
                s.subject_id,
                fmt(s.day1),
                fmt(s.infusions[0].day if s.infusions else None),
                self.a.study.site.id,
                s.birth_year or "",
                _SEX.get(s.sex or "", "U"),
                arm.id.upper(),
                arm.name,
                actcd,
                act,
            ]

    def lb(self) -> Iterator[list[str]]:
        params = {p.id: (i, p) for i, p in enumerate(self.a.study.parameters)}
        ordered = sorted(
            self.a.windowed,
            key=lambda w: (
                self.order[w.subject_id],
                params[w.candidate.param][0],
                w.candidate.day,
                w.candidate.stamp,
                w.candidate.key,
            ),
        )
        seq: dict[str, int] = {}
        for w in ordered:
            c = w.candidate
            param = params[c.param][1]
            seq[w.subject_id] = seq.get(w.subject_id, 0) + 1
            comp = c.comparator or ""
            stresc = f"{comp}{fmt(c.value)}" if c.value is not None else ""
            yield [
                self.studyid,
                "LB",
                self.usubjid(w.subject_id),
                str(seq[w.subject_id]),
                param.id,
                param.name,
                c.loinc or "",
                f"{comp}{fmt(c.orig_value, 6)}",
                c.orig_unit or "",
                stresc,
                "" if comp else fmt(c.value),
                unit_label(param),
                "",
                # the protocol's fasting samples; a claim-export copy does not record the fasting state
                "Y" if param.fasting and not c.secondary else "",
                "Y" if w.baseline else "",
                self.visitnum(w.visit, w.study_day),
                w.visit or "",
                _dtc(c.day, c.moment),
                fmt(w.study_day),
                c.key.split("/", 1)[-1],
            ]

    def vs(self) -> Iterator[list[str]]:
        weights = sorted(self.a.data.weights, key=lambda w: (self.order[w.subject_id], w.day, w.resource_id))
        seq: dict[str, int] = {}
        for w in weights:
            seq[w.subject_id] = seq.get(w.subject_id, 0) + 1
            day1 = self.subjects[w.subject_id].day1
            yield [
                self.studyid,
                "VS",
                self.usubjid(w.subject_id),
                str(seq[w.subject_id]),
                "WEIGHT",
                "Weight",
                fmt(w.kg),
                fmt(w.kg),
                "kg",
                fmt(w.day),
                _dy(w.day, day1),
                w.resource_id,
            ]

    def ae(self) -> Iterator[list[str]]:
        seq: dict[str, int] = {}
        for e in ae_listing(self.a):
            seq[e.subject_id] = seq.get(e.subject_id, 0) + 1
            yield [
                self.studyid,
                "AE",
                self.usubjid(e.subject_id),
                str(seq[e.subject_id]),
                e.source_id.split("/", 1)[-1],
                e.term,
                e.coded_term or "",
                (e.severity or "").upper(),
                e.serious or "",
                (e.causality or "").upper(),
                _OUTCOME.get(e.outcome or "", ""),
                e.onset or "",
                e.resolved or "",
                fmt(e.study_day),
                fmt(e.end_study_day),
            ]

    def cm(self) -> Iterator[list[str]]:
        meds = sorted(
            self.a.data.meds,
            key=lambda m: (self.order[m.subject_id], m.start or date.min, m.drug.casefold(), m.resource_id),
        )
        seq: dict[str, int] = {}
        for m in meds:
            seq[m.subject_id] = seq.get(m.subject_id, 0) + 1
            day1 = self.subjects[m.subject_id].day1
            freq = m.frequency_per_day
            dosfrq = "" if freq is None else _FREQ.get(round(freq, 6), f"{fmt(freq)} PER DAY")
            yield [
                self.studyid,
                "CM",
                self.usubjid(m.subject_id),
                str(seq[m.subject_id]),
                m.resource_id,
                m.drug,
                m.drug_class.upper(),
                m.atc or "",
                fmt(m.dose),
                DOSE_UNIT.get(m.dose_unit or "", m.dose_unit or ""),
                dosfrq,
                (m.route or "").upper(),
                fmt(m.start),
                fmt(m.end),
                "" if m.end else "ONGOING",
                _dy(m.start, day1),
                _dy(m.end, day1),
            ]

    def ex(self) -> Iterator[list[str]]:
        infusion = self.a.config.infusion
        for s in self.a.subjects:
            for number, inf in enumerate(s.infusions, 1):
                day = inf.day
                yield [
                    self.studyid,
                    "EX",
                    self.usubjid(s.subject_id),
                    str(number),
                    inf.resource_id,
                    infusion.treatment,
                    fmt(inf.dose, 6),
                    inf.dose_unit or "",
                    infusion.route,
                    fmt(day),
                    fmt(day),
                    _dy(day, s.day1),
                    _dy(day, s.day1),
                ]


def write_sdtm(analysis: Analysis, folder: Path) -> dict[str, int]:
    """Write DM, LB, VS, AE, CM, EX as `<folder>/<domain>.csv`; return rows per domain."""
    d = _Domains(analysis)
    return {
        "DM": write_csv(folder / "dm.csv", DM_COLUMNS, d.dm()),
        "LB": write_csv(folder / "lb.csv", LB_COLUMNS, d.lb()),
        "VS": write_csv(folder / "vs.csv", VS_COLUMNS, d.vs()),
        "AE": write_csv(folder / "ae.csv", AE_COLUMNS, d.ae()),
        "CM": write_csv(folder / "cm.csv", CM_COLUMNS, d.cm()),
        "EX": write_csv(folder / "ex.csv", EX_COLUMNS, d.ex()),
    }
