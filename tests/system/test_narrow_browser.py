"""Every page on a phone, and dates in a browser set to en-US, in real headless Chromium.

At 390 px wide (a common phone) no page's document is wider than the screen: the staff pages
each role reaches from the header, the detail pages (a referral, a client, a partner contact),
the period report, the error page, the login page and the partner's link page. Lists become
cards there (app.css, `table.stack`). And in a browser whose language is en-US, the date fields
show and take dd/mm/yyyy (a native date field would show mm/dd/yyyy).
"""

from __future__ import annotations

import datetime as dt

from playwright.sync_api import Browser, Page, expect
from sqlalchemy import select, update
from sqlmodel import Session

from referrals.infra.db import transaction
from referrals.infra.runtime import Runtime
from referrals.models.directory import Contact
from referrals.models.links import link_token
from referrals.models.people import Client
from referrals.models.workflow import Event, Notification, Referral
from referrals.usecases.deadlines.sweeping import sweep
from referrals.usecases.referrals.answering import Answer, answer_link
from support.domain import ready_referral
from support.pages import PASSWORD, Clock

PHONE = {"width": 390, "height": 844}
FITS = "document.documentElement.scrollWidth <= window.innerWidth"


def _log_in(page: Page, base: str, username: str) -> None:
    page.goto(f"{base}/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("#login")
    expect(page).not_to_have_url(f"{base}/login")


def _late_and_answered(rt: Runtime, now: dt.datetime) -> dict[str, str]:
    """A busy office a week on: late referrals escalated (long partner names, a long error on
    an undeliverable message), one accepted whose next step is overdue, so its partner has a
    link with a date to give."""
    late = ready_referral(rt, now, pathway="legal_aid", partner="legal-aid-centre")
    answered = ready_referral(rt, now)
    with Session(rt.engine) as s:
        first = s.scalars(
            select(Notification)
            .join(Referral, Referral.id == Notification.referral_id)
            .where(Referral.code == answered, Notification.template == "referral.new")
        ).first()
        assert first is not None and first.id is not None
        client = s.scalars(select(Referral.client_id).where(Referral.code == late)).one()
        contact = s.scalars(select(Contact.id).order_by(Contact.id)).first()
    with transaction(rt.engine) as s:
        token = link_token(rt.ctx.vault, first.id)
        answer_link(s, ctx=rt.ctx, token=token, answer=Answer(action="accept"), now=now)
        s.execute(  # the late one's SMS: given up, with a long reason, no channel left
            update(Notification)
            .where(
                Notification.template == "referral.new",
                Notification.referral_id
                == s.scalars(select(Referral.id).where(Referral.code == late)).one(),
            )
            .values(status="dead", attempts=6, fallback=[], last_error="esms 99: " + "x" * 120)
        )
    # overdue, and not yet 2 working days past it (the client's no-show would pause it)
    later = now + dt.timedelta(days=10)
    sweep(rt.engine, ctx=rt.ctx, now=later)
    with Session(rt.engine) as s:
        notice = s.scalars(
            select(Notification.id)
            .join(Referral, Referral.id == Notification.referral_id)
            .where(Referral.code == answered, Notification.template == "step.overdue")
            .where(Notification.contact_id.is_not(None))  # type: ignore[union-attr]
        ).first()
        client_code = s.scalars(select(Client.code).where(Client.id == client)).one()
    assert notice is not None
    with transaction(rt.engine) as s:  # its overdue notice: not delivered, with a long reason
        s.execute(
            update(Notification)
            .where(Notification.id == notice)
            .values(status="undelivered", last_error="Thuê bao không liên lạc được " + "x" * 120)
        )
        referral_id = s.scalars(select(Referral.id).where(Referral.code == answered)).one()
        s.add(
            Event(
                referral_id=referral_id,
                kind="message.fallback",
                at=later,
                actor="system",
                data={"message": notice, "channel": "zalo", "to": "sms", "why": "unconfirmed"},
            )
        )
    return {
        "late": late,
        "answered": answered,
        "client": client_code,
        "contact": str(contact),
        "link": link_token(rt.ctx.vault, notice),
        "later": later.isoformat(),
    }


def _header_links(page: Page, base: str) -> list[str]:
    """The pages a role reaches from the header: its navigation, whatever it holds."""
    hrefs = page.eval_on_selector_all(
        "header.top a[href^='/']", "els => els.map(e => e.getAttribute('href'))"
    )
    return [h for h in hrefs if not h.startswith("/lang/")]


def test_no_page_scrolls_sideways_on_a_390_px_phone(
    rt: Runtime, server: tuple[str, Clock], browser: Browser, now: dt.datetime
) -> None:
    base, clock = server
    scene = _late_and_answered(rt, now)
    clock.now = dt.datetime.fromisoformat(scene["later"])
    details = [
        f"/referrals/{scene['late']}",
        f"/referrals/{scene['answered']}",
        f"/clients/{scene['client']}",
        "/cases?all=1",
        "/report?from=01/01/2026&to=31/12/2026&format=html",
        "/referrals/R-NONE0-NONE0",  # the error page
    ]
    seen: list[str] = []
    for user in ("mai", "hoa", "admin"):
        context = browser.new_context(viewport=PHONE, is_mobile=True)
        page = context.new_page()
        _log_in(page, base, user)
        paths = _header_links(page, base) + details
        if user == "admin":
            paths.append(f"/admin/contacts/{scene['contact']}")
        for path in dict.fromkeys(paths):
            page.goto(f"{base}{path}")
            assert page.evaluate(FITS), (
                user,
                path,
                page.evaluate("document.documentElement.scrollWidth"),
            )
            seen.append(path)
        if page.locator("#search").count():  # the header's client search, with a result
            page.fill("#search", scene["client"])
            page.press("#search", "Enter")
            page.wait_for_load_state()
            assert page.evaluate(FITS), (user, "search", page.url)
        context.close()
    assert {"/cases", "/dashboard", "/admin"} <= set(seen)
    # the late list is cards: each row a block, each cell under its column's name
    phone = browser.new_context(viewport=PHONE, is_mobile=True)
    board = phone.new_page()
    _log_in(board, base, "hoa")
    board.goto(f"{base}/dashboard")
    row = board.locator("#overdue tbody tr").first
    assert row.evaluate("r => getComputedStyle(r).display") == "block"
    assert (
        row.locator("td").first.evaluate("td => getComputedStyle(td, '::before').content") != "none"
    )
    phone.close()
    # logged out: the login page; a partner on their phone: the link page
    outside = browser.new_context(viewport=PHONE, is_mobile=True)
    page = outside.new_page()
    for path in ("/login", f"/l/{scene['link']}"):
        page.goto(f"{base}{path}")
        assert page.evaluate(FITS), path
    outside.close()


def test_date_fields_show_and_take_dd_mm_yyyy_in_an_en_us_browser(
    rt: Runtime, server: tuple[str, Clock], browser: Browser, now: dt.datetime
) -> None:
    base, clock = server
    scene = _late_and_answered(rt, now)
    clock.now = dt.datetime.fromisoformat(scene["later"])  # Thu 03/12/2026
    american = browser.new_context(
        viewport=PHONE, is_mobile=True, locale="en-US", timezone_id="America/New_York"
    )
    page = american.new_page()
    _log_in(page, base, "hoa")
    page.goto(f"{base}/dashboard")
    assert page.locator("input[type=date]").count() == 0
    first, last = page.locator("#report input[name=from]"), page.locator("#report input[name=to]")
    expect(first).to_have_value("01/01/2026")
    expect(last).to_have_value("03/12/2026")
    expect(first).to_have_attribute("placeholder", "dd/mm/yyyy")
    first.fill("03/11/2026")  # 3 November, as the office writes it
    last.fill("30/11/2026")
    page.click("#report button")
    expect(page.locator("body")).to_contain_text("03/11/2026 – 30/11/2026")
    page.go_back()
    page.locator("#report input[name=from]").fill("31/02/2026")  # the shape of a date, not one
    page.click("#report button")
    expect(page.locator("#error")).to_contain_text("31/02/2026")
    expect(page.locator("#report input[name=from]")).to_have_value("31/02/2026")
    american.close()

    partner = browser.new_context(viewport=PHONE, is_mobile=True, locale="en-US")
    phone = partner.new_page()
    phone.goto(f"{base}/l/{scene['link']}")
    assert phone.locator("input[type=date]").count() == 0
    phone.fill("#on", "05/12/2026")
    phone.locator("form", has=phone.locator("#on")).locator("button").click()
    expect(phone.locator("#thanks")).to_be_visible()
    partner.close()
    with Session(rt.engine) as s:
        said = s.scalars(
            select(Event.data)
            .join(Referral, Referral.id == Event.referral_id)
            .where(Referral.code == scene["answered"], Event.kind == "link.answered")
            .order_by(Event.id.desc())  # type: ignore[union-attr]
        ).first()
    assert said is not None and said["on"] == "2026-12-05"  # 5 December, not 12 May
