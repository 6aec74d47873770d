"""The office's words in gettext catalogs, and its dates and numbers in Babel's formats.

Every word a person reads on the staff pages, the partners' link pages and the period report is
a gettext message in `referrals/locale/<code>/LC_MESSAGES/referrals.po` (the template that
`pybabel extract` writes is `referrals/locale/referrals.pot`; README.md, "Translations", has the
translator's commands). A translator works on a `.po` file in Poedit or Weblate; a third
language is a new catalog (`pybabel init -l <code>`) plus its code in `LANGUAGES` below, the one
list of offered languages. The SMS and e-mail texts are per-language template files instead
(notifiers/templates/<code>/).

Message ids are the English source text, gettext's usual way, not keys:

- a translator reads what the page says, in Poedit or Weblate, with no second file to look up;
- the code and the templates say what they show (`_("Open cases")`, not `w.cases`);
- where the same English reads differently in Vietnamese (a "Client" to a coordinator is
  "Đối tượng", to a partner "Người được hỗ trợ"; a referral's "failed" is not a step's), the
  message has a context (`pgettext("partner page", "Client")`, `C_("step status", "failed")`),
  shown to the translator as the msgctxt. Words picked by a code at run time (statuses, events,
  reasons, the refusals of models/errors.py) are tables of such messages in web/words.py and
  reports/words.py, looked up by their old keys through `Words`.

The English catalog is therefore a copy of the ids; it is kept complete all the same (the tests
ask for it) so that English wording can be edited by a translator without touching code.

Placeholders are Python's `%(name)s`, which Babel flags `python-format` and Poedit and
`pybabel compile` check in each translation. Jinja's newstyle gettext %-formats every message,
so a literal per cent sign in a template's message is written `%%`.

No compiled `.mo` file is kept in the repository: the `.po` is compiled with Babel in memory the
first time a language is used (a few milliseconds, once per process). A fresh clone or
`pip install -e .` has nothing to build, a translator commits only the `.po` they edited, and
what runs can never be older than what was translated. Fuzzy entries are left out, as msgfmt
does: until a translator confirms them the English shows.
"""

from __future__ import annotations

import datetime as dt
import functools
import io
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_date, format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal
from babel.support import Translations
from jinja2 import Environment, pass_context
from jinja2.runtime import Context
from markupsafe import escape

# The offered languages (code -> Babel locale for dates and numbers); the first is the default.
LANGUAGES: dict[str, str] = {"vi": "vi_VN", "en": "en"}
DEFAULT = "vi"
DOMAIN = "referrals"
CATALOGS = Path(__file__).parent

DAY = "dd/MM/yyyy"  # how people here write a day
WHEN = "HH:mm dd/MM/yyyy"  # and a moment: 17:00 25/11/2026


def known(lang: str | None) -> str:
    """`lang` if it is offered, else the default (a stale cookie, a contact's odd setting)."""
    return lang if lang is not None and lang in LANGUAGES else DEFAULT


def catalog_path(lang: str) -> Path:
    return CATALOGS / lang / "LC_MESSAGES" / f"{DOMAIN}.po"


def translations(lang: str | None) -> Translations:
    """The language's catalog (the default's for a language not offered)."""
    return _compiled(known(lang))


@functools.cache
def _compiled(code: str) -> Translations:
    """A catalog compiled from its `.po` on first use, once per process (fuzzy entries left out)."""
    with catalog_path(code).open("rb") as po:
        catalog = read_po(po, locale=LANGUAGES[code], domain=DOMAIN)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return Translations(compiled, domain=DOMAIN)


def gettext(lang: str | None, message: str, context: str | None = None) -> str:
    t = translations(lang)
    return str(t.pgettext(context, message)) if context else t.gettext(message)


@dataclass(frozen=True)
class Msg:
    """A message marked for the catalogs and translated when it is read (`N_`, `C_`)."""

    text: str
    context: str | None = None

    def said_in(self, lang: str) -> str:
        return gettext(lang, self.text, self.context)


def N_(text: str) -> Msg:
    """Mark `text` (English) for the catalogs; translate later with `.said_in(lang)`."""
    return Msg(text)


def C_(context: str, text: str) -> Msg:
    """`N_` with a context, for English that reads differently in another language."""
    return Msg(text, context)


class Words(Mapping[str, str]):
    """Keyed messages read in one language: `words["status_" + status]`, `words.get(key)`."""

    def __init__(self, lang: str, table: Mapping[str, Msg]) -> None:
        self.lang, self.table = known(lang), table

    def __getitem__(self, key: str) -> str:
        return self.table[key].said_in(self.lang)

    def __iter__(self) -> Iterator[str]:
        return iter(self.table)

    def __len__(self) -> int:
        return len(self.table)


class ByLanguage(Mapping[str, Words]):
    """A table's `Words` for each offered language: `UI["vi"]`, `"fr" in UI`."""

    def __init__(self, table: Mapping[str, Msg]) -> None:
        self.table = table

    def __getitem__(self, lang: str) -> Words:
        if lang not in LANGUAGES:
            raise KeyError(lang)
        return Words(lang, self.table)

    def __iter__(self) -> Iterator[str]:
        return iter(LANGUAGES)

    def __len__(self) -> int:
        return len(LANGUAGES)


def babel_locale(lang: str | None) -> Locale:
    return _locale(LANGUAGES[known(lang)])


@functools.cache
def _locale(identifier: str) -> Locale:
    return Locale.parse(identifier)


def forget() -> None:
    """Drop the compiled catalogs: the next use reads the `.po` files again (tests, a reload)."""
    _compiled.cache_clear()


def day(value: dt.date | dt.datetime, lang: str | None, tz: ZoneInfo | None = None) -> str:
    """25/11/2026; a moment is first taken to `tz` (the office's zone)."""
    if isinstance(value, dt.datetime):
        value = (value.astimezone(tz) if tz else value).date()
    return format_date(value, DAY, locale=babel_locale(lang))


def when(value: dt.datetime, lang: str | None, tz: ZoneInfo | None = None) -> str:
    """17:00 25/11/2026 in `tz`; without one, in the moment's own zone (naive: as it stands)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return format_datetime(value, WHEN, tzinfo=tz or value.tzinfo, locale=babel_locale(lang))


def number(value: float, lang: str | None) -> str:
    """1,5 in Vietnamese, 1.5 in English: no grouping, up to two decimals."""
    return format_decimal(value, format="0.##", locale=babel_locale(lang))


def install(env: Environment) -> None:
    """Jinja's i18n extension on `env`, in the language of each render's `lang` variable.

    Thread-safe: nothing is installed per request; the callables read `lang` from the render's
    context. Newstyle gettext: `_("%(n)s late", n=3)`, autoescaped. A translation is escaped as
    text (a translator cannot add markup), as the words were before they were catalogued.
    """
    env.add_extension("jinja2.ext.i18n")

    def _lang(context: Context) -> str:
        return str(context.get("lang") or DEFAULT)

    def _safe(context: Context, text: str) -> Any:
        return escape(text) if context.eval_ctx.autoescape else text

    @pass_context
    def _gettext(context: Context, message: str) -> Any:
        return _safe(context, translations(_lang(context)).gettext(message))

    @pass_context
    def _ngettext(context: Context, singular: str, plural: str, n: int) -> Any:
        return _safe(context, translations(_lang(context)).ngettext(singular, plural, n))

    @pass_context
    def _pgettext(context: Context, ctx: str, message: str) -> Any:
        return _safe(context, str(translations(_lang(context)).pgettext(ctx, message)))

    @pass_context
    def _npgettext(context: Context, ctx: str, singular: str, plural: str, n: int) -> Any:
        said = translations(_lang(context)).npgettext(ctx, singular, plural, n)
        return _safe(context, str(said))

    # Added by jinja2.ext.i18n when the environment loads it; Environment does not declare it.
    env.install_gettext_callables(  # type: ignore[attr-defined]
        _gettext, _ngettext, newstyle=True, pgettext=_pgettext, npgettext=_npgettext
    )
