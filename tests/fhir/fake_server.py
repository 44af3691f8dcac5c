"""A tiny in-memory FHIR server on `responses`: just the searches `adapter pull` makes, with paging.

Supports `_id`, `identifier`, `study`, `subject`, `target`, `target.subject`, `_lastUpdated=ge`,
`_include` (ResearchStudy protocol/sponsor/site, ResearchSubject:individual), `_revinclude=Provenance:target`,
`_count` with `next` links, reads, `/metadata`, and `Group/<id>/$export` with one status poll.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from urllib.parse import parse_qs, urlsplit

import responses

from adapter.fhir.capabilities import minimal_statement

INCLUDES = {
    "ResearchStudy:protocol": ("protocol",),
    "ResearchStudy:sponsor": ("sponsor",),
    "ResearchStudy:site": ("site",),
    "ResearchSubject:individual": ("individual",),
}


def _refs(resource: dict, field: str) -> list[str]:
    value = resource.get(field)
    items = value if isinstance(value, list) else [value] if value else []
    return [i["reference"] for i in items if isinstance(i, dict) and "reference" in i]


class FakeFhir:
    def __init__(
        self, base: str, rsps: responses.RequestsMock, resources: list[dict], untyped_chains: bool = True
    ) -> None:
        self.base = base
        self.untyped_chains = untyped_chains
        self.rsps = rsps
        self.store = {f"{r['resourceType']}/{r['id']}": r for r in resources}
        self.searches: list[tuple[str, dict[str, list[str]]]] = []
        self.polls = 0
        self.export_params: dict[str, list[str]] = {}
        rsps.get(f"{base}/metadata", json=minimal_statement())
        rsps.add_callback(responses.GET, re.compile(re.escape(base) + r"/.*"), callback=self._get)
        rsps.add(responses.DELETE, f"{base}/export-status", status=202)

    # -- dispatch --------------------------------------------------------------------------------
    def _get(self, request):
        url = urlsplit(request.url)
        path = url.path[len(urlsplit(self.base).path) :].strip("/")
        query = parse_qs(url.query)
        if path.endswith("$export"):
            return self._kick_off(query)
        if path == "export-status":
            return self._status()
        if path.startswith("files/"):
            return self._file(path.split("/", 1)[1], request)
        parts = path.split("/")
        if len(parts) == 2:
            resource = self.store.get(path)
            if resource is None:
                return 404, {}, json.dumps({"resourceType": "OperationOutcome", "issue": []})
            return 200, {}, json.dumps(resource)
        return self._search(parts[0], query)

    # -- search ----------------------------------------------------------------------------------
    def _matches(self, resource: dict, name: str, values: list[str]) -> bool:
        wanted = set(",".join(values).split(","))
        if name == "_id":
            return resource["id"] in wanted
        if name == "identifier":
            return any(
                f"{i.get('system')}|{i.get('value')}" in wanted for i in resource.get("identifier", [])
            )
        if name == "_lastUpdated":
            since = datetime.fromisoformat(values[0][2:])
            return datetime.fromisoformat(resource["meta"]["lastUpdated"]) >= since
        if name == "target.subject" or name.startswith("target:"):
            kind = name[len("target:") : -len(".subject")] if name.startswith("target:") else None
            targets = [
                self.store.get(t, {}) for t in _refs(resource, "target") if not kind or t.startswith(kind)
            ]
            return any(set(_refs(t, "subject")) & wanted for t in targets)
        if name == "target.subject":
            targets = [self.store.get(t, {}) for t in _refs(resource, "target")]
            return any(set(_refs(t, "subject")) & wanted for t in targets)
        return bool(set(_refs(resource, name)) & wanted)

    def _search(self, rtype: str, query: dict[str, list[str]]):
        self.searches.append((rtype, query))
        if "target.subject" in query and not self.untyped_chains:
            outcome = {
                "resourceType": "OperationOutcome",
                "issue": [{"severity": "error", "code": "invalid"}],
            }
            return 400, {}, json.dumps(outcome)
        count = int(query.get("_count", ["50"])[0])
        offset = int(query.get("_offset", ["0"])[0])
        filters = {k: v for k, v in query.items() if not k.startswith("_") or k in ("_id", "_lastUpdated")}
        matches = sorted(
            (
                r
                for r in self.store.values()
                if r["resourceType"] == rtype and all(self._matches(r, k, v) for k, v in filters.items())
            ),
            key=lambda r: r["id"],
        )
        page = matches[offset : offset + count]
        entries = [{"resource": r, "search": {"mode": "match"}} for r in page]
        included: dict[str, dict] = {}
        for include in query.get("_include", []):
            for resource in page:
                for field in INCLUDES[include]:
                    for ref in _refs(resource, field):
                        if ref in self.store:
                            included[ref] = self.store[ref]
        if "Provenance:target" in query.get("_revinclude", []):
            keys = {f"{r['resourceType']}/{r['id']}" for r in page}
            for key, resource in self.store.items():
                if resource["resourceType"] == "Provenance" and set(_refs(resource, "target")) & keys:
                    included[key] = resource
        entries += [{"resource": r, "search": {"mode": "include"}} for r in included.values()]
        bundle: dict = {
            "resourceType": "Bundle",
            "type": "searchset",
            "meta": {"lastUpdated": "2024-06-01T00:00:00.000+00:00"},
            "total": len(matches),
            "entry": entries,
        }
        if offset + count < len(matches):
            rest = {k: v for k, v in query.items() if k != "_offset"}
            rest["_offset"] = [str(offset + count)]
            q = "&".join(f"{k}={v}" for k, vs in rest.items() for v in vs)
            bundle["link"] = [{"relation": "next", "url": f"{self.base}/{rtype}?{q}"}]
        return 200, {}, json.dumps(bundle)

    # -- bulk export -----------------------------------------------------------------------------
    def _kick_off(self, query):
        self.export_params = query
        return 202, {"Content-Location": f"{self.base}/export-status"}, ""

    def _status(self):
        self.polls += 1
        if self.polls == 1:
            return 202, {"X-Progress": "Build in progress", "Retry-After": "120"}, ""
        group = next(r for r in self.store.values() if r["resourceType"] == "Group")
        members = {m["entity"]["reference"] for m in group["member"]}
        types = self.export_params["_type"][0].split(",")
        since = self.export_params.get("_since", [None])[0]
        self._files: dict[str, list[dict]] = {}
        for rtype in types:
            rows = [
                r
                for r in self.store.values()
                if r["resourceType"] == rtype
                and (
                    f"Patient/{r['id']}" in members
                    if rtype == "Patient"
                    else bool(set(_refs(r, "subject") + _refs(r, "individual")) & members)
                )
                and (
                    since is None
                    or datetime.fromisoformat(r["meta"]["lastUpdated"]) >= datetime.fromisoformat(since)
                )
            ]
            if rows:
                self._files[rtype] = rows
        manifest = {
            "transactionTime": "2024-06-01T00:00:00.000+00:00",
            "request": f"{self.base}/Group/x/$export",
            "requiresAccessToken": False,
            "output": [{"type": t, "url": f"{self.base}/files/{t}"} for t in self._files],
            "error": [{"type": "OperationOutcome", "url": f"{self.base}/files/errors"}],
        }
        return 200, {}, json.dumps(manifest)

    def _file(self, name: str, request):
        assert "Authorization" not in request.headers, "requiresAccessToken false: no credentials"
        if name == "errors":
            rows = [
                {
                    "resourceType": "OperationOutcome",
                    "issue": [
                        {"severity": "error", "code": "processing", "diagnostics": "1 resource skipped"}
                    ],
                }
            ]
        else:
            rows = self._files[name]
        return 200, {"Content-Type": "application/fhir+ndjson"}, "\n".join(json.dumps(r) for r in rows) + "\n"
