"""The command line of this area as cron and operators use it: sync, status, deadletters, ingest."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from adapter.cli import app
from adapter.store.lock import FileLock
from tests.fhir_server_fixture import free_port
from tests.sync.fakefhir import FakeFhir
from tests.sync.helpers import (
    context,
    expected_resources,
    external_references,
    lab_messages,
    make_settings,
    receive,
)

runner = CliRunner()


@pytest.fixture()
def fake():
    server = FakeFhir()
    server.start()
    yield server
    server.stop()


@pytest.fixture()
def env(tmp_path, fake, monkeypatch):
    settings = make_settings(tmp_path / "state", fake.base_url)
    config = tmp_path / "adapter.toml"
    config.write_text("[sync]\nretry_budget_seconds = 1.0\nwatch_settle_seconds = 0.0\n")
    monkeypatch.setenv("ADAPTER_CONFIG", str(config))
    return settings


def _run(settings, *args, url=None):
    return runner.invoke(
        app, ["--state-dir", str(settings.state_dir), "--fhir-url", url or settings.fhir_url, *args]
    )


def test_sync_json_then_status_json(env, fake):
    messages = lab_messages(3)
    expected = expected_resources(messages, context(env))
    fake.existing = external_references(expected)
    receive(env, messages)
    result = _run(env, "sync", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["push"]["pushed"] == 12 and report["complete"] and report["exit_code"] == 0
    status = _run(env, "status", "--json")
    assert status.exit_code == 0
    data = json.loads(status.stdout)
    assert (data["inbox_pending"], data["outbox_pending"], data["dead_letters"]) == (0, 0, 0)
    assert data["last_successful_sync"] and data["last_sync"]["status"] == "ok"
    assert data["server"]["reachable"] is True and data["listener"] is None
    down = _run(env, "status", "--json", url=f"http://127.0.0.1:{free_port()}/fhir")
    assert json.loads(down.stdout)["server"]["reachable"] is False


def test_status_text_without_any_state(tmp_path, fake):
    result = runner.invoke(
        app, ["--state-dir", str(tmp_path / "none"), "--fhir-url", fake.base_url, "status"]
    )
    assert result.exit_code == 0
    assert "never" in result.stdout and "reachable" in result.stdout
    assert not (tmp_path / "none").exists()  # looking does not create state


def test_sync_exit_codes_unreachable_locked_and_rejected(env, fake):
    messages = lab_messages(2)
    expected = expected_resources(messages, context(env))
    fake.existing = external_references(expected)
    receive(env, messages)
    down = _run(env, "sync", url=f"http://127.0.0.1:{free_port()}/fhir")
    assert down.exit_code == 2
    assert "stay queued for the next run" in " ".join(down.output.split())
    with FileLock(env.state_dir / "sync.lock"):
        locked = _run(env, "sync")
    assert locked.exit_code == 2 and "another adapter sync is running" in " ".join(locked.output.split())
    fake.reject[next(k for k in expected if k.startswith("Observation/"))] = "bad code"
    rejected = _run(env, "sync")
    assert rejected.exit_code == 1, rejected.output
    assert "adapter deadletters list" in " ".join(rejected.output.split())


def test_deadletters_list_show_retry(env, fake):
    messages = lab_messages(2)
    expected = expected_resources(messages, context(env))
    fake.existing = external_references(expected)
    receive(env, [*messages, b"garbage"])
    fake.reject[next(k for k in expected if k.startswith("Observation/"))] = "Observation.code: bad"
    assert _run(env, "sync").exit_code == 1
    listed = json.loads(_run(env, "deadletters", "list", "--json").stdout)
    assert [d["stage"] for d in listed] == ["receive", "push"]
    push_dl = listed[1]
    assert "Observation.code: bad" in push_dl["reason"] and push_dl["resources"] == 3
    table = _run(env, "deadletters", "list")
    assert "push" in table.stdout and "receive" in table.stdout
    shown = _run(env, "deadletters", "show", str(push_dl["id"]))
    assert shown.exit_code == 0 and "Observation.code: bad" in shown.stdout
    raw = _run(env, "deadletters", "show", str(listed[0]["id"]), "--raw")
    assert raw.stdout_bytes == b"garbage"
    assert _run(env, "deadletters", "show", "999").exit_code == 2
    assert _run(env, "deadletters", "retry").exit_code == 2
    fake.reject.clear()
    retried = _run(env, "deadletters", "retry", str(push_dl["id"]))
    assert retried.exit_code == 0 and "queued for conversion" in retried.output
    assert _run(env, "sync").exit_code == 0
    assert fake.resources == expected
    assert [d["stage"] for d in json.loads(_run(env, "deadletters", "list", "--json").stdout)] == ["receive"]
    again = json.loads(_run(env, "deadletters", "retry", "--all", "--json").stdout)
    assert list(again.values()) == ["input queued for conversion at the next sync"]
    assert _run(env, "sync").exit_code == 1  # garbage stays garbage: a convert-stage dead letter now
    assert [d["stage"] for d in json.loads(_run(env, "deadletters", "list", "--json").stdout)] == ["convert"]


def test_ingest_queues_in_the_outbox_when_the_server_is_down(env, fake, tmp_path):
    messages = lab_messages(2)
    expected = expected_resources(messages, context(env))
    fake.existing = external_references(expected)
    path = tmp_path / "results.hl7"
    path.write_bytes(b"".join(messages))
    down = _run(env, "ingest", "hl7", str(path), "--json", url=f"http://127.0.0.1:{free_port()}/fhir")
    assert down.exit_code == 0, down.output
    assert json.loads(down.stdout)["queued"] == len(expected)
    assert "queued in the outbox" in " ".join(down.output.split())
    result = _run(env, "sync", "--json")
    assert result.exit_code == 0 and json.loads(result.stdout)["push"]["pushed"] == len(expected)
    assert fake.resources == expected
