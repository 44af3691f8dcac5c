"""The HL7 results say what the facts say: units converted back, LOINC matching the unit, P/F/C resolved.

The expectations are written out by hand here (codes from mappings/study.yaml and design.md's lab
dictionary; factors from the issue), independent of the generator's tables.
"""

from __future__ import annotations

import pytest

from tests.demo.conftest import hl7_files

framing = pytest.importorskip("adapter.hl7.framing", reason="the HL7 front door (adapter/hl7) is not built")
message_mod = pytest.importorskip("adapter.hl7.message")

CODES = {
    "GLU-F": "GLUC", "INS-F": "INS", "CPEP": "CPEP", "HBA1C": "HBA1C", "TNFA": "TNFA", "IL1B": "IL1B",
}  # fmt: skip
LOINC_BY_UNIT = {
    ("GLUC", "mmol/l"): "14771-0", ("GLUC", "mg/dl"): "1558-6",
    ("CPEP", "ng/ml"): "1986-9", ("CPEP", "pmol/l"): "14633-2",
    ("HBA1C", "%"): "4548-4", ("HBA1C", "mmol/mol"): "59261-8",
    ("INS", "uiu/ml"): "20448-7", ("INS", "pmol/l"): "14796-7",
    ("TNFA", "pg/ml"): "3074-2", ("IL1B", "pg/ml"): "13629-1",
}  # fmt: skip
PARAM_OF_LOINC = {code: param for (param, _), code in LOINC_BY_UNIT.items()}


def to_standard(param: str, unit: str, value: float) -> tuple[float, float]:
    """(value in the study's unit, tolerance from the reported precision)."""
    if (param, unit) == ("GLUC", "mg/dl"):
        return value / 18.016, 0.5 / 18.016 + 1e-9
    if (param, unit) == ("CPEP", "pmol/l"):
        return value / 331, 0.5 / 331 + 0.005
    if (param, unit) == ("INS", "pmol/l"):
        return value / 6.0, 0.05 / 6.0 + 1e-9
    if (param, unit) == ("HBA1C", "mmol/mol"):
        return (value + 23.5) / 10.93, 0.5 / 10.93 + 1e-9
    return value, 1e-9


def _param(obx) -> tuple[str, str | None]:
    """(parameter, LOINC code if any) from OBX-3, local or LOINC, first or alternate triplet."""
    parts = obx.components(3)
    local = loinc = None
    for code, system in (
        (parts[0], parts[2] if len(parts) > 2 else ""),
        *([(parts[3], parts[5])] if len(parts) > 5 else []),
    ):
        if system == "LN":
            loinc = code
        elif system in {"99VH", "L"}:
            local = code
    param = CODES[local] if local else PARAM_OF_LOINC[loinc]
    return param, loinc


def test_final_results_match_the_facts(demo_run, demo_facts):
    out, manifest = demo_run
    faulty = {f["control_id"] for f in manifest["faults"] if f["input"] == "hl7"}
    mrn_of = {s.subject_id: s.mrn for s in demo_facts.subjects}
    draw_at = {(mrn_of[d.subject_id], d.collected_at.strftime("%Y%m%d%H%M")): d for d in demo_facts.labs}
    latest: dict[tuple[str, str, str], tuple[str, object, object]] = {}  # identity -> (MSH-7, draw, OBX)
    statuses: dict[tuple[str, str, str], list[str]] = {}
    for path in hl7_files(out, "hl7"):
        for raw in framing.split_messages(path.read_bytes()):
            msg = message_mod.parse_message(raw)
            if msg.header.control_id in faulty:
                continue
            sent = msg.segments[0].value(7)
            draw = None
            for segment in msg.segments:
                if segment.name == "OBR":
                    collected = segment.value(7)[:12]
                    draw = draw_at[(msg.first("PID").value(3), collected)]
                    filler = segment.value(3)
                elif segment.name == "OBX":
                    identity = (filler, segment.raw(3), segment.raw(4))
                    statuses.setdefault(identity, []).append(segment.value(11))
                    if identity not in latest or latest[identity][0] < sent:
                        latest[identity] = (sent, draw, segment)
    seen: set[tuple[str, str]] = set()
    for _, draw, obx in latest.values():
        param, loinc = _param(obx)
        unit = obx.value(6).lower()
        if loinc:
            assert LOINC_BY_UNIT[(param, unit)] == loinc, (param, unit, loinc)
        fact = draw.values[param]
        assert obx.value(11) in {"F", "C"}
        text = obx.value(5) if obx.value(2) == "NM" else obx.text(5).replace("^", "")
        if fact.comparator:
            assert text == f"<{fact.value}"
        else:
            value, tolerance = to_standard(param, unit, float(text))
            assert value == pytest.approx(fact.value, abs=tolerance), (param, unit, text, fact.value)
        seen.add((draw.subject_id, f"{draw.visit}:{draw.study_day}:{param}"))
    expected = {(d.subject_id, f"{d.visit}:{d.study_day}:{p}") for d in demo_facts.labs for p in d.values}
    assert seen == expected  # every fact is delivered, once per identity
    sequences = {tuple(s) for s in statuses.values()}
    assert ("P", "F") in sequences or ("P", "P", "F") in {tuple(s[:3]) for s in statuses.values()}
    assert any("C" in s for s in sequences)
