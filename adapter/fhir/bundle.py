"""Transaction bundles: entries, their chunking, the server's answer, and which entry an error is about.

An entry is usually `PUT Type/id` (client-assigned deterministic ids, see client.py); a resource without
an id becomes a `POST` under a fresh `urn:uuid:` fullUrl that other entries of the same bundle may refer
to, so chunking keeps such groups together. When a server refuses a bundle, its OperationOutcome is read
for clues naming the failing entry (servers, HAPI included, rarely say it plainly).
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from adapter.model import Resource

_REF = re.compile(r"\b([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})\b")
_ENTRY_INDEX = re.compile(r"[Bb]undle\.entry\[(\d+)\]|\bentry\s*(?:#|index\s*)?\[?(\d+)\]?")
_ID_IN_TEXT = re.compile(r"\bID\[([A-Za-z0-9\-.]{1,64})\]")  # HAPI-0960: Can not create resource with ID[123]
_BAD_VALUE = re.compile(r'\[element="(\w+)"\] Invalid attribute value "([^"]*)"')  # HAPI-1821 (parser)


def outcome_text(body: Any) -> str:
    """A readable summary of an OperationOutcome (or of any error body)."""
    if isinstance(body, dict) and body.get("resourceType") == "OperationOutcome":
        parts = []
        for issue in body.get("issue", []):
            text = issue.get("diagnostics") or (issue.get("details") or {}).get("text") or issue.get("code")
            where = ", ".join(issue.get("expression", []) or issue.get("location", []))
            parts.append(f"{issue.get('severity', 'error')}: {text}" + (f" (at {where})" if where else ""))
        return "; ".join(parts) or "OperationOutcome without issues"
    return str(body)[:500]


def new_urn() -> str:
    """A fresh `urn:uuid:` fullUrl for a resource the server will name."""
    return f"urn:uuid:{uuid.uuid4()}"


def etag(version_id: str) -> str:
    """The weak ETag FHIR servers expect in If-Match for a version id."""
    return version_id if version_id.startswith(("W/", '"')) else f'W/"{version_id}"'


@dataclass
class Entry:
    """One transaction entry: usually `PUT Type/id`; `POST` with a urn:uuid fullUrl when there is no id."""

    resource: Resource | None
    method: str = "PUT"
    url: str = ""
    full_url: str = ""
    if_match: str | None = None
    if_none_exist: str | None = None

    @classmethod
    def put(cls, resource: Resource, if_match: str | None = None) -> Entry:
        url = f"{resource['resourceType']}/{resource['id']}"
        return cls(resource, "PUT", url, if_match=etag(if_match) if if_match else None)

    @classmethod
    def create(
        cls, resource: Resource, full_url: str | None = None, if_none_exist: str | None = None
    ) -> Entry:
        return cls(
            resource, "POST", resource["resourceType"], full_url or new_urn(), if_none_exist=if_none_exist
        )

    @classmethod
    def delete(cls, resource_type: str, resource_id: str) -> Entry:
        return cls(None, "DELETE", f"{resource_type}/{resource_id}")

    @classmethod
    def of(cls, item: Resource | Entry, version_aware: bool = False) -> Entry:
        """An entry for a resource: PUT by id (If-Match its meta.versionId if asked), else POST."""
        if isinstance(item, Entry):
            return item
        if not item.get("id"):
            return cls.create(item)
        version = (item.get("meta") or {}).get("versionId") if version_aware else None
        return cls.put(item, if_match=version)

    @property
    def label(self) -> str:
        """`Type/id` for messages (or `new Type` for a create)."""
        if self.method == "POST" and self.resource is not None:
            return f"new {self.resource['resourceType']} ({self.full_url})"
        return self.url

    @property
    def idempotent(self) -> bool:
        """Safe to send again after an answer that may hide a success (5xx, timeout): not a create, and
        not a version-aware update (once saved, the version moved on and a re-send gets 409/412)."""
        if self.if_match:
            return False
        return self.method != "POST" or bool(self.if_none_exist)

    def bundle_entry(self, base_url: str) -> dict[str, Any]:
        request: dict[str, Any] = {"method": self.method, "url": self.url}
        if self.if_match:
            request["ifMatch"] = self.if_match
        if self.if_none_exist:
            request["ifNoneExist"] = self.if_none_exist
        entry: dict[str, Any] = {"fullUrl": self.full_url or f"{base_url}/{self.url}"}
        if self.resource is not None:
            entry["resource"] = self.resource
        entry["request"] = request
        return entry


@dataclass
class TransactionResult:
    """What the server said about each entry we sent, in order."""

    statuses: list[str] = field(default_factory=list)
    locations: list[str] = field(default_factory=list)
    entries: list[str] = field(default_factory=list)  # Type/id (or the urn of a create) of each entry
    resolved: dict[str, str] = field(default_factory=dict)  # urn:uuid fullUrl -> Type/id assigned
    bundles: int = 0

    @property
    def created(self) -> int:
        return sum(1 for s in self.statuses if s.startswith("201"))

    @property
    def updated(self) -> int:
        """Entries answered 200 (an update, or an unchanged re-send)."""
        return sum(1 for s in self.statuses if s.startswith("200"))


def versionless(location: str) -> str:
    """`Type/id` from a location such as `Patient/123/_history/1` or an absolute URL."""
    parts = location.split("/_history/")[0].rstrip("/").split("/")
    return "/".join(parts[-2:])


def _urn_refs(node: Any) -> Iterator[str]:
    """Every `urn:uuid:` reference inside a resource."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "reference" and isinstance(value, str) and value.startswith("urn:uuid:"):
                yield value
            else:
                yield from _urn_refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _urn_refs(item)


def chunk_entries(entries: Sequence[Entry], size: int) -> Iterator[list[Entry]]:
    """Bundles of at most `size` entries, keeping entries linked by urn:uuid references together
    (a group larger than `size` goes alone: a urn cannot resolve across bundles)."""
    size = max(1, size)
    urns = {e.full_url: i for i, e in enumerate(entries) if e.full_url.startswith("urn:uuid:")}
    if not urns:
        for start in range(0, len(entries), size):
            yield list(entries[start : start + size])
        return
    parent = list(range(len(entries)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, entry in enumerate(entries):
        for ref in _urn_refs(entry.resource):
            j = urns.get(ref)
            if j is not None:
                parent[root(i)] = root(j)
    groups: dict[int, list[Entry]] = {}
    for i, entry in enumerate(entries):
        groups.setdefault(root(i), []).append(entry)
    current: list[Entry] = []
    for group in groups.values():  # dicts keep insertion order: groups by their first entry
        if current and len(current) + len(group) > size:
            yield current
            current = []
        current.extend(group)
    if current:
        yield current


def _entry_refs(entry: Entry) -> set[str]:
    """Plain `Type/id` references made by an entry's resource."""
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            ref = node.get("reference")
            if isinstance(ref, str):
                found.add(ref)
            for value in node.values():
                if isinstance(value, dict | list):
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(entry.resource)
    return found


def _has_value(node: Any, element: str, value: str) -> bool:
    """Whether `element` holds `value` (as JSON text) anywhere in the resource."""
    if isinstance(node, dict):
        for key, item in node.items():
            if key == element and not isinstance(item, dict | list) and _text(item) == value:
                return True
            if isinstance(item, dict | list) and _has_value(item, element, value):
                return True
    elif isinstance(node, list):
        return any(_has_value(item, element, value) for item in node)
    return False


def _text(value: Any) -> str:
    return json.dumps(value) if isinstance(value, bool) else str(value)


def locate_failing_entry(body: Any, chunk: Sequence[Entry]) -> tuple[str | None, str]:
    """Which entry a transaction error is about: (`Type/id` or None, extra explanation).

    Servers say it in different ways: an issue expression `Bundle.entry[3]` (0-based), an entry number in
    the diagnostics, the entry's id (HAPI: `ID[123]`), an invalid element value (HAPI's parser:
    `[element="status"] Invalid attribute value "bogus"`), the entry's own `Type/id`, or the `Type/id` of
    a missing reference target (then the entries referring to it are the culprits).
    """
    text = outcome_text(body)
    paths: list[str] = []
    if isinstance(body, dict):
        for issue in body.get("issue", []):
            paths.extend(issue.get("expression", []) or issue.get("location", []))
    for candidate in [*paths, text]:
        match = _ENTRY_INDEX.search(candidate)
        if match:
            index = int(match.group(1) or match.group(2))
            if 0 <= index < len(chunk):
                return chunk[index].label, ""
    for match in _ID_IN_TEXT.finditer(text):
        for entry in chunk:
            if entry.resource is not None and entry.resource.get("id") == match.group(1):
                return entry.label, ""
    for element, value in _BAD_VALUE.findall(text):
        for entry in chunk:
            if _has_value(entry.resource, element, value):
                return entry.label, ""
    labels = {e.url: e for e in chunk if e.method != "POST"}
    mentioned = [f"{t}/{i}" for t, i in _REF.findall(text)]
    for ref in mentioned:
        if ref in labels:
            return ref, ""
    for ref in mentioned:
        referrers = [e.label for e in chunk if ref in _entry_refs(e)]
        if referrers:
            more = f" and {len(referrers) - 3} more" if len(referrers) > 3 else ""
            return referrers[0], f"; entries referring to {ref}: {', '.join(referrers[:3])}{more}"
    return None, ""
