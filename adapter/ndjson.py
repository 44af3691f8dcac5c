"""NDJSON folders in the FHIR Bulk Data layout: one `<ResourceType>.ndjson` per type, one resource a line.

Writing merges into what the folder already holds, by type and id. Of two versions of one resource the
newer wins (by `meta.lastUpdated`, which converters set from the source's own time), ties broken by
content, so the result never depends on the order of runs. Files are sorted by id and written atomically.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from adapter.errors import InputError
from adapter.model import InputAccount, Resource

ACCOUNTS_FILE = "messages.ndjson"


def dumps(resource: Resource) -> str:
    """One resource as one compact UTF-8 JSON line (insertion order kept; converters are deterministic)."""
    return json.dumps(resource, ensure_ascii=False, separators=(",", ":"))


def _canonical(resource: Resource) -> str:
    return json.dumps(resource, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def _version_key(resource: Resource) -> tuple[str, str]:
    return ((resource.get("meta") or {}).get("lastUpdated") or "", _canonical(resource))


def newer(a: Resource, b: Resource) -> Resource:
    """The version of one resource that should be kept: later lastUpdated, then larger content."""
    return a if _version_key(a) >= _version_key(b) else b


def iter_file(path: Path) -> Iterator[dict[str, Any]]:
    """Stream the JSON objects of one NDJSON file; a bad line raises InputError naming file and line."""
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            line = line.strip()
            if not line:
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(f"not valid JSON: {exc.msg}", f"{path}:{number}") from exc


def iter_resources(folder: Path, resource_type: str) -> Iterator[Resource]:
    """All resources of one type in a folder (empty if the file does not exist)."""
    path = folder / f"{resource_type}.ndjson"
    if path.is_file():
        yield from iter_file(path)


def _write_atomic(path: Path, lines: Iterable[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            for line in lines:
                handle.write(line)
                handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def merge_resources(folder: Path, resources: Iterable[Resource]) -> dict[str, int]:
    """Merge resources into the folder by type and id; return how many resources each file now holds."""
    incoming: dict[str, dict[str, Resource]] = {}
    for resource in resources:
        by_id = incoming.setdefault(resource["resourceType"], {})
        rid = resource["id"]
        by_id[rid] = newer(resource, by_id[rid]) if rid in by_id else resource
    totals: dict[str, int] = {}
    for resource_type, by_id in sorted(incoming.items()):
        merged = {r["id"]: r for r in iter_resources(folder, resource_type)}
        for rid, resource in by_id.items():
            merged[rid] = newer(resource, merged[rid]) if rid in merged else resource
        _write_atomic(folder / f"{resource_type}.ndjson", (dumps(merged[k]) for k in sorted(merged)))
        totals[resource_type] = len(merged)
    return totals


def merge_accounts(folder: Path, accounts: Iterable[InputAccount]) -> int:
    """Merge input accounts into `messages.ndjson`, keyed by kind, source and index, sorted."""
    path = folder / ACCOUNTS_FILE
    merged: dict[str, dict[str, Any]] = {}
    if path.is_file():
        for entry in iter_file(path):
            merged[f"{entry['kind']}|{entry['source']}|{int(entry['index']):08d}"] = entry
    for account in accounts:
        merged[account.key] = account.as_json()
    _write_atomic(
        path, (json.dumps(merged[k], ensure_ascii=False, separators=(",", ":")) for k in sorted(merged))
    )
    return len(merged)


def write_resource_files(folder: Path, by_type: dict[str, list[Resource]]) -> None:
    """Write (replace) whole files as given: used by `adapter pull`, which holds the server's truth."""
    for resource_type, resources in by_type.items():
        ordered = sorted(resources, key=lambda r: r["id"])
        _write_atomic(folder / f"{resource_type}.ndjson", (dumps(r) for r in ordered))
