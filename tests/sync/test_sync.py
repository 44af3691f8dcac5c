"""`adapter sync` against a fake FHIR server: bundles, confirmation, faults, rejections, the lock."""

from __future__ import annotations

import time

import pytest

from adapter.errors import AdapterError, LockedError
from adapter.store.lock import FileLock
from tests.mllp.helpers import oru
from tests.sync.fakefhir import FakeFhir
from tests.sync.helpers import (
    context,
    expected_resources,
    external_references,
    lab_messages,
    make_settings,
    receive,
    store_rows,
    sync_once,
)


@pytest.fixture()
def fake():
    server = FakeFhir()
    server.start()
    yield server
    server.stop()


def _prepare(tmp_path, fake, messages, **sync):
    settings = make_settings(tmp_path / "state", fake.base_url, **sync)
    expected = expected_resources(messages, context(settings))
    fake.existing = external_references(expected)
    receive(settings, messages)
    return settings, expected


def test_sync_converts_pushes_in_whole_message_bundles_and_is_idempotent(tmp_path, fake):
    messages = lab_messages(12)
    settings, expected = _prepare(tmp_path, fake, messages, bundle_size=10)
    assert len(expected) == 12 * 4  # DiagnosticReport, 2 Observations, Provenance per message
    report = sync_once(settings)
    assert report.exit_code == 0 and report.complete
    assert (report.convert.items, report.convert.resources, report.push.pushed) == (12, 48, 48)
    assert fake.resources == expected
    assert fake.bundle_sizes == [8] * 6  # two whole messages per bundle of at most 10
    assert store_rows(settings, "SELECT DISTINCT status FROM inbox") == [("done",)]
    assert store_rows(settings, "SELECT DISTINCT status FROM outbox") == [("sent",)]
    again = sync_once(settings)
    assert (again.convert.items, again.push.pushed, again.exit_code) == (0, 0, 0)
    assert fake.bundles == 6
    assert store_rows(settings, "SELECT status FROM sync_runs ORDER BY id") == [("ok",), ("ok",)]


def test_a_corrected_result_updates_the_same_observation(tmp_path, fake):
    prelim = oru("P1", filler="ORD1", status="P")
    final = oru("F1", filler="ORD1", status="F", results=(("GLU-F", "Glucose", "7.9", "mmol/L"),))
    settings, expected = _prepare(tmp_path, fake, [prelim, final])
    assert sync_once(settings).exit_code == 0
    observations = {k: v for k, v in fake.resources.items() if k.startswith("Observation/")}
    glucose = [o for o in observations.values() if o["valueQuantity"]["value"] == 7.9]
    assert len(glucose) == 1 and glucose[0]["status"] == "final"
    assert fake.resources == expected


def test_a_preliminary_replayed_in_a_later_run_does_not_overwrite_the_final(tmp_path, fake):
    glucose = (("GLU-F", "Glucose", "7.9", "mmol/L"),)
    prelim = oru("P1", filler="ORD1", status="P", results=glucose, when="20190701080000")
    final = oru("F1", filler="ORD1", status="F", results=glucose, when="20190701093000")
    settings, expected = _prepare(tmp_path, fake, [final])
    assert sync_once(settings).exit_code == 0
    assert fake.resources == expected
    final_state = dict(fake.resources)
    receive(settings, [prelim])  # an interface engine replays its queue: the older message comes again
    report = sync_once(settings)
    assert report.exit_code == 0 and report.complete
    observations = [v for k, v in fake.resources.items() if k.startswith("Observation/")]
    assert [o["status"] for o in observations] == ["final"]
    assert {k: v for k, v in fake.resources.items() if not k.startswith("Provenance/")} == {
        k: v for k, v in final_state.items() if not k.startswith("Provenance/")
    }
    assert store_rows(settings, "SELECT DISTINCT status FROM inbox") == [("done",)]


def test_a_refused_resource_goes_to_dead_letters_with_the_outcome_and_the_rest_arrives(tmp_path, fake):
    messages = lab_messages(6)
    settings, expected = _prepare(tmp_path, fake, messages, bundle_size=50)
    bad_obs = next(k for k in expected if k.startswith("Observation/"))
    fake.reject[bad_obs] = "Observation.code: unknown code system (HAPI-1234)"
    report = sync_once(settings)
    assert report.exit_code == 1 and report.complete
    assert report.new_dead_letters == 1
    # the refused Observation and what refers to it (its report and provenance) are dead; all else is in
    dead_keys = {
        f"{t}/{i}"
        for t, i in store_rows(
            settings, "SELECT resource_type, resource_id FROM outbox WHERE status = 'dead'"
        )
    }
    assert bad_obs in dead_keys and len(dead_keys) == 3
    assert set(fake.resources) == set(expected) - dead_keys
    (reason, stage, resources) = store_rows(settings, "SELECT reason, stage, resources FROM dead_letters")[0]
    assert stage == "push" and resources == 3
    assert f"{bad_obs}: (422) error: Observation.code: unknown code system (HAPI-1234)" in reason


def test_bisection_finds_the_refused_resource_when_the_server_does_not_say(tmp_path, fake):
    messages = lab_messages(8)
    settings, expected = _prepare(tmp_path, fake, messages, bundle_size=40)
    bad = [k for k in expected if k.startswith("Observation/")][5]
    fake.reject[bad] = "rejected"
    fake.anonymous = True
    report = sync_once(settings)
    assert report.exit_code == 1
    dead = {
        d
        for (d,) in store_rows(
            settings, "SELECT resource_type || '/' || resource_id FROM outbox WHERE status = 'dead'"
        )
    }
    assert bad in dead and len(dead) == 3  # the Observation, then its report and provenance (missing target)
    assert set(fake.resources) == set(expected) - dead
    assert store_rows(settings, "SELECT count(*) FROM outbox WHERE status = 'pending'") == [(0,)]


def test_server_down_keeps_everything_queued_then_delivers(tmp_path, fake):
    messages = lab_messages(5)
    settings, expected = _prepare(tmp_path, fake, messages, retry_budget_seconds=1.0)
    fake.stop()
    started = time.monotonic()
    report = sync_once(settings)
    assert time.monotonic() - started < 10
    assert report.exit_code == 2 and report.push.unreachable and not report.complete
    assert report.outbox_pending == len(expected) and report.inbox_pending == 0
    assert store_rows(settings, "SELECT status FROM sync_runs") == [("incomplete",)]
    revived = FakeFhir()
    revived.existing = fake.existing
    revived.start()
    try:
        settings.fhir_url = revived.base_url
        report = sync_once(settings)
        assert report.exit_code == 0 and revived.resources == expected
    finally:
        revived.stop()


def test_429_with_retry_after_503_and_dropped_connections_are_retried(tmp_path, fake):
    messages = lab_messages(4)
    settings, expected = _prepare(tmp_path, fake, messages, bundle_size=8, retry_budget_seconds=30)
    fake.faults.extend(["429:1", "503", "drop", "500"])
    started = time.monotonic()
    report = sync_once(settings)
    assert report.exit_code == 0 and fake.resources == expected
    assert time.monotonic() - started >= 1.0  # Retry-After honoured
    assert not fake.faults


def test_budget_spent_on_429s_leaves_the_rest_queued(tmp_path, fake):
    messages = lab_messages(4)
    settings, expected = _prepare(tmp_path, fake, messages, bundle_size=8, retry_budget_seconds=1.5)
    fake.faults.extend(["429:1"] * 50)
    report = sync_once(settings)
    assert report.exit_code == 2 and report.outbox_pending == len(expected)
    fake.faults.clear()
    assert sync_once(settings).exit_code == 0 and fake.resources == expected


def test_a_second_sync_exits_at_once_while_one_runs(tmp_path, fake):
    settings, _ = _prepare(tmp_path, fake, lab_messages(1))
    with FileLock(settings.state_dir / "sync.lock"):
        started = time.monotonic()
        with pytest.raises(LockedError, match="another adapter sync is running"):
            sync_once(settings)
        assert time.monotonic() - started < 2
    assert sync_once(settings).exit_code == 0


def test_missing_patient_is_a_dead_letter_until_enrolled_then_retry_delivers(tmp_path, fake):
    messages = lab_messages(3)
    settings, expected = _prepare(tmp_path, fake, messages)
    from adapter.ids import patient_id

    missing = f"Patient/{patient_id(settings.study.study.key, 'S002')}"  # MRN1002's subject
    fake.existing.discard(missing)
    report = sync_once(settings)
    assert report.exit_code == 1 and report.new_dead_letters == 1
    (dl_id, reason) = store_rows(settings, "SELECT id, reason FROM dead_letters")[0]
    assert f"Resource {missing} not found" in reason
    fake.existing.add(missing)  # `adapter enroll` ran
    from adapter.store import Store

    with Store(settings.state_dir / "store.sqlite") as store:
        store.retry_dead_letter(dl_id)
    report = sync_once(settings)
    assert report.exit_code == 0 and fake.resources == expected


def test_without_a_roster_inputs_wait_but_the_outbox_still_goes(tmp_path, fake):
    settings, _ = _prepare(tmp_path, fake, lab_messages(2))
    assert sync_once(settings).exit_code == 0
    receive(settings, lab_messages(2, prefix="N"))
    (settings.state_dir / "roster.csv").unlink()
    with pytest.raises(AdapterError, match="no roster"):
        sync_once(settings)
    assert store_rows(settings, "SELECT count(*) FROM inbox WHERE status = 'pending'") == [(2,)]
    assert store_rows(settings, "SELECT status FROM sync_runs ORDER BY id DESC LIMIT 1") == [("failed",)]


def test_crash_after_the_server_confirmed_resends_without_doubling(tmp_path, fake, monkeypatch):
    settings, expected = _prepare(tmp_path, fake, lab_messages(4), bundle_size=8)
    from adapter.store.db import Store

    real = Store.mark_sent
    calls = {"n": 0}

    def crash_once(self, rows, superseded=()):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt("power cut")  # the server has the bundle, the store does not know
        return real(self, rows, superseded)

    monkeypatch.setattr(Store, "mark_sent", crash_once)
    with pytest.raises(KeyboardInterrupt):
        sync_once(settings)
    monkeypatch.undo()
    report = sync_once(settings)
    assert report.exit_code == 0 and report.push.pushed == 8  # the unconfirmed bundle went again
    assert fake.resources == expected
    assert set(fake.versions.values()) == {1}  # same content re-PUT: no new version, nothing doubled


def test_a_wrong_base_url_is_a_configuration_error_not_dead_letters(tmp_path, fake):
    settings, expected = _prepare(tmp_path, fake, lab_messages(2))
    settings.fhir_url = fake.base_url + "/wrong"
    with pytest.raises(AdapterError, match="404"):
        sync_once(settings)
    assert store_rows(settings, "SELECT count(*) FROM dead_letters") == [(0,)]
    assert store_rows(settings, "SELECT count(*) FROM outbox WHERE status = 'pending'") == [(len(expected),)]
    settings.fhir_url = fake.base_url
    assert sync_once(settings).exit_code == 0 and fake.resources == expected
