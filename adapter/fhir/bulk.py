"""FHIR Bulk Data export (https://hl7.org/fhir/uv/bulkdata/export.html), client side.

Kick-off with `Prefer: respond-async` -> 202 and a status URL (Content-Location) -> poll it (202 with
X-Progress and Retry-After while the server works) -> 200 and a manifest listing NDJSON files per type,
plus error files (NDJSON of OperationOutcomes) -> download each file, streaming line by line -> DELETE the
status URL so the server may drop the files.

Retry-After on a 202 is honoured up to `poll_cap` seconds: HAPI always answers 120 s whatever the size
of the job, which would make every small export last two minutes. A 429 (rate limit) is honoured in full
by the client's retry logic.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from adapter.errors import ServerError
from adapter.fhir.auth import NoAuth
from adapter.fhir.client import FhirClient, outcome_text, response_body
from adapter.fhir.retry import parse_retry_after

log = logging.getLogger(__name__)

NDJSON = "application/fhir+ndjson"
POLL_RETRY_STATUSES = frozenset({429, 502, 503, 504})  # a 500 on the status URL means "export failed"


class ExportFailed(ServerError):
    """The server accepted the export but could not complete it."""


@dataclass
class ExportFile:
    type: str
    url: str
    count: int | None = None


@dataclass
class ExportManifest:
    transaction_time: str
    request: str
    requires_access_token: bool
    output: list[ExportFile] = field(default_factory=list)
    error: list[ExportFile] = field(default_factory=list)
    status_url: str = ""

    @classmethod
    def from_json(cls, body: dict[str, Any], status_url: str = "") -> ExportManifest:
        def files(key: str) -> list[ExportFile]:
            return [ExportFile(f.get("type", ""), f["url"], f.get("count")) for f in body.get(key) or []]

        return cls(
            transaction_time=str(body.get("transactionTime", "")),
            request=str(body.get("request", "")),
            requires_access_token=bool(body.get("requiresAccessToken", False)),
            output=files("output"),
            error=files("error"),
            status_url=status_url,
        )


def kick_off(client: FhirClient, path: str, params: dict[str, str]) -> str:
    """Start an export (e.g. path `Group/<id>/$export`); return the status URL to poll."""
    response = client.request(  # not retried on 5xx/timeouts: each kick-off that arrived starts a job
        "GET",
        path,
        params=params,
        headers={"Accept": "application/fhir+json", "Prefer": "respond-async"},
        idempotent=False,
    )
    location = response.headers.get("Content-Location")
    if response.status_code != 202 or not location:
        raise ExportFailed(
            f"$export kick-off at {path} answered {response.status_code} without a status URL "
            "(expected 202 Accepted with Content-Location)"
        )
    log.info("$export started at %s", path)
    return client.link_url(location)


def wait_for_manifest(
    client: FhirClient,
    status_url: str,
    *,
    timeout: float = 3600.0,
    poll_cap: float = 10.0,
    on_progress: Callable[[str], None] | None = None,
) -> ExportManifest:
    """Poll the status URL until the manifest is ready (or `timeout` seconds have passed)."""
    policy = client.retry
    started = policy.clock()
    polls = 0
    while True:
        response = client.request(
            "GET",
            status_url,
            headers={"Accept": "application/json"},
            retry_statuses=POLL_RETRY_STATUSES,
            check=False,
        )
        status = response.status_code
        if status == 200:
            return ExportManifest.from_json(response.json(), status_url)
        if status != 202:
            raise ExportFailed(f"$export failed ({status}): {outcome_text(response_body(response))}")
        polls += 1
        progress = response.headers.get("X-Progress", "in progress")
        if on_progress:
            on_progress(progress)
        asked = parse_retry_after(response.headers.get("Retry-After"), policy.wall_clock)
        delay = min(poll_cap, asked if asked is not None else min(poll_cap, 0.5 * 1.5**polls))
        if policy.clock() - started + delay > timeout:
            raise ExportFailed(
                f"$export not finished after {timeout:.0f} s ({polls} polls; last status: {progress}); "
                f"status URL {status_url}"
            )
        policy.sleep(delay)


def iter_file(client: FhirClient, file: ExportFile, requires_access_token: bool = True) -> Iterator[dict]:
    """The resources of one output (or error) file, streamed line by line.

    Credentials go only where the manifest says a token is required: output files may live on a
    storage host that must not see them.
    """
    kwargs: dict[str, Any] = {"headers": {"Accept": NDJSON}, "stream": True}
    if not requires_access_token:
        kwargs["auth"] = NoAuth()
    # the manifest may name a storage host (the spec allows it): the token goes there only when the
    # manifest says it is required
    response = client.request("GET", file.url, foreign_ok=True, **kwargs)
    try:
        for number, line in enumerate(response.iter_lines(decode_unicode=False), 1):
            if not line.strip():
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError as exc:
                raise ExportFailed(
                    f"$export file for {file.type} line {number}: not JSON ({exc.msg})"
                ) from exc
    finally:
        response.close()


def delete_export(client: FhirClient, status_url: str) -> None:
    """Tell the server we are done with the files (best effort: a failure only leaves files behind)."""
    try:
        client.request("DELETE", status_url, check=False, retry=False)
    except ServerError as exc:
        log.info("could not delete the export at its status URL: %s", exc)
