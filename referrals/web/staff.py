"""What every staff page shares: who is asking, in which language, at what time, and rendering.

A page's route takes `Me` (the logged-in user, or a redirect to the login page) and calls
`me.page(...)`. Forms are read with `me.form(request)`, which refuses a missing or wrong CSRF
token before the route sees a field.
"""

from __future__ import annotations

import datetime as dt
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs, quote

from fastapi import Depends, HTTPException, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, pass_context, select_autoescape
from jinja2.runtime import Context
from pydantic import ValidationError
from sqlalchemy import select
from sqlmodel import Session, col

from referrals import locale
from referrals.config.fields import InvalidValue
from referrals.infra.runtime import Runtime
from referrals.locale import dates
from referrals.locale.dates import NotADay
from referrals.models.errors import DomainError, NotFound
from referrals.models.people import Role, User
from referrals.models.policy import Forbidden, require_role
from referrals.queries.reading import Reader
from referrals.web import sessions
from referrals.web.limits import MAX_BODY
from referrals.web.words import UI

PAGES = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)
locale.install(PAGES)  # _("..."), pgettext(...) in the page's `lang` (referrals/locale/)

Code = Annotated[str, PathParam(pattern=r"^[A-Za-z0-9-]{1,20}$")]  # a client's or referral's
KEY = r"^[a-z0-9_-]{1,60}$"  # a partner's, service's or step's key in a form
# The policy's refusals pass through the pages' own error handling to web/errors.py (404/403).
REFUSALS = (NotFound, Forbidden)


def _local(value: dt.datetime | str | None) -> dt.datetime | None:
    """A stored moment in the office's zone."""
    if not value:
        return None
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return value.astimezone(Runtime.current().settings.tz)


@pass_context
def _day(context: Context, value: dt.datetime | str | None) -> str:
    local = _local(value)
    return locale.day(local, context.get("lang")) if local else ""


@pass_context
def _when(context: Context, value: dt.datetime | str | None) -> str:
    local = _local(value)
    return locale.when(local, context.get("lang")) if local else ""


def _iso_day(value: dt.datetime | str | None) -> str:
    """What <input type=date> takes, in any language."""
    local = _local(value)
    return local.date().isoformat() if local else ""


PAGES.filters["day"] = _day
PAGES.filters["when"] = _when
PAGES.filters["iso_day"] = _iso_day
# A typed date's field: dd/mm/yyyy in every browser (templates/_fields.html `day_field()`).
PAGES.globals["day_pattern"] = dates.PATTERN
PAGES.globals["day_placeholder"] = dates.PLACEHOLDER


@pass_context
def _number(context: Context, value: float | None) -> str:
    """A decimal comma on Vietnamese pages (1,5 giờ), a point on English ones."""
    if value is None:
        return ""
    return locale.number(value, context.get("lang"))


PAGES.filters["num"] = _number


def _phone(value: str | None) -> str:
    """+84905246810 as a Vietnamese reads it: 0905 246 810."""
    if not value:
        return ""
    import phonenumbers

    try:
        number = phonenumbers.parse(value, "VN")
    except phonenumbers.NumberParseException:
        return value
    kind = phonenumbers.PhoneNumberFormat
    return phonenumbers.format_number(
        number, kind.NATIONAL if number.country_code == 84 else kind.INTERNATIONAL
    )


PAGES.filters["phone"] = _phone


class LoginNeeded(Exception):
    """No valid session: the app answers with a redirect to /login (see app.py)."""

    def __init__(self, next_path: str) -> None:
        self.next_path = next_path


def now_of(request: Request) -> dt.datetime:
    """The app's clock: real time, or a test's (create_app(clock=...)) for time travel."""
    return request.app.state.clock()


def language(request: Request, user: User | None = None) -> str:
    chosen = request.cookies.get("lang") or (user.language if user else None) or "vi"
    return chosen if chosen in UI else "vi"


@dataclass
class Staff:
    user: User
    session: sessions.WebSession
    lang: str
    now: dt.datetime
    rt: Runtime
    path: str = "/"

    @property
    def w(self) -> Mapping[str, str]:
        return UI[self.lang]

    def page(self, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        return render(template, self.lang, status, me=self, **context)

    def say(self, error: DomainError) -> str:
        return say(self.w, error)

    def why(self, exc: Exception) -> str:
        """A refusal or a form's first invalid field, in the page's words."""
        if isinstance(exc, DomainError):
            return self.say(exc)
        if isinstance(exc, NotADay):  # a typed date (locale/dates.py), in the page's words
            return self.w["err_bad_day"] % {"text": exc.text}
        if isinstance(exc, ValidationError):
            err = exc.errors()[0]
            typed = (err.get("ctx") or {}).get("error")
            if isinstance(typed, NotADay):
                field = self.w.get(f"field_{err['loc'][0]}", "") if err["loc"] else ""
                said = self.w["err_bad_day"] % {"text": typed.text}
                return f"{field}: {said}" if field else said
            field = self.w.get(f"field_{err['loc'][0]}", str(err["loc"][0])) if err["loc"] else ""
            return f"{field}: {self._said(err)}"
        return str(exc)

    def _said(self, err: Any) -> str:
        """One field's refusal in the page's words where we have them (a validator's key, a
        length), else pydantic's English."""
        typed = (err.get("ctx") or {}).get("error")
        if isinstance(typed, InvalidValue) and f"err_{typed.key}" in self.w:
            return self.w[f"err_{typed.key}"] % typed.params
        if err["type"] == "string_too_long":
            return self.w["err_too_long"] % {"max": err["ctx"]["max_length"]}
        if err["type"] in ("string_too_short", "missing"):
            return self.w["err_required"]
        return str(err["msg"]).removeprefix("Value error, ")

    async def form(self, request: Request) -> dict[str, str]:
        """The posted urlencoded form, once its CSRF token matches this session's."""
        fields = await read_form(request)
        if not hmac.compare_digest(fields.pop("csrf", "").encode(), self.session.csrf.encode()):
            raise HTTPException(403, "the form's security token is missing or wrong; reload")
        return {k: v for k, v in fields.items() if v}

    def actors(self, read: Reader, actors: set[str]) -> dict[str, str]:
        """Who acted, as people read it: a person's or a partner contact's name, and "the
        system" for the engine's own moves (`system`, `system:sweep`), never the internal key."""
        from referrals.queries.views import actor_names

        names = actor_names(read, actors)
        names |= {a: self.w["actor_system"] for a in actors if a.split(":")[0] == "system"}
        names |= {a: self.w["actor_slip"] for a in actors if a == "slip"}
        return names

    def reader(self) -> Reader:
        """A read-only SQL reader on a pooled connection (queries/reading.py); use `with`."""
        return Reader(self.rt.engine.raw_connection(), self.rt.engine.dialect.name)

    def step_name(self, key: str | None) -> str:
        """A step's name from the pathway templates, in the page's language."""
        if not key:
            return ""
        names = _step_names(self.rt)
        return names.get((key, self.lang)) or names.get((key, "vi")) or key

    @property
    def is_manager(self) -> bool:
        return self.user.role in (Role.manager.value, Role.admin.value)

    def area_name(self, key: str | None) -> str:
        """A district's name in the page's language ("Thành phố Nha Trang"), never its key; a
        group of the units that took over a split district ("p-bac+p-nam", queries/areas.py)
        by its units' names."""
        if not key:
            return ""
        if "+" in key:
            return " + ".join(self.area_name(part) for part in key.split("+"))
        names = _area_names(self.rt)
        return names.get((key, self.lang)) or names.get((key, "vi")) or key


def _area_names(rt: Runtime) -> dict[tuple[str, str], str]:
    """(area key, language) -> name, read once per runtime (as `_step_names`)."""
    names: dict[tuple[str, str], str] | None = getattr(rt, "_area_names", None)
    if names is None:
        with Reader(rt.engine.raw_connection(), rt.engine.dialect.name) as read:
            rows = read.rows("SELECT key, name, name_en FROM area")
        names = {(r["key"], "vi"): r["name"] for r in rows}
        names |= {(r["key"], "en"): r["name_en"] for r in rows if r["name_en"]}
        rt._area_names = names  # type: ignore[attr-defined]  # a page cache, not a field of it
    return names


def _step_names(rt: Runtime) -> dict[tuple[str, str], str]:
    """(step key, language) -> name, read once per runtime from the latest pathway versions
    and kept on the runtime (each test and each server has its own)."""
    names: dict[tuple[str, str], str] | None = getattr(rt, "_step_names", None)
    if names is None:
        from referrals.queries.directory import pathway_templates

        with Session(rt.engine) as s:
            names = {}
            for p in pathway_templates(s):
                for st in p["steps"]:
                    names.setdefault((st["key"], "vi"), st["name"])
                    names.setdefault((st["key"], "en"), st["name_en"])
        rt._step_names = names  # type: ignore[attr-defined]  # a page cache, not a field of it
    return names


async def read_form(request: Request) -> dict[str, str]:
    """An urlencoded form, read up to MAX_BODY bytes (413 beyond, before reading the rest);
    values stripped, the last of repeated names kept. Text that is not UTF-8, or holds a NUL
    byte (no text column takes it, no person types it), is refused with 400."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            raise HTTPException(413, "form too large")
    try:  # raw or percent-encoded, a form is UTF-8 or it is refused
        text = body.decode("utf-8")
        fields = {k: v[-1].strip() for k, v in parse_qs(text, errors="strict").items()}
    except UnicodeDecodeError:
        raise HTTPException(400, "the form is not UTF-8 text") from None
    if any("\x00" in k or "\x00" in v for k, v in fields.items()):
        raise HTTPException(400, "a form field holds a NUL byte")
    return fields


def say(words: Mapping[str, str], error: DomainError) -> str:
    """A refusal in the reader's language when we have its words, else its English message."""
    text = words.get(f"err_{error.key}") if error.key else None
    try:
        return text % error.params if text else str(error)
    except (KeyError, TypeError, ValueError):
        return str(error)


def render(template: str, lang: str, status: int = 200, **context: Any) -> HTMLResponse:
    html = PAGES.get_template(template).render(w=UI[lang], lang=lang, **context)
    return HTMLResponse(html, status_code=status)


def me(request: Request) -> Staff:
    rt = Runtime.current()
    now = now_of(request)
    found = sessions.current(request, now)
    user = None
    if found is not None and found.user_id is not None:
        with Session(rt.engine, expire_on_commit=False) as s:
            user = s.scalars(
                select(User).where(col(User.id) == found.user_id, col(User.active))
            ).first()
    path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if user is None or found is None or user.session_epoch != found.epoch:
        raise LoginNeeded(quote(path))
    return Staff(user=user, session=found, lang=language(request, user), now=now, rt=rt, path=path)


Me = Annotated[Staff, Depends(me)]


def require(staff: Staff, *roles: Role) -> None:
    """A page for some roles only: the policy's refusal (web/errors.py makes it a 403 page)."""
    require_role(staff.user, *roles, doing=staff.path.split("?")[0])
