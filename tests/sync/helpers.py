"""Shared set-up for sync tests: a state dir with the kept roster, settings, inbox filling, expectations."""

from __future__ import annotations

from pathlib import Path

from adapter.cli_common import AppContext
from adapter.converters import ConvertContext
from adapter.fhir.client import FhirClient, client_for
from adapter.fhir.retry import RetryPolicy
from adapter.hl7.convert import convert_message
from adapter.mllp.receive import ReceivePolicy, RosterGate, assess, commit_message
from adapter.push import dedupe
from adapter.settings import Settings, SyncSettings
from adapter.store import Store, open_store
from adapter.sync import SyncReport, run_sync
from tests.conftest import ROSTER_CSV
from tests.mllp.helpers import oru


def make_settings(state_dir: Path, fhir_url: str, **sync: object) -> Settings:
    state_dir.mkdir(parents=True, exist_ok=True)
    (state_dir / "roster.csv").write_text(ROSTER_CSV, encoding="utf-8")
    sync.setdefault("retry_budget_seconds", 5.0)
    sync.setdefault("watch_settle_seconds", 0.0)
    return Settings(fhir_url=fhir_url, state_dir=state_dir, sync=SyncSettings(**sync))


def receive(settings: Settings, messages: list[bytes], source: str = "mllp:127.0.0.1") -> None:
    """Put messages in the inbox the way the listener does."""
    policy = ReceivePolicy()
    with open_store(settings.state_dir) as store, store.transaction():
        for raw in messages:
            commit_message(store, raw, assess(raw, policy, RosterGate.fixed(None)), source, policy)


def fast_client(settings: Settings) -> FhirClient:
    """The configured client with short backoff steps (the budget still comes from the run)."""
    client = client_for(settings)
    client.retry = RetryPolicy(base_seconds=0.05, cap_seconds=0.5, max_attempts=1000)
    return client


def sync_once(settings: Settings, **kwargs: object) -> SyncReport:
    app = AppContext(_settings=settings)
    return run_sync(settings, app.convert_context, lambda: fast_client(settings), **kwargs)


def expected_resources(messages: list[bytes], ctx: ConvertContext) -> dict[str, dict]:
    """What the server must hold after the messages went through: Type/id -> the newest resource."""
    out: dict[str, dict] = {}
    for n, raw in enumerate(messages, 1):
        for r in dedupe(convert_message(raw, ctx, "x", n).resources):
            out[f"{r['resourceType']}/{r['id']}"] = r
    return out


def external_references(resources: dict[str, dict]) -> set[str]:
    """References leaving the set (the enrolled Patients): the fake server takes them as existing."""
    found: set[str] = set()

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("reference"), str):
                found.add(node["reference"])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(list(resources.values()))
    return found - set(resources)


def context(settings: Settings) -> ConvertContext:
    return AppContext(_settings=settings).convert_context()


def lab_messages(
    count: int,
    prefix: str = "M",
    mrns: tuple[str, ...] = ("MRN1001", "MRN1002", "MRN1003"),
    facility: str = "VANHANH",
) -> list[bytes]:
    return [oru(f"{prefix}{n:05d}", mrns[n % len(mrns)], facility=facility) for n in range(count)]


def store_rows(settings: Settings, sql: str) -> list[tuple]:
    with Store(Path(settings.state_dir) / "store.sqlite") as store:
        return store.conn.execute(sql).fetchall()
