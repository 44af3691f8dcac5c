"""The watched folder picks BHYT files up: `adapter sync` converts and pushes them like `ingest` does."""

from __future__ import annotations

import shutil

import pytest

from adapter.bhyt.convert import convert_files
from adapter.push import dedupe
from tests.bhyt.helpers import FIXTURES, context
from tests.sync.fakefhir import FakeFhir
from tests.sync.helpers import external_references, make_settings, sync_once


@pytest.fixture()
def fake():
    server = FakeFhir()
    server.start()
    yield server
    server.stop()


@pytest.mark.parametrize("where", ["bhyt", "."])  # the kind from the folder, or sniffed from the file
def test_sync_takes_bhyt_files_from_the_watched_folder(where, tmp_path, fake, study):
    watch = tmp_path / "watch"
    settings = make_settings(tmp_path / "state", fake.base_url, watch_dir=watch)
    shutil.copy(FIXTURES / "roster.csv", settings.state_dir / "roster.csv")
    (watch / where).mkdir(parents=True, exist_ok=True)
    shutil.copy(FIXTURES / "qd130-outpatient.xml", watch / where / "qd130-outpatient.xml")
    expected = {
        f"{r['resourceType']}/{r['id']}": r
        for r in dedupe(convert_files([FIXTURES / "qd130-outpatient.xml"], context(study)).resources)
    }
    fake.existing = external_references(expected)
    report = sync_once(settings)
    assert report.exit_code == 0, report
    assert report.watch is not None and report.watch.files == 1
    assert fake.resources == expected
    assert (watch / "done" / "bhyt" / "qd130-outpatient.xml").is_file()
    again = sync_once(settings)  # nothing new: nothing pushed twice
    assert again.exit_code == 0 and fake.resources == expected
