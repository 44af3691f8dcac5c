"""Conversion behaviour: identity, versions, Provenance, privacy, accounts, routing."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import pytest

from adapter.converters import ConvertContext, converter
from adapter.hl7 import Message, split_messages
from adapter.hl7.convert import convert_files, convert_message
from adapter.ids import patient_id, sha256_hex, stable_id
from adapter.model import Conversion
from adapter.ndjson import iter_resources, merge_accounts, merge_resources
from tests.hl7.conftest import CORPUS, corpus_files, validate

FACILITY = "VANHANH"


def _convert(ctx: ConvertContext, *names: str) -> Conversion:
    return convert_files([CORPUS / f"{name}.hl7" for name in names], ctx)


def _by_id(conversion: Conversion) -> dict[str, dict]:
    return {r["id"]: r for r in conversion.resources}


def test_the_registry_finds_this_converter() -> None:
    assert converter("hl7") is convert_files


def test_identity_follows_the_design_rules(hl7_ctx: ConvertContext) -> None:
    conversion = _convert(hl7_ctx, "panel-full")
    resources = _by_id(conversion)
    glucose = resources[stable_id("obs", FACILITY, "F190605001", "GLU-F^L", "")]
    assert glucose["code"]["coding"][0] == {
        "system": "http://loinc.org",
        "code": "14771-0",
        "display": "Fasting glucose [Moles/volume] in Serum or Plasma",
    }
    assert glucose["subject"] == {"reference": f"Patient/{patient_id('NCT03943940', 'S001')}"}
    assert glucose["valueQuantity"] == {
        "value": 8.4,
        "unit": "mmol/L",
        "system": "http://unitsofmeasure.org",
        "code": "mmol/L",
    }
    assert glucose["effectiveDateTime"] == "2019-06-05T07:10:00+07:00"
    assert glucose["note"] == [{"text": "Bệnh nhân nhịn ăn 10 giờ"}]
    report = resources[stable_id("dr", FACILITY, "F190605001")]
    assert report["result"] == [
        {"reference": f"Observation/{stable_id('obs', FACILITY, 'F190605001', 'GLU-F^L', '')}"},
        {"reference": f"Observation/{stable_id('obs', FACILITY, 'F190605001', 'HBA1C^L', '')}"},
    ]
    assert report["issued"] == "2019-06-05T08:14:00+07:00"
    (raw,) = split_messages((CORPUS / "panel-full.hl7").read_bytes())
    prov = resources[stable_id("prov", FACILITY, "VH0001", sha256_hex(raw))]
    assert prov["recorded"] == "2019-06-05T08:15:00+07:00"
    produced = [f"{r['resourceType']}/{r['id']}" for r in conversion.resources if r is not prov]
    assert [t["reference"] for t in prov["target"]] == produced
    identifiers = [e["what"]["identifier"] for e in prov["entity"]]
    assert identifiers == [
        {"system": "https://vanhanh.example.org/fhir/hl7v2-control-id", "value": "VH0001"},
        {"system": "https://vanhanh.example.org/fhir/hl7v2-message-sha256", "value": sha256_hex(raw)},
    ]
    (account,) = conversion.accounts
    assert account.sha256 == sha256_hex(raw) and account.outcome == "converted"
    assert sorted(account.resources) == sorted([*produced, f"Provenance/{prov['id']}"])
    assert {r["resourceType"] for r in conversion.resources} == {
        "DiagnosticReport",
        "Observation",
        "Provenance",
    }


def test_same_message_in_any_line_ending_or_framing_has_the_same_identity(hl7_ctx: ConvertContext) -> None:
    raw = (CORPUS / "panel-full.hl7").read_bytes()
    variants = [
        raw,
        raw.replace(b"\r", b"\r\n"),
        raw.replace(b"\r", b"\n"),
        b"\xef\xbb\xbf\x0b" + raw + b"\x1c\r",
    ]
    outputs = [convert_message(data, hl7_ctx, "x", 1).resources for data in variants]
    assert all(out == outputs[0] for out in outputs)


def test_preliminary_then_final_then_corrected_is_one_observation_in_its_latest_version(
    hl7_ctx: ConvertContext, tmp_path: Path
) -> None:
    messages = split_messages((CORPUS / "status-sequence.hl7").read_bytes())
    glucose_id = stable_id("obs", FACILITY, "F190620001", "GLU-F^L", "")
    versions = []
    for index, raw in enumerate(messages[:3], 1):
        (obs,) = [r for r in convert_message(raw, hl7_ctx, "s", index).resources if r["id"] == glucose_id]
        versions.append((obs["status"], obs["valueQuantity"]["value"]))
    assert versions == [("preliminary", 8.0), ("final", 8.1), ("corrected", 8.2)]
    # merged in any order, one Observation, the correction
    for order in (messages[:3], messages[2::-1], [messages[1], messages[2], messages[0]]):
        folder = tmp_path / str(hash(tuple(order)))
        for raw in order:
            merge_resources(folder, convert_message(raw, hl7_ctx, "s", 1).resources)
        (obs,) = [r for r in iter_resources(folder, "Observation") if r["id"] == glucose_id]
        assert (obs["status"], obs["valueQuantity"]["value"]) == ("corrected", 8.2)
    # convert_files keeps only the newest version of each resource (a transaction may name it once)
    out = _by_id(_convert(hl7_ctx, "status-sequence"))
    assert out[glucose_id]["status"] == "corrected"
    assert len(out) == len(
        {(r["resourceType"], r["id"]) for r in _convert(hl7_ctx, "status-sequence").resources}
    )


def test_cancel_delete_and_same_second_versions(hl7_ctx: ConvertContext) -> None:
    out = _by_id(_convert(hl7_ctx, "status-sequence"))

    def obs(filler: str, code: str) -> dict:
        return out[stable_id("obs", FACILITY, filler, code, "")]

    tnfa = obs("F190620002", "TNFA^L")
    assert tnfa["status"] == "cancelled" and not any(k.startswith("value") for k in tnfa)
    assert obs("F190620002", "IL1B^L")["status"] == "entered-in-error"
    assert obs("F190620002", "CPEP^L")["status"] == "entered-in-error"
    assert obs("F190620002", "HBA1C^L")["status"] == "final"  # U: final without retransmission
    assert stable_id("obs", FACILITY, "F190620002", "GLU-F^L", "") not in out  # N: not asked
    assert out[stable_id("dr", FACILITY, "F190620002")]["status"] == "cancelled"
    # a preliminary sent in the same second as the final (after it) does not win
    tie = obs("F190620003", "GLU-F^L")
    assert (tie["status"], tie["valueQuantity"]["value"]) == ("final", 9.0)


def test_nothing_identifying_leaves_the_adapter(hl7_ctx: ConvertContext) -> None:
    conversion = convert_files(corpus_files(), hl7_ctx)
    for resource in conversion.resources:
        validate(resource)
        assert resource["resourceType"] != "Patient"
    text = json.dumps(conversion.resources, ensure_ascii=False)
    accounts = json.dumps([a.as_json() for a in conversion.accounts], ensure_ascii=False)
    secrets = [
        "BN2019",  # MRNs, enrolled or not
        "079165000123",  # national id in PID-3
        "NGUYỄN",
        "THỊ HOA",
        "TRẦN",
        "VĂN MINH",
        "LÊ^",
        "QUANG HUY",
        "PHẠM",
        "MÜLLER",
        "JÜRGEN",
        "1965-03-02",
        "19650302",
        "19581130",
        "Lê Lợi",
        "Nguyễn Huệ",  # birth dates, addresses
        "F190605001",
        "PL0001",
        "OP20240305001",  # order and visit numbers stay inside
        "BS001",
        "Thành",  # ordering provider
        "Khoa Nội tiết",  # Z-segment content
    ]
    for secret in secrets:
        assert secret not in text, secret
        assert secret not in accounts, secret
    values = [
        "065.88",
        "<0.1",
        "Mẫu tán huyết",
        "Bệnh nhân nhịn ăn",
        "Hémolyse",
        "7.20",
        "dòng 1",
        "8.4",
        "12.6",
    ]
    for value in values:
        assert value not in accounts, value


def test_every_segment_is_accounted_for(hl7_ctx: ConvertContext) -> None:
    for path in corpus_files():
        messages = split_messages(path.read_bytes())
        conversion = convert_files([path], hl7_ctx)
        for account in conversion.accounts:
            if account.outcome not in ("converted", "ignored"):
                assert account.reason and not account.segments and not account.resources
                continue
            raw = messages[account.index - 1]
            count = raw.count(b"\r")
            assert [s.position for s in account.segments] == list(range(1, count + 1)), path.name
            for segment in account.segments:
                assert segment.status in ("mapped", "ignored")
                if segment.status == "ignored":
                    assert segment.reason, (path.name, segment)


def test_strangers_are_counted_without_anything_else(hl7_ctx: ConvertContext) -> None:
    conversion = _convert(hl7_ctx, "multi-message")
    stranger = [a for a in conversion.accounts if a.outcome == "not-enrolled"]
    assert len(stranger) == 1
    assert stranger[0].as_json() == {
        "kind": "hl7",
        "source": "multi-message.hl7",
        "index": 3,
        "outcome": "not-enrolled",
        "control_id": "VH0302",
        "message_type": "ORU^R01",
        "reason": "patient not enrolled",
        "resources": [],
    }
    outcomes = [a.outcome for a in conversion.accounts]
    assert outcomes == ["rejected", "converted", "not-enrolled", "rejected", "converted"]


def test_one_bad_message_never_stops_the_others(hl7_ctx: ConvertContext) -> None:
    conversion = _convert(hl7_ctx, "rejects")
    reasons = [(a.outcome, a.reason) for a in conversion.accounts]
    assert reasons == [
        ("rejected", "no PID segment"),
        ("rejected", "MSH-7 (date/time of message) is missing or unreadable"),
        (
            "rejected",
            "OBX at segment 4: study result without filler or placer order number (OBR-3/ORC-3, OBR-2/ORC-2)",
        ),
        ("rejected", "PID-3 identifiers match two different enrolled subjects"),
        ("rejected", "MSH-2 encoding characters are missing, repeated or invalid"),
        ("rejected", "unsupported message type ACK^R01"),
        ("rejected", "unsupported message type ORU^W01"),
        ("converted", None),
    ]
    assert [r["resourceType"] for r in conversion.resources] == [
        "DiagnosticReport",
        "Observation",
        "Provenance",
    ]


def test_unreadable_and_empty_files_are_reported(hl7_ctx: ConvertContext, tmp_path: Path) -> None:
    empty = tmp_path / "empty.hl7"
    empty.write_bytes(b"\r\n")
    conversion = convert_files([tmp_path / "missing.hl7", empty], hl7_ctx)
    assert [(a.source, a.index, a.outcome) for a in conversion.accounts] == [
        ("missing.hl7", 0, "rejected"),
        ("empty.hl7", 0, "rejected"),
    ]
    assert conversion.accounts[0].reason.startswith("cannot read the file")


def test_convert_message_takes_one_message_as_received(hl7_ctx: ConvertContext) -> None:
    raw = (CORPUS / "bom.hl7").read_bytes()
    framed = b"\x0b" + raw.replace(b"\r", b"\n") + b"\x1c\r"
    out = convert_message(framed, hl7_ctx, "mllp:127.0.0.1", 7)
    assert [(a.source, a.index, a.outcome) for a in out.accounts] == [("mllp:127.0.0.1", 7, "converted")]
    two = convert_message(raw + raw, hl7_ctx, "mllp:x", 1)
    assert (two.accounts[0].outcome, two.accounts[0].reason) == ("rejected", "expected one message, found 2")
    assert two.accounts[0].control_id == "VH0203" and two.resources == []
    none = convert_message(b"\x0b\x1c\r", hl7_ctx, "mllp:x", 2)
    assert none.accounts[0].reason == "no HL7 message in the input"


def test_pharmacy_messages_go_to_the_meds_hook_after_the_roster_check(
    hl7_ctx: ConvertContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    msh = "MSH|^~\\&|HIS|VANHANH|ADAPTER|TRIAL|20190628080000||RDE^O11^RDE_O11|RX1|P|2.5.1"
    enrolled = f"{msh}\rPID|1||BN20190001^^^VANHANH^MR\rORC|NW|RX0001\r".encode()
    stranger = enrolled.replace(b"BN20190001", b"BN20199999")
    calls: list[tuple] = []

    def hook(message: Message, ctx: ConvertContext, source: str, index: int) -> Conversion:
        calls.append((type(message), message.header.message_type, source, index))
        return Conversion()

    module = types.ModuleType("adapter.meds.hl7")
    module.convert_pharmacy_message = hook  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "adapter.meds.hl7", module)
    assert convert_message(stranger, hl7_ctx, "f", 1).accounts[0].outcome == "not-enrolled"
    convert_message(enrolled, hl7_ctx, "f", 2)
    assert calls == [(Message, "RDE^O11", "f", 2)]
    monkeypatch.setattr("adapter.hl7.convert.pharmacy_hook", lambda: None)
    account = convert_message(enrolled, hl7_ctx, "f", 3).accounts[0]
    assert (account.outcome, account.reason) == (
        "rejected",
        "unsupported message type RDE^O11 (no pharmacy converter)",
    )


def test_an_internal_error_rejects_one_message_without_leaking_content(
    hl7_ctx: ConvertContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(*args: object) -> None:
        raise ValueError("invalid literal: NGUYỄN THỊ HOA")

    monkeypatch.setattr("adapter.hl7.convert.map_oru", boom)
    account = _convert(hl7_ctx, "bom").accounts[0]
    assert (account.outcome, account.reason) == ("rejected", "internal error while converting (ValueError)")


def test_enrolled_patient_without_study_results_is_ignored(hl7_ctx: ConvertContext) -> None:
    raw = (
        b"MSH|^~\\&|LIS|VANHANH|A|T|20190701080000||ORU^R01|X1|P|2.5.1\r"
        b"PID|1||BN20190001^^^VANHANH^MR\rOBR|1||F1^LIS|CBC^Blood count^L|||20190701070000\r"
        b"OBX|1|NM|WBC^WBC^L||7.1|G/L|||||F\r"
    )
    out = convert_message(raw, hl7_ctx, "f", 1)
    assert out.resources == []
    (account,) = out.accounts
    assert (account.outcome, account.reason) == ("ignored", "no study results in the message")
    assert [(s.segment, s.status) for s in account.segments] == [
        ("MSH", "mapped"),
        ("PID", "mapped"),
        ("OBR", "ignored"),
        ("OBX", "ignored"),
    ]


def test_convert_cli_writes_the_bulk_layout(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from adapter.cli import app

    out = tmp_path / "out"
    result = CliRunner().invoke(
        app,
        [
            "--state-dir",
            str(tmp_path / "state"),
            "convert",
            "hl7",
            str(CORPUS / "panel-full.hl7"),
            str(CORPUS / "rejects.hl7"),
            "--roster",
            str(CORPUS / "roster.csv"),
            "--out",
            str(out),
            "--json",
        ],
    )
    assert result.exit_code == 1, result.output  # rejects.hl7 holds rejected messages
    assert sorted(p.name for p in out.iterdir()) == [
        "DiagnosticReport.ndjson",
        "Observation.ndjson",
        "Provenance.ndjson",
        "messages.ndjson",
    ]
    merge_accounts(out, [])  # the accounts file is readable by the shared merge
