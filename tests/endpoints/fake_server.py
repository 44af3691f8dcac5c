"""A small in-memory FHIR search server for `responses`: serves an NDJSON folder the way HAPI pages it.

Supports what the endpoint source asks for: `_id`, `study`, `subject`, `code` (token lists, OR), `_count`
paging with `next` links, and transaction bundles (recorded, answered 201/200 by whether the id is new).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

import responses

from adapter.ndjson import iter_resources


class FakeFhirServer:
    def __init__(self, base: str, folder: Path | None = None) -> None:
        self.base = base.rstrip("/")
        self.store: dict[str, dict[str, dict[str, Any]]] = {}
        self.searches: list[tuple[str, dict[str, list[str]]]] = []
        self.transactions: list[dict[str, Any]] = []
        if folder is not None:
            for path in sorted(folder.glob("*.ndjson")):
                for resource in iter_resources(folder, path.stem):
                    self.store.setdefault(resource["resourceType"], {})[resource["id"]] = resource

    def register(self, mock: responses.RequestsMock) -> None:
        pattern = re.compile(re.escape(self.base) + r"/([A-Za-z]+)(\?.*)?$")
        mock.add_callback(responses.GET, pattern, callback=self._search)
        mock.add_callback(
            responses.POST, re.compile(re.escape(self.base) + r"/?$"), callback=self._transaction
        )

    # -- search -------------------------------------------------------------------------------------
    def _search(self, request: Any) -> tuple[int, dict[str, str], str]:
        url = urlparse(request.url)
        resource_type = url.path.rstrip("/").rsplit("/", 1)[-1]
        params = parse_qs(url.query)
        self.searches.append((resource_type, params))
        matches = [r for _, r in sorted(self.store.get(resource_type, {}).items()) if self._match(r, params)]
        count = int(params.get("_count", ["20"])[0])
        offset = int(params.get("_offset", ["0"])[0])
        page = matches[offset : offset + count]
        bundle: dict[str, Any] = {
            "resourceType": "Bundle",
            "type": "searchset",
            "total": len(matches),
            "entry": [{"resource": r, "search": {"mode": "match"}} for r in page],
            "link": [],
        }
        if offset + count < len(matches):
            nxt = {k: v[0] for k, v in params.items()} | {"_offset": str(offset + count)}
            bundle["link"].append(
                {"relation": "next", "url": f"{self.base}/{resource_type}?{urlencode(nxt)}"}
            )
        return 200, {"Content-Type": "application/fhir+json"}, json.dumps(bundle)

    @staticmethod
    def _match(resource: dict[str, Any], params: dict[str, list[str]]) -> bool:
        for name, values in params.items():
            wanted = set(values[0].split(","))
            if name in ("_count", "_offset"):
                continue
            if name == "_id":
                ok = resource["id"] in wanted
            elif name == "study":
                ok = (resource.get("study") or {}).get("reference") in wanted
            elif name == "subject":
                ok = (resource.get("subject") or {}).get("reference") in wanted
            elif name == "code":
                codings = (resource.get("code") or {}).get("coding") or []
                ok = any(f"{c.get('system')}|{c.get('code')}" in wanted for c in codings)
            else:
                raise AssertionError(f"unsupported search parameter {name}")
            if not ok:
                return False
        return True

    # -- transactions -------------------------------------------------------------------------------
    def _transaction(self, request: Any) -> tuple[int, dict[str, str], str]:
        bundle = json.loads(request.body)
        self.transactions.append(bundle)
        answers = []
        for entry in bundle["entry"]:
            resource = entry["resource"]
            known = self.store.setdefault(resource["resourceType"], {})
            status = "200 OK" if resource["id"] in known else "201 Created"
            known[resource["id"]] = resource
            answers.append(
                {"response": {"status": status, "location": f"{resource['resourceType']}/{resource['id']}"}}
            )
        body = {"resourceType": "Bundle", "type": "transaction-response", "entry": answers}
        return 200, {"Content-Type": "application/fhir+json"}, json.dumps(body)
