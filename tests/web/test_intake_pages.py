"""The peer educator's form on a phone (`/p/<token>`) and the coordinators' queue (`/intakes`)
over HTTP, and in Chromium at 390 px (issue 20, item 6).

The form answers with a code and never with anything of a client's record; a revoked link is
410; a refused form comes back with what to fix and nothing written. The queue shows an
intake to its area's coordinators only, and its "Chuyển gửi" opens the launch form filled in,
whose one submit registers (or finds) the client, launches, and takes the intake.

Expected words are read from the catalogs, so these hold before and after a translator's pass.
"""

from __future__ import annotations

import datetime as dt
import html
import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Browser, expect
from sqlalchemy import select
from sqlmodel import Session

from referrals import locale
from referrals.infra.db import transaction
from referrals.infra.runtime import Runtime
from referrals.models.directory import Contact, Organization
from referrals.models.intake import Intake
from referrals.models.links import peer_link_of
from referrals.models.people import Client
from referrals.models.workflow import Event
from referrals.usecases.clients.intake import create_peer_link, revoke_peer_link
from referrals.web.app import create_app
from referrals.web.intake import FIX
from support.domain import new_client, row_counts
from support.pages import PASSWORD, Clock, logged_in, post_form, staff_users

NT, NH = "sao-bien-nha-trang", "sao-bien-ninh-hoa"
OFFICE = "Chi cục Phòng, chống tệ nạn xã hội tỉnh Khánh Hòa"
KEYS = re.compile(r"\b(id_papers|health_check|legal_aid|nha-trang|ninh-hoa|khanh-hoa|sao-bien)")
FITS = "document.documentElement.scrollWidth <= window.innerWidth"


def said(message: str, context: str = "peer form") -> str:
    return locale.gettext("vi", message, context)


def visible(page: str) -> str:
    """A page's text as a person reads it: no tags, no attribute values."""
    page = re.sub(r"<(script|style)[^>]*>.*?</\1>", " ", page, flags=re.S)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", page)))


@pytest.fixture
def clock(rt: Runtime, now: dt.datetime) -> Clock:
    staff_users(rt)
    return Clock(now)


def standing_link(rt: Runtime, now: dt.datetime, slug: str = NT) -> str:
    with Session(rt.engine) as s:
        contact = s.scalars(
            select(Contact.id)
            .join(Organization, Organization.id == Contact.organization_id)  # type: ignore[arg-type]
            .where(Organization.slug == slug)
        ).first()
    assert contact is not None
    with transaction(rt.engine) as s:
        return create_peer_link(
            s, contact_id=contact, by=rt.user(s, "admin"), ctx=rt.ctx, now=now
        ).token


def form(**fields: Any) -> dict[str, Any]:
    return {
        "nickname": "Bé Na",
        "area": "nha-trang",
        "services": ["id_papers", "health_check"],
        "agreed_to_contact": "true",
        "phone": "0905 246 820",
    } | fields


def sent(device: TestClient, token: str, **fields: Any) -> str:
    """Send the form; the intake's code from the page it leads to."""
    answer = device.post(f"/p/{token}", data=form(**fields), follow_redirects=False)
    assert answer.status_code == 303, answer.text
    code = parse_qs(urlsplit(answer.headers["location"]).query)["sent"][0]
    assert re.fullmatch(r"GT-[0-9A-Z]{5}-[0-9A-Z]{5}", code)
    return code


def test_the_peer_educator_gets_a_code_and_never_a_clients_record(
    rt: Runtime, clock: Clock, now: dt.datetime
) -> None:
    token = standing_link(rt, now)
    phone = TestClient(create_app(clock=clock))
    page = phone.get(f"/p/{token}")
    assert page.status_code == 200
    text = visible(page.text)
    assert OFFICE in text and "0258 000 0100" in text
    assert "Nhóm đồng đẳng Sao Biển Nha Trang" in text
    assert "Phường Nha Trang" in text and "Phường Ninh Hòa" in text
    assert "Tỉnh Khánh Hòa" not in text  # the province is not where a client is registered
    assert not KEYS.search(text), KEYS.search(text)
    assert 'name="services" value="id_papers"' in page.text

    code = sent(phone, token)
    done = visible(phone.get(f"/p/{token}?sent={code}").text)
    assert f"{said('Referral code')}: {code}" in done
    assert said("Introduce someone else") in done

    # A coordinator takes it: a client and a referral now exist; the peer's page shows the code
    # and nothing of them (no client's or referral's code, no name, no phone).
    mai = logged_in(clock, "mai")
    answer = post_form(
        mai, "/launch", f"/launch?intake={code}", name="Bé Na", phone="0905 246 820",
        district="nha-trang", pathway="id_papers", partner="police-nha-trang", agreed="true",
        method="verbal", intake=code,
    )  # fmt: skip
    assert answer.status_code == 303, answer.text
    referral = answer.headers["location"].rsplit("/", 1)[1]
    with Session(rt.engine) as s:
        client = s.scalars(select(Client.code).where(Client.created_by.is_not(None))).one()  # type: ignore[union-attr]
    after = phone.get(f"/p/{token}?sent={code}").text
    assert code in after
    for private in (client, referral, "Bé Na", "246 820", "0905246820", "+84905246820"):
        assert private not in after
    # Another link's code is not shown through this one: the form instead.
    other = sent(phone, standing_link(rt, now, NH), area="ninh-hoa")
    assert other not in phone.get(f"/p/{token}?sent={other}").text


def test_a_revoked_link_answers_410_and_writes_nothing(
    rt: Runtime, clock: Clock, now: dt.datetime
) -> None:
    token = standing_link(rt, now)
    phone = TestClient(create_app(clock=clock))
    with transaction(rt.engine) as s:
        link = peer_link_of(rt.ctx.vault, token)
        assert link is not None
        revoke_peer_link(s, link_id=link, by=rt.user(s, "admin"), now=now)
    before = row_counts(rt)
    page = phone.get(f"/p/{token}")
    assert page.status_code == 410
    assert said("This link was withdrawn. Ask the office for a new one.") in visible(page.text)
    assert OFFICE in page.text and 'name="nickname"' not in page.text
    assert phone.post(f"/p/{token}", data=form(), follow_redirects=False).status_code == 410
    assert phone.get("/p/aaaaaaaaaaaaaaaaa").status_code == 404
    assert phone.post("/p/notatoken", data=form()).status_code == 404
    assert row_counts(rt) == before


def test_bad_intakes_come_back_with_what_to_fix_and_nothing_written(
    rt: Runtime, clock: Clock, now: dt.datetime
) -> None:
    token = standing_link(rt, now)
    phone = TestClient(create_app(clock=clock))
    before = row_counts(rt)
    cases: list[tuple[dict[str, Any], str]] = [
        (form(area=""), "area"),
        (form(area="khanh-hoa"), "intake_area"),
        (form(nickname="N" * 61), "nickname"),
        (form(services=["id_papers", "haircut"]), "intake_service"),
        (form(services=[]), "services"),
        (form(agreed_to_contact=""), "phone_agreement"),
        (form(phone="gọi tôi"), "phone"),
        (form(address="12 Trần Phú"), "form"),
    ]
    for fields, fix in cases:
        page = phone.post(f"/p/{token}", data=fields, follow_redirects=False)
        assert page.status_code == 400, (fields, page.status_code)
        assert FIX[fix].said_in("vi") in visible(page.text), fix
        assert 'name="nickname"' in page.text  # the form again, to correct
    # What was typed stays (a 61-character name shortened to the field's 60).
    page = phone.post(f"/p/{token}", data=form(services=[]), follow_redirects=False)
    assert 'value="Bé Na"' in page.text and 'value="0905 246 820"' in page.text
    huge = phone.post(f"/p/{token}", data=form(nickname="N" * 70_000))
    assert huge.status_code == 413
    assert row_counts(rt) == before


def test_the_queue_and_one_submit_on_the_launch_page(
    rt: Runtime, clock: Clock, now: dt.datetime
) -> None:
    phone = TestClient(create_app(clock=clock))
    here = sent(phone, standing_link(rt, now))
    there = sent(phone, standing_link(rt, now, NH), nickname="Chị Tư", area="ninh-hoa")

    mai = logged_in(clock, "mai")
    page = mai.get("/intakes")
    assert page.status_code == 200
    text = visible(page.text)
    assert said("Introduced by peer groups", "intakes") in text  # the page and the header
    for shown in (here, "Bé Na", "Phường Nha Trang", "23/11/2026", "Sao Biển Nha Trang"):
        assert shown in text, shown
    assert there not in text and "Chị Tư" not in text
    assert f'href="/launch?intake={here}"' in page.text
    assert not KEYS.search(text), KEYS.search(text)
    binh = visible(logged_in(clock, "binh").get("/intakes").text)
    assert there in binh and here not in binh
    manager = logged_in(clock, "hoa").get("/intakes").text
    assert here in manager and there in manager and "/launch?intake=" not in manager
    assert 'href="/intakes"' in mai.get("/cases").text  # in the header

    # "Chuyển gửi": the launch form, filled in from the intake, the intake's code hidden in it.
    launch = mai.get(f"/launch?intake={here}").text
    assert 'value="Bé Na"' in launch and 'value="+84905246820"' in launch
    assert f'name="intake" value="{here}"' in launch
    assert re.search(r'<option value="id_papers"[^>]* selected>', launch)
    answer = post_form(
        mai, "/launch", f"/launch?intake={here}", name="Bé Na", phone="+84905246820",
        district="nha-trang", pathway="id_papers", partner="police-nha-trang", agreed="true",
        method="verbal", intake=here,
    )  # fmt: skip
    assert answer.status_code == 303, answer.text
    # The introduction also asked for a health check: the referral's page offers it at once.
    assert answer.headers["location"].endswith("?then=health_check")
    offered = mai.get(answer.headers["location"]).text
    with Session(rt.engine) as s:
        client_code = s.scalars(
            select(Client.code).join(Intake, Intake.client_id == Client.id)
        ).one()
    assert f'href="/launch?client={client_code}&amp;pathway=health_check"' in offered
    assert "Khám sức khỏe" in visible(offered)
    with Session(rt.engine) as s:
        taken = s.scalars(select(Intake).where(Intake.code == here)).one()
        client = s.get(Client, taken.client_id)
        source = s.scalars(select(Event).where(Event.kind == "client.source")).one()
    assert taken.status == "taken" and client is not None and client.area_key == "nha-trang"
    assert taken.nickname_enc is None and taken.phone_enc is None
    assert source.client_id == client.id and source.data["intake"] == here
    assert here not in mai.get("/intakes").text
    # Opening it again says it was taken, in the form's words.
    again = mai.get(f"/launch?intake={here}")
    assert again.status_code == 409 and here in visible(again.text)
    # Binh cannot open Mai's intake (as if absent).
    assert logged_in(clock, "binh").get(f"/launch?intake={here}").status_code == 404


def test_a_known_phone_takes_the_intake_into_the_existing_client(
    rt: Runtime, clock: Clock, now: dt.datetime
) -> None:
    known = new_client(rt, now, name="Nguyễn Thị Na", phone="0905 246 830")
    phone = TestClient(create_app(clock=clock))
    code = sent(phone, standing_link(rt, now), phone="0905 246 830")
    mai = logged_in(clock, "mai")
    fields = {
        "name": "Bé Na", "phone": "+84905246830", "district": "nha-trang",
        "pathway": "id_papers", "partner": "police-nha-trang", "agreed": "true",
        "method": "verbal", "intake": code,
    }  # fmt: skip
    before = row_counts(rt)
    refused = post_form(mai, "/launch", f"/launch?intake={code}", **fields)
    assert refused.status_code == 409
    assert row_counts(rt)["client"] == before["client"]
    # The refusal offers to refer the known client instead, the intake riding along.
    hrefs = [html.unescape(h) for h in re.findall(r'href="(/launch\?[^"]+)"', refused.text)]
    (instead,) = [h for h in hrefs if f"client={known}" in h]
    assert f"intake={code}" in instead
    page = mai.get(instead).text
    assert f'name="intake" value="{code}"' in page and f'name="client" value="{known}"' in page
    fields = {k: v for k, v in fields.items() if k not in ("name", "phone", "district")}
    answer = post_form(mai, "/launch", instead, client=known, **fields)
    assert answer.status_code == 303, answer.text
    with Session(rt.engine) as s:
        taken = s.scalars(select(Intake).where(Intake.code == code)).one()
        kept = s.scalars(select(Client).where(Client.code == known)).one()
    assert (taken.status, taken.client_id) == ("taken", kept.id)
    assert row_counts(rt)["client"] == before["client"]  # no second record of the person


def test_the_form_on_a_390_px_phone(
    rt: Runtime, server: tuple[str, Clock], browser: Browser, now: dt.datetime
) -> None:
    base, _ = server
    token = standing_link(rt, now)
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    page = context.new_page()
    page.goto(f"{base}/p/{token}")
    assert page.evaluate(FITS)
    page.fill("#nickname", "Bé Na")
    page.select_option("#area", "nha-trang")
    page.check("input[name=services][value=legal_aid]")
    page.check("#agreed")
    page.fill("#phone", "0905 246 840")
    page.click("#send")
    expect(page.locator("#code")).to_contain_text("GT-")
    assert page.evaluate(FITS)
    # The coordinator's queue on a phone too.
    page.goto(f"{base}/login")
    page.fill("input[name=username]", "mai")
    page.fill("input[name=password]", PASSWORD)
    page.click("#login")
    page.goto(f"{base}/intakes")
    expect(page.locator("#intakes")).to_contain_text("Bé Na")
    assert page.evaluate(FITS)
    context.close()
