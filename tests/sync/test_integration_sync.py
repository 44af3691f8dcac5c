"""The whole path on the real local HAPI server: MLLP in, `adapter sync` out, with faults in between."""

from __future__ import annotations

import threading
import uuid

import pytest
from typer.testing import CliRunner

from adapter.cli import app
from adapter.fhir.client import FhirClient
from adapter.mllp.receive import ReceivePolicy, RosterGate
from adapter.mllp.server import MllpServer
from tests.conftest import ROSTER_CSV
from tests.mllp.helpers import MllpClient
from tests.sync.faultproxy import FaultProxy
from tests.sync.helpers import context, expected_resources, lab_messages, make_settings, sync_once
from tests.sync.test_crash import _sync_rounds

pytestmark = pytest.mark.integration
runner = CliRunner()
NOT_ON_SERVER = "S099,MRN1099,control,2019-06-20,,M,1960-01-01,70\n"


@pytest.fixture(scope="module")
def enrolled(fhir_base_url, tmp_path_factory):
    """The roster's subjects exist on the server (S099 is on the local roster only)."""
    tmp = tmp_path_factory.mktemp("enroll")
    roster = tmp / "roster.csv"
    roster.write_text(ROSTER_CSV)
    args = ["--fhir-url", fhir_base_url, "--state-dir", str(tmp / "state")]
    assert runner.invoke(app, [*args, "study", "push"]).exit_code == 0
    result = runner.invoke(app, [*args, "enroll", str(roster)])
    assert result.exit_code == 0, result.output
    return fhir_base_url


@pytest.fixture()
def proxy(enrolled):
    p = FaultProxy(enrolled)
    p.up()
    yield p
    p.down()


def _strip(resource: dict) -> dict:
    return {k: v for k, v in resource.items() if k not in ("meta", "text")}


def assert_on_server(base_url: str, expected: dict[str, dict]) -> None:
    """Every expected resource is there with the expected content, in its first version (not doubled)."""
    client = FhirClient(base_url)
    for key, resource in expected.items():
        stored = client.read(*key.split("/"))
        assert stored is not None, f"{key} missing"
        assert _strip(stored) == _strip(resource), key
        assert stored["meta"]["versionId"] == "1", f"{key} was written again with other content"


def _listen_and_send(settings, messages_per_client: list[list[bytes]]) -> None:
    server = MllpServer(settings.state_dir / "store.sqlite", ReceivePolicy(), RosterGate.fixed(None), port=0)
    from adapter.store import open_store

    open_store(settings.state_dir).close()
    server.start()
    try:

        def send(batch):
            with MllpClient(*server.address) as client:
                for raw in batch:
                    assert client.send(raw).code == "AA"

        threads = [threading.Thread(target=send, args=(b,)) for b in messages_per_client]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        server.shutdown()


def test_mllp_to_hapi_through_429_503_and_dropped_connections(tmp_path, proxy, enrolled):
    facility = f"LAB-{uuid.uuid4().hex[:8]}"
    settings = make_settings(tmp_path / "state", proxy.base_url, bundle_size=10, retry_budget_seconds=60)
    clients = [lab_messages(15, prefix=f"C{c}-", facility=facility) for c in range(3)]
    _listen_and_send(settings, clients)
    expected = expected_resources([m for c in clients for m in c], context(settings))
    proxy.faults.extend(["503", "429:1", "drop", "503"])
    report = sync_once(settings)
    assert report.exit_code == 0, report.as_json()
    assert report.push.pushed == len(expected) == 45 * 4
    assert not proxy.faults
    assert_on_server(enrolled, expected)


def test_server_stopped_mid_sync_everything_arrives_once_it_is_back(tmp_path, proxy, enrolled):
    facility = f"LAB-{uuid.uuid4().hex[:8]}"
    settings = make_settings(tmp_path / "state", proxy.base_url, bundle_size=8, retry_budget_seconds=2)
    messages = lab_messages(20, facility=facility)
    _listen_and_send(settings, [messages])
    expected = expected_resources(messages, context(settings))
    proxy.down_after(3)  # three bundles get through, then the server is gone
    report = sync_once(settings)
    assert report.exit_code == 2 and report.push.unreachable
    assert (
        0 < report.push.pushed < len(expected) and report.outbox_pending == len(expected) - report.push.pushed
    )
    proxy.up()
    report = sync_once(settings)
    assert report.exit_code == 0 and report.outbox_pending == 0
    assert_on_server(enrolled, expected)


def test_hapi_refusal_goes_to_dead_letters_with_its_outcome(tmp_path, proxy, enrolled):
    facility = f"LAB-{uuid.uuid4().hex[:8]}"
    settings = make_settings(tmp_path / "state", proxy.base_url, bundle_size=50)
    (settings.state_dir / "roster.csv").write_text(ROSTER_CSV + NOT_ON_SERVER)  # S099: never enrolled
    messages = lab_messages(6, facility=facility, mrns=("MRN1001", "MRN1099"))
    _listen_and_send(settings, [messages])
    ctx = context(settings)
    assert ctx.roster.by_mrn("MRN1099") is not None
    report = sync_once(settings)
    assert report.exit_code == 1 and report.new_dead_letters == 3  # one per message about S099
    from adapter.store import Store

    with Store(settings.state_dir / "store.sqlite") as store:
        letters = store.dead_letters()
    assert all(
        d.stage == "push" and "Patient/" in d.reason and "not found" in d.reason.lower() for d in letters
    )
    good = expected_resources([m for i, m in enumerate(messages) if i % 2 == 0], ctx)
    assert_on_server(enrolled, good)


def test_sync_killed_at_random_against_hapi(tmp_path, enrolled):
    expected, killed = _sync_rounds(tmp_path, enrolled, kills=3, count=40, seed=11, bundle_size=8)
    assert killed >= 1
    assert_on_server(enrolled, expected)
