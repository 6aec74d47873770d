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
    with Session(rt.engine) as s:
        message = s.scalars(
            select(Notification.id)
            .join(Referral, Referral.id == Notification.referral_id)
            .where(Referral.code == code, Notification.channel == "sms")
        ).first()
    assert message is not None
    partner = browser.new_context(viewport=PHONE, is_mobile=True)
    phone = partner.new_page()
    phone.goto(f"{base}/l/{link_token(rt.ctx.vault, message)}")
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
    partner.close()

    assert taps == PARTNER_STEPS
    with Session(rt.engine) as s:
        statuses = s.scalars(
            select(Step.status)
            .join(Referral, Referral.id == Step.referral_id)
            .where(Referral.code == code)
            .order_by(Step.seq)
        ).all()
    assert statuses == ["done", "done", "done", "active"]
