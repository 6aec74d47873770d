"""The printable referral slip (issue 20): what it prints, what it never prints, its QR code, who
may print it, and the arrival its QR code records; on both databases."""

from __future__ import annotations

import datetime as dt
import io

import pypdfium2
import pytest
import zxingcpp
from pypdf import PdfReader
from sqlalchemy import select, update
from sqlmodel import Session

from referrals.infra.db import transaction
from referrals.infra.runtime import Runtime
from referrals.models.directory import Contact, Location, Organization, Service, ServiceLocation
from referrals.models.errors import IllegalTransition, NotFound
from referrals.models.lifecycle import Action
from referrals.models.links import link_token, referral_of_slip, slip_url
from referrals.models.people import Client, Role, User
from referrals.models.policy import Forbidden, PartnerContact
from referrals.models.workflow import Event, Notification, Referral
from referrals.usecases.referrals.advancing import advance
from referrals.usecases.referrals.arrival import (
    SlipRefused,
    arrived_at,
    office_of,
    record_arrival,
    view_slip_link,
)
from referrals.usecases.referrals.slips import NO_PLACE, Slip, render, slip_pdf
from support.domain import ready_referral

# A client no slip may name: distinctive, so that any trace of them in the PDF is found.
NAME, PHONE, ID_NUMBER = "Phạm Thị Kín Đáo", "0905 246 813", "079190004567"
PHONE_FORMS = ("0905 246 813", "0905246813", "905246813", "+84905246813")
PUBLIC = "https://chuyengui.example.vn"
OFFICE = "Chi cục Phòng, chống tệ nạn xã hội tỉnh Khánh Hòa"
ADDRESS = "46 Lý Tự Trọng, phường Lộc Thọ"
HOURS = [
    {"days": ["MO", "TU", "WE", "TH", "FR"], "opens": "07:30", "closes": "11:30"},
    {"days": ["MO", "TU", "WE", "TH", "FR"], "opens": "13:30", "closes": "17:00"},
    {"days": ["SA"], "opens": "07:30", "closes": "11:00"},
]
# The partner-facing name, made different from the pathway's so the test tells them apart.
DISCREET = "Hẹn làm hồ sơ số 3"


def _police(s: Session) -> tuple[Organization, Service]:
    org = s.scalars(select(Organization).where(Organization.slug == "police-nha-trang")).one()
    service = s.scalars(
        select(Service).where(Service.organization_id == org.id, Service.pathway_key == "id_papers")
    ).one()
    return org, service


def located(rt: Runtime) -> None:
    """The police's ID-papers service at one address with opening hours, under a discreet name."""
    with transaction(rt.engine) as s:
        org, service = _police(s)
        assert org.id is not None and service.id is not None
        service.name = DISCREET
        place = Location(
            organization_id=org.id,
            key="tru-so",
            name="Đội Cảnh sát QLHC về TTXH",
            address=ADDRESS,
            area_key="nha-trang",
            hours=HOURS,
        )
        s.add(place)
        s.flush()
        assert place.id is not None
        s.add(ServiceLocation(service_id=service.id, location_id=place.id))


def launched(rt: Runtime, now: dt.datetime) -> str:
    return ready_referral(rt, now, name=NAME, phone=PHONE, id_number=ID_NUMBER)


def printed(rt: Runtime, code: str, now: dt.datetime, user: str = "mai") -> bytes:
    with transaction(rt.engine) as s:
        return slip_pdf(s, ctx=rt.ctx, code=code, by=rt.user(s, user), public_url=PUBLIC, now=now)


def text_of(pdf: bytes) -> str:
    """The PDF's text, its words separated by single spaces (lines wrap where they fit)."""
    return " ".join(
        " ".join(page.extract_text().split()) for page in PdfReader(io.BytesIO(pdf)).pages
    )


def qr_codes(pdf: bytes) -> list[str]:
    """Every QR code on the slip's first page, read from a 216 dpi rendering as a camera would."""
    page = pypdfium2.PdfDocument(pdf)[0]
    image = page.render(scale=3).to_pil()
    return [
        b.text for b in zxingcpp.read_barcodes(image) if b.format == zxingcpp.BarcodeFormat.QRCode
    ]


def referral_of(rt: Runtime, code: str) -> Referral:
    with transaction(rt.engine) as s:
        return s.scalars(select(Referral).where(Referral.code == code)).one()


def events(rt: Runtime, kind: str) -> list[Event]:
    with transaction(rt.engine) as s:
        return list(s.scalars(select(Event).where(Event.kind == kind).order_by(Event.id)))


def test_the_slip_prints_where_to_go_and_the_code_and_nothing_of_the_client(
    rt: Runtime, now: dt.datetime
) -> None:
    located(rt)
    code = launched(rt, now)
    pdf = printed(rt, code, now)
    reader = PdfReader(io.BytesIO(pdf))
    text = text_of(pdf)

    # A5 portrait: 148 x 210 mm
    box = reader.pages[0].mediabox
    assert (round(float(box.width) / 72 * 25.4), round(float(box.height) / 72 * 25.4)) == (148, 210)
    assert len(reader.pages) == 1
    for shown in (
        OFFICE,
        "0258 000 0100",
        "Công an phường Nha Trang",
        DISCREET,
        ADDRESS,
        "Phường Nha Trang",
        "T2–T6 07:30–11:30, 13:30–17:00; T7 07:30–11:00",
        code,
        "23/11/2026",  # the day printed, in Nha Trang
    ):
        assert shown in text, shown
    # Vietnamese only: the partner's first contact reads Vietnamese.
    assert "Nha Trang Ward Police" not in text and "Mon–Fri" not in text

    # Nothing of the client, nor of what the referral is about beyond the partner-facing name.
    with transaction(rt.engine) as s:
        client_code = s.get(Client, referral_of(rt, code).client_id).code  # type: ignore[union-attr]
    metadata = " ".join(str(v) for v in (reader.metadata or {}).values())
    for hidden in (NAME, "Kín Đáo", *PHONE_FORMS, ID_NUMBER, client_code):
        assert hidden not in text and hidden not in metadata, hidden
    for category in ("Làm giấy tờ tùy thân", "Identity papers", "id_papers", "tùy thân"):
        assert category not in text, category

    # The QR code opens the arrival link, and only it: not the partner's action link.
    referral = referral_of(rt, code)
    assert referral.id is not None
    assert qr_codes(pdf) == [slip_url(PUBLIC, rt.ctx.vault, referral.id)]
    assert referral_of_slip(rt.ctx.vault, qr_codes(pdf)[0].rsplit("/", 1)[1]) == referral.id
    assert "/l/" not in text

    (event,) = events(rt, "slip.printed")
    assert (event.referral_id, event.actor, event.at) == (referral.id, "user:mai", now)


def test_an_english_reading_partner_gets_english_lines_under_the_vietnamese(
    rt: Runtime, now: dt.datetime
) -> None:
    located(rt)
    code = launched(rt, now)
    with transaction(rt.engine) as s:
        org, _ = _police(s)
        s.execute(
            update(Contact)
            .where(Contact.organization_id == org.id, Contact.rank == 1)
            .values(language="en")
        )
    text = text_of(printed(rt, code, now))
    for shown in ("Công an phường Nha Trang", "Nha Trang Ward Police", OFFICE):
        assert shown in text, shown
    assert "Khanh Hoa Sub-department of Social Evils Prevention" in text
    assert "Mon–Fri 07:30–11:30, 13:30–17:00; Sat 07:30–11:00" in text
    assert "T2–T6 07:30–11:30, 13:30–17:00" in text
    assert NAME not in text and ID_NUMBER not in text


def test_a_service_without_an_address_says_so(rt: Runtime, now: dt.datetime) -> None:
    code = launched(rt, now)
    text = text_of(printed(rt, code, now))
    assert NO_PLACE.said_in("vi") in text
    assert "Công an phường Nha Trang" in text and code in text


def test_without_an_office_the_province_stands_for_it_with_no_phone(rt: Runtime) -> None:
    province = rt.province.province.model_copy(update={"office": None})
    office = office_of(province)
    assert (office.name, office.name_en, office.phone) == (province.name, province.name_en, None)
    slip = Slip(
        code="R-AAAAA-BBBBB",
        url=f"{PUBLIC}/s/abc",
        english=False,
        office=office,
        partner=("Công an phường Nha Trang", "Nha Trang Ward Police"),
        service=("Hẹn", "Appointment"),
        places=[],
        printed_on="23/11/2026",
    )
    text = text_of(render(slip))
    assert province.name in text and "0258" not in text


def test_who_may_print_it(rt: Runtime, now: dt.datetime) -> None:
    code = launched(rt, now)
    with transaction(rt.engine) as s:
        s.add(
            User(
                username="binh",
                full_name="Coordinator NH",
                role=Role.coordinator.value,
                area_key="ninh-hoa",
            )
        )
    with pytest.raises(NotFound):  # another district's referral: as if absent
        printed(rt, code, now, user="binh")
    with transaction(rt.engine) as s:
        org, _ = _police(s)
        contact = s.scalars(select(Contact).where(Contact.organization_id == org.id)).first()
        assert contact is not None and contact.id is not None and org.id is not None
        partner = PartnerContact(contact_id=contact.id, organization_id=org.id)
    with pytest.raises(Forbidden), transaction(rt.engine) as s:  # its own partner: still staff only
        slip_pdf(s, ctx=rt.ctx, code=code, by=partner, public_url=PUBLIC, now=now)
    assert events(rt, "slip.printed") == []
    assert printed(rt, code, now, user="hoa").startswith(b"%PDF")  # a manager reads every district
    with transaction(rt.engine) as s:
        advance(s, code=code, action=Action.cancel, by=rt.user(s, "mai"), ctx=rt.ctx, now=now)
    with pytest.raises(IllegalTransition):  # a closed referral: no slip to carry
        printed(rt, code, now)
    assert [e.actor for e in events(rt, "slip.printed")] == ["user:hoa"]


def test_the_arrival_is_recorded_once_on_an_open_referral_held_ones_too(
    rt: Runtime, now: dt.datetime
) -> None:
    code = launched(rt, now)
    referral = referral_of(rt, code)
    assert referral.id is not None
    token = slip_url(PUBLIC, rt.ctx.vault, referral.id).rsplit("/", 1)[1]
    with transaction(rt.engine) as s:
        view = view_slip_link(s, ctx=rt.ctx, token=token)
    assert (view.code, view.arrived_at, view.office_phone) == (code, None, "0258 000 0100")
    assert view.language == "vi" and view.partner == "Công an phường Nha Trang"
    with transaction(rt.engine) as s:
        advance(
            s,
            code=code,
            action=Action.hold,
            by=rt.user(s, "mai"),
            ctx=rt.ctx,
            now=now,
            reason="client_unreachable",
        )
    later = now + dt.timedelta(days=2, hours=1)
    with transaction(rt.engine) as s:
        first = record_arrival(s, ctx=rt.ctx, token=token, now=later)
    with transaction(rt.engine) as s:
        again = record_arrival(s, ctx=rt.ctx, token=token, now=later + dt.timedelta(hours=1))
    assert (first.recorded, first.arrived_at, first.status) == (True, later, "on-hold")
    assert (again.recorded, again.arrived_at) == (False, later)
    (event,) = events(rt, "referral.arrived")
    assert (event.referral_id, event.actor, event.data, event.at) == (
        referral.id,
        "slip",
        {"via": "slip"},
        later,
    )
    with transaction(rt.engine) as s:
        assert arrived_at(s, referral.id) == later


def test_a_forged_or_a_message_token_or_a_closed_referral_records_nothing(
    rt: Runtime, now: dt.datetime
) -> None:
    code = launched(rt, now)
    referral = referral_of(rt, code)
    assert referral.id is not None
    token = slip_url(PUBLIC, rt.ctx.vault, referral.id).rsplit("/", 1)[1]
    with transaction(rt.engine) as s:
        message = s.scalars(
            select(Notification.id).where(Notification.referral_id == referral.id)
        ).first()
    assert message is not None
    forged = [token[:-1] + ("a" if token[-1] != "a" else "b"), "x" * 100, ""]
    for bad in [*forged, link_token(rt.ctx.vault, message)]:  # a message's token is no slip's
        with pytest.raises(SlipRefused) as refused, transaction(rt.engine) as s:
            record_arrival(s, ctx=rt.ctx, token=bad, now=now)
        assert refused.value.why == "invalid" and refused.value.view is None
    with transaction(rt.engine) as s:
        advance(s, code=code, action=Action.cancel, by=rt.user(s, "mai"), ctx=rt.ctx, now=now)
    with pytest.raises(SlipRefused) as refused, transaction(rt.engine) as s:
        view_slip_link(s, ctx=rt.ctx, token=token)
    assert refused.value.why == "closed" and refused.value.view is not None
    with pytest.raises(SlipRefused) as refused, transaction(rt.engine) as s:
        record_arrival(s, ctx=rt.ctx, token=token, now=now)
    assert refused.value.why == "closed" and refused.value.view is not None
    assert refused.value.view.status == "cancelled"
    assert events(rt, "referral.arrived") == []


def test_no_slip_for_a_person_taken_to_the_shelter(rt: Runtime, now: dt.datetime) -> None:
    """A paper naming the shelter's address could tell an abuser where she is: the emergency
    pathways print none (`slip: false`), and refusing writes nothing."""
    from referrals.models.errors import DomainError
    from support.domain import row_counts

    code = ready_referral(rt, now, pathway="emergency_shelter", partner="social-work-centre")
    before = row_counts(rt)
    with pytest.raises(DomainError, match="no slip"), transaction(rt.engine) as s:
        slip_pdf(s, ctx=rt.ctx, code=code, by=rt.user(s, "mai"), public_url="https://x.vn", now=now)
    assert row_counts(rt) == before
