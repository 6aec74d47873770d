"""A loopback fake of Zalo's ZNS send API, its OA token endpoint and its delivery webhook.

    with FakeZns(templates={"250001": ["name", "link"]}) as zns:
        url = zns.url("0912345678")        # zns://APP/0912345678?secret=...&api=...&oauth=...
        ...                                # send through Apprise / NotifyZaloZNS
        zns.sent[-1]["template_data"]      # what Zalo received
        headers, body = zns.delivery_event(zns.sent[-1]["msg_id"])   # Zalo's signed callback

Shapes follow Zalo's documentation as cited in referrals/notifiers/plugins/zalo_zns.py:
- `POST /message/template`, header `access_token`, JSON `phone` (84...), `template_id`,
  `template_data`, `tracking_id`, `mode` -> `{"error": 0, "message": "Success", "data":
  {"msg_id", "sent_time", "quota": {"dailyQuota", "remainingQuota"}}}`, or `{"error": <code>,
  "message": <Zalo's wording>}`: -124 access token invalid, -108 phone invalid, -109 template
  id invalid, -111/-112 template data empty/invalid, or whatever `fail_next` injects.
- `POST /v4/oa/access_token`, header `secret_key`, form `refresh_token`, `app_id`,
  `grant_type=refresh_token` -> `{"access_token", "refresh_token", "expires_in"}` (a string, as
  Zalo sends it); each refresh token works once. A refused refresh answers `{"error",
  "error_name", "error_description"}` (its code, -14014, is what integrations report, not
  confirmed in Zalo's documentation).
- The webhook call is signed `X-ZEvent-Signature: mac=sha256(app_id + body + timestamp + OA
  secret)`.

The API, kept small (the engine's tests and the benchmark use it too): `base_url`, `url()`,
`app_id`/`app_secret`/`oa_secret`/`refresh_token`, `sent`, `refreshes`, `fail_next()`,
`rate_limit_next()`, `expire_tokens()`, `delivery_event()`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import secrets
import threading
import time
from collections.abc import Iterable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote

PHONE = re.compile(r"^84[0-9]{9,10}$")
REFRESH_REFUSED = -14014  # see the module doc: not confirmed in Zalo's documentation


class FakeZns:
    """Zalo's ZNS and OA token endpoints on 127.0.0.1 (an ephemeral port), for one app/OA.

    `templates` maps each approved template id to the names of its parameters (every one is
    required, as in Zalo's template editor). `access_ttl` is the access token's lifetime in
    seconds (Zalo's is 90000)."""

    def __init__(
        self,
        templates: Mapping[str, Iterable[str]] | None = None,
        *,
        app_id: str = "4318290150613462311",
        app_secret: str = "app-secret-xyz",
        oa_secret: str = "oa-secret-abc",
        oa_id: str = "2980113523430155209",
        refresh_token: str | None = None,
        access_ttl: int = 90000,
    ) -> None:
        self.templates = {str(k): list(v) for k, v in (templates or {}).items()}
        self.app_id = app_id
        self.app_secret = app_secret
        self.oa_secret = oa_secret
        self.oa_id = oa_id
        self.refresh_token = refresh_token or "rt-" + secrets.token_hex(8)  # the one valid now
        self.access_ttl = access_ttl
        self.sent: list[dict[str, Any]] = []  # every send request, with its answer's msg_id
        self.refreshes: list[dict[str, str]] = []  # every token request's form (+ secret_ok)
        self._access: dict[str, float] = {}  # access token -> expiry (epoch seconds)
        self._failures: list[tuple[int, int | None, str | None]] = []
        self._limits: list[float | None] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------------ lifecycle

    def __enter__(self) -> FakeZns:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        """Listen on 127.0.0.1, port 0 (the system picks one)."""
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                fake._handle(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet: requests carry (fake) client data

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    @property
    def base_url(self) -> str:
        """http://127.0.0.1:PORT: both `api=` and `oauth=` of the plugin's URL."""
        assert self._server is not None, "FakeZns is not started"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def url(self, *phones: str, refresh: str | None = None, **args: str) -> str:
        """A `zns://` URL for this fake: its app, secrets, first refresh token and endpoints."""
        params = {
            "secret": self.app_secret,
            "refresh": refresh or self.refresh_token,
            "oa_secret": self.oa_secret,
            "api": self.base_url,
            "oauth": self.base_url,
            **args,
        }
        query = "&".join(f"{k}={quote(v, safe='')}" for k, v in params.items())
        return f"zns://{self.app_id}/{'/'.join(quote(p, safe='+') for p in phones)}?{query}"

    # -------------------------------------------------------------------------- control

    def fail_next(
        self, code: int = -100, *, status: int = 200, message: str | None = None, times: int = 1
    ) -> None:
        """The next `times` sends answer `{"error": code, "message": ...}` with HTTP `status`
        (a status >= 500 answers an HTML error page instead, as a broken front end would)."""
        with self._lock:
            self._failures.extend([(code, status, message)] * times)

    def rate_limit_next(self, retry_after: float | None = 30, *, times: int = 1) -> None:
        """The next `times` sends answer HTTP 429, with `Retry-After` unless it is None."""
        with self._lock:
            self._limits.extend([retry_after] * times)

    def expire_tokens(self) -> None:
        """Every access token issued so far stops working (as when Zalo revokes them)."""
        with self._lock:
            self._access.clear()

    def delivery_event(
        self,
        msg_id: str,
        *,
        tracking_id: str | None = None,
        delivered_at: dt.datetime | None = None,
        timestamp: dt.datetime | None = None,
        event_name: str = "user_received_message",
        oa_secret: str | None = None,
    ) -> tuple[dict[str, str], bytes]:
        """The headers and body Zalo would POST to our webhook for `msg_id`, signed with the OA
        secret (or `oa_secret`, to forge one). The tracking id and phone default to the send's."""
        sent = next((s for s in self.sent if s.get("msg_id") == msg_id), {})
        now = dt.datetime.now(dt.UTC)
        stamp = str(int((timestamp or now).timestamp() * 1000))
        message: dict[str, Any] = {
            "delivery_time": str(int((delivered_at or now).timestamp() * 1000)),
            "msg_id": msg_id,
        }
        tracking = tracking_id if tracking_id is not None else sent.get("tracking_id")
        if tracking:
            message["tracking_id"] = tracking
        event: dict[str, Any] = {
            "app_id": self.app_id,
            "sender": {"id": self.oa_id},
            "recipient": {"id": sent.get("phone", "")},
            "event_name": event_name,
            "message": message,
            "timestamp": stamp,
        }
        body = json.dumps(event).encode()
        return self.sign(body, stamp, oa_secret=oa_secret), body

    def sign(self, body: bytes, timestamp: str, *, oa_secret: str | None = None) -> dict[str, str]:
        """The headers Zalo sends with a webhook `body` whose JSON `timestamp` is `timestamp`."""
        secret = self.oa_secret if oa_secret is None else oa_secret
        mac = hashlib.sha256(
            self.app_id.encode() + body + timestamp.encode() + secret.encode()
        ).hexdigest()
        return {"Content-Type": "application/json", "X-ZEvent-Signature": f"mac={mac}"}

    # ------------------------------------------------------------------------- handlers

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length) if length else b""
        path = h.path.split("?", 1)[0]
        if path == "/message/template":
            status, headers, body = self._send(h.headers.get("access_token") or "", raw)
        elif path == "/v4/oa/access_token":
            status, headers, body = self._token(h.headers.get("secret_key") or "", raw)
        else:
            status, headers, body = 404, {}, b"not found"
        h.send_response(status)
        for name, value in {"Content-Type": "application/json", **headers}.items():
            h.send_header(name, value)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    @staticmethod
    def _json(value: Any) -> bytes:
        return json.dumps(value, ensure_ascii=False).encode()

    def _send(self, token: str, raw: bytes) -> tuple[int, dict[str, str], bytes]:
        try:
            request = json.loads(raw)
        except ValueError:
            request = None
        with self._lock:
            record: dict[str, Any] = dict(request) if isinstance(request, dict) else {}
            record["access_token"] = token
            self.sent.append(record)
            if self._limits:
                retry_after = self._limits.pop(0)
                extra = {} if retry_after is None else {"Retry-After": str(retry_after)}
                return 429, extra, self._json({"error": -429, "message": "Too many requests"})
            expiry = self._access.get(token)
            if expiry is None or expiry <= time.time():
                return 200, {}, self._json({"error": -124, "message": "Access token invalid"})
            if self._failures:
                code, status, message = self._failures.pop(0)
                if status is not None and status >= 500:
                    return status, {"Content-Type": "text/html"}, b"<html>error</html>"
                answer = {"error": code, "message": message or f"Injected error {code}"}
                return status or 200, {}, self._json(answer)
        error = self._check(request)
        if error is not None:
            return 200, {}, self._json({"error": error[0], "message": error[1]})
        msg_id = secrets.token_hex(16)
        with self._lock:
            record["msg_id"] = msg_id
            sent_today = sum(1 for s in self.sent if s.get("msg_id"))
        data = {
            "msg_id": msg_id,
            "sent_time": str(int(time.time() * 1000)),
            "quota": {"dailyQuota": "500", "remainingQuota": str(max(0, 500 - sent_today))},
        }
        return 200, {}, self._json({"error": 0, "message": "Success", "data": data})

    def _check(self, request: Any) -> tuple[int, str] | None:
        """Zalo's error for a malformed send, or None."""
        if not isinstance(request, dict):
            return -112, "Template data invalid"
        if not PHONE.match(str(request.get("phone", ""))):
            return -108, "Phone number invalid"
        params = self.templates.get(str(request.get("template_id")))
        if params is None:
            return -109, "Template ID invalid"
        data = request.get("template_data")
        if not data:
            return -111, "Template data empty"
        if not isinstance(data, dict) or set(data) != set(params):
            return -112, "Template data invalid"
        if request.get("mode") not in (None, "development"):
            return -112, "Template data invalid"
        return None

    def _token(self, secret_key: str, raw: bytes) -> tuple[int, dict[str, str], bytes]:
        form = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
        with self._lock:
            self.refreshes.append({**form, "secret_ok": str(secret_key == self.app_secret)})
            if secret_key != self.app_secret or form.get("app_id") != self.app_id:
                return 200, {}, self._refused("Invalid app_id or secret_key")
            if form.get("grant_type") != "refresh_token":
                return 200, {}, self._refused("Invalid grant_type")
            if form.get("refresh_token") != self.refresh_token:
                return 200, {}, self._refused("Invalid refresh token")
            access = "at-" + secrets.token_hex(12)
            self._access[access] = time.time() + self.access_ttl
            self.refresh_token = "rt-" + secrets.token_hex(12)  # the old one is spent
            answer = {
                "access_token": access,
                "refresh_token": self.refresh_token,
                "expires_in": str(self.access_ttl),
            }
        return 200, {}, self._json(answer)

    def _refused(self, description: str) -> bytes:
        return self._json(
            {
                "error": REFRESH_REFUSED,
                "error_name": "Invalid parameter",
                "error_description": description,
            }
        )
