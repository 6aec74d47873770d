"""The gettext catalogs (referrals/locale/): complete, in step with the sources, used by the pages.

Every message the sources mark (Python's N_/C_, the templates' _/pgettext, as babel.cfg says)
is in the template `referrals.pot` and has a confirmed, non-empty translation in Vietnamese and
English with the same placeholders; what the app compiles at run time says what the `.po` files
say; and a page reads its words from the catalog of its language, a third one included.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po, write_po
from fastapi.testclient import TestClient

from referrals import locale
from referrals.infra.runtime import Runtime
from referrals.models.lifecycle import MessageStatus, Reason, ReferralStatus, StepStatus
from referrals.web.app import create_app
from referrals.web.words import STAFF, UI, WORDS
from support import ROOT
from support.pages import Clock

POT = locale.CATALOGS / f"{locale.DOMAIN}.pot"
PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]|\{(\w*)\}")


def catalog(path: Path, lang: str | None = None) -> Catalog:
    with path.open("rb") as po:
        return read_po(po, locale=lang)


def ids(found: Catalog) -> set[tuple[str | None, str]]:
    return {(m.context, m.id) for m in found if m.id}  # type: ignore[misc]


def placeholders(text: str) -> list[str]:
    return sorted(m.group(0) for m in PLACEHOLDER.finditer(text))


def test_the_template_holds_what_the_sources_mark() -> None:
    """`pybabel extract` was run after the last change of words (README: Translations)."""
    with (ROOT / "babel.cfg").open() as cfg:
        methods, options = parse_mapping_cfg(cfg)
    marked = {
        (context, message[0] if isinstance(message, tuple) else message)
        for _, _, message, _, context in extract_from_dir(ROOT / "referrals", methods, options)
    }
    in_template = ids(catalog(POT))
    assert marked - in_template == set(), "run pybabel extract, then update"
    assert in_template - marked == set(), "run pybabel extract, then update"
    assert len(in_template) > 300


@pytest.mark.parametrize("lang", list(locale.LANGUAGES))
def test_every_message_is_translated(lang: str) -> None:
    """Each offered language: every message of the template, confirmed (not fuzzy), not empty,
    with the placeholders of its English; nothing the template no longer has."""
    template = ids(catalog(POT))
    translated = catalog(locale.catalog_path(lang))
    assert str(translated.locale) == lang, "the catalog's Language header"
    assert ids(translated) == template, f"run pybabel update for {lang}"
    for message in translated:
        if not message.id:
            continue
        where = (lang, message.context, message.id)
        assert message.string and message.string.strip(), ("empty", *where)
        assert not message.fuzzy, ("fuzzy", *where)
        assert placeholders(message.string) == placeholders(message.id), ("placeholders", *where)
        assert not list(message.check(translated)), ("check", *where)
        if message.python_format:  # formats as the code will (a lone % would not)
            names = {m.group(1): "x" for m in PLACEHOLDER.finditer(message.id) if m.group(1)}
            assert isinstance(message.string % names, str), ("format", *where)


@pytest.mark.parametrize("lang", list(locale.LANGUAGES))
def test_what_runs_is_what_the_catalog_says(lang: str) -> None:
    """The in-memory compiled catalog answers every message with the `.po` file's words."""
    compiled = locale.translations(lang)
    for message in catalog(locale.catalog_path(lang), lang):
        if message.id:
            assert locale.gettext(lang, message.id, message.context) == message.string
    assert compiled.gettext("no such message, ever") == "no such message, ever"


def test_the_offered_languages_and_their_formats() -> None:
    """Each offered language has a catalog; days and numbers read as people here write them."""
    assert locale.DEFAULT == "vi" and next(iter(locale.LANGUAGES)) == "vi"
    for lang in locale.LANGUAGES:
        assert locale.catalog_path(lang).is_file()
    moment = dt.datetime(2026, 11, 25, 10, 5, tzinfo=dt.UTC)
    tz = ZoneInfo("Asia/Ho_Chi_Minh")
    assert locale.when(moment, "vi", tz) == locale.when(moment, "en", tz) == "17:05 25/11/2026"
    assert locale.day(moment, "vi", tz) == "25/11/2026"
    assert locale.day(dt.date(2026, 1, 2), "en") == "02/01/2026"
    assert (locale.number(1.5, "vi"), locale.number(1.5, "en")) == ("1,5", "1.5")
    assert (locale.number(12.0, "vi"), locale.number(1234.5, "vi")) == ("12", "1234,5")
    assert locale.known("fr") == "vi" and locale.known(None) == "vi"


def test_every_code_the_data_names_has_its_words() -> None:
    """Statuses, reasons, roles: the keyed words cover every value the models can hold."""
    codes = [
        *(f"status_{s}" for s in ReferralStatus),
        *(f"step_status_{s}" for s in StepStatus),
        *(f"msg_{s}" for s in MessageStatus),
        *(f"reason_{r}" for r in Reason),
        *(f"role_{r}" for r in ("coordinator", "manager", "admin")),
    ]
    assert [c for c in codes if c not in STAFF] == []
    vi, en = UI["vi"], UI["en"]
    assert (vi["status_requested"], en["status_requested"]) == ("chờ tiếp nhận", "awaiting partner")
    assert (vi["step_status_failed"], vi["status_failed"]) == ("không thành", "không thành công")
    assert (WORDS["vi"]["refused_expired"], WORDS["en"]["refused_expired"]) == (
        "Đường dẫn này đã hết hạn.",
        "This link has expired.",
    )


@pytest.fixture
def pseudo_french(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Catalog]:
    """A third language made only of a catalog and its code: every English word in ⟦ ⟧."""
    for lang in locale.LANGUAGES:
        (tmp_path / lang / "LC_MESSAGES").mkdir(parents=True)
        shutil.copy(locale.catalog_path(lang), tmp_path / lang / "LC_MESSAGES")
    french = catalog(locale.catalog_path("en"), "fr")
    for message in french:
        if message.id:
            message.string = f"⟦{message.string}⟧"
    (tmp_path / "fr" / "LC_MESSAGES").mkdir(parents=True)
    with (tmp_path / "fr" / "LC_MESSAGES" / f"{locale.DOMAIN}.po").open("wb") as po:
        write_po(po, french)
    monkeypatch.setattr(locale, "CATALOGS", tmp_path)
    monkeypatch.setitem(locale.LANGUAGES, "fr", "fr_FR")
    locale.forget()
    yield french
    locale.forget()


def test_pages_read_the_catalog_of_their_language(rt: Runtime, pseudo_french: Catalog) -> None:
    """The login page in each language says what that language's catalog says."""
    app = create_app(clock=Clock(dt.datetime(2026, 11, 25, 3, tzinfo=dt.UTC)))
    pages = {}
    for lang in ("vi", "en", "fr"):
        browser = TestClient(app)
        browser.cookies.set("lang", lang)
        pages[lang] = browser.get("/login").text
        assert f'<html lang="{lang}">' in pages[lang]
        t = locale.translations(lang)
        for english in ("Log in", "Password", "Username"):
            assert t.gettext(english) in pages[lang], (lang, english)
        assert t.pgettext("app name", "Referrals") in pages[lang]
    assert "<title>Đăng nhập · Chuyển gửi</title>" in pages["vi"]
    assert "<title>Log in · Referrals</title>" in pages["en"]
    assert "<title>⟦Log in⟧ · ⟦Referrals⟧</title>" in pages["fr"]
    assert "⟦After 5 wrong passwords in a row an account is locked for 15 minutes.⟧" in pages["fr"]
