"""Staff sessions in signed cookies, and the CSRF token bound to each.

The cookie holds `{user id, session epoch, random session id, issued at}`, signed with an
HMAC key derived from REFERRALS_SECRET_KEY. Nothing is stored server-side but the user's
`session_epoch`: logging out, a new password or deactivation bumps it and every cookie of that
user stops working. Logging in always issues a new session id (no fixation); the CSRF token is
an HMAC of the session id, so it changes with it. Cookies are HttpOnly, SameSite=Lax, and
Secure when the public URL is https.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from functools import lru_cache

from fastapi import Request, Response

from referrals.infra.crypto import derive_key
from referrals.infra.runtime import Runtime

COOKIE = "referrals_session"
LIFETIME = dt.timedelta(hours=12)


@dataclass(frozen=True)
class WebSession:
    sid: str
    user_id: int | None = None
    epoch: int = 0
    issued: int = 0

    @property
    def csrf(self) -> str:
        return hmac.new(_keys(_secret())[1], self.sid.encode(), hashlib.sha256).hexdigest()[:32]


@lru_cache(maxsize=4)
def _keys(secret: str) -> tuple[bytes, bytes]:
    return derive_key(secret, b"web-session-v1"), derive_key(secret, b"web-csrf-v1")


def _secret() -> str:
    return Runtime.current().settings.secret_key


def _sign(payload: bytes) -> str:
    return hmac.new(_keys(_secret())[0], payload, hashlib.sha256).hexdigest()


def encode(session: WebSession) -> str:
    body = json.dumps([session.sid, session.user_id, session.epoch, session.issued])
    payload = base64.urlsafe_b64encode(body.encode()).decode().rstrip("=")
    return f"{payload}.{_sign(payload.encode())}"


def decode(value: str | None, now: dt.datetime) -> WebSession | None:
    """The session a cookie names, if its signature holds and it has not expired."""
    payload, _, mac = (value or "").partition(".")
    if not payload or not payload.isascii() or not mac.isascii():
        return None
    if not hmac.compare_digest(mac.encode(), _sign(payload.encode()).encode()):
        return None
    try:
        sid, user_id, epoch, issued = json.loads(base64.urlsafe_b64decode(payload + "=="))
    except (ValueError, TypeError):
        return None
    if now.timestamp() - issued > LIFETIME.total_seconds():
        return None
    return WebSession(str(sid), user_id, int(epoch), int(issued))


def fresh(now: dt.datetime, user_id: int | None = None, epoch: int = 0) -> WebSession:
    return WebSession(secrets.token_hex(16), user_id, epoch, int(now.timestamp()))


def current(request: Request, now: dt.datetime) -> WebSession | None:
    return decode(request.cookies.get(COOKIE), now)


def store(response: Response, session: WebSession | None) -> None:
    secure = Runtime.current().settings.public_url.startswith("https://")
    if session is None:
        response.delete_cookie(COOKIE, path="/", secure=secure, httponly=True, samesite="lax")
        return
    response.set_cookie(
        COOKIE,
        encode(session),
        max_age=int(LIFETIME.total_seconds()),
        path="/",
        secure=secure,
        httponly=True,
        samesite="lax",
    )
