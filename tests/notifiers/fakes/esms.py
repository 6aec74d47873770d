"""A loopback fake of eSMS.vn's customer-care SMS send, for tests and benchmarks (stdlib only).

It answers ``POST /MainService.svc/json/SendMultipleMessage_V4_post_json/`` the way eSMS's docs
describe (https://developers.esms.vn/en/esms-api/send-sms-api/send-otp-customer-care-message,
error codes: https://developers.esms.vn/en/esms-api/table-of-error-codes), and builds the GET
eSMS makes on a CallbackUrl (https://developers.esms.vn/en/esms-api/callback-url)::

    with FakeEsms(api_key="k", secret_key="s", brandnames={"CTXH"}) as esms:
        url = f"esms://k:s@CTXH/+84901888484?api={esms.base_url}&callback=https://x/receipts"
        ...                                  # send with the plugin
        sms = esms.sent[-1]                  # the request body as received (a dict)
        method, url, headers, body = esms.callback(sms["answer"]["SMSID"], delivered=True)

Checks, in the order below, each answered with the documented code (HTTP 200, JSON
``{"CodeResult", "CountRegenerate", "SMSID" | "ErrorMessage"}``): ApiKey/SecretKey (101),
SmsType present (300) and "2" (118), Brandname among ``brandnames`` (104), Phone in the
docs' form ``0xxxxxxxxx`` or ``84xxxxxxxxx`` (108), RequestId not seen before (124, as eSMS
blocks a RequestId for 24 h; the docs show no SMSID with it, nor does the fake; with
``refuse_repeats=False`` a repeated RequestId is accepted, for a benchmark that re-sends the same
outbox rows round after round).

Injection: ``fail_next(code)`` answers the next send(s) with that CodeResult (or, with
``status=``, that HTTP status); ``rate_limit_next(retry_after)`` answers HTTP 429 (eSMS
documents no rate limit; this is for the plugin's defensive path).
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import urlencode

SEND_PATH = "/MainService.svc/json/SendMultipleMessage_V4_post_json/"
_PHONE = re.compile(r"^(0\d{9}|84\d{9})$")

# The documentation's words for the codes the fake can answer (table of error codes).
MESSAGES = {
    "99": "The phone number is blocked in the system",
    "101": "Authorize Failed",  # the docs' sample ErrorMessage for 101
    "102": "No price list available",
    "103": "Not enough balance to send message",
    "104": "Brandname does not exist",
    "108": "Phone number is not in correct format",
    "118": "Unsupported message type",
    "124": "Duplicate RequestId",
    "140": "IP is not whitelisted for sending messages",
    "146": "Wrong customer care template",
    "177": "The network is not registered",
    "300": "Missing message type",
}


class FakeEsms:
    """eSMS's send endpoint on 127.0.0.1 (an ephemeral port), in a thread.

    Public: ``base_url``; ``sent`` (every send request's JSON body, with the fake's answer
    under ``"answer"``); ``fail_next``; ``rate_limit_next``; ``callback``; ``start``/``stop``
    (or use it as a context manager)."""

    def __init__(
        self,
        api_key: str = "fake-api-key",
        secret_key: str = "fake-secret-key",
        brandnames: Iterable[str] = ("CTXH",),
        *,
        refuse_repeats: bool = True,
    ) -> None:
        self.api_key = api_key
        self.refuse_repeats = refuse_repeats  # code 124 for a RequestId seen before
        self.secret_key = secret_key
        self.brandnames = set(brandnames)
        self.sent: list[dict[str, Any]] = []
        self._accepted: dict[str, dict[str, Any]] = {}  # SMSID -> request body
        self._request_ids: set[str] = set()
        self._faults: list[tuple[int, str | None, float | None]] = []  # (status, code, wait)
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> FakeEsms:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                status, answer, headers = fake._answer(self.path, self.headers, raw)
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet: request lines would carry nothing useful

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeEsms:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``: the plugin's ``api=``."""
        if self._server is None:
            raise RuntimeError("FakeEsms is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    # -- injection -------------------------------------------------------------------------

    def fail_next(self, code: str | int, *, status: int = 200, times: int = 1) -> None:
        """Answer the next `times` sends with CodeResult `code` (HTTP `status`), whatever
        they hold. Nothing is recorded as accepted."""
        with self._lock:
            self._faults += [(status, str(code), None)] * times

    def rate_limit_next(self, retry_after: float | None = 30, *, times: int = 1) -> None:
        """Answer the next `times` sends with HTTP 429 (and ``Retry-After`` unless None)."""
        with self._lock:
            self._faults += [(429, None, retry_after)] * times

    # -- the endpoint ----------------------------------------------------------------------

    def _answer(
        self, path: str, headers: Any, raw: bytes
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        if path.split("?")[0] != SEND_PATH:
            return 404, {"Message": "Endpoint not found."}, {}
        try:
            body = json.loads(raw.decode("utf-8"))
            if not isinstance(body, dict):
                raise ValueError
        except ValueError:
            return 400, {"Message": "The request body is not JSON."}, {}
        with self._lock:
            record: dict[str, Any] = dict(body)
            self.sent.append(record)
            if self._faults:
                status, code, wait = self._faults.pop(0)
                if status == 429:
                    extra = {"Retry-After": str(int(wait))} if wait is not None else {}
                    answer: dict[str, Any] = {"Message": "Too many requests"}
                    record["answer"] = answer
                    return 429, answer, extra
                answer = _error(code or "99")
                record["answer"] = answer
                return status, answer, {}
            answer = self._check(body)
            record["answer"] = answer
            return 200, answer, {}

    def _check(self, body: dict[str, Any]) -> dict[str, Any]:
        if body.get("ApiKey") != self.api_key or body.get("SecretKey") != self.secret_key:
            return _error("101")
        sms_type = str(body.get("SmsType") or "")
        if not sms_type:
            return _error("300")
        if sms_type != "2":
            return _error("118")
        if body.get("Brandname") not in self.brandnames:
            return _error("104")
        if not _PHONE.match(str(body.get("Phone") or "")):
            return _error("108")
        request_id = str(body.get("RequestId") or "")
        if request_id and self.refuse_repeats:
            if request_id in self._request_ids:
                return _error("124")
            self._request_ids.add(request_id)
        sms_id = uuid.uuid4().hex + "100"  # the docs' SMSIDs look like this
        self._accepted[sms_id] = body
        return {"CodeResult": "100", "CountRegenerate": 0, "SMSID": sms_id}

    # -- the callback eSMS would make ------------------------------------------------------

    def callback(
        self, sms_id: str, delivered: bool, reason_code: int | None = None
    ) -> tuple[str, str, dict[str, str], bytes]:
        """The request eSMS makes on the CallbackUrl of the accepted message `sms_id`:
        ``(method, url, headers, body)``. eSMS uses GET with its fields in the query
        (SMSID, SendFailed, SendStatus, SendSuccess, TotalPrice, TotalReceiver, TotalSent,
        RequestId, TypeId, telcoid, phonenumber, switchsmsid), added after the plugin's own
        signed query with "&".

        `delivered` True: SendStatus 5, SendSuccess 1. False: SendStatus `reason_code` (5
        "sent" but SendFailed 1, the default; or 4 "reject"; 1, 2 or 7 give a not-yet-final
        report). eSMS documents no per-message failure reason for SMS beyond these."""
        with self._lock:
            body = self._accepted.get(sms_id)
        if body is None:
            raise KeyError(f"no accepted message {sms_id!r}")
        base = str(body.get("CallbackUrl") or "")
        if not base:
            raise ValueError("that message was sent without a CallbackUrl")
        status = 5 if delivered else (reason_code if reason_code is not None else 5)
        success = 1 if delivered else 0
        failed = 0 if delivered or status in (1, 2, 7) else 1
        fields = {
            "SMSID": sms_id,
            "SendFailed": str(failed),
            "SendStatus": str(status),
            "SendSuccess": str(success),
            "TotalPrice": "850.0000" if delivered else "0.0000",
            "TotalReceiver": "1",
            "TotalSent": "0" if status == 4 else "1",
            "RequestId": str(body.get("RequestId") or ""),
            "TypeId": "2",
            "telcoid": "1",
            "phonenumber": str(body.get("Phone") or ""),
            "switchsmsid": "",
        }
        url = base + ("&" if "?" in base else "?") + urlencode(fields)
        return "GET", url, {"User-Agent": "eSMS-callback (fake)"}, b""


def _error(code: str) -> dict[str, Any]:
    return {
        "CodeResult": code,
        "CountRegenerate": 0,
        "ErrorMessage": MESSAGES.get(code, "Unknown error"),
    }
