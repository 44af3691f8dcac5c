"""The local HAPI FHIR server's management: `adapter server start|status|stop` and adapter/fhir_server.py."""

from __future__ import annotations

import json
import shutil
import socket
import sys
from pathlib import Path

import pytest
import requests
from typer.testing import CliRunner

from adapter import fhir_server
from adapter.cli import app
from tests.fhir_server_fixture import free_port

runner = CliRunner()
FHIR_JSON = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}


def _server(state_dir: Path, *args: str):
    return runner.invoke(app, ["--state-dir", str(state_dir), "server", *args])


@pytest.fixture()
def fake_launcher(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A launcher folder whose 'built' jar is not a jar: java exits at once with an error."""
    project = tmp_path / "fhir-server"
    (project / "target" / "lib").mkdir(parents=True)
    (project / "pom.xml").write_text("<project/>\n")
    (project / "target" / fhir_server.JAR_NAME).write_text("not a jar\n")
    monkeypatch.setenv(fhir_server.SERVER_DIR_ENV, str(project))
    return project


def test_status_and_stop_without_a_server(tmp_path: Path) -> None:
    assert fhir_server.status(tmp_path) == fhir_server.ServerStatus(running=False)
    assert fhir_server.stop(tmp_path) is False
    result = _server(tmp_path, "status", "--json")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["running"] is False
    stopped = _server(tmp_path, "stop", "--json")
    assert stopped.exit_code == 0 and json.loads(stopped.stdout) == {"stopped": False}


def test_stale_record_is_not_running(tmp_path: Path) -> None:
    home = tmp_path / "server"
    home.mkdir()
    dead = {"pid": 2**22 + 12345, "port": 1, "base_url": "http://127.0.0.1:1/fhir"}
    (home / "server.json").write_text(json.dumps(dead))
    assert fhir_server.status(tmp_path).running is False
    assert fhir_server.stop(tmp_path) is False
    assert not (home / "server.json").exists()


@pytest.mark.skipif(shutil.which("java") is None, reason="needs Java")
def test_a_server_that_dies_while_starting_is_reported_with_its_log(tmp_path: Path, fake_launcher) -> None:
    with pytest.raises(fhir_server.ServerError) as caught:
        fhir_server.start(tmp_path / "state", port=free_port(), timeout=60)
    assert isinstance(caught.value, RuntimeError)
    assert "exited with code" in str(caught.value)
    assert "jarfile" in str(caught.value)  # java's own words, quoted from server.log
    assert not (tmp_path / "state" / "server" / "server.json").exists()


def test_missing_maven_is_a_clear_error_exit_2(tmp_path: Path, fake_launcher, monkeypatch) -> None:
    (fake_launcher / "target" / fhir_server.JAR_NAME).unlink()
    monkeypatch.setenv("PATH", str(Path(sys.executable).parent))  # python, but no mvn (nor java)
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "no-java"))
    with pytest.raises(fhir_server.ServerError, match=r"Java not found|Maven \(mvn\) not found"):
        fhir_server.ensure_built()
    result = _server(tmp_path / "state", "start", "--port", str(free_port()))
    assert result.exit_code == 2
    assert "not found" in result.stderr


def test_port_in_use_is_refused(tmp_path: Path) -> None:
    if not fhir_server.jar_path().is_file():
        pytest.skip("the FHIR server jar is not built")
    with socket.socket() as busy:
        busy.bind((fhir_server.HOST, 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(fhir_server.ServerError, match="already in use"):
            fhir_server.start(tmp_path, port=port)


@pytest.mark.integration
def test_server_start_status_stop(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    port = free_port()
    started = _server(state_dir, "start", "--port", str(port), "--timeout", "300")
    try:
        assert started.exit_code == 0, started.output
        base_url = started.stdout.strip()
        assert base_url == f"http://127.0.0.1:{port}/fhir"
        assert (state_dir / "server" / "h2" / "fhir.mv.db").is_file()

        up = _server(state_dir, "status", "--json")
        assert up.exit_code == 0, up.output
        assert json.loads(up.stdout) | {"pid": None} == {
            "running": True,
            "ready": True,
            "pid": None,
            "port": port,
            "base_url": base_url,
        }
        assert _server(state_dir, "start", "--port", str(port)).stdout.strip() == base_url  # already up
        again = json.loads(_server(state_dir, "start", "--port", str(port), "--json").stdout)
        assert (again["base_url"], again["ready"], again["was_running"]) == (base_url, True, True)

        metadata = requests.get(f"{base_url}/metadata", headers=FHIR_JSON, timeout=30).json()
        assert metadata["fhirVersion"] == "4.0.1"

        patient = {"resourceType": "Patient", "id": "pt-1", "gender": "female", "birthDate": "1965"}
        versions = []
        for _ in range(2):
            response = requests.put(f"{base_url}/Patient/pt-1", json=patient, headers=FHIR_JSON, timeout=30)
            assert response.status_code in (200, 201), response.text
            versions.append(response.json()["meta"]["versionId"])
        assert versions == ["1", "1"], "an identical re-PUT must not create a new version"
    finally:
        stopped = _server(state_dir, "stop")
    assert stopped.exit_code == 0
    assert "stopped" in stopped.stderr
    down = _server(state_dir, "status")
    assert down.exit_code == 1
    assert down.stdout.strip() == "down"
    assert not (state_dir / "server" / "server.json").exists()
