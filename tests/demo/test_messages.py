"""Every generated message splits into segments under a consistent MSH; files show the real-world shapes."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from tests.demo.conftest import RUN_FEED, hl7_files

framing = pytest.importorskip("adapter.hl7.framing", reason="the HL7 front door (adapter/hl7) is not built")
message_mod = pytest.importorskip("adapter.hl7.message")

EXPECTED = {
    "hl7": ("LIS", "VANHANH_LAB", {"ORU^R01^ORU_R01", "ORU^R01"}),
    "pharmacy": ("HIS", "VANHANH_HIS", {"RDE^O11^RDE_O11", "RAS^O17^RAS_O17"}),
    "feed": ("LIS", "VANHANH_LAB", {"ORU^R01^ORU_R01", "ORU^R01"}),
}


def _messages(path: Path) -> list[bytes]:
    return framing.split_messages(path.read_bytes())


@pytest.mark.parametrize("folder", ["hl7", "pharmacy", "feed"])
def test_every_message_has_a_consistent_msh(demo_run, folder):
    out, manifest = demo_run
    app, facility, types = EXPECTED[folder]
    ids: list[str] = []
    for path in hl7_files(out, folder):
        data = path.read_bytes()
        data.decode("utf-8")  # strict: every file is UTF-8
        for raw in _messages(path):
            msg = message_mod.parse_message(raw)
            msh = msg.segments[0]
            assert msh.name == "MSH"
            assert msh.raw(1) == "|" and msh.raw(2) == "^~\\&"
            assert (msh.value(3), msh.value(4)) == (app, facility)
            assert msh.raw(9) in types
            assert msh.value(12) in {"2.5.1", "2.3.1"}
            assert re.fullmatch(r"\d{14}(\+0700)?", msh.value(7))
            non_ascii = any(b > 127 for b in raw)
            if non_ascii:
                assert msh.value(18) == "UNICODE UTF-8", path.name
            assert all(re.fullmatch(r"[A-Z][A-Z0-9]{2}", s.name) for s in msg.segments)
            assert [s.name for s in msg.segments].count("PID") == 1
            ids.append(msh.value(10))
    assert len(ids) == len(set(ids)), "MSH-10 repeats"
    if folder == "hl7":
        assert len(ids) == manifest["outputs"]["hl7"]["messages"]
    if folder == "feed":
        assert len(ids) == manifest["outputs"]["hl7"]["messages"] + RUN_FEED


def test_oru_structure_and_order_identity(demo_run):
    """MSH PID [PV1] {[ORC] OBR [NTE] {OBX}}; a filler order number always belongs to one draw and panel."""
    out, _ = demo_run
    owner: dict[str, tuple[str, str, str]] = {}
    for path in hl7_files(out, "hl7"):
        for raw in _messages(path):
            msg = message_mod.parse_message(raw)
            names = "".join(f"{s.name}," for s in msg.segments)
            assert re.fullmatch(r"MSH,PID,(PV1,)?((ORC,)?OBR,(NTE,)?(OBX,)+)+", names) or (
                names.endswith("OBX,") and "cut" in msg.segments[-1].raw(3) + "cut"
            ), names
            mrn = msg.first("PID").value(3)
            for obr in msg.all("OBR"):
                key = (mrn, obr.value(7), obr.value(4))
                assert owner.setdefault(obr.value(3), key) == key


def test_batches_are_complete_and_files_vary(demo_run):
    out, manifest = demo_run
    layouts: Counter[str] = Counter()
    ends: Counter[str] = Counter()
    for path in hl7_files(out, "hl7"):
        data = path.read_bytes()
        ends["crlf" if b"\r\n" in data else "lf" if b"\n" in data else "cr"] += 1
        count = len(_messages(path))
        if data.startswith(b"FHS"):
            layouts["batch"] += 1
            bts = re.search(rb"BTS\|(\d+)", data)
            assert bts and int(bts.group(1)) == count and data.rstrip().endswith(b"FTS|1")
        elif path.name.startswith("LIS_"):
            layouts["concatenated"] += 1  # a day's messages, one after the other (sometimes just one)
        else:
            assert count == 1
            layouts["single"] += 1
    assert set(ends) == {"crlf", "lf", "cr"}
    assert dict(layouts) == manifest["outputs"]["hl7"]["layouts"]
    assert all(v > 0 for v in layouts.values()) and len(layouts) == 3


def test_the_quirks_are_all_there(demo_run):
    _, manifest = demo_run
    quirks = manifest["outputs"]["hl7"]["quirks"]
    for tag in (
        "unit:GLUC:mg/dL",
        "unit:CPEP:pmol/L",
        "unit:HBA1C:mmol/mol",
        "unit:INS:pmol/L",
        "no-offset",
        "preliminary",
        "corrected",
        "censored",
        "ascii-name",
        "coding:loinc",
        "coding:both",
        "version:2.3.1",
    ):
        assert quirks.get(tag, 0) > 0, tag
    assert manifest["outputs"]["meds.csv"]["codes"]["ATC"] > 0
    assert manifest["outputs"]["meds.csv"]["codes"]["RxNorm"] > 0
    assert manifest["outputs"]["pharmacy"]["messages"]["RAS^O17"] > 0


def test_faults_are_listed_and_where_they_say(demo_run):
    out, manifest = demo_run
    kinds = Counter(f["kind"] for f in manifest["faults"])
    assert kinds == {
        "hl7-truncated": 1,
        "hl7-unreadable-value": 1,
        "hl7-unknown-unit": 1,
        "meds-unknown-drug": 2,  # the CSV row and its RDE^O11
        "ae-bad-date": 1,
    }
    for fault in manifest["faults"]:
        text = (out / fault["file"]).read_text(encoding="utf-8")
        if "control_id" in fault:
            assert f"|{fault['control_id']}|" in text
        else:
            line = text.splitlines()[fault["line"] - 1]
            if fault["kind"] == "ae-bad-date":
                assert re.search(r",\d{4}-(1[3-9]|2\d|3[01])-\d{2},", line), line
            else:
                assert "Viên tiểu đường" in line
        if fault["input"] == "hl7":
            assert f"|{fault['control_id']}|" in (out / fault["feed_file"]).read_text(encoding="utf-8")
