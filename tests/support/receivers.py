"""Real receivers on loopback: an SMTP server (aiosmtpd) and an HTTP server for webhook SMS."""

from __future__ import annotations

import email
import email.policy
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Mail:
    sender: str
    to: list[str]
    message: EmailMessage

    @property
    def subject(self) -> str:
        return str(self.message["subject"])

    @property
    def body(self) -> str:
        part = self.message.get_body(preferencelist=("plain",))
        return part.get_content() if part is not None else ""


class SmtpSink:
    """aiosmtpd on a free port; keeps every message it accepts."""

    def __init__(self) -> None:
        self.port = free_port()
        self.mails: list[Mail] = []
        self._lock = threading.Lock()
        self.controller: Controller | None = None

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self._lock:
            self.mails.append(Mail(envelope.mail_from, list(envelope.rcpt_tos), msg))  # type: ignore[arg-type]
        return "250 OK"

    def start(self) -> SmtpSink:
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self.controller.start()
        return self

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def url(self, sender: str = "chicuc@example.vn") -> str:
        return f"mailto://127.0.0.1:{self.port}?from={sender}&to={{email}}"


@dataclass
class Hit:
    path: str
    headers: dict[str, str]
    payload: dict[str, Any]


def _serve(port: int, handler: type[BaseHTTPRequestHandler]) -> ThreadingHTTPServer:
    """An HTTP server on loopback, answering from a daemon thread."""
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


class _Quiet(BaseHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


class _Served:
    """A receiver whose server `_serve` started; stop() shuts it (start() may follow again)."""

    _server: ThreadingHTTPServer | None

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


@dataclass
class HttpSink(_Served):
    """A JSON-receiving HTTP server (a local SMS gateway's API); `delay` slows each answer."""

    port: int = field(default_factory=free_port)
    delay: float = 0.0
    hits: list[Hit] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    def start(self) -> HttpSink:
        sink = self

        class Handler(_Quiet):
            def do_POST(self) -> None:
                size = int(self.headers.get("Content-Length", 0))
                raw = self.rfile.read(size)
                try:
                    payload = json.loads(raw)
                except ValueError:  # cut off: the sender died mid-request; nothing arrived
                    return
                if sink.delay:
                    time.sleep(sink.delay)
                with sink._lock:
                    sink.hits.append(Hit(self.path, dict(self.headers), payload))
                try:
                    self.send_response(200)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                except OSError:  # the sender was killed while we answered
                    pass

        self._server = _serve(self.port, Handler)
        return self

    def url(self) -> str:
        return f"json://127.0.0.1:{self.port}/sms?:to={{phone}}"


@dataclass
class SignedSink(_Served):
    """Another system's webhook endpoint: checks each delivery's signature itself, with the
    secret it was given, and keeps only what passes (401 for the rest)."""

    secret: str = ""
    port: int = field(default_factory=free_port)
    events: list[dict[str, Any]] = field(default_factory=list)
    rejected: int = 0

    def __post_init__(self) -> None:
        self._server: ThreadingHTTPServer | None = None

    def check(self, header: str, body: bytes) -> bool:
        import hashlib
        import hmac

        parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
        mac = hmac.new(self.secret.encode(), f"{parts.get('t')}.".encode() + body, hashlib.sha256)
        return hmac.compare_digest(mac.hexdigest(), parts.get("v1", ""))

    def start(self) -> SignedSink:
        sink = self

        class Handler(_Quiet):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                ok = sink.check(self.headers.get("X-Referrals-Signature", ""), body)
                if ok:
                    sink.events.append(json.loads(body))
                else:
                    sink.rejected += 1
                self.send_response(200 if ok else 401)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self._server = _serve(self.port, Handler)
        return self

    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/events"
