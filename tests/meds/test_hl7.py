"""HL7 v2 pharmacy messages: RDE^O11 -> MedicationStatement, RAS^O17 -> MedicationAdministration."""

from __future__ import annotations

import json

import pytest

from adapter.hl7.convert import convert_files as convert_hl7_files
from adapter.hl7.message import parse_message
from adapter.meds.hl7 import convert_pharmacy_message
from tests.meds.helpers import FIXTURES, assert_golden, context, validate

PHARMACY = FIXTURES / "meds" / "pharmacy.hl7"
MSH = "MSH|^~\\&|PHARM|VANHANH|ADAPTER|STUDY|{ts}||{type}|{cid}|P|2.5.1"
PID = "PID|1||MRN1001^^^VH^MR||NGUYEN^VAN A||19650402|M"


@pytest.fixture()
def ctx(study):
    return context(study)


def _message(*segments: str, ts: str = "20240115083000", kind: str = "RDE^O11^RDE_O11", cid: str = "M1"):
    return parse_message(("\r".join([MSH.format(ts=ts, type=kind, cid=cid), *segments]) + "\r").encode())


def _rde(rxe: str, tq1: str = "TQ1|1||BID||||20240115", orc: str = "ORC|NW|CPOE-1|PH-1", **kw):
    return _message(PID, orc, rxe, tq1, "RXR|SC^Subcutaneous^HL70162", **kw)


def _convert(ctx, message):
    result = convert_pharmacy_message(message, ctx, "test.hl7", 1)
    for resource in result.resources:
        validate(resource)
    return result


def _statement(result):
    return next(r for r in result.resources if r["resourceType"] == "MedicationStatement")


def test_golden_fixture_through_the_hl7_front_door(ctx, tmp_path):
    result = convert_hl7_files([PHARMACY], ctx)
    assert_golden(result, FIXTURES / "meds" / "expected-hl7", tmp_path)


def test_fixture_accounts_validity_and_privacy(ctx):
    result = convert_hl7_files([PHARMACY], ctx)
    assert [a.outcome for a in result.accounts] == [
        "converted", "converted", "converted", "converted", "converted",
        "not-enrolled", "rejected", "rejected", "converted",
    ]  # fmt: skip
    assert [a.reason for a in result.rejected] == [
        "RXE-2: 'Humalog Mix 25' is not in drugs.yaml",
        "RXE-5: an insulin dose must be in units (IU/U/units)",
    ]
    for resource in result.resources:
        validate(resource)
    dumped = json.dumps(result.resources, ensure_ascii=False) + json.dumps(
        [a.as_json() for a in result.accounts]
    )
    for secret in ("MRN1001", "MRN1002", "NGUYEN", "TRAN", "123456789", "PH-1001", "CPOE-5001", "Tiêm trước"):
        assert secret not in dumped
    for account in result.accounts:
        if account.outcome == "converted":  # every segment of every converted message is accounted for
            assert [s.position for s in account.segments] == list(range(1, len(account.segments) + 1))


def test_new_change_and_discontinue_are_versions_of_one_statement(ctx):
    result = convert_hl7_files([PHARMACY], ctx)
    ids = [a.resources[0] for a in result.accounts[:3]]
    assert len(set(ids)) == 1
    statement = next(r for r in result.resources if f"MedicationStatement/{r['id']}" == ids[0])
    assert statement["status"] == "stopped"
    assert statement["effectivePeriod"] == {"start": "2024-01-15", "end": "2024-03-01T09:00:00+07:00"}
    assert statement["dosage"][0]["doseAndRate"][0]["doseQuantity"]["value"] == 24
    assert statement["dosage"][0]["timing"]["repeat"] == {"frequency": 2, "period": 1, "periodUnit": "d"}
    assert (
        statement["medicationCodeableConcept"]["coding"][0]["code"] == "A10AD01"
    )  # via the alternate triplet
    assert statement["meta"]["lastUpdated"].startswith("2024-03-01T02:00:00")


def test_v23_timing_in_rxe1_and_rxnorm_code(ctx):
    result = convert_hl7_files([PHARMACY], ctx)
    metformin = next(
        r for r in result.resources if r.get("medicationCodeableConcept", {}).get("text") == "Metformin 500mg"
    )
    assert metformin["effectivePeriod"] == {"start": "2024-01-10"}
    assert metformin["status"] == "active"
    assert metformin["dosage"][0]["timing"]["repeat"]["frequency"] == 2
    assert metformin["dosage"][0]["route"] == {"text": "oral"}
    assert metformin["dosage"][0]["doseAndRate"][0]["doseQuantity"]["code"] == "mg"


def test_administrations(ctx):
    result = convert_hl7_files([PHARMACY], ctx)
    given, refused = [r for r in result.resources if r["resourceType"] == "MedicationAdministration"]
    assert given["status"] == "completed"
    assert given["effectiveDateTime"] == "2024-01-15T07:05:00+07:00"
    assert given["dosage"]["dose"] == {
        "value": 20,
        "unit": "IU",
        "system": "http://unitsofmeasure.org",
        "code": "[IU]",
    }
    assert given["dosage"]["route"] == {"text": "subcutaneous"}
    assert refused["status"] == "not-done" and "dose" not in refused["dosage"]
    ras = result.accounts[4]
    orc = next(s for s in ras.segments if s.segment == "ORC")
    assert sorted(orc.resources) == sorted(f"MedicationAdministration/{r['id']}" for r in (given, refused))


@pytest.mark.parametrize(
    ("tq1", "times"),
    [
        ("TQ1|1||QD||||20240115", 1),
        ("TQ1|1||TID||||20240115", 3),
        ("TQ1|1||Q8H||||20240115", 3),
        ("TQ1|1||Q6H||||20240115", 4),
        ("TQ1|1||QHS||||20240115", 1),
        ("TQ1|1|||0700~1200~1800|||20240115", 3),
    ],
)
def test_repeat_patterns(ctx, tq1, times):
    result = _convert(ctx, _rde("RXE||A10AB05^NovoRapid^ATC|6||U", tq1=tq1))
    assert _statement(result)["dosage"][0]["timing"]["repeat"]["frequency"] == times


def test_prn_has_no_fixed_frequency(ctx):
    result = _convert(ctx, _rde("RXE||A10AB05^NovoRapid^ATC|4||U", tq1="TQ1|1||PRN||||20240115"))
    assert "timing" not in _statement(result)["dosage"][0]


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        (_rde("RXE||A10AB05^NovoRapid^ATC|6||U", tq1="TQ1|1||Q3W||||20240115"), "TQ1-3: repeat pattern"),
        (
            _rde("RXE||A10AB05^NovoRapid^ATC|6||U", tq1="TQ1|1||BID||||2024-01-15"),
            "TQ1-7: unreadable date/time",
        ),
        (_rde("RXE||A10AB05^NovoRapid^ATC|6||U", tq1="TQ1|1||BID"), "TQ1-7: no start date/time"),
        (_rde("RXE||A10AB05^NovoRapid^ATC|six||U"), "RXE-3: not a number"),
        (_rde("RXE||A10AB05^NovoRapid^ATC|6||spoons"), "RXE-5: not a known dose unit"),
        (_rde("RXE||^^|6||U"), "RXE-2: empty drug code"),
        (_rde("RXE||A10AB05^NovoRapid^ATC|6||U", orc="ORC|NW"), "ORC-3: no filler (ORC-3) or placer (ORC-2)"),
        (
            _message("PV1|1", "ORC|NW|1|2", "RXE||A10AB05^x^ATC|6||U"),
            "PID: expected one PID segment, found 0",
        ),
        (_rde("RXE||A10AB05^NovoRapid^ATC|6||U", ts="garbage"), "MSH-7: date/time of message is missing"),
    ],
)
def test_bad_messages_are_rejected_with_segment_and_field(ctx, message, reason):
    result = convert_pharmacy_message(message, ctx, "test.hl7", 7)
    assert result.resources == []
    (account,) = result.accounts
    assert account.outcome == "rejected"
    assert account.reason.startswith(reason), account.reason
    assert (account.kind, account.source, account.index, account.control_id) == ("hl7", "test.hl7", 7, "M1")


def test_cancelled_and_held_orders(ctx):
    cancelled = _convert(ctx, _rde("RXE||A10AB05^NovoRapid^ATC|6||U", orc="ORC|CA|CPOE-1|PH-1"))
    assert _statement(cancelled)["status"] == "not-taken"
    held = _convert(ctx, _rde("RXE||A10AB05^NovoRapid^ATC|6||U", orc="ORC|HD|CPOE-1|PH-1"))
    assert _statement(held)["status"] == "on-hold"
    assert _statement(cancelled)["id"] == _statement(held)["id"]


def test_placer_and_filler_numbers_never_collide(ctx):
    filler = _convert(ctx, _rde("RXE||A10AB05^NovoRapid^ATC|6||U", orc="ORC|NW||X1"))
    placer = _convert(ctx, _rde("RXE||A10AB05^NovoRapid^ATC|6||U", orc="ORC|NW|X1"))
    assert _statement(filler)["id"] != _statement(placer)["id"]


def test_stranger_and_non_pharmacy_messages(ctx):
    stranger = _message("PID|1||MRN9999", "ORC|NW||X1", "RXE||A10AB05^x^ATC|6||U")
    assert _convert(ctx, stranger).accounts[0].outcome == "not-enrolled"
    oru = _message(PID, "OBR|1", kind="ORU^R01")
    assert _convert(ctx, oru).accounts[0].reason == "not a pharmacy message: ORU^R01"


def test_order_without_rxe_is_ignored_not_lost(ctx):
    result = _convert(ctx, _message(PID, "ORC|NW|1|2"))
    (account,) = result.accounts
    assert (account.outcome, account.reason) == ("ignored", "no RXE segment to map")
    assert [s.status for s in account.segments] == ["mapped", "mapped", "ignored"]


def test_deterministic(ctx):
    assert convert_hl7_files([PHARMACY], ctx).resources == convert_hl7_files([PHARMACY], ctx).resources


def test_who_atc_as_hl7_table_0396_wc_and_one_rxr_after_several_rxa(ctx):
    code = "MIX30^Mixtard 30^99VH^A10AD01^insulin (human)^WC"
    message = _message(
        PID,
        "ORC|RE|RX24011500001^HIS",
        f"RXA|0|1|20240115063000|20240115063000|{code}|20|U|INJ||||||||||||CP",
        f"RXA|0|2|20240115173000|20240115173000|{code}|10|U|INJ||||||||||||CP",
        "RXR|SC^Tiêm dưới da^HL70162",
        kind="RAS^O17^RAS_O17",
    )
    result = _convert(ctx, message)
    morning, evening = (r for r in result.resources if r["resourceType"] == "MedicationAdministration")
    assert morning["medicationCodeableConcept"]["coding"][0]["code"] == "A10AD01"
    assert morning["dosage"]["route"] == evening["dosage"]["route"] == {"text": "subcutaneous"}
    assert (morning["dosage"]["dose"]["value"], evening["dosage"]["dose"]["value"]) == (20, 10)
    assert morning["id"] != evening["id"]
