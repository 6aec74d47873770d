"""Peer educators bring people in (issue 20, item 6): an admin's standing link for a peer
group's contact, the intake it sends (sealed, codes only on the record), the area's
coordinators' queue, an intake taken into a client and a referral in one transaction, refusals
that write nothing, and the period report's count per peer group."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import select, text
from sqlmodel import Session

from referrals.infra.db import transaction
from referrals.infra.runtime import Runtime
from referrals.models.directory import Contact, Organization
from referrals.models.errors import Conflict, DomainError, NotFound
from referrals.models.intake import Intake
from referrals.models.links import link_token, peer_link_of
from referrals.models.people import Client, ConsentMethod
from referrals.models.policy import Forbidden
from referrals.models.workflow import Event, Referral
from referrals.queries.reading import Reader
from referrals.queries.report import Period, build_report
from referrals.reports.render import render
from referrals.reports.words import PEER
from referrals.usecases.clients.clients import ClientIn
from referrals.usecases.clients.intake import (
    IntakeIn,
    PeerLinkRefused,
    create_peer_link,
    intake_for_launch,
    intake_queue,
    peer_form,
    revoke_peer_link,
    submit_intake,
    take_intake,
)
from referrals.usecases.referrals.launch_form import register_and_launch
from referrals.usecases.referrals.launching import LaunchRequest
from support.domain import row_counts
from support.pages import staff_users

NT, NH = "sao-bien-nha-trang", "sao-bien-ninh-hoa"


def contact_of(rt: Runtime, slug: str) -> int:
    with Session(rt.engine) as s:
        found = s.scalars(
            select(Contact.id)
            .join(Organization, Organization.id == Contact.organization_id)  # type: ignore[arg-type]
            .where(Organization.slug == slug)
            .order_by(Contact.rank)
        ).first()
    assert found is not None
    return found


def standing_link(rt: Runtime, now: dt.datetime, slug: str = NT) -> str:
    """A standing link for the peer group's first contact, as an admin makes it: its token."""
    with transaction(rt.engine) as s:
        issued = create_peer_link(
            s, contact_id=contact_of(rt, slug), by=rt.user(s, "admin"), ctx=rt.ctx, now=now
        )
    return issued.token


def send(rt: Runtime, token: str, now: dt.datetime, **fields: Any) -> str:
    data = IntakeIn.model_validate(
        {"nickname": "Bé Na", "area": "nha-trang", "services": ["id_papers"]} | fields
    )
    with transaction(rt.engine) as s:
        return submit_intake(s, ctx=rt.ctx, token=token, data=data, now=now)


def queue(rt: Runtime, now: dt.datetime, user: str) -> list[Any]:
    with transaction(rt.engine) as s:
        return intake_queue(s, by=rt.user(s, user), ctx=rt.ctx, now=now, via="test")


def events(rt: Runtime, kind: str) -> list[Event]:
    with Session(rt.engine) as s:
        return list(s.scalars(select(Event).where(Event.kind == kind).order_by(Event.id)))  # type: ignore[arg-type]


def intake_row(rt: Runtime, code: str) -> Intake:
    with Session(rt.engine) as s:
        return s.scalars(select(Intake).where(Intake.code == code)).one()


def test_an_admin_gives_a_peer_groups_contact_a_standing_link_and_no_one_else(
    rt: Runtime, now: dt.datetime
) -> None:
    token = standing_link(rt, now)
    link_id = peer_link_of(rt.ctx.vault, token)
    assert link_id is not None
    (made,) = events(rt, "peer_link.created")
    assert made.actor == "user:admin" and made.data["partner"] == NT
    assert made.data["peer_link"] == link_id
    # A partner message's token of the same number does not open the form, nor a forged one.
    assert peer_link_of(rt.ctx.vault, link_token(rt.ctx.vault, link_id)) is None
    assert peer_link_of(rt.ctx.vault, token[:-1] + ("a" if token[-1] != "a" else "b")) is None

    before = row_counts(rt)
    with transaction(rt.engine) as s, pytest.raises(Forbidden):
        create_peer_link(
            s, contact_id=contact_of(rt, NT), by=rt.user(s, "mai"), ctx=rt.ctx, now=now
        )
    with transaction(rt.engine) as s, pytest.raises(DomainError) as refused:
        create_peer_link(
            s,
            contact_id=contact_of(rt, "police-nha-trang"),
            by=rt.user(s, "admin"),
            ctx=rt.ctx,
            now=now,
        )
    assert refused.value.key == "not_peer_group"
    with transaction(rt.engine) as s, pytest.raises(NotFound):
        create_peer_link(s, contact_id=999_999, by=rt.user(s, "admin"), ctx=rt.ctx, now=now)
    assert row_counts(rt) == before


def test_an_intake_reaches_only_its_areas_coordinators(rt: Runtime, now: dt.datetime) -> None:
    staff_users(rt)  # binh coordinates Ninh Hòa
    here = send(rt, standing_link(rt, now), now, nickname="Bé Na")
    there = send(
        rt, standing_link(rt, now, NH), now, nickname="Chị Tư", area="ninh-hoa",
        services=["health_check", "legal_aid"],
    )  # fmt: skip
    assert here.startswith("GT-") and len(here) == 14

    mine = queue(rt, now, "mai")
    assert [(w.code, w.nickname, w.group) for w in mine] == [(here, "Bé Na", NT)]
    assert mine[0].actionable and mine[0].area_name == "Phường Nha Trang"
    (theirs,) = queue(rt, now, "binh")
    assert (theirs.code, theirs.nickname, theirs.services) == (
        there,
        "Chị Tư",
        ["health_check", "legal_aid"],
    )
    assert theirs.group_name == "Nhóm đồng đẳng Sao Biển Ninh Hòa"
    # A manager sees every area and takes none; an admin sees and takes all.
    assert [(w.code, w.actionable) for w in queue(rt, now, "hoa")] == [
        (here, False),
        (there, False),
    ]
    assert [w.actionable for w in queue(rt, now, "admin")] == [True, True]
    # Each listing that showed nicknames is on record, with codes only.
    listed = events(rt, "intake.listed")
    assert [(e.actor, e.data["intakes"]) for e in listed[:2]] == [
        ("user:mai", [here]),
        ("user:binh", [there]),
    ]
    # Binh cannot open Mai's intake for the launch form (as if it did not exist).
    with transaction(rt.engine) as s, pytest.raises(NotFound):
        intake_for_launch(s, by=rt.user(s, "binh"), ctx=rt.ctx, code=here, now=now)


def test_the_stored_intake_holds_no_nickname_or_phone_in_clear(
    rt: Runtime, now: dt.datetime
) -> None:
    code = send(
        rt, standing_link(rt, now), now, nickname="Hoàng Yến", phone="0905 246 810",
        agreed_to_contact=True,
    )  # fmt: skip
    with rt.engine.connect() as c:
        row = c.execute(text("SELECT * FROM intake WHERE code = :c"), {"c": code}).mappings().one()
        logged = [
            str(r[0]) for r in c.execute(text("SELECT data FROM event WHERE kind LIKE 'intake.%'"))
        ]
    stored = " ".join(str(v) for v in row.values())
    for clear in ("Hoàng Yến", "Hoang Yen", "Yến", "0905246810", "905246810", "246 810"):
        assert clear not in stored
        assert not any(clear in e for e in logged)
    assert row["nickname_enc"] and row["phone_enc"] and row["agreed_to_contact"]
    (received,) = events(rt, "intake.received")
    assert received.data == {
        "intake": code,
        "peer_link": received.data["peer_link"],
        "area": "nha-trang",
    }
    assert received.actor == f"contact:{contact_of(rt, NT)}" and received.client_id is None


def test_a_revoked_link_refuses_and_writes_nothing(rt: Runtime, now: dt.datetime) -> None:
    token = standing_link(rt, now)
    link_id = peer_link_of(rt.ctx.vault, token)
    assert link_id is not None
    send(rt, token, now)  # it works until revoked
    with transaction(rt.engine) as s, pytest.raises(Forbidden):
        revoke_peer_link(s, link_id=link_id, by=rt.user(s, "mai"), now=now)
    with transaction(rt.engine) as s:
        assert revoke_peer_link(s, link_id=link_id, by=rt.user(s, "admin"), now=now)
    with transaction(rt.engine) as s:
        assert not revoke_peer_link(s, link_id=link_id, by=rt.user(s, "admin"), now=now)
    assert len(events(rt, "peer_link.revoked")) == 1

    before = row_counts(rt)
    with pytest.raises(PeerLinkRefused) as refused:
        send(rt, token, now)
    assert refused.value.why == "revoked"
    with Session(rt.engine) as s, pytest.raises(PeerLinkRefused):
        peer_form(s, ctx=rt.ctx, token=token, now=now)
    with pytest.raises(PeerLinkRefused) as forged:
        send(rt, "aaaaaaaaaaaaaaaaa", now)
    assert forged.value.why == "invalid"
    assert row_counts(rt) == before


BAD: list[tuple[str, dict[str, Any]]] = [
    ("no area", {"area": None}),
    ("the province is not a client's area", {"area": "khanh-hoa"}),
    ("unknown area", {"area": "da-nang"}),
    ("an area no longer in force", {"area": "tp-nha-trang"}),
    ("a ward of 2024", {"area": "nha-trang-loc-tho"}),
    ("oversize nickname", {"nickname": "N" * 61}),
    ("empty nickname", {"nickname": "   "}),
    ("control characters", {"nickname": "Na\x07"}),
    ("unknown service", {"services": ["id_papers", "haircut"]}),
    ("no service", {"services": []}),
    ("a phone without agreement", {"phone": "0905 111 222"}),
    ("not a phone", {"phone": "gọi cho tôi", "agreed_to_contact": True}),
    ("a field the form has not", {"address": "12 Trần Phú"}),
]


def test_bad_intakes_are_refused_with_nothing_written(rt: Runtime, now: dt.datetime) -> None:
    token = standing_link(rt, now)
    before = row_counts(rt)
    for why, change in BAD:
        fields = {"nickname": "Bé Na", "area": "nha-trang", "services": ["id_papers"]} | change
        with pytest.raises((ValidationError, DomainError)):
            data = IntakeIn.model_validate({k: v for k, v in fields.items() if v is not None})
            with transaction(rt.engine) as s:
                submit_intake(s, ctx=rt.ctx, token=token, data=data, now=now)
            pytest.fail(f"accepted: {why}")
    assert row_counts(rt) == before


def test_an_intake_becomes_a_client_and_a_launch_in_one_transaction(
    rt: Runtime, now: dt.datetime
) -> None:
    code = send(
        rt, standing_link(rt, now), now, nickname="Bé Na", phone="0905 246 811",
        agreed_to_contact=True, services=["id_papers", "health_check"],
    )  # fmt: skip
    with transaction(rt.engine) as s:
        got = intake_for_launch(s, by=rt.user(s, "mai"), ctx=rt.ctx, code=code, now=now)
    assert (got.nickname, got.phone, got.area, got.services[0]) == (
        "Bé Na",
        "+84905246811",
        "nha-trang",
        "id_papers",
    )
    (viewed,) = events(rt, "intake.viewed")
    assert viewed.data == {"intake": code, "fields": ["nickname", "phone"], "via": "web"}

    # The launch form's one submit: a new client, their referral, and the intake taken.
    later = now + dt.timedelta(hours=1)
    request = LaunchRequest(client_code="new", pathway="id_papers", partner="police-nha-trang")
    with transaction(rt.engine) as s:
        mai = rt.user(s, "mai")
        person = ClientIn(name=got.nickname or "", phone=got.phone, district=got.area)
        client_code = register_and_launch(
            s, code="R-INTAK-E0001", client=person, request=request, coordinator=mai,
            ctx=rt.ctx, now=later, consent=ConsentMethod.verbal,
        )  # fmt: skip
        take_intake(s, code=code, client_code=client_code, by=mai, now=later)
        mai_id = mai.id

    taken = intake_row(rt, code)
    with Session(rt.engine) as s:
        client = s.scalars(select(Client).where(Client.code == client_code)).one()
        referral = s.scalars(select(Referral).where(Referral.code == "R-INTAK-E0001")).one()
    assert (taken.status, taken.client_id, taken.taken_by) == ("taken", client.id, mai_id)
    assert taken.taken_at == later and taken.nickname_enc is None and taken.phone_enc is None
    assert referral.client_id == client.id
    (source,) = events(rt, "client.source")
    assert source.client_id == client.id
    assert source.data == {"client": client_code, "peer_group": NT, "intake": code}
    # Off the queue; a second taker (or a second tab) is refused.
    assert queue(rt, later, "mai") == []
    with transaction(rt.engine) as s, pytest.raises(Conflict) as again:
        take_intake(s, code=code, client_code=client_code, by=rt.user(s, "mai"), now=later)
    assert again.value.key == "intake_taken"
    with transaction(rt.engine) as s, pytest.raises(Conflict):
        intake_for_launch(s, by=rt.user(s, "mai"), ctx=rt.ctx, code=code, now=later)


def test_a_refused_launch_leaves_the_intake_waiting(rt: Runtime, now: dt.datetime) -> None:
    code = send(rt, standing_link(rt, now), now)
    before = row_counts(rt)
    request = LaunchRequest(client_code="new", pathway="id_papers", partner="police-nha-trang")
    with pytest.raises(DomainError), transaction(rt.engine) as s:  # no consent: refused
        mai = rt.user(s, "mai")
        new = register_and_launch(
            s, code="R-INTAK-E0002", client=ClientIn(name="Bé Na", district="nha-trang"),
            request=request, coordinator=mai, ctx=rt.ctx, now=now,
        )  # fmt: skip
        take_intake(s, code=code, client_code=new, by=mai, now=now)
    assert row_counts(rt) == before
    assert intake_row(rt, code).status == "waiting"


def test_the_report_counts_intakes_and_clients_under_their_group(
    rt: Runtime, now: dt.datetime
) -> None:
    nt, nh = standing_link(rt, now), standing_link(rt, now, NH)
    taken = send(rt, nt, now, nickname="Bé Na")
    send(rt, nt, now, nickname="Bé Ba")
    send(rt, nh, now, area="ninh-hoa")
    send(rt, nt, now - dt.timedelta(days=60))  # September: another period
    request = LaunchRequest(client_code="new", pathway="id_papers", partner="police-nha-trang")
    with transaction(rt.engine) as s:
        mai = rt.user(s, "mai")
        new = register_and_launch(
            s, code="R-INTAK-E0003", client=ClientIn(name="Bé Na", district="nha-trang"),
            request=request, coordinator=mai, ctx=rt.ctx, now=now, consent=ConsentMethod.written,
        )  # fmt: skip
        take_intake(s, code=taken, client_code=new, by=mai, now=now)

    def report(district: str | None = None) -> dict[str, Any]:
        with Reader(rt.engine.raw_connection(), rt.engine.dialect.name) as r:
            return build_report(
                r,
                period=Period(dt.date(2026, 11, 1), dt.date(2026, 11, 30), rt.settings.tz),
                calendar=rt.ctx.calendar,
                now=now + dt.timedelta(days=30),
                district=district,
            )

    data = report()
    counted = {g["peer_group"]: (g["received"], g["clients"]) for g in data["peer_groups"]}
    assert counted == {NT: (2, 1), NH: (1, 0)}
    in_ninh_hoa = {g["peer_group"]: g["received"] for g in report("ninh-hoa")["peer_groups"]}
    assert in_ninh_hoa == {NT: 0, NH: 1}
    shown = render(data, "md", lang="vi")
    section = shown.split(f"## {PEER['vi']['title']}", 1)[1]
    assert "| Nhóm đồng đẳng Sao Biển Nha Trang | 2 | 1 |" in section
    assert "| Nhóm đồng đẳng Sao Biển Ninh Hòa | 1 | 0 |" in section
    assert PEER["vi"]["title"] in render(data, "csv", lang="vi")
