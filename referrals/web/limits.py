"""Rate limits for the doors anyone can knock on: the login form and the partners' links.

A sliding window per client address, in the process's memory: enough to slow down guessing
(a password, a link token) from one address without a store of our own. Behind a reverse
proxy, run uvicorn with `--proxy-headers` so the address is the visitor's, not the proxy's.
With several web workers each counts for itself; the per-account lockout (usecases/staff/accounts.py)
holds across them.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import OrderedDict, deque
from dataclasses import dataclass, field

from fastapi import HTTPException, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from referrals.web.sessions import COOKIE

MAX_ADDRESSES = 10_000  # the oldest address is forgotten first: memory stays bounded


@dataclass
class Limit:
    name: str
    per_minute: int
    _seen: OrderedDict[str, deque[float]] = field(default_factory=OrderedDict)

    def check(self, request: Request, now: dt.datetime) -> None:
        """Count this request; refuse it (429, with Retry-After) beyond the limit."""
        address = request.client.host if request.client else "unknown"
        t = now.timestamp()
        window = self._seen.pop(address, None) or deque()
        while window and window[0] <= t - 60:
            window.popleft()
        self._seen[address] = window
        if len(self._seen) > MAX_ADDRESSES:
            self._seen.popitem(last=False)
        if len(window) >= self.per_minute:
            wait = max(1, math.ceil(window[0] + 60 - t))
            raise HTTPException(429, f"too many {self.name} attempts", {"Retry-After": str(wait)})
        window.append(t)


MAX_BODY = 64 * 1024  # every form and JSON body the engine takes is far smaller
# ...but a spreadsheet to import (web/uploads.py): 5,000 rows are ~600 KB as CSV, ~190 KB as
# .xlsx; 4 MiB holds some 30,000 CSV rows, about half a minute of work. Exact paths, and only
# for a request with a session cookie: a visitor who is not signed in keeps MAX_BODY.
MAX_UPLOAD = 4 * 1024 * 1024
LARGER: dict[str, int] = {"/import": MAX_UPLOAD}


class BodyLimit:
    """ASGI wrapper: a request body over MAX_BODY is refused with 413 before anything parses it.

    FastAPI reads a JSON body whole before validating it, so without this a 20 MiB body was
    parsed before being refused. A declared Content-Length is judged at once; a chunked body is
    read up to the limit, then handed on as it came.
    """

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = LARGER.get(scope["path"], self.limit) if _signed_in(scope) else self.limit
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None:
            if not declared.isdigit() or int(declared) > limit:
                return await self._refuse(scope, send, limit)
            return await self.app(scope, receive, send)
        messages: list[Message] = []
        size, more = 0, True
        while more:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            size += len(message.get("body", b""))
            if size > limit:
                return await self._refuse(scope, send, limit)
            more = message.get("more_body", False)

        async def replay() -> Message:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, send: Send, limit: int) -> None:
        detail = f"the request body is larger than {limit // 1024} KiB"
        if scope["path"].startswith("/api/"):
            response: Response = JSONResponse({"detail": detail}, 413)
        else:
            response = PlainTextResponse(detail, 413)
        await response(scope, _nothing, send)


def _signed_in(scope: Scope) -> bool:
    """The request carries a staff session cookie (checked for real by the route)."""
    cookies = dict(scope["headers"]).get(b"cookie", b"")
    return f"{COOKIE}=".encode() in cookies


async def _nothing() -> Message:  # the refusal reads no more of the request
    return {"type": "http.disconnect"}
