"""The staff pages over HTTP: login, sessions, CSRF, the district wall, and each page's work.

Through FastAPI's TestClient (real HTTP semantics, cookies, redirects) on SQLite and PostgreSQL;
the same flows in real Chromium are in test_browser.py.
"""

from __future__ import annotations

import datetime as dt
import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlmodel import Session

from referrals.infra.db import transaction
from referrals.infra.runtime import Runtime
from referrals.models.directory import Contact
from referrals.models.people import User
from referrals.models.workflow import Event, Referral
from referrals.usecases.directory.loading import load_province_data
from referrals.usecases.staff.accounts import LOCKOUT, MAX_FAILURES
from referrals.web.app import create_app
from referrals.web.sessions import COOKIE
from referrals.web.words import UI
from support.domain import consent, new_client, ready_referral, row_counts
from support.pages import PASSWORD, Clock, csrf_of, logged_in, post_form, staff_users


@pytest.fixture
def clock(rt: Runtime, now: dt.datetime) -> Clock:
    staff_users(rt)
    return Clock(now)


def _events(rt: Runtime, kind: str) -> list[Event]:
    with Session(rt.engine) as s:
        return list(s.scalars(select(Event).where(Event.kind == kind).order_by(Event.id)))


def test_pages_need_a_login_and_come_back_after_it(clock: Clock) -> None:
    client = TestClient(create_app(clock=clock))
    first = client.get("/clients?x=1", follow_redirects=False)
    assert first.status_code == 303 and first.headers["location"] == "/login?next=/clients%3Fx%3D1"
    form = client.get(first.headers["location"])
    assert 'value="/clients?x=1"' in form.text
    answer = client.post(
        "/login",
        data={
            "csrf": csrf_of(form.text),
            "username": "mai",
            "password": PASSWORD,
            "next": "/clients?x=1",
        },
        follow_redirects=False,
    )
    assert answer.headers["location"] == "/clients?x=1"
    # An open redirect is refused: only paths on this site.
    evil = TestClient(create_app(clock=clock)).get("/login?next=//evil.example/x")
    assert 'value="/"' in evil.text


def test_a_new_session_id_at_login_and_logout_ends_it(clock: Clock) -> None:
    """Session fixation: a cookie planted before login never becomes a logged-in session."""
    attacker = TestClient(create_app(clock=clock))
    planted = attacker.get("/login")
    fixed = attacker.cookies[COOKIE]
    victim = TestClient(create_app(clock=clock))
    victim.cookies.set(COOKIE, fixed)
    answer = victim.post(
        "/login",
        data={"csrf": csrf_of(planted.text), "username": "mai", "password": PASSWORD},
        follow_redirects=False,
    )
    assert answer.status_code == 303
    issued = answer.cookies[COOKIE]
    assert issued != fixed and issued.split(".")[0] != fixed.split(".")[0]
    assert victim.get("/cases").status_code == 200
    # The planted cookie is still anonymous.
    assert attacker.get("/cases", follow_redirects=False).status_code == 303
    # A tampered cookie is refused.
    payload, mac = issued.split(".")
    forged = TestClient(create_app(clock=clock))
    forged.cookies.set(COOKIE, payload[:-2] + "AA." + mac)
    assert forged.get("/cases", follow_redirects=False).status_code == 303
    # Logging out ends the session: the same cookie replayed is refused.
    assert post_form(victim, "/logout", "/cases").status_code == 303
    replay = TestClient(create_app(clock=clock))
    replay.cookies.set(COOKIE, issued)
    assert replay.get("/cases", follow_redirects=False).status_code == 303
    # And a session expires after 12 hours.
    again = logged_in(clock, "mai")
    clock.now += dt.timedelta(hours=12, minutes=1)
    assert again.get("/cases", follow_redirects=False).status_code == 303


def test_forms_without_the_right_csrf_token_change_nothing(rt: Runtime, clock: Clock) -> None:
    mai, other = logged_in(clock, "mai"), logged_in(clock, "hoa")
    before = row_counts(rt)
    fields = {"name": "Trần Thị CSRF", "phone": "0905 000 111"}
    assert mai.post("/clients", data=fields, follow_redirects=False).status_code == 403
    assert mai.post("/clients", data={**fields, "csrf": "0" * 32}).status_code == 403
    foreign = csrf_of(other.get("/cases").text)  # a real token, of someone else's session
    assert mai.post("/clients", data={**fields, "csrf": foreign}).status_code == 403
    anonymous = TestClient(create_app(clock=clock))
    assert (
        anonymous.post("/login", data={"username": "mai", "password": PASSWORD}).status_code == 403
    )
    assert row_counts(rt) == before
    ok = post_form(mai, "/clients", "/clients", **fields)
    assert ok.status_code == 303 and ok.headers["location"].startswith("/clients/C-")


def test_repeated_failures_lock_the_account_for_a_while(rt: Runtime, clock: Clock) -> None:
    client = TestClient(create_app(clock=clock))

    def attempt(username: str, password: str) -> tuple[int, str]:
        token = csrf_of(client.get("/login").text)
        answer = client.post(
            "/login",
            data={"csrf": token, "username": username, "password": password},
            follow_redirects=False,
        )
        error = re.search(r'<p class="error" id="error">(.*?)</p>', answer.text)
        return answer.status_code, error.group(1) if error else ""

    wrong = [attempt("mai", "wrong password!") for _ in range(MAX_FAILURES)]
    assert {status for status, _ in wrong} == {401}
    # Locked: the right password is refused, in the very words of a wrong one, and so is a
    # name that does not exist, so the answers tell an outsider nothing.
    locked = attempt("mai", PASSWORD)
    unknown = attempt("nobody", PASSWORD)
    assert locked == unknown == wrong[0] == (401, "Sai tên đăng nhập hoặc mật khẩu.")
    assert len(_events(rt, "user.login_failed")) == MAX_FAILURES - 1
    assert len(_events(rt, "user.locked")) == 1
    assert len(_events(rt, "user.login_locked")) == 1
    clock.now += LOCKOUT + dt.timedelta(seconds=1)
    assert attempt("mai", PASSWORD)[0] == 303
    assert all("horse" not in str(e.data) for e in _events(rt, "user.login_failed"))


def test_malformed_logins_and_cookies_get_clear_answers(rt: Runtime, clock: Clock) -> None:
    client = TestClient(create_app(clock=clock))
    token = csrf_of(client.get("/login").text)
    nul = client.post("/login", data={"csrf": token, "username": "ma\x00i", "password": "x"})
    assert nul.status_code == 400
    huge = client.post(
        "/login",
        content=b"a=" + b"x" * 100_000,
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert huge.status_code == 413
    odd = TestClient(create_app(clock=clock))
    cookie = {"cookie": f"{COOKIE}=abc.\u00e9".encode("latin-1")}  # not ASCII: no signature
    assert odd.get("/login", headers=cookie).status_code == 200  # type: ignore[arg-type]
    assert odd.get("/cases", headers=cookie, follow_redirects=False).status_code == 303  # type: ignore[arg-type]
    # Signed in, /login sends you home instead of ending your session.
    mai = logged_in(clock, "mai")
    home = mai.get("/login", follow_redirects=False)
    assert home.status_code == 303 and home.headers["location"] == "/cases"
    assert mai.get("/cases").status_code == 200


def test_a_coordinator_cannot_reach_another_district_by_url(
    rt: Runtime, clock: Clock, now: dt.datetime
) -> None:
    nh = ready_referral(
        rt, now, pathway="id_papers", partner="police-ninh-hoa", district="ninh-hoa", name="NH One"
    )
    with Session(rt.engine) as s:
        nh_client = s.scalars(select(Referral).where(Referral.code == nh)).one().client_id
        from referrals.models.people import Client

        nh_code = s.get(Client, nh_client).code  # type: ignore[union-attr]
    mai, binh, hoa = logged_in(clock, "mai"), logged_in(clock, "binh"), logged_in(clock, "hoa")
    before = row_counts(rt)
    for path in (f"/clients/{nh_code}", f"/referrals/{nh}"):
        assert mai.get(path).status_code == 404, path
        assert binh.get(path).status_code == 200, path
        assert hoa.get(path).status_code == 200, path
    token = csrf_of(mai.get("/cases").text)
    for path, data in (
        (f"/referrals/{nh}/actions", {"action": "cancel", "version": "1"}),
        (f"/referrals/{nh}/reroute", {"partner": "police-nha-trang"}),
        (f"/clients/{nh_code}/reveal", {"purpose": "other"}),
        (f"/clients/{nh_code}/consents", {"partner": "legal-aid-centre", "purpose": "legal_aid"}),
    ):
        assert mai.post(path, data={"csrf": token, **data}).status_code == 404, path
    # A manager reads everything and changes nothing.
    token = csrf_of(hoa.get("/cases").text)
    answer = hoa.post(
        f"/referrals/{nh}/actions", data={"csrf": token, "action": "cancel", "version": "1"}
    )
    assert answer.status_code == 403
    assert mai.get("/admin").status_code == 403 and hoa.get("/admin").status_code == 403
    assert row_counts(rt) == before
    assert nh not in mai.get("/cases?all=1").text and nh_code not in mai.get("/clients").text
    assert nh in binh.get("/cases").text or nh in binh.get("/cases?all=1").text


def test_launch_asks_for_consent_in_vietnamese_then_launches(rt: Runtime, clock: Clock) -> None:
    mai = logged_in(clock, "mai")
    made = post_form(mai, "/clients", "/clients", name="Lê Thị Khách", phone="0905 123 456")
    code = made.headers["location"].rsplit("/", 1)[1]
    page = mai.get(f"/launch?client={code}")
    assert "police-nha-trang" in page.text and "police-ninh-hoa" not in page.text  # district
    before = row_counts(rt)
    refused = post_form(
        mai, "/launch", "/launch", client=code, pathway="id_papers", partner="police-nha-trang"
    )
    assert refused.status_code == 422
    # The refusal comes back on the launch form, whose consent part asks for the consent.
    assert re.search(f'id="error">[^<]*{code}', refused.text) and 'name="agreed"' in refused.text
    assert row_counts(rt) == before
    wrong = post_form(
        mai, "/launch", "/launch", client=code, pathway="id_papers", partner="legal-aid-centre"
    )
    assert "không có dịch vụ" in wrong.text and row_counts(rt) == before
    granted = post_form(
        mai,
        f"/clients/{code}/consents",
        f"/clients/{code}",
        partner="police-nha-trang",
        purpose="id_papers",
        method="verbal",
    )
    assert granted.status_code == 303
    launched = post_form(
        mai, "/launch", "/launch", client=code, pathway="id_papers", partner="police-nha-trang"
    )
    assert launched.status_code == 303
    ref = launched.headers["location"].rsplit("/", 1)[1]
    shown = mai.get(f"/referrals/{ref}").text
    assert "chờ tiếp nhận" in shown and "Chuyển gửi mới" in shown and "chờ gửi" in shown
    assert "26/11/2026" in shown  # due 3 working days on, past the 24/11 holiday, dd/mm/yyyy
    assert ref in mai.get("/cases").text
    assert "Lê Thị Khách" not in shown and "0905" not in shown


def test_personal_details_only_on_request_and_each_view_is_logged(
    rt: Runtime, clock: Clock, now: dt.datetime
) -> None:
    code = new_client(
        rt, now, name="Phạm Thị Riêng", phone="0905 777 888", id_number="012345678901"
    )
    mai = logged_in(clock, "mai")
    page = mai.get(f"/clients/{code}")
    # The phone in any form it could be shown in (a bare "777" also turns up in random tokens).
    hidden = ("Phạm Thị Riêng", "777 888", "777888", "012345678901")
    assert not [v for v in hidden if v in page.text]
    shown = post_form(mai, f"/clients/{code}/reveal", f"/clients/{code}", purpose="contact_client")
    assert shown.status_code == 200
    for value in ("Phạm Thị Riêng", "0905 777 888", "012345678901"):
        assert value in shown.text
    assert shown.headers["cache-control"] == "no-store"
    (viewed,) = _events(rt, "pii.viewed")
    assert viewed.actor == "user:mai" and viewed.data["why"] == "contact_client"
    assert viewed.data["fields"] == ["id_number", "name", "phone"]
    assert "Phạm" not in str(viewed.data)
    bad = post_form(mai, f"/clients/{code}/reveal", f"/clients/{code}", purpose="curiosity")
    assert bad.status_code == 422 and "Phạm Thị Riêng" not in bad.text
    assert len(_events(rt, "pii.viewed")) == 1


def test_record_steps_decline_and_reroute(rt: Runtime, clock: Clock, now: dt.datetime) -> None:
    ref = ready_referral(rt, now, pathway="health_check", partner="phuong-son-health")
    mai = logged_in(clock, "mai")
    page = f"/referrals/{ref}"
    stale = post_form(mai, f"{page}/actions", page, action="hold", reason="other", version=1)
    assert stale.status_code == 303
    conflict = post_form(mai, f"{page}/actions", page, action="resume", version=1)
    assert conflict.status_code == 409 and "vừa được người khác thay đổi" in conflict.text
    post_form(mai, f"{page}/actions", page, action="resume", version=2)
    declined = post_form(
        mai, f"{page}/actions", page, action="decline", reason="partner_lacks_capacity", version=3
    )
    assert declined.status_code == 303
    shown = mai.get(page).text
    assert "bị từ chối" in shown and UI["vi"]["reason_partner_lacks_capacity"] in shown
    assert (
        'id="reroute"' in shown and "cdc-khanh-hoa" in shown and 'phuong-son-health"' not in shown
    )
    no_consent = post_form(mai, f"{page}/reroute", page, partner="cdc-khanh-hoa")
    assert no_consent.status_code == 422 and "Chưa có sự đồng ý" in no_consent.text
    with Session(rt.engine) as s:
        client_id = s.scalars(select(Referral.client_id).where(Referral.code == ref)).one()
        from referrals.models.people import Client

        client_code = s.get(Client, client_id).code  # type: ignore[union-attr]
    consent(rt, client_code, "cdc-khanh-hoa", "health_check", now)
    moved = post_form(mai, f"{page}/reroute", page, partner="cdc-khanh-hoa")
    assert moved.status_code == 303
    new = moved.headers["location"].rsplit("/", 1)[1]
    assert new != ref and ref in mai.get(f"/referrals/{new}").text
    assert new in mai.get(page).text
    again = post_form(mai, f"{page}/reroute", page, partner="cdc-khanh-hoa")
    assert again.status_code == 422  # one open referral per pathway
    # The new referral's first step, recorded by the coordinator, then the next one.
    new_page = f"/referrals/{new}"
    version = int(re.search(r'name="version" value="(\d+)"', mai.get(new_page).text).group(1))  # type: ignore[union-attr]
    assert (
        post_form(
            mai, f"{new_page}/actions", new_page, action="accept", version=version
        ).status_code
        == 303
    )
    assert "đã tiếp nhận" in mai.get(new_page).text


def test_admin_deactivates_a_contact_and_reloading_the_config_keeps_it(
    rt: Runtime, clock: Clock, now: dt.datetime
) -> None:
    ref = ready_referral(rt, now)
    with Session(rt.engine) as s:
        contact = s.scalars(
            select(Contact)
            .where(Contact.rank == 1)
            .join_from(Contact, Referral, Contact.organization_id == Referral.organization_id)
            .where(Referral.code == ref)
        ).first()
        assert contact is not None
        contact_id = contact.id
    admin = logged_in(clock, "admin")
    page = admin.get(f"/admin/contacts/{contact_id}")
    assert page.status_code == 200 and ref in page.text
    off = post_form(
        admin, f"/admin/contacts/{contact_id}/active", f"/admin/contacts/{contact_id}", active=0
    )
    assert off.status_code == 303
    with transaction(rt.engine) as s:
        load_province_data(s, province=rt.province)
    with Session(rt.engine) as s:
        row = s.get(Contact, contact_id)
        assert row is not None and not row.active and row.deactivated_by == "user:admin"
    assert "ngừng" in admin.get(f"/admin/contacts/{contact_id}").text
    post_form(
        admin, f"/admin/contacts/{contact_id}/active", f"/admin/contacts/{contact_id}", active=1
    )
    with transaction(rt.engine) as s:
        load_province_data(s, province=rt.province)
    with Session(rt.engine) as s:
        assert s.get(Contact, contact_id).active  # type: ignore[union-attr]


def test_admin_adds_and_deactivates_users(rt: Runtime, clock: Clock) -> None:
    admin = logged_in(clock, "admin")
    short = post_form(
        admin,
        "/admin/users",
        "/admin",
        username="lan",
        full_name="Lan",
        role="coordinator",
        district="nha-trang",
        password="short",
    )
    assert short.status_code == 422 and "ít nhất 10 ký tự" in short.text
    made = post_form(
        admin,
        "/admin/users",
        "/admin",
        username="lan",
        full_name="Lan",
        role="coordinator",
        district="nha-trang",
        password=PASSWORD,
    )
    assert made.status_code == 303
    lan = logged_in(clock, "lan")
    assert lan.get("/cases").status_code == 200
    post_form(admin, "/admin/users/lan/active", "/admin", active=0)
    assert lan.get("/cases", follow_redirects=False).status_code == 303  # session ended at once
    with Session(rt.engine) as s:
        assert not s.scalars(select(User.active).where(User.username == "lan")).one()


def test_the_dashboard_after_time_travel(rt: Runtime, clock: Clock, now: dt.datetime) -> None:
    late = ready_referral(rt, now)  # acknowledge due Thu 26/11 17:00 (24/11 is a holiday)
    ready_referral(rt, now, pathway="legal_aid", partner="legal-aid-centre", name="Other")
    hoa = logged_in(clock, "hoa")
    assert 'id="nothing-late"' in hoa.get("/dashboard").text
    clock.now = dt.datetime(2026, 11, 30, 2, 0, tzinfo=dt.UTC)  # Mon 30/11 09:00
    hoa = logged_in(clock, "hoa")  # a week on: yesterday's session has expired
    page = hoa.get("/dashboard").text
    row = re.search(rf"<tr class=\"late\"[^>]*>.*?{late}.*?</tr>", page, re.S)
    assert row and "Công an" in row.group(0) and "trễ 2 ngày làm việc" in row.group(0)
    counts = re.search(r'id="counts-month".*?</table>', page, re.S).group(0)  # type: ignore[union-attr]
    assert len(re.findall(r">1</td>", counts)) >= 2  # one client and one referral per service row
    assert "<svg" in page and "Thời gian tiếp nhận" in page
    english = hoa.get("/lang/en?next=/dashboard")
    assert "2 working days late" in english.text and "Overdue, most late first" in english.text


def test_pages_carry_security_headers(clock: Clock) -> None:
    mai = logged_in(clock, "mai")
    page = mai.get("/cases")
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"
    cookie = next(h for h in page.history[0].headers.get_list("set-cookie")) if page.history else ""
    login = TestClient(create_app(clock=clock)).get("/login")
    assert "httponly" in login.headers["set-cookie"].lower()
    assert "samesite=lax" in login.headers["set-cookie"].lower()
    assert cookie == "" or "httponly" in cookie.lower()


def test_a_malformed_address_is_a_page_not_found(clock: Clock) -> None:
    mai = logged_in(clock, "mai")
    for path in ("/clients/C-%00", "/referrals/" + "x" * 30, "/admin/contacts/abc", "/lang/fr"):
        answer = mai.get(path)
        assert answer.status_code == 404 and "Không tìm thấy" in answer.text, path
    assert mai.get("/api/v1/referrals/%00").status_code in (401, 422)  # the API keeps JSON


def test_a_coordinators_dashboard_is_their_districts(
    rt: Runtime, clock: Clock, now: dt.datetime
) -> None:
    ready_referral(rt, now)  # Nha Trang
    clock.now += dt.timedelta(minutes=1)
    binh, hoa = logged_in(clock, "binh"), logged_in(clock, "hoa")
    theirs, everyone = binh.get("/dashboard").text, hoa.get("/dashboard").text
    assert "Phường Nha Trang" in everyone and "Phường Nha Trang" not in theirs
    assert re.search(r'id="counts-year"', everyone) and not re.search(r'id="counts-year"', theirs)


def test_odd_inputs_on_admin_and_reroute_pages_answer_cleanly(
    rt: Runtime, clock: Clock, now: dt.datetime
) -> None:
    ref = ready_referral(rt, now)
    admin, mai = logged_in(clock, "admin"), logged_in(clock, "mai")
    before = row_counts(rt)
    for path in ("/admin/contacts/999999", "/admin/contacts/99999999999999999999999"):
        assert admin.get(path).status_code in (404,), path
        assert post_form(admin, f"{path}/active", "/admin", active=0).status_code == 404, path
    page = f"/referrals/{ref}"
    for partner in ("", "x" * 200, "<script>"):
        answer = post_form(mai, f"{page}/reroute", page, partner=partner)
        assert answer.status_code == 422, partner
    too_long = post_form(
        admin,
        "/admin/users",
        "/admin",
        username="lan",
        full_name="Lan",
        role="manager",
        password="x" * 201,
    )
    assert too_long.status_code == 422 and "tối đa 200" in too_long.text
    assert row_counts(rt) == before


def test_dead_messages_on_the_dashboard_and_an_admin_retries_one(
    rt: Runtime, clock: Clock, now: dt.datetime
) -> None:
    from sqlalchemy import update

    from referrals.models.workflow import Notification

    ready_referral(rt, now)
    with transaction(rt.engine) as s:
        message = s.scalars(select(Notification.id).where(Notification.channel == "sms")).first()
        s.execute(
            update(Notification)
            .where(Notification.id == message)
            .values(status="dead", attempts=6, last_error="gateway said 400")
        )
    hoa, admin = logged_in(clock, "hoa"), logged_in(clock, "admin")
    seen = hoa.get("/dashboard").text
    assert 'id="dead-count">1<' in seen and "gateway said 400" in seen
    assert f"/messages/{message}/retry" not in seen  # a manager reads, an admin acts
    assert post_form(hoa, f"/messages/{message}/retry", "/dashboard").status_code == 403
    assert f"/messages/{message}/retry" in admin.get("/dashboard").text
    assert post_form(admin, f"/messages/{message}/retry", "/dashboard").status_code == 303
    with Session(rt.engine) as s:
        assert s.get(Notification, message).status == "queued"  # type: ignore[union-attr]
    assert post_form(admin, f"/messages/{message}/retry", "/dashboard").status_code == 409
    assert post_form(admin, "/messages/99999/retry", "/dashboard").status_code == 404
    assert len(_events(rt, "message.retry")) == 1


def test_the_period_report_from_the_dashboard(rt: Runtime, clock: Clock, now: dt.datetime) -> None:
    ready_referral(rt, now)  # Nha Trang, ID papers
    clock.now += dt.timedelta(hours=1)
    hoa, binh = logged_in(clock, "hoa"), logged_in(clock, "binh")
    assert 'action="/report"' in hoa.get("/dashboard").text
    page = hoa.get("/report?from=2026-11-01&to=2026-11-30&format=html")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "Làm giấy tờ tùy thân" in page.text and 'id="chart-services"' in page.text
    assert "script-src" not in page.headers["content-security-policy"]
    sheet = hoa.get("/report?from=01/11/2026&to=30/11/2026&format=csv")
    assert sheet.content.startswith(b"\xef\xbb\xbf")
    assert 'filename="report-2026-11-01-2026-11-30.csv"' in sheet.headers["content-disposition"]
    theirs = binh.get("/report?from=2026-11-01&to=2026-11-30&format=json").json()
    assert theirs["period"]["district"] == "ninh-hoa" and theirs["total"]["launched"] == 0
    assert hoa.get("/report?from=2026-11-30&to=2026-11-01").status_code == 422
    assert hoa.get("/report?from=nope&to=2026-11-01").status_code == 422
    assert hoa.get("/report?from=2026-11-01&to=2026-11-30&format=pdf").status_code == 404


def test_logins_and_link_pages_are_rate_limited_per_address(
    rt: Runtime, clock: Clock, now: dt.datetime
) -> None:
    client = TestClient(create_app(clock=clock))
    token = csrf_of(client.get("/login").text)
    answers = [
        client.post("/login", data={"csrf": token, "username": "x", "password": "y"}).status_code
        for _ in range(11)
    ]
    assert answers[:10] == [401] * 10 and answers[10] == 429
    refused = client.post("/login", data={"csrf": token, "username": "mai", "password": PASSWORD})
    assert refused.status_code == 429 and "Quá nhiều lần thử" in refused.text
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    clock.now += dt.timedelta(seconds=61)
    ok = client.post(
        "/login",
        data={"csrf": token, "username": "mai", "password": PASSWORD},
        follow_redirects=False,
    )
    assert ok.status_code == 303
    guesses = [client.get(f"/l/aaaaaaaaaaaaaaaa{i:02d}").status_code for i in range(31)]
    assert set(guesses[:30]) == {404} and guesses[30] == 429
