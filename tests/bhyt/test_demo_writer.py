"""adapter/demo/bhyt.py: the synthetic trial as BHYT files that the importer reads back to the same story."""

from __future__ import annotations

from collections import Counter
from datetime import date

import pytest

from adapter.bhyt.convert import convert_files
from adapter.converters import ConvertContext
from adapter.demo.bhyt import write_bhyt
from adapter.demo.generate import draw_facts
from adapter.demo.params import DemoParams
from adapter.meds.drugs import ATC_SYSTEM
from adapter.roster import parse_roster
from tests.bhyt.helpers import MAPPINGS, output_text, validate

LOINC = {
    "GLUC": "14771-0",
    "HBA1C": "4548-4",
    "CPEP": "1986-9",
    "INS": "20448-7",
    "TNFA": "3074-2",
    "IL1B": "13629-1",
}


@pytest.fixture(scope="module")
def demo(study, tmp_path_factory):
    facts = draw_facts(study, DemoParams(), 8, 11)
    out = tmp_path_factory.mktemp("demo")
    manifest = write_bhyt(facts, out)
    roster = "subject_id,mrn,arm,enrolled_on,infused_on,sex,birth_date,weight_kg\n" + "".join(
        f"{s.subject_id},{s.mrn},{s.arm},{s.enrolled_on},{s.infused_on or ''},{s.sex},{s.birth_date},"
        f"{s.weight_kg}\n"
        for s in facts.subjects
    )
    ctx = ConvertContext(study, parse_roster(roster, study), MAPPINGS)
    files = sorted((out / "bhyt").iterdir())
    return facts, manifest, files, convert_files(files, ctx)


def test_every_file_converts_and_strangers_are_dropped(demo):
    facts, manifest, files, result = demo
    assert len(files) == manifest["files"] > 3
    counts = result.counts()
    assert counts == {"converted": manifest["encounters"], "not-enrolled": manifest["stranger_encounters"]}
    for resource in result.resources:
        validate(resource)
    text = output_text(result)
    for subject in facts.subjects:
        assert subject.mrn not in text and subject.name.full not in text


def test_every_lab_value_comes_back_with_its_loinc_and_value(demo):
    facts, _, _, result = demo
    observations = [r for r in result.resources if r["resourceType"] == "Observation"]
    expected = Counter(LOINC[p] for d in facts.labs for p in d.values)
    got = Counter(
        c["code"] for o in observations for c in o["code"]["coding"] if c["system"] == "http://loinc.org"
    )
    assert got == expected
    values = sorted(round(o["valueQuantity"]["value"], 2) for o in observations)
    assert values == sorted(round(v.value, 2) for d in facts.labs for v in d.values.values())


def test_insulin_doses_come_back_in_units_per_day(demo):
    facts, _, _, result = demo
    statements = [r for r in result.resources if r["resourceType"] == "MedicationStatement"]
    insulin = [
        s
        for s in statements
        if any(
            c["code"].startswith("A10A")
            for c in s["medicationCodeableConcept"].get("coding", [])
            if c["system"] == ATC_SYSTEM
        )
    ]
    assert insulin, "the demo has insulin users"
    for statement in insulin:
        day = date.fromisoformat(statement["effectivePeriod"]["start"][:10])
        daily = sum(
            d["doseAndRate"][0]["doseQuantity"]["value"] * d["timing"]["repeat"]["frequency"]
            for d in statement["dosage"]
        )
        assert all(d["doseAndRate"][0]["doseQuantity"]["code"] == "[IU]" for d in statement["dosage"])
        courses = [
            m
            for m in facts.meds
            if m.insulin and m.active_on(day) and m.drug in statement["medicationCodeableConcept"]["text"]
        ]
        assert daily in {c.daily_dose for c in courses}


def test_the_writer_is_deterministic(study, tmp_path):
    facts = draw_facts(study, DemoParams(), 4, 3)
    write_bhyt(facts, tmp_path / "a")
    write_bhyt(draw_facts(study, DemoParams(), 4, 3), tmp_path / "b")
    names = sorted(p.name for p in (tmp_path / "a" / "bhyt").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "b" / "bhyt").iterdir())
    for name in names:
        assert (tmp_path / "a" / "bhyt" / name).read_bytes() == (tmp_path / "b" / "bhyt" / name).read_bytes()
