"""The session-wide FHIR server for integration tests: `fhir_base_url`.

`ADAPTER_TEST_FHIR_URL` set: that server is used as it is (nothing started or stopped). Otherwise our local
HAPI server is started once per test session, in memory, on a free port, in a temporary state dir, and
stopped at the end. Imported by tests/conftest.py.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator

import pytest

from adapter import fhir_server

__all__ = ["fhir_base_url", "free_port"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((fhir_server.HOST, 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def fhir_base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    external = os.environ.get("ADAPTER_TEST_FHIR_URL")
    if external:
        yield external.rstrip("/")
        return
    state_dir = tmp_path_factory.mktemp("fhir-server-state")
    try:
        base_url = fhir_server.start(state_dir, port=free_port(), db=fhir_server.MEMORY_DB, timeout=300)
    except fhir_server.ServerError as exc:
        fhir_server.stop(state_dir)
        pytest.fail(f"cannot start the local FHIR server for integration tests: {exc}", pytrace=False)
    try:
        yield base_url
    finally:
        fhir_server.stop(state_dir)
