"""The watched folder: only settled files are read, each taken in once, then moved to done/ or failed/."""

from __future__ import annotations

import os
import time

import pytest

from adapter.mllp.receive import ReceivePolicy, RosterGate
from adapter.store import open_store
from adapter.watch import scan, sniff_kind, stable_files
from tests.mllp.helpers import oru

MEDS = (
    "mrn,drug,dose,unit,times_per_day,route,start_date,end_date\n"
    "MRN1001,Metformin,500,mg,2,oral,2019-01-01,\n"
)


@pytest.fixture()
def folder(tmp_path):
    return tmp_path / "watch"


@pytest.fixture()
def store(tmp_path):
    with open_store(tmp_path / "state") as s:
        yield s


def _scan(folder, store, roster=None, settle=0.0, **kw):
    return scan(
        folder, store, ReceivePolicy(), RosterGate.fixed(roster), folder.parent / "watch.lock", settle, **kw
    )


def _old(path):
    past = time.time() - 60
    os.utime(path, (past, past))


def test_files_are_taken_by_folder_kind_split_into_messages_and_moved(folder, store, roster):
    _scan(folder, store)  # creates the layout
    (folder / "hl7" / "batch.hl7").write_bytes(
        b"FHS|^~\\&\rBHS|^~\\&\r" + oru("F1") + oru("F2", "MRN9999") + oru("F3") + b"BTS|3\rFTS|1\r"
    )
    (folder / "meds" / "meds.csv").write_text(MEDS)
    for p in (folder / "hl7" / "batch.hl7", folder / "meds" / "meds.csv"):
        _old(p)
    result = _scan(folder, store, roster)
    assert (result.files, result.messages, result.dropped, result.failed) == (2, 3, 1, 0)
    rows = store.conn.execute("SELECT kind, source, position, control_id FROM inbox ORDER BY id").fetchall()
    assert rows == [
        ("hl7", "watch:hl7/batch.hl7", 1, "F1"),
        ("hl7", "watch:hl7/batch.hl7", 3, "F3"),  # the stranger (message 2) is not kept
        ("meds", "watch:meds/meds.csv", 1, None),
    ]
    assert sorted(p.name for p in (folder / "done" / "hl7").iterdir()) == ["batch.hl7"]
    assert (folder / "done" / "meds" / "meds.csv").read_text() == MEDS
    assert not list((folder / "hl7").iterdir())


def test_files_being_written_are_left_alone(folder, store):
    _scan(folder, store)
    part = folder / "hl7" / "big.hl7.part"
    part.write_bytes(oru("P1"))
    _old(part)
    fresh = folder / "hl7" / "fresh.hl7"
    fresh.write_bytes(oru("P2"))  # modified just now: not settled yet
    hidden = folder / "hl7" / ".tmp-upload"
    hidden.write_bytes(oru("P3"))
    result = _scan(folder, store, settle=5.0, sleep=lambda s: None)  # the second look comes at once
    assert result.files == 0 and result.waiting == 1
    assert part.exists() and fresh.exists() and hidden.exists()
    part.rename(folder / "hl7" / "big.hl7")  # the writer's atomic rename when done
    _old(folder / "hl7" / "big.hl7")
    _old(fresh)
    assert _scan(folder, store, settle=5.0, sleep=lambda s: None).files == 2


def test_a_file_growing_between_the_two_looks_waits(folder, store):
    _scan(folder, store)
    growing = folder / "hl7" / "growing.hl7"
    growing.write_bytes(oru("G1"))
    _old(growing)

    def writer_appends(seconds):
        with growing.open("ab") as f:
            f.write(oru("G2"))
        _old(growing)  # even with an old mtime the size changed

    ready, waiting = stable_files(folder, 0.1, sleep=writer_appends)
    assert ready == [] and waiting == 1


def test_crash_between_commit_and_move_does_not_take_a_file_twice(folder, store):
    _scan(folder, store)
    path = folder / "hl7" / "once.hl7"
    path.write_bytes(oru("O1"))
    _old(path)
    _scan(folder, store)
    os.replace(folder / "done" / "hl7" / "once.hl7", path)  # as if the move had not happened
    result = _scan(folder, store)
    assert result.duplicates == 1 and result.messages == 0
    assert store.conn.execute("SELECT count(*) FROM inbox").fetchone()[0] == 1
    assert not path.exists()


def test_unusable_files_go_to_failed_with_a_reason(folder, store):
    _scan(folder, store)
    (folder / "mystery.bin").write_bytes(b"\x00\x01\x02")
    (folder / "empty.hl7").write_bytes(b"")
    (folder / "hl7" / "junk.hl7").write_bytes(b"this is not hl7\n")
    (folder / "big.hl7").write_bytes(oru("B1"))
    for p in folder.glob("**/*"):
        if p.is_file():
            _old(p)
    result = _scan(folder, store, max_file_bytes=100)
    assert result.failed == 4
    reasons = {p.name: p.read_text().strip() for p in (folder / "failed").glob("*.reason.txt")}
    assert reasons["mystery.bin.reason.txt"].startswith("cannot tell the kind")
    assert reasons["empty.hl7.reason.txt"] == "empty file"
    assert reasons["junk.hl7.reason.txt"].startswith("no usable HL7 message")
    assert reasons["big.hl7.reason.txt"].startswith("too large")
    assert [d.reason for d in store.dead_letters()] == ["not an HL7 message: no MSH segment"]


def test_top_level_kind_from_extension_or_content(tmp_path):
    assert sniff_kind(tmp_path / "x.txt", b"\xef\xbb\xbfMSH|^~\\&|") == "hl7"
    assert sniff_kind(tmp_path / "x.csv", MEDS.encode()) == "meds"
    assert sniff_kind(tmp_path / "x.csv", b"subject_id,term,onset\n") == "ae"
    assert sniff_kind(tmp_path / "x.xml", b"<GIAMDINHHS>") == "bhyt"
    assert sniff_kind(tmp_path / "x.csv", b"a,b\n") is None


def test_a_concurrent_scan_returns_at_once(folder, store):
    from adapter.store.lock import FileLock

    _scan(folder, store)
    (folder / "hl7" / "a.hl7").write_bytes(oru("C1"))
    _old(folder / "hl7" / "a.hl7")
    with FileLock(folder.parent / "watch.lock"):
        assert _scan(folder, store).files == 0
    assert _scan(folder, store).files == 1


def test_dropped_files_of_every_kind_reach_the_server_through_sync(tmp_path):
    """Watched folder -> inbox -> converters (meds, ae, hl7) -> outbox -> server, files moved to done/."""
    import shutil

    from adapter.converters import converter
    from adapter.push import dedupe
    from tests.sync.fakefhir import FakeFhir
    from tests.sync.helpers import context, make_settings, sync_once

    fixtures = __import__("pathlib").Path(__file__).resolve().parents[2] / "fixtures"
    fake = FakeFhir(referential=False)
    fake.start()
    try:
        watch = tmp_path / "watch"
        settings = make_settings(tmp_path / "state", fake.base_url, watch_dir=watch, bundle_size=20)
        shutil.copy(fixtures / "meds" / "roster.csv", settings.state_dir / "roster.csv")
        for kind, name in (("meds", "meds/his-export.csv"), ("ae", "ae/crf-ae.csv")):
            (watch / kind).mkdir(parents=True)
            shutil.copy(fixtures / name, watch / kind / name.split("/")[1])
            _old(watch / kind / name.split("/")[1])
        (watch / "results.hl7").write_bytes(oru("W1", "MRN1002"))  # top level: kind from the content
        _old(watch / "results.hl7")
        ctx = context(settings)
        expected = {}
        for kind, path in (("meds", watch / "meds" / "his-export.csv"), ("ae", watch / "ae" / "crf-ae.csv")):
            for r in dedupe(converter(kind)([path], ctx).resources):
                expected[f"{r['resourceType']}/{r['id']}"] = r
        for r in dedupe(converter("hl7")([watch / "results.hl7"], ctx).resources):
            expected[f"{r['resourceType']}/{r['id']}"] = r
        report = sync_once(settings)
        assert report.watch.files == 3 and report.exit_code in (0, 1)
        assert {k for k in expected} <= set(fake.resources)
        assert fake.resources == expected
        assert sorted(p.name for p in (watch / "done").rglob("*") if p.is_file()) == [
            "crf-ae.csv",
            "his-export.csv",
            "results.hl7",
        ]
        types = {k.split("/")[0] for k in fake.resources}
        assert {"MedicationStatement", "AdverseEvent", "Observation"} <= types
    finally:
        fake.stop()


def test_a_file_that_changes_while_it_is_read_waits_for_the_next_scan(folder, store, monkeypatch):
    import adapter.watch as watch

    path = folder / "meds" / "late.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("mrn,drug,dose,unit,times_per_day,route,start_date,end_date\n", encoding="utf-8")
    real = watch._file_sha256

    def grows(p):  # the writer appends right after the checksum was taken
        digest = real(p)
        with p.open("a", encoding="utf-8") as handle:
            handle.write("MRN1001,metformin,500,mg,2,PO,2024-01-01,\n")
        return digest

    monkeypatch.setattr(watch, "_file_sha256", grows)
    first = _scan(folder, store)
    assert (first.files, first.waiting) == (0, 1) and not path.exists()
    assert (folder / ".processing" / "meds" / "late.csv").is_file()  # claimed, kept for the next scan
    assert store.pending_items() == []
    monkeypatch.setattr(watch, "_file_sha256", real)
    second = _scan(folder, store)
    assert second.files == 1 and (folder / "done" / "meds" / "late.csv").is_file()
    (item,) = store.pending_items()
    assert store.body(item.id).endswith(b"2024-01-01,\n")


def test_a_file_re_exported_under_the_same_name_while_the_first_is_taken_is_taken_too(
    folder, store, monkeypatch
):
    import adapter.watch as watch

    path = folder / "ae" / "export.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    header = "subject_id,term,onset,resolved,severity,serious,related,outcome\n"
    path.write_text(header + "S001,Fever,2019-06-13,,mild,no,Possible,recovered\n", encoding="utf-8")
    real = watch.take_file

    def producer_writes_again(*args, **kwargs):
        real(*args, **kwargs)  # the first version is committed; the HIS now writes the next one
        path.write_text(header + "S001,Headache,2019-06-20,,mild,no,Unlikely,recovered\n", encoding="utf-8")

    monkeypatch.setattr(watch, "take_file", producer_writes_again)
    assert _scan(folder, store).files == 1
    monkeypatch.setattr(watch, "take_file", real)
    assert path.is_file()  # the new version was not moved to done/ unread
    assert _scan(folder, store).files == 1
    bodies = [store.body(i.id) for i in store.pending_items()]
    assert [b"Fever" in b for b in bodies] == [True, False] and b"Headache" in bodies[1]


def test_a_large_hl7_file_is_committed_in_batches_and_a_crash_half_way_duplicates_nothing(
    folder, store, roster, monkeypatch
):
    import adapter.watch as watch

    path = folder / "hl7" / "big.hl7"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(oru(f"B{n:04d}", "MRN1001") for n in range(250)))
    monkeypatch.setattr(watch, "FILE_BATCH_MESSAGES", 100)
    real = watch.commit_message
    calls = []

    def crash_at_150(store_, raw, *args, **kwargs):
        calls.append(1)
        if len(calls) == 150:
            raise OSError("simulated crash")
        return real(store_, raw, *args, **kwargs)

    monkeypatch.setattr(watch, "commit_message", crash_at_150)
    first = _scan(folder, store, roster)
    assert first.files == 0 and len(store.pending_items(limit=1000)) == 100  # the first batch is in
    monkeypatch.setattr(watch, "commit_message", real)
    second = _scan(folder, store, roster)
    assert (second.files, second.messages, second.duplicates) == (1, 150, 100)
    ids = [i.control_id for i in store.pending_items(limit=1000)]
    assert ids == [f"B{n:04d}" for n in range(250)]
    assert (folder / "done" / "hl7" / "big.hl7").is_file()
