"""A fault-injecting HTTP proxy on 127.0.0.1 in front of moto's server: it stands in for AWS.

Each request is identified like AWS does (the service and region of its SigV4 credential scope,
and the operation from `X-Amz-Target` or the query `Action`; REST protocols by method and path).
A request that matches a planted fault gets that fault; every other request is forwarded to
moto unchanged. Faults are what a real account or network produces:

    html500    500 with an HTML body (a proxy, load balancer or captive portal answering)
    bad_xml    200 with XML cut off mid-element
    bad_json   200 with JSON cut off mid-value
    truncated  200 whose body ends before its Content-Length
    reset      the TCP connection is reset (RST) before any answer
    slow       no answer until after the client's read timeout
    throttle   the service's own throttling error, on every attempt (past the retries)
    denied     the service's own AccessDenied error

Error bodies are written in the protocol the service speaks (EC2 XML, query XML, JSON, REST-JSON,
REST-XML), so botocore parses them as it would AWS's.
"""

from __future__ import annotations

import http.client
import re
import socket
import struct
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

FAULTS = ("html500", "bad_xml", "bad_json", "truncated", "reset", "slow", "throttle", "denied")
REST_XML = {"s3", "s3control", "cloudfront", "route53"}
_CREDENTIAL_RE = re.compile(r"Credential=[^/]+/\d+/([^/]+)/([^/]+)/")


class Request:
    def __init__(self, handler: BaseHTTPRequestHandler, body: bytes):
        auth = _CREDENTIAL_RE.search(handler.headers.get("Authorization", ""))
        self.region, self.service = (auth.group(1), auth.group(2)) if auth else ("?", "?")
        self.method, self.path = handler.command, handler.path
        target = handler.headers.get("X-Amz-Target")
        self.json = bool(target)
        if target:
            self.operation = target.rsplit(".", 1)[-1]
        else:
            query = urllib.parse.urlsplit(self.path).query
            params = urllib.parse.parse_qs(query)
            if handler.headers.get("Content-Type", "").startswith("application/x-www-form-urlencoded"):
                params.update(urllib.parse.parse_qs(body.decode("utf-8", "replace")))
            self.operation = (params.get("Action") or [None])[0]
        self.query_protocol = self.operation is not None and not self.json

    def matches(self, service: str, region: str | None, operation: str | None) -> bool:
        """`operation` is an API name for JSON/query protocols, or a path prefix for REST ones."""
        if service != self.service or (region and region != self.region):
            return False
        if operation is None:
            return True
        if self.operation is not None:
            return operation == self.operation
        return urllib.parse.urlsplit(self.path).path.startswith(operation)

    def error(self, code: str, message: str) -> tuple[str, bytes, dict]:
        """(content type, body, extra headers) of an AWS error in this service's protocol."""
        if self.json:
            return "application/x-amz-json-1.1", f'{{"__type":"{code}","message":"{message}"}}'.encode(), {}
        if self.service == "ec2":
            body = (f"<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error></Errors>"
                    "<RequestID>fault-proxy</RequestID></Response>")
            return "text/xml", body.encode(), {}
        if self.query_protocol:
            body = (f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message>"
                    "</Error><RequestId>fault-proxy</RequestId></ErrorResponse>")
            return "text/xml", body.encode(), {}
        if self.service in REST_XML:
            return "application/xml", f"<Error><Code>{code}</Code><Message>{message}</Message></Error>".encode(), {}
        return "application/json", f'{{"message":"{message}"}}'.encode(), {"x-amzn-ErrorType": code}


class FaultProxy:
    def __init__(self, upstream: str, slow_seconds: float = 3.0):
        self.upstream = urllib.parse.urlsplit(upstream)
        self.slow_seconds = slow_seconds
        self.faults: list[tuple[str, str | None, str | None, str]] = []
        self.injected: list[tuple[str, str, str | None, str]] = []  # (service, region, operation, fault)
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out as separate writes

            def log_message(self, *_args) -> None:  # quiet
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                proxy.handle(self, Request(self, body), body)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _handle

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address) -> None:  # a client that gave up: expected
                pass

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def plant(self, fault: str, service: str, operation: str | None = None, region: str | None = None) -> None:
        assert fault in FAULTS, fault
        self.faults.append((service, region, operation, fault))

    def clear(self) -> None:
        self.faults.clear()
        self.injected.clear()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def handle(self, h: BaseHTTPRequestHandler, req: Request, body: bytes) -> None:
        fault = next((f for s, r, o, f in self.faults if req.matches(s, r, o)), None)
        if fault is None:
            self._forward(h, body)
            return
        with self._lock:
            self.injected.append((req.service, req.region, req.operation, fault))
        getattr(self, f"_{fault}")(h, req)

    # --- faults -----------------------------------------------------------------------------------

    @staticmethod
    def _send(h, status: int, content_type: str, body: bytes, headers: dict | None = None,
              length: int | None = None) -> None:
        h.send_response(status)
        h.send_header("Content-Type", content_type)
        h.send_header("Content-Length", str(len(body) if length is None else length))
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(body)
        h.wfile.flush()

    def _html500(self, h, req) -> None:
        self._send(h, 500, "text/html", b"<html><head><title>500</title></head><body><h1>Internal Server Error"
                                        b"</h1><p>upstream unavailable</p></body></html>")

    def _bad_xml(self, h, req) -> None:
        self._send(h, 200, "text/xml", f"<{req.operation or 'Result'}Response><items><item><id>x</i".encode())

    def _bad_json(self, h, req) -> None:
        self._send(h, 200, "application/x-amz-json-1.1", b'{"items": [{"id": "x", "name": tru')

    def _truncated(self, h, req) -> None:
        self._send(h, 200, "text/xml" if not req.json else "application/x-amz-json-1.1",
                   b"<Response><items><item>", length=4096)
        h.close_connection = True
        h.connection.shutdown(socket.SHUT_RDWR)

    def _reset(self, h, req) -> None:
        h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        h.close_connection = True
        h.connection.close()

    def _slow(self, h, req) -> None:
        time.sleep(self.slow_seconds)
        try:
            self._send(h, 200, "text/xml", b"<Response/>")
        except OSError:  # the client gave up long ago
            pass

    def _throttle(self, h, req) -> None:
        code = "Throttling" if req.query_protocol and req.service != "ec2" else (
            "RequestLimitExceeded" if req.service == "ec2" else "ThrottlingException")
        self._send(h, 400, *self._error(req, code, "Rate exceeded"))

    def _denied(self, h, req) -> None:
        code = "UnauthorizedOperation" if req.service == "ec2" else (
            "AccessDenied" if req.query_protocol or req.service in REST_XML else "AccessDeniedException")
        self._send(h, 403, *self._error(req, code, f"not authorized to perform {req.operation or req.path}"))

    @staticmethod
    def _error(req: Request, code: str, message: str):
        return req.error(code, message)

    # --- pass-through -----------------------------------------------------------------------------

    def _forward(self, h, body: bytes) -> None:
        conn = http.client.HTTPConnection(self.upstream.hostname, self.upstream.port, timeout=30)
        try:
            headers = {k: v for k, v in h.headers.items() if k.lower() not in ("connection", "keep-alive")}
            conn.request(h.command, h.path, body=body or None, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            h.send_response(resp.status)
            for k, v in resp.getheaders():
                if k.lower() not in ("transfer-encoding", "connection", "content-length", "keep-alive", "server",
                                     "date"):
                    h.send_header(k, v)
            h.send_header("Content-Length", str(len(data)))
            h.end_headers()
            if h.command != "HEAD":
                h.wfile.write(data)
        finally:
            conn.close()
