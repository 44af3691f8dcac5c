"""A fault-injecting HTTP proxy on 127.0.0.1 in front of a real FHIR server (HAPI).

Requests are forwarded as they are unless a fault is scripted: `faults.append("503")`, `"429:2"`
(with Retry-After: 2), `"drop"` (close the connection without an answer). `down()` closes the port
(connection refused, like a stopped server) and `up()` opens it again on the same port;
`down_after(n)` lets n more requests through, then goes down by itself (a server dying mid-sync).
"""

from __future__ import annotations

import http.client
import json
import threading
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit


class FaultProxy:
    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        self.upstream_host = parts.hostname or "127.0.0.1"
        self.upstream_port = parts.port or 80
        self.upstream_path = parts.path.rstrip("/")
        self.faults: deque[str] = deque()
        self.forwarded = 0
        self.posts = 0
        self._budget: int | None = None
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.upstream_path}"

    def up(self) -> str:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length", 0) or 0)
                body = self.rfile.read(length) if length else None
                with proxy._lock:
                    fault = proxy.faults.popleft() if proxy.faults else None
                    if fault is None and proxy._budget is not None:
                        if proxy._budget <= 0:
                            fault = "drop"
                            threading.Thread(target=proxy.down, daemon=True).start()
                        proxy._budget -= 1
                if fault == "drop":
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                if fault:
                    code, _, after = fault.partition(":")
                    data = json.dumps(
                        {
                            "resourceType": "OperationOutcome",
                            "issue": [
                                {"severity": "error", "code": "transient", "diagnostics": f"injected {code}"}
                            ],
                        }
                    ).encode()
                    self.send_response(int(code))
                    if after:
                        self.send_header("Retry-After", after)
                    self.send_header("Content-Type", "application/fhir+json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    return
                conn = http.client.HTTPConnection(proxy.upstream_host, proxy.upstream_port, timeout=300)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                conn.request(self.command, self.path, body=body, headers=headers)
                answer = conn.getresponse()
                data = answer.read()
                with proxy._lock:
                    proxy.forwarded += 1
                    proxy.posts += self.command == "POST"
                self.send_response(answer.status)
                for k, v in answer.getheaders():
                    if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                conn.close()

            do_GET = do_POST = do_PUT = do_DELETE = _handle

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        self.port = server.server_address[1]
        self._server = server
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return self.base_url

    def down(self) -> None:
        with self._lock:
            server, self._server = self._server, None
            self._budget = None
        if server is not None:
            server.shutdown()
            server.server_close()

    def down_after(self, requests: int) -> None:
        with self._lock:
            self._budget = requests
