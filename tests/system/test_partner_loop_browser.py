"""Issue 20 in real headless Chromium at 390 px: a partner's whole loop from the first SMS's link,
counted in taps. Each answer is one tap (the card's date typed first), each page shows the next
step at once, fits the phone without sideways scrolling, and the last says the office acts next.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from playwright.sync_api import Browser, Page, expect
from sqlalchemy import select
from sqlmodel import Session

from referrals.infra.runtime import Runtime
from referrals.models.links import link_token
from referrals.models.workflow import Notification, Referral, Step
from support.domain import ready_referral
from support.pages import Clock

PHONE = {"width": 390, "height": 800}
PARTNER_STEPS = 3  # id_papers: accept, application received, card issued (with its date)


def _fits(page: Page) -> bool:
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"))


def _tap(page: Page, button: str) -> None:
    page.get_by_role("button", name=button).click()
    page.wait_for_load_state()


def test_a_partner_answers_every_step_from_one_link_on_a_phone(
    rt: Runtime,
    browser: Browser,
    server: tuple[str, Clock],
    now: dt.datetime,
    shots: Path,
) -> None:
    base, _ = server
    code = ready_referral(rt, now)
    partner, phone = _open_link(rt, browser, base, code)
    expect(phone.locator("#current")).to_have_text("Xác nhận tiếp nhận")
    assert _fits(phone)
    phone.screenshot(path=shots / "partner-loop-1.png", full_page=True)
    taps = 0

    _tap(phone, "Xác nhận tiếp nhận")
    taps += 1
    expect(phone.locator("#thanks")).to_be_visible()
    expect(phone.locator("#current")).to_have_text("Tiếp nhận đủ hồ sơ")  # shown at once
    assert _fits(phone)
    phone.screenshot(path=shots / "partner-loop-2.png", full_page=True)

    done = phone.locator("form", has=phone.locator("input[name=action][value=done]"))
    done.locator("button").click()
    phone.wait_for_load_state()
    taps += 1
    expect(phone.locator("#current")).to_have_text("Cấp thẻ căn cước")
    assert _fits(phone)

    phone.fill("#on", "05/12/2026")
    phone.locator("form", has=phone.locator("#on")).locator("button").click()
    phone.wait_for_load_state()
    taps += 1
    expect(phone.locator("#next-by")).to_be_visible()  # the coordinator's step: nothing to tap
    assert phone.locator("form input[name=action]").count() == 0
    assert _fits(phone)
    phone.screenshot(path=shots / "partner-loop-3.png", full_page=True)
    partner.close()  # type: ignore[attr-defined]

    assert taps == PARTNER_STEPS
    with Session(rt.engine) as s:
        statuses = s.scalars(
            select(Step.status)
            .join(Referral, Referral.id == Step.referral_id)
            .where(Referral.code == code)
            .order_by(Step.seq)
        ).all()
    assert statuses == ["done", "done", "done", "active"]


def _open_link(rt: Runtime, browser: Browser, base: str, code: str) -> tuple[object, Page]:
    with Session(rt.engine) as s:
        message = s.scalars(
            select(Notification.id)
            .join(Referral, Referral.id == Notification.referral_id)
            .where(Referral.code == code, Notification.channel == "sms")
        ).first()
    assert message is not None
    context = browser.new_context(viewport=PHONE, is_mobile=True)
    phone = context.new_page()
    phone.goto(f"{base}/l/{link_token(rt.ctx.vault, message)}")
    return context, phone


def _status(rt: Runtime, code: str) -> str:
    with Session(rt.engine) as s:
        return s.scalars(select(Referral.status).where(Referral.code == code)).one()


def test_a_decline_and_a_no_show_each_ask_to_confirm_and_say_what_happens_next(
    rt: Runtime,
    browser: Browser,
    server: tuple[str, Clock],
    now: dt.datetime,
    shots: Path,
) -> None:
    """Item 4: the office and a number to call on the page; accept and decline look different;
    a decline (and a no-show) costs one more tap and can be taken back before it is written."""
    base, _ = server
    code = ready_referral(rt, now)
    context, phone = _open_link(rt, browser, base, code)
    expect(phone.locator("#office")).to_contain_text("Chi cục Phòng, chống tệ nạn xã hội")
    expect(phone.locator("#office a")).to_have_attribute("href", "tel:02580000100")
    accept = phone.get_by_role("button", name="Xác nhận tiếp nhận")
    decline = phone.get_by_role("button", name="Từ chối…")
    colours = [b.evaluate("e => getComputedStyle(e).backgroundColor") for b in (accept, decline)]
    assert colours[0] != colours[1]

    decline.click()
    phone.wait_for_load_state()
    expect(phone.locator("#confirm")).to_be_visible()
    assert _fits(phone)
    phone.screenshot(path=shots / "partner-decline-confirm.png", full_page=True)
    phone.get_by_role("link", name="Không, quay lại").click()
    phone.wait_for_load_state()
    assert _status(rt, code) == "requested"  # taken back: nothing written

    _tap(phone, "Xác nhận tiếp nhận")
    _tap(phone, "Người được chuyển gửi không đến…")
    expect(phone.locator("#confirm")).to_be_visible()
    assert _status(rt, code) == "accepted"
    _tap(phone, "Có, người đó không đến")
    expect(phone.locator("#thanks")).to_contain_text("Cán bộ điều phối sẽ liên hệ")
    assert _fits(phone)
    assert _status(rt, code) == "on-hold"
    context.close()  # type: ignore[attr-defined]


def test_the_coordinator_rebooks_after_a_no_show_and_closing_asks_to_be_sure(
    rt: Runtime,
    browser: Browser,
    server: tuple[str, Clock],
    now: dt.datetime,
    shots: Path,
) -> None:
    """The coordinator's side of a no-show on a phone: the panel's choices, "Đóng" does nothing
    until the box is ticked, "Hẹn lại" with a typed date puts the referral back in progress."""
    from support.pages import PASSWORD  # the `server` fixture gave the staff passwords

    base, _ = server
    code = ready_referral(rt, now)
    context, phone = _open_link(rt, browser, base, code)
    _tap(phone, "Xác nhận tiếp nhận")
    _tap(phone, "Người được chuyển gửi không đến…")
    _tap(phone, "Có, người đó không đến")
    context.close()  # type: ignore[attr-defined]

    office = browser.new_context(viewport=PHONE, is_mobile=True, locale="en-US")
    page = office.new_page()
    page.goto(f"{base}/login")
    page.fill("input[name=username]", "mai")
    page.fill("input[name=password]", PASSWORD)
    page.click("#login")
    page.goto(f"{base}/referrals/{code}")
    expect(page.locator("#no-show")).to_be_visible()
    assert _fits(page)
    page.screenshot(path=shots / "coordinator-no-show.png", full_page=True)
    page.locator("#do-unreachable").click()  # not ticked: the browser keeps the form
    assert _status(rt, code) == "on-hold"
    page.fill("#rebook-on", "09/12/2026")
    page.locator("#do-rebook").click()
    page.wait_for_load_state()
    expect(page.locator("#no-show")).to_have_count(0)
    assert _status(rt, code) == "accepted"
    office.close()
