"""Messages from templates on disk: `templates/<language>/<message>.j2`, one file per message.

Each file defines up to three blocks: `sms` (one line after whitespace is collapsed), `subject`
and `body` (plain-text e-mail). A header comment `{# sms-segments: N ... #}` states how many
GSM-7 segments the unaccented SMS may take and, if more than one, why; the tests hold each
template to it with the longest values the config allows.

Templates see only what the outbox row carries (codes, partner-facing names, instants) plus the
link: no client PII can reach them because none is ever put in a message's context.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, StrictUndefined, Template, TemplateNotFound

from referrals.config.province import ZaloTemplate
from referrals.notifiers.sms import one_line, unaccent

TEMPLATES = Path(__file__).parent / "templates"
LANGUAGES = ("vi", "en")


class RenderError(Exception):
    """A template is missing, lacks the block a channel needs, or misses a value."""


@dataclass(frozen=True)
class Rendered:
    subject: str | None
    body: str


def local_time(value: str | dt.datetime | None, tz: ZoneInfo) -> str:
    """`17:00 25/11/2026` in the office's zone: how people here read a deadline."""
    if value is None:
        return ""
    when = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
    return when.astimezone(tz).strftime("%H:%M %d/%m/%Y")


def local_date(value: str | dt.date | dt.datetime, tz: ZoneInfo) -> str:
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value) if "T" in value else dt.date.fromisoformat(value)
    if isinstance(value, dt.datetime):
        value = value.astimezone(tz).date()
    return value.strftime("%d/%m/%Y")


@lru_cache(maxsize=4)
def _environment(tz_name: str) -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        undefined=StrictUndefined,
        autoescape=False,  # plain text: SMS and text/plain e-mail
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )
    tz = ZoneInfo(tz_name)
    env.filters["local_time"] = lambda v: local_time(v, tz)
    env.filters["local_date"] = lambda v: local_date(v, tz)
    env.filters["local_sms"] = lambda v: local_time(v, tz)
    return env


def render(
    message: str,
    *,
    channel: str,
    language: str,
    context: dict[str, Any],
    tz: ZoneInfo,
    unaccented: bool = False,
) -> Rendered:
    """Render `message` for one channel in one language; raise RenderError."""
    env = _environment(str(tz.key))
    lang = language if language in LANGUAGES else "vi"
    try:
        template = env.get_template(f"{lang}/{message}.j2")
    except TemplateNotFound:
        raise RenderError(f"no template {lang}/{message}.j2") from None
    blocks = ("sms",) if channel == "sms" else ("subject", "body")
    missing = [b for b in blocks if b not in template.blocks]
    if missing:
        raise RenderError(f"{lang}/{message}.j2 has no {' or '.join(missing)} block for {channel}")
    try:
        ctx = template.new_context(context)
        parts = {b: "".join(template.blocks[b](ctx)).strip() for b in blocks}
    except Exception as exc:  # StrictUndefined, a bad filter argument: a template bug
        raise RenderError(f"{lang}/{message}.j2: {exc}") from None
    if channel == "sms":
        text = one_line(parts["sms"])
        return Rendered(None, unaccent(text) if unaccented else text)
    return Rendered(one_line(parts["subject"]), parts["body"] + "\n")


def render_zalo(
    message: str, *, template: ZaloTemplate | None, context: dict[str, Any], tz: ZoneInfo
) -> Rendered:
    """A Zalo (ZNS) message: the approved template's id and its parameters, each rendered from
    the message's context (province.yaml `delivery.zalo_templates`), as the JSON body our ZNS
    plugin sends. ZNS carries no free text: a message type without a template cannot go."""
    if template is None:
        raise RenderError(f"no ZNS template for {message} (province.yaml delivery.zalo_templates)")
    try:
        data = {
            name: one_line(_expression(str(tz.key), expr).render(context))
            for name, expr in template.params.items()
        }
    except Exception as exc:  # StrictUndefined, a bad filter: a config mistake
        raise RenderError(f"ZNS template of {message}: {exc}") from None
    payload = {"template_id": template.template_id, "template_data": data}
    return Rendered(None, json.dumps(payload, ensure_ascii=False))


@lru_cache(maxsize=256)
def _expression(tz_name: str, source: str) -> Template:
    return _environment(tz_name).from_string(source)


def declared_segments(message: str, language: str) -> int | None:
    """The SMS segment budget a template declares in its `{# sms-segments: N #}` header."""
    head = (TEMPLATES / language / f"{message}.j2").read_text(encoding="utf-8").split("#}")[0]
    if "sms-segments:" not in head:
        return None
    return int(head.split("sms-segments:")[1].split()[0])


def messages() -> list[str]:
    """Every message that has a template, in every language."""
    names = [{p.stem for p in (TEMPLATES / lang).glob("*.j2")} for lang in LANGUAGES]
    return sorted(set.intersection(*names))
