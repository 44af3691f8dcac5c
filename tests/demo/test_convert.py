"""Every generated input converts; the only rejections are the manifest's deliberate faults."""

from __future__ import annotations

import pytest

from tests.demo.conftest import RUN_FEED, RUN_SUBJECTS, conversion_of


def _flagged(account) -> bool:
    """Accounted with a reason on a result segment (e.g. value kept as text, unit unknown, OBX ignored)."""
    return any(s.reason for s in account.segments if s.segment == "OBX")


def test_hl7_and_pharmacy_reject_only_the_deliberate_faults(demo_run, demo_facts, demo_conversions):
    _, manifest = demo_run
    conversion = conversion_of(demo_conversions, "hl7")
    faults = {f["control_id"]: f for f in manifest["faults"] if f["input"] in {"hl7", "pharmacy"}}
    by_id = {a.control_id: a for a in conversion.accounts}
    unexpected = [(a.control_id, a.reason) for a in conversion.rejected if a.control_id not in faults]
    assert unexpected == []
    for control_id, fault in faults.items():
        account = by_id[control_id]
        if fault["expect"] == "rejected":
            assert account.outcome == "rejected", fault
        else:
            assert account.outcome == "rejected" or _flagged(account), fault
    assert "not-enrolled" not in {a.outcome for a in conversion.accounts}
    outputs = manifest["outputs"]
    assert len(conversion.accounts) == outputs["hl7"]["messages"] + sum(
        outputs["pharmacy"]["messages"].values()
    )
    # one Observation per fact: preliminary then final, corrections and resends update, never duplicate
    observations = {r["id"] for r in conversion.resources if r["resourceType"] == "Observation"}
    assert len(observations) == sum(len(d.values) for d in demo_facts.labs)


def test_feed_drops_every_stranger(demo_run, demo_conversions):
    _, manifest = demo_run
    counts = conversion_of(demo_conversions, "feed").counts()
    assert counts.get("not-enrolled", 0) == RUN_FEED
    assert counts.get("converted", 0) + counts.get("rejected", 0) == manifest["outputs"]["hl7"]["messages"]


@pytest.mark.parametrize(("kind", "name"), [("meds", "meds.csv"), ("ae", "ae.csv")])
def test_csv_rows_reject_only_the_deliberate_faults(demo_run, demo_conversions, kind, name):
    out, manifest = demo_run
    conversion = conversion_of(demo_conversions, kind)
    rejected = {a.index for a in conversion.rejected}
    expected = {f["line"] for f in manifest["faults"] if f["file"] == name}
    assert rejected == expected, [a.reason for a in conversion.rejected]
    rows = len((out / name).read_text(encoding="utf-8").splitlines()) - 1
    assert conversion.counts().get("converted", 0) == rows - len(expected)


def test_roster_converts(demo_conversions):
    conversion = conversion_of(demo_conversions, "roster")
    assert not conversion.rejected
    assert sum(r["resourceType"] == "Patient" for r in conversion.resources) == RUN_SUBJECTS


def test_every_his_drug_name_is_in_the_drug_map():
    """The HIS spellings the generator uses (adapter.demo.meds.DRUG_NAMES) must all resolve by name, with the
    expected ingredient; the deliberate unknown remedy must not."""
    drugs_mod = pytest.importorskip("adapter.meds.drugs", reason="the drug map (adapter/meds) is not built")
    from adapter.demo.meds import (
        CONCOMITANT,
        LANTUS,
        METFORMIN,
        MIXTARD,
        NOVORAPID,
        SECOND_AGENT,
        UNKNOWN_DRUG,
    )
    from adapter.study import default_mappings_dir

    drug_map = drugs_mod.load_drug_map(default_mappings_dir())
    catalogue = [d for d, *_ in METFORMIN + SECOND_AGENT + CONCOMITANT] + [LANTUS, MIXTARD, NOVORAPID]
    for drug in catalogue:
        match = drug_map.resolve(drug.name)
        assert match.entry is not None, drug.name
        if drug.atc:
            assert match.entry.atc.code == drug.atc, drug.name
    with pytest.raises(drugs_mod.DrugNotFound):
        drug_map.resolve(UNKNOWN_DRUG.name)
