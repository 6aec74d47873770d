"""The slip on the web (issue 20): the staff's button and PDF, and the arrival page its QR code
opens, which writes nothing when opened and records the arrival once when pressed."""

from __future__ import annotations

import datetime as dt
import io

from fastapi.testclient import TestClient
from pypdf import PdfReader
from sqlalchemy import select

from referrals import locale
from referrals.infra.db import transaction
from referrals.infra.runtime import Runtime
from referrals.models.lifecycle import Action
from referrals.models.links import slip_token
from referrals.models.workflow import Event, Referral
from referrals.usecases.referrals.advancing import advance
from referrals.web.app import create_app
from support.domain import ready_referral, row_counts
from support.pages import Clock, logged_in, staff_users

NAME, PHONE, ID_NUMBER = "Đỗ Thị Riêng Tư", "0905 135 799", "079190007531"
BUTTON = "Confirm the referred person has arrived"


def launched(rt: Runtime, now: dt.datetime, **client: str) -> tuple[str, str]:
    """A referral (of the distinctive client unless another is given) and its slip's token."""
    client = client or {"name": NAME, "phone": PHONE, "id_number": ID_NUMBER}
    code = ready_referral(rt, now, **client)
    with transaction(rt.engine) as s:
        referral_id = s.scalars(select(Referral.id).where(Referral.code == code)).one()
    return code, slip_token(rt.ctx.vault, referral_id)


def arrivals(rt: Runtime) -> list[Event]:
    with transaction(rt.engine) as s:
        return list(s.scalars(select(Event).where(Event.kind == "referral.arrived")))


def no_client(html: str) -> None:
    for hidden in (NAME, "Riêng Tư", "135 799", "135799", ID_NUMBER):
        assert hidden not in html, hidden


def test_the_arrival_page_shows_codes_writes_nothing_and_records_one_press(
    rt: Runtime, now: dt.datetime
) -> None:
    code, token = launched(rt, now)
    clock = Clock(now + dt.timedelta(days=1, hours=1, minutes=5))  # 10:05 24/11/2026 in Nha Trang
    web = TestClient(create_app(clock=clock))
    before = row_counts(rt)
    page = web.get(f"/s/{token}")
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    assert row_counts(rt) == before  # opening the link (a camera app's preview) changes nothing
    html = page.text
    for shown in (code, "Chi cục Phòng, chống tệ nạn xã hội tỉnh Khánh Hòa", "0258 000 0100"):
        assert shown in html, shown
    assert "Công an phường Nha Trang" in html and "Làm giấy tờ tùy thân" in html
    assert locale.gettext("vi", BUTTON, "slip page") in html and 'id="arrived"' not in html
    assert "<script" not in html
    no_client(html)

    pressed = web.post(f"/s/{token}", follow_redirects=False)
    assert (pressed.status_code, pressed.headers["location"]) == (303, f"/s/{token}?done=1")
    thanks = web.get(pressed.headers["location"]).text
    assert 'id="thanks"' in thanks and "10:05 24/11/2026" in thanks
    assert locale.gettext("vi", BUTTON, "slip page") not in thanks
    (event,) = arrivals(rt)
    assert (event.at, event.actor, event.data) == (clock.now, "slip", {"via": "slip"})

    clock.now += dt.timedelta(hours=3)
    again = web.post(f"/s/{token}", follow_redirects=False)
    assert (again.status_code, again.headers["location"]) == (303, f"/s/{token}")
    page = web.get(again.headers["location"]).text
    assert "10:05 24/11/2026" in page and 'id="thanks"' not in page  # when it was recorded
    assert len(arrivals(rt)) == 1
    no_client(page)


def test_forged_or_another_kind_of_token_and_closed_referrals_are_refused(
    rt: Runtime, now: dt.datetime
) -> None:
    code, token = launched(rt, now)
    web = TestClient(create_app(clock=Clock(now)))
    forged = token[:-1] + ("a" if token[-1] != "a" else "b")
    nobody = slip_token(rt.ctx.vault, 999_999)  # well signed, for no referral
    for bad in (forged, nobody, "a" * 60, "not-a-token"):
        for answer in (web.get(f"/s/{bad}"), web.post(f"/s/{bad}")):
            assert answer.status_code == 404, bad
    # The slip's token opens no action link, and an action link's path no slip.
    assert "referral.arrived" not in web.get(f"/l/{token}").text
    assert web.get(f"/l/{token}").status_code == 404
    assert arrivals(rt) == []

    other, other_token = launched(rt, now, name="Lê Văn Khác", phone="0905 000 321")
    assert web.post(f"/s/{other_token}").status_code == 200  # its own referral's, not this one's
    with transaction(rt.engine) as s:
        other_id = s.scalars(select(Referral.id).where(Referral.code == other)).one()
    assert [e.referral_id for e in arrivals(rt)] == [other_id]

    with transaction(rt.engine) as s:
        advance(s, code=code, action=Action.cancel, by=rt.user(s, "mai"), ctx=rt.ctx, now=now)
    closed = web.get(f"/s/{token}")
    assert closed.status_code == 409 and 'id="refused"' in closed.text and code in closed.text
    assert locale.gettext("vi", BUTTON, "slip page") not in closed.text
    assert web.post(f"/s/{token}").status_code == 409
    assert len(arrivals(rt)) == 1  # the other referral's only


def test_the_arrival_page_is_rate_limited(rt: Runtime, now: dt.datetime) -> None:
    _, token = launched(rt, now)
    web = TestClient(create_app(clock=Clock(now)))
    statuses = [web.get(f"/s/{token}").status_code for _ in range(31)]
    assert statuses[:30] == [200] * 30 and statuses[30] == 429


def test_staff_print_the_slip_from_the_referral_page(rt: Runtime, now: dt.datetime) -> None:
    code, token = launched(rt, now)
    staff_users(rt)
    clock = Clock(now)
    mai = logged_in(clock, "mai")
    page = mai.get(f"/referrals/{code}").text
    assert f'href="/referrals/{code}/slip.pdf"' in page and 'id="print-slip"' in page
    pdf = mai.get(f"/referrals/{code}/slip.pdf")
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.headers["content-disposition"] == (
        f'attachment; filename="phieu-chuyen-gui-{code}.pdf"'
    )
    text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.content)).pages)
    assert code in text and f"/s/{token}" in text
    no_client(text)
    with transaction(rt.engine) as s:
        printed = s.scalars(select(Event).where(Event.kind == "slip.printed")).one()
    assert printed.actor == "user:mai"

    binh = logged_in(clock, "binh")  # a coordinator of Ninh Hòa: another district's referral
    assert binh.get(f"/referrals/{code}/slip.pdf").status_code == 404
    assert (
        TestClient(create_app())
        .get(f"/referrals/{code}/slip.pdf", follow_redirects=False)
        .status_code
        == 303
    )  # no session: to the login page

    with transaction(rt.engine) as s:
        advance(s, code=code, action=Action.cancel, by=rt.user(s, "mai"), ctx=rt.ctx, now=now)
    assert 'id="print-slip"' not in mai.get(f"/referrals/{code}").text
    assert mai.get(f"/referrals/{code}/slip.pdf").status_code == 422
