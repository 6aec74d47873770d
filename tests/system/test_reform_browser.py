"""A coordinator of the former city refers a client registered in 2024, in real headless
Chromium (issue 23): the launch form says the client's ward ended in the 2025 reform and links
to the client's page, where the wards that took it over are offered in words; after the move the
referral goes to today's ward police. Counted in screens, as tests/system/test_launch_browser.py
counts them, and checked at 390 px for sideways scrolling."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from playwright.sync_api import Browser, expect
from sqlalchemy import select, update
from sqlmodel import Session, col
from test_launch_browser import fits, log_in, no_keys, open_launch_form

from referrals.infra.db import transaction
from referrals.infra.runtime import Runtime
from referrals.models.people import User
from referrals.models.workflow import Referral
from support.domain import new_client
from support.pages import Clock

# login → search results → launch form (the notice) → client page → after the move (the page
# again) → launch form → the referral.
MOST_SCREENS = 6


def test_a_client_of_an_ended_ward_is_moved_and_referred(
    rt: Runtime, server: tuple[str, Clock], browser: Browser, shots: Path, now: dt.datetime
) -> None:
    base, _ = server
    in_2024 = dt.datetime(2024, 5, 6, 2, 0, tzinfo=dt.UTC)
    code = new_client(rt, in_2024, name="Lương Thị Lộc Thọ", district="nha-trang-loc-tho")
    with transaction(rt.engine) as s:  # mai coordinates the former city
        s.execute(update(User).where(User.username == "mai").values(area_key="tp-nha-trang"))
    phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    page = phone.new_page()
    screens = log_in(page, base)
    open_launch_form(page, base, code, "luong loc tho")
    expect(page.locator("#area-ended")).to_contain_text("Phường Lộc Thọ không còn hiệu lực")
    assert fits(page)
    page.click("#area-ended a")
    form = page.locator("#move")
    expect(form).to_contain_text("Phường Lộc Thọ không còn hiệu lực (đến 30/06/2025)")
    expect(form.locator("select[name=district] option")).to_have_text(["Phường Nha Trang"])
    no_keys(page)
    assert fits(page)
    page.screenshot(path=shots / "client-move-phone.png", full_page=True)
    page.click("#move button")
    expect(page.locator("#move")).to_have_count(0)
    expect(page.locator("main")).to_contain_text("chuyển sang đơn vị hành chính khác")
    page.click("#refer button")
    expect(page.locator("#area-ended")).to_have_count(0)
    page.select_option("#pathway", "id_papers")
    page.select_option("#partner", "police-nha-trang")
    expect(page.locator("#consent-script")).to_contain_text("Công an phường Nha Trang")
    page.check("input[name=method][value=written]")
    page.check("#agreed")
    page.click("#send")
    expect(page.locator("#status")).to_have_text("chờ tiếp nhận")
    assert 0 < screens.seen() <= MOST_SCREENS, screens.count
    with Session(rt.engine) as s:
        launched = s.scalars(select(Referral).order_by(col(Referral.id).desc())).first()
    assert launched is not None and launched.area_key == "nha-trang"  # today's ward
    phone.close()
