"""The managers' merge form on a client's page (web/merging.py, templates/client_merge.html):
who sees it, what a merge and a refusal answer, where a tombstone's page points; and the form
used in Chromium at 390 px."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from playwright.sync_api import expect, sync_playwright

from referrals.infra.db import transaction
from referrals.infra.runtime import Runtime
from referrals.usecases.clients.merging import MergeIn, merge_clients
from referrals.usecases.clients.subject import erase_client
from support import pages
from support.domain import consent, launch, new_client, row_counts
from support.pages import PASSWORD, Clock, csrf_of, served, staff_users


def logged_in(clock: Clock, username: str) -> TestClient:
    """Logged in as `username`, reading the English pages."""
    browser = pages.logged_in(clock, username)
    browser.cookies.set("lang", "en")
    return browser


def post_merge(browser: TestClient, keep: str, **fields: str) -> Response:
    token = csrf_of(browser.get(f"/clients/{keep}").text)
    return browser.post(
        f"/clients/{keep}/merge", data={"csrf": token, **fields}, follow_redirects=False
    )


@pytest.fixture
def clock(rt: Runtime, now: dt.datetime) -> Clock:
    staff_users(rt)
    return Clock(now)


def test_managers_see_the_form_coordinators_do_not(
    rt: Runtime, clock: Clock, now: dt.datetime
) -> None:
    keep = new_client(rt, now)
    erased = new_client(rt, now)
    with transaction(rt.engine) as s:
        erase_client(s, code=erased, by=rt.user(s, "hoa"), now=now)
    hoa, mai = logged_in(clock, "hoa"), logged_in(clock, "mai")
    assert 'id="merge"' in hoa.get(f"/clients/{keep}").text
    assert 'id="merge"' not in hoa.get(f"/clients/{erased}").text
    assert 'id="merge"' not in mai.get(f"/clients/{keep}").text
    other = new_client(rt, now)
    before = row_counts(rt)
    forbidden = post_merge(mai, keep, other=other, confirm="true")
    assert forbidden.status_code == 403
    assert row_counts(rt) == before


def test_a_manager_merges_and_the_tombstone_points_to_the_client_kept(
    rt: Runtime, clock: Clock, now: dt.datetime
) -> None:
    keep, other = new_client(rt, now), new_client(rt, now)
    consent(rt, other, "police-nha-trang", "id_papers", now)
    moved = launch(rt, other, "id_papers", "police-nha-trang", now)
    hoa = logged_in(clock, "hoa")
    done = post_merge(
        hoa, keep, other=other.lower(), reason="cùng người\r\nhai lần", confirm="true"
    )
    assert done.status_code == 303
    assert done.headers["location"] == f"/clients/{keep}"
    page = hoa.get(f"/clients/{keep}").text
    assert f'href="/referrals/{moved}"' in page and "records merged" in page
    assert "cùng người" not in page  # the reason is sealed, shown only in the export
    tomb = hoa.get(f"/clients/{other}").text
    assert 'id="merged"' in tomb and 'id="merge"' not in tomb
    assert f'href="/clients/{other}/merged" id="kept">{keep}' in tomb
    kept = hoa.get(f"/clients/{other}/merged", follow_redirects=False)
    assert (kept.status_code, kept.headers["location"]) == (303, f"/clients/{keep}")
    assert other not in hoa.get("/clients").text


@pytest.mark.parametrize(
    ("case", "fields", "said"),
    [
        ("not confirmed", {}, "Tick the box to confirm"),
        ("itself", {"other": "KEEP", "confirm": "true"}, "cannot be merged with itself"),
        ("unknown", {"other": "C-00000-00000", "confirm": "true"}, "No such client."),
        ("malformed", {"other": "C-<b>", "confirm": "true"}, "Code of the other record"),
        ("merged", {"other": "GONE", "confirm": "true"}, "was merged into"),
        ("short reason", {"other": "OTHER", "reason": "x", "confirm": "true"}, "Reason"),
    ],
)
def test_a_refused_merge_says_why_keeps_the_form_and_writes_nothing(
    rt: Runtime, clock: Clock, now: dt.datetime, case: str, fields: dict[str, str], said: str
) -> None:
    keep, other, gone = new_client(rt, now), new_client(rt, now), new_client(rt, now)
    with transaction(rt.engine) as s:  # GONE is already a tombstone (of OTHER)
        data = MergeIn(keep=other, other=gone)
        merge_clients(s, data=data, by=rt.user(s, "hoa"), ctx=rt.ctx, now=now)
    names = {"KEEP": keep, "OTHER": other, "GONE": gone}
    typed = {k: names.get(v, v) for k, v in {"other": other, **fields}.items()}
    hoa = logged_in(clock, "hoa")
    before = row_counts(rt)
    answer = post_merge(hoa, keep, **typed)
    assert answer.status_code == 422, case
    assert 'id="error"' in answer.text and said in answer.text, answer.text
    shown = answer.text.replace("&lt;", "<").replace("&gt;", ">")
    assert f'value="{typed["other"]}"' in shown  # the form as typed
    assert row_counts(rt) == before


def test_the_form_in_chromium_at_390_px(rt: Runtime, clock: Clock, now: dt.datetime) -> None:
    """A manager on a phone: the form fits, the box must be ticked (the browser says so before
    anything is sent), and the merge lands on the client kept; the tombstone's page fits too."""
    keep, other = new_client(rt, now), new_client(rt, now)
    with served(clock) as base, sync_playwright() as p:
        chromium = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True)
        phone = chromium.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
        page = phone.new_page()
        page.goto(f"{base}/login")
        page.fill("input[name=username]", "hoa")
        page.fill("input[name=password]", PASSWORD)
        page.click("#login")
        page.goto(f"{base}/clients/{keep}")
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        page.fill("#merge-other", other)
        page.fill("#merge-reason", "đăng ký hai lần")
        page.click("#merge-send")  # not ticked: the browser keeps the form
        expect(page).to_have_url(f"{base}/clients/{keep}")
        assert page.locator("#merged").count() == 0
        page.check("#merge input[name=confirm]")
        page.click("#merge-send")
        # In Vietnamese once the catalogs have the words (until then, the English).
        expect(page.locator(".timeline")).to_contain_text(re.compile("gộp hồ sơ|records merged"))
        page.goto(f"{base}/clients/{other}")
        expect(page.locator("#kept")).to_have_text(f"{keep} →")
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        page.click("#kept")
        expect(page).to_have_url(f"{base}/clients/{keep}")
        chromium.close()
