"""A tiny in-process FHIR server for sync tests: transaction bundles in, resources kept by Type/id.

Behaves like HAPI where sync cares: a transaction is all-or-nothing; an identical re-PUT makes no new
version; references to absent targets are refused (400) unless `referential=False`. Faults are
scripted: `faults.append("503")`, `"429:2"` (Retry-After 2 s), `"drop"` (close without answering);
`reject[key] = "text"` refuses every bundle holding that resource (422, entry named in the
OperationOutcome), `anonymous` hides which entry it was (forces bisection).
"""

from __future__ import annotations

import json
import threading
from collections import Counter, deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

CAPABILITIES = {
    "resourceType": "CapabilityStatement",
    "status": "active",
    "kind": "instance",
    "fhirVersion": "4.0.1",
    "format": ["json"],
    "rest": [{"mode": "server", "interaction": [{"code": "transaction"}, {"code": "batch"}]}],
}


def _refs(node: Any):
    if isinstance(node, dict):
        if isinstance(node.get("reference"), str):
            yield node["reference"]
        for v in node.values():
            yield from _refs(v)
    elif isinstance(node, list):
        for v in node:
            yield from _refs(v)


class FakeFhir:
    def __init__(self, referential: bool = True) -> None:
        self.resources: dict[str, dict] = {}
        self.versions: Counter[str] = Counter()
        self.faults: deque[str] = deque()
        self.reject: dict[str, str] = {}
        self.anonymous = False
        self.referential = referential
        self.existing: set[str] = set()  # references that resolve without being sent (e.g. Patients)
        self.bundles = 0
        self.bundle_sizes: list[int] = []
        self.lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def base_url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/fhir"

    def start(self) -> str:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, body: dict, headers: dict | None = None) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/fhir+json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def _fault(self) -> bool:
                with fake.lock:
                    fault = fake.faults.popleft() if fake.faults else None
                if fault is None:
                    return False
                if fault == "drop":
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return True
                code, _, after = fault.partition(":")
                headers = {"Retry-After": after} if after else {}
                self._send(int(code), _outcome(f"fault {code}"), headers)
                return True

            def do_GET(self) -> None:
                if self._fault():
                    return
                if self.path.rstrip("/") == "/fhir/metadata":
                    self._send(200, CAPABILITIES)
                else:
                    key = "/".join(self.path.split("?")[0].split("/")[-2:])
                    res = fake.resources.get(key)
                    self._send(200 if res else 404, res or _outcome(f"{key} not found"))

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length))
                if self._fault():
                    return
                if self.path.rstrip("/") != "/fhir":
                    self._send(404, _outcome(f"unknown path {self.path}"))
                    return
                status, answer = fake.transaction(body)
                self._send(status, answer)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self.base_url

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def transaction(self, bundle: dict) -> tuple[int, dict]:
        entries = bundle.get("entry", [])
        keys = [e["request"]["url"] for e in entries]
        with self.lock:
            if len(set(keys)) != len(keys):
                return 400, _outcome("Transaction contains the same resource twice")
            for index, key in enumerate(keys):
                if key in self.reject:
                    where = "" if self.anonymous else f"Bundle.entry[{index}]"
                    return 422, _outcome(self.reject[key], where)
            if self.referential:
                known = set(self.resources) | self.existing | set(keys)
                for entry in entries:
                    for ref in _refs(entry["resource"]):
                        if ref not in known:
                            return 400, _outcome(f"Resource {ref} not found, specified in path: x.subject")
            answers = []
            for key, entry in zip(keys, entries, strict=True):
                resource = entry["resource"]
                created = key not in self.resources
                if created or self.resources[key] != resource:
                    self.versions[key] += 1
                self.resources[key] = resource
                answers.append(
                    {
                        "response": {
                            "status": "201 Created" if created else "200 OK",
                            "location": f"{key}/_history/{self.versions[key]}",
                        }
                    }
                )
            self.bundles += 1
            self.bundle_sizes.append(len(entries))
        return 200, {"resourceType": "Bundle", "type": "transaction-response", "entry": answers}


def _outcome(text: str, where: str = "") -> dict:
    issue = {"severity": "error", "code": "processing", "diagnostics": text}
    if where:
        issue["expression"] = [where]
    return {"resourceType": "OperationOutcome", "issue": [issue]}
