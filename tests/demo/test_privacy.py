"""MRNs and names stay where the hospital keeps them: MRNs in roster.csv, meds.csv and HL7 PID-3; names in
HL7 PID-5 only. Nothing FHIR-bound (the converters' NDJSON) carries either."""

from __future__ import annotations

import json
import re

from adapter.demo.names import fold
from tests.demo.conftest import conversion_of, hl7_files

MRN_FILES = re.compile(r"^(roster\.csv|meds\.csv|(hl7|pharmacy|feed)/.+\.hl7)$")


def _names(facts) -> set[str]:
    names = set()
    for s in facts.subjects:
        names |= {s.name.full, s.name.folded().full, f"{s.name.family} {s.name.middle}", s.name.family + "^"}
    return names


def _mrn_pattern(facts) -> re.Pattern[str]:
    return re.compile(r"\b(" + "|".join(s.mrn for s in facts.subjects) + r")\b")


def test_mrns_only_in_the_hospital_files(demo_run, demo_facts):
    out, _ = demo_run
    pattern = _mrn_pattern(demo_facts)
    for path in sorted(p for p in out.rglob("*") if p.is_file()):
        relative = path.relative_to(out).as_posix()
        found = pattern.search(path.read_text(encoding="utf-8"))
        if not MRN_FILES.match(relative):
            assert found is None, f"an MRN in {relative}"
    roster = (out / "roster.csv").read_text(encoding="utf-8")
    assert all(s.mrn in roster for s in demo_facts.subjects)


def test_names_only_in_pid5(demo_run, demo_facts):
    out, _ = demo_run
    names = _names(demo_facts)
    for path in sorted(p for p in out.rglob("*") if p.is_file()):
        relative = path.relative_to(out).as_posix()
        text = path.read_text(encoding="utf-8")
        if relative.endswith(".hl7"):
            for line in re.split(r"[\r\n]+", text):
                if not line.startswith("PID|"):
                    assert not any(name in line for name in names), f"a name outside PID in {relative}"
        else:
            assert not any(name in text for name in names), f"a name in {relative}"
    pids = "".join(p.read_text(encoding="utf-8") for p in hl7_files(out, "hl7"))
    subject = demo_facts.subjects[0]
    assert subject.name.family in pids or fold(subject.name.family) in pids  # names are really there
    assert any(ch in pids for ch in "ễịđĐơư")  # with Vietnamese diacritics


def test_nothing_fhir_bound_carries_mrns_or_names(demo_conversions, demo_facts):
    mrns = _mrn_pattern(demo_facts)
    names = {s.name.full for s in demo_facts.subjects} | {s.name.folded().full for s in demo_facts.subjects}
    names |= {f'"{s.name.family}"' for s in demo_facts.subjects}  # as a JSON string: a HumanName.family
    produced = 0
    for kind in ("roster", "hl7", "feed", "meds", "ae"):
        conversion = conversion_of(demo_conversions, kind)
        lines = [json.dumps(r, ensure_ascii=False) for r in conversion.resources]
        lines += [json.dumps(a.as_json(), ensure_ascii=False) for a in conversion.accounts]
        text = "\n".join(lines)
        assert mrns.search(text) is None, f"an MRN in the {kind} output"
        assert not [n for n in names if n in text], f"a name in the {kind} output"
        produced += len(conversion.resources)
    assert produced > 1000
