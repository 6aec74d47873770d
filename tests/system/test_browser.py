"""End to end in real headless Chromium (Debian's /usr/bin/chromium, driven by Playwright).

A real uvicorn server on loopback serves the app with a movable clock. A coordinator registers a
client, records consent and launches a referral; the partner answers through its link; the
coordinator sees the timeline change; a week later the manager sees the case overdue. Each main
page is saved as a screenshot (into docs/screenshots/ when REFERRALS_SCREENSHOTS names it).
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

from playwright.sync_api import Browser, Page, expect
from sqlalchemy import select
from sqlmodel import Session

from referrals.infra.runtime import Runtime
from referrals.models.links import link_token
from referrals.models.workflow import Notification, Referral
from referrals.usecases.deadlines.sweeping import sweep
from support.domain import new_client, ready_referral
from support.pages import PASSWORD, Clock


def _log_in(page: Page, base: str, username: str) -> None:
    page.goto(f"{base}/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("#login")


def test_coordinator_partner_and_manager_in_chromium(
    rt: Runtime, server: tuple[str, Clock], browser: Browser, shots: Path, now: dt.datetime
) -> None:
    base, clock = server
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="vi-VN")
    page = context.new_page()
    page.goto(f"{base}/cases")
    expect(page).to_have_url(f"{base}/login?next=/cases")
    page.screenshot(path=shots / "login.png")
    _log_in(page, base, "mai")
    expect(page).to_have_url(f"{base}/cases")

    # Register a client: the details go in once, the code comes back.
    page.click("text=Đối tượng")
    page.fill("input[name=name]", "Nguyễn Thị Trình Duyệt")
    page.fill("input[name=phone]", "0905 246 810")
    page.click("#new-client button")
    expect(page).to_have_url(re.compile(r"/clients/C-"))
    code = page.locator("#code").inner_text()
    assert code.startswith("C-") and "Nguyễn Thị Trình Duyệt" not in page.content()

    # Launching without consent says so, in Vietnamese, and launches nothing.
    page.goto(f"{base}/launch?client={code}")
    page.select_option("#pathway", "id_papers")
    assert page.locator("#partner optgroup[data-pathway=legal_aid]").is_hidden()
    page.select_option("#partner", "police-nha-trang")
    page.screenshot(path=shots / "launch.png", full_page=True)
    page.click("#send")
    expect(page.locator("#error")).to_contain_text("Chưa có sự đồng ý")

    # Record the consent on the client's page, then launch.
    page.goto(f"{base}/clients/{code}")
    page.select_option("#consent select[name=purpose]", "id_papers")
    page.select_option("#consent select[name=partner]", "police-nha-trang")
    page.click("#consent button")
    expect(page.locator("#consents")).to_contain_text("Công an phường Nha Trang")
    page.select_option("#reveal select[name=purpose]", "contact_client")
    page.click("#reveal button")
    expect(page.locator("#pii")).to_contain_text("Nguyễn Thị Trình Duyệt")
    page.screenshot(path=shots / "client.png", full_page=True)
    page.goto(f"{base}/launch?client={code}")
    page.select_option("#pathway", "id_papers")
    page.select_option("#partner", "police-nha-trang")
    page.click("#send")
    expect(page.locator("#status")).to_have_text("chờ tiếp nhận")
    referral = page.locator("h1 #code").inner_text()
    expect(page.locator("#messages")).to_contain_text("chờ gửi")

    # The partner follows the link from its SMS and accepts.
    with Session(rt.engine) as s:
        message_id = s.scalars(
            select(Notification.id)
            .join(Referral, Referral.id == Notification.referral_id)
            .where(Referral.code == referral, Notification.channel == "sms")
        ).first()
    assert message_id is not None
    partner = browser.new_context(viewport={"width": 390, "height": 800}, is_mobile=True)
    phone = partner.new_page()
    phone.goto(f"{base}/l/{link_token(rt.ctx.vault, message_id)}")
    expect(phone.locator("h1")).to_contain_text(referral)
    phone.screenshot(path=shots / "partner-link.png", full_page=True)
    phone.get_by_role("button", name="Xác nhận tiếp nhận").click()
    expect(phone.locator("#thanks")).to_be_visible()
    partner.close()

    # The coordinator sees the timeline change.
    page.reload()
    expect(page.locator("#status")).to_have_text("đã tiếp nhận")
    expect(page.locator('#timeline li[data-kind="link.answered"]')).to_be_visible()
    page.screenshot(path=shots / "referral.png", full_page=True)
    page.goto(f"{base}/cases")
    expect(page.locator("#cases")).to_contain_text(referral)
    page.screenshot(path=shots / "cases.png", full_page=True)
    context.close()

    # On a phone: the same session's pages fit the screen (wide tables scroll inside their box).
    mobile = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    small = mobile.new_page()
    _log_in(small, base, "mai")
    for path in ("/cases", f"/referrals/{referral}", f"/clients/{code}"):
        small.goto(f"{base}{path}")
        assert small.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), path
    small.goto(f"{base}/referrals/{referral}")
    small.screenshot(path=shots / "referral-phone.png", full_page=True)
    mobile.close()

    # A week later, an unanswered referral is overdue and escalated: the manager sees it.
    late = ready_referral(rt, now, pathway="legal_aid", partner="legal-aid-centre", name="Late One")
    clock.now = dt.datetime(2026, 12, 1, 2, 0, tzinfo=dt.UTC)  # Tue 01/12 09:00
    sweep(rt.engine, ctx=rt.ctx, now=clock.now)
    manager = browser.new_context(viewport={"width": 1280, "height": 900})
    board = manager.new_page()
    _log_in(board, base, "hoa")
    expect(board).to_have_url(f"{base}/dashboard")
    row = board.locator("#overdue tr", has_text=late)
    expect(row).to_contain_text("Trung tâm Trợ giúp pháp lý")
    expect(row).to_contain_text("trễ")
    assert int(row.locator(".escalation").get_attribute("data-level") or 0) >= 1  # escalated
    expect(board.locator("#chart")).to_be_visible()
    board.screenshot(path=shots / "dashboard.png", full_page=True)
    board.click("#report button")  # the period report, from 1 January to today
    expect(board.locator("#chart-services")).to_be_visible()
    expect(board.locator("body")).to_contain_text("Tư vấn pháp lý")
    board.screenshot(path=shots / "report.png", full_page=True)
    board.go_back()
    board.click("#lang")
    expect(board.locator("h1")).to_have_text("Dashboard")
    manager.close()

    admin = browser.new_context(viewport={"width": 1280, "height": 900})
    desk = admin.new_page()
    _log_in(desk, base, "admin")
    expect(desk.locator("#users")).to_contain_text("binh")
    desk.screenshot(path=shots / "admin.png")
    admin.close()


def test_a_known_phone_is_caught_on_a_phone_sized_screen(
    browser: Browser, server: tuple[str, Clock], rt: Runtime, now: dt.datetime
) -> None:
    """Registering someone whose phone is already a client's, at 390 px: the refusal keeps the
    form, links the client, fits the screen; "a different person" with a reason registers."""
    base, _ = server
    known = new_client(rt, now, name="Đã Có", phone="0905 864 202")
    phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    page = phone.new_page()
    _log_in(page, base, "mai")
    page.goto(f"{base}/clients")
    page.fill("#new-client input[name=name]", "Trương Thị Năm")
    page.fill("#new-client input[name=phone]", "+84 905 864 202")
    page.click("#new-client button")
    expect(page.locator(f'#new-client a[href="/clients/{known}"]')).to_be_visible()
    expect(page.locator("#new-client input[name=name]")).to_have_value("Trương Thị Năm")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    page.fill("#new-client input[name=different_person]", "người khác, mượn máy của chị")
    page.click("#new-client button")
    expect(page).to_have_url(re.compile(rf"{base}/clients/C-"))
    assert known not in page.url
    phone.close()
