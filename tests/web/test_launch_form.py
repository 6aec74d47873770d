"""The launch form over HTTP, as a browser without JavaScript uses it: one form from a client (or
a new client's details) to a launched referral, the consent taken on it, refusals on it.

The consent, the new client and the referral are written in one transaction: every refusal here
is checked to leave the database as it was. Wording is checked on English pages (lang cookie),
where the new messages read as written; the Vietnamese ones come with the catalogs.
"""

from __future__ import annotations

import datetime as dt
import re
from html.parser import HTMLParser

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlmodel import Session

from referrals.infra.db import transaction
from referrals.infra.runtime import Runtime
from referrals.models.directory import Contact, Organization, Service
from referrals.models.people import Client, Consent, User
from referrals.models.workflow import Event, Referral
from referrals.usecases.clients.clients import withdraw_consent
from referrals.usecases.clients.subject import erase_client
from support.domain import consent, launch, new_client, row_counts
from support.pages import Clock, logged_in, post_form, staff_users

# Internal keys that must never be read on the page: partners' slugs, services' and districts'
# keys (they may be form values, never words).
KEYS = re.compile(
    r"police-nha-trang|police-ninh-hoa|legal-aid-centre|phuong-son-health|hospital-social-work"
    r"|id_papers|health_check|legal_aid|tax_code|nha-trang|ninh-hoa|waitlist"
)


INLINE = {"a", "strong", "em", "span", "b"}


class _Text(HTMLParser):
    """The words a person reads in <main>: text nodes, not tags, attributes or scripts."""

    def __init__(self) -> None:
        super().__init__()
        self.inside, self.skip, self.words = False, False, []  # type: ignore[var-annotated]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.inside = self.inside or tag == "main"
        self.skip = tag in ("script", "style")
        self._apart(tag)

    def handle_endtag(self, tag: str) -> None:
        self.inside = self.inside and tag != "main"
        self.skip = False
        self._apart(tag)

    def _apart(self, tag: str) -> None:
        """Words in two blocks (options, paragraphs) are apart; in <strong> or <a>, not."""
        if tag not in INLINE:
            self.words.append(" ")

    def handle_data(self, data: str) -> None:
        if self.inside and not self.skip:
            self.words.append(data)


def shown(html: str) -> str:
    reader = _Text()
    reader.feed(html)
    return " ".join("".join(reader.words).split())


@pytest.fixture
def clock(rt: Runtime, now: dt.datetime) -> Clock:
    staff_users(rt)
    return Clock(now)


def _english(browser: TestClient) -> TestClient:
    browser.cookies.set("lang", "en")
    return browser


def _consents(rt: Runtime, client: str) -> list[Consent]:
    with Session(rt.engine) as s:
        query = select(Consent).join(Client).where(Client.code == client).order_by(Consent.id)
        return list(s.scalars(query))


def _referral(rt: Runtime, code: str) -> Referral:
    with Session(rt.engine) as s:
        return s.scalars(select(Referral).where(Referral.code == code)).one()


def _consent_block(html: str) -> str:
    found = re.search(r'<fieldset id="consent-block"[^>]*>', html)
    assert found, "no consent part on the form"
    return found.group(0)


def test_the_form_offers_the_clients_district_with_capacity_in_words_and_no_keys(
    rt: Runtime, clock: Clock, now: dt.datetime
) -> None:
    code = new_client(rt, now)
    with transaction(rt.engine) as s:
        police = s.scalars(select(Organization.id).where(Organization.slug == "police-nha-trang"))
        s.execute(
            update(Service)
            .where(Service.organization_id == police.one(), Service.pathway_key == "id_papers")
            .values(capacity="full")
        )
    mai = logged_in(clock, "mai")
    page = mai.get(f"/launch?client={code}")
    assert page.status_code == 200
    words = shown(page.text)
    assert "Công an phường Nha Trang — Hết chỗ" in words  # capacity beside the partner
    assert "Trạm Y tế phường Phương Sơn — Còn nhận" in words
    assert "police-ninh-hoa" not in page.text and "Ninh Hòa" not in words  # the client's district
    assert not KEYS.search(words), KEYS.search(words)
    assert code in words and "Phường Nha Trang" in words
    assert 'name="agreed"' in page.text and "Coordinator NT" in words  # recorded by, shown
    english = shown(_english(mai).get(f"/launch?client={code}").text)
    assert "Nha Trang Ward Police — Full" in english and "Identity papers" in english
    assert not KEYS.search(english), KEYS.search(english)


def test_consent_given_on_the_form_is_recorded_with_the_launch(
    rt: Runtime, clock: Clock, now: dt.datetime
) -> None:
    code = new_client(rt, now)
    mai = logged_in(clock, "mai")
    chosen = {"client": code, "pathway": "id_papers", "partner": "police-nha-trang"}
    script = shown(_english(mai).get(f"/launch?client={code}&pathway=id_papers").text)
    assert "for “Identity papers”" in script and "your name, your ID number" in script
    answer = post_form(
        mai, "/launch", f"/launch?client={code}", **chosen, agreed="true", method="verbal"
    )
    assert answer.status_code == 303, shown(answer.text)
    ref = answer.headers["location"].rsplit("/", 1)[1]
    assert answer.headers["location"] == f"/referrals/{ref}"
    (given,) = _consents(rt, code)
    with Session(rt.engine) as s:
        mai_id = s.scalars(select(User.id).where(User.username == "mai")).one()
        kinds = list(s.scalars(select(Event.kind).where(Event.kind == "consent.granted")))
    assert (given.method, given.granted_by, given.purpose) == ("verbal", mai_id, "id_papers")
    assert given.granted_at == now and kinds == ["consent.granted"]
    assert _referral(rt, ref).status == "requested"
    # The form knows it now: for this partner and service it asks no consent again.
    again = mai.get(f"/launch?client={code}&pathway=id_papers&partner=police-nha-trang")
    assert "hidden disabled" in _consent_block(again.text)
    assert 'data-consented="yes"' in again.text


def test_without_the_tick_nothing_is_recorded_and_the_form_asks_for_it(
    rt: Runtime, clock: Clock, now: dt.datetime
) -> None:
    code = new_client(rt, now)
    mai = _english(logged_in(clock, "mai"))
    chosen = {"client": code, "pathway": "id_papers", "partner": "police-nha-trang"}
    before = row_counts(rt)
    refused = post_form(mai, "/launch", "/launch", **chosen, method="written", urgent="true")
    assert refused.status_code == 422
    words = shown(refused.text)
    assert f"Client {code} has not yet agreed" in words and "tick “The client agreed”" in words
    assert "hidden" not in _consent_block(refused.text)
    # What was chosen is kept: the service, the partner, urgency, how.
    assert re.search(r'value="id_papers"[^>]* selected', refused.text)
    assert re.search(r'value="police-nha-trang"[^>]* selected', refused.text)
    assert 'name="urgent" value="true" checked' in refused.text
    assert 'value="written" checked' in refused.text
    unsaid = post_form(mai, "/launch", "/launch", **chosen, agreed="true")
    assert unsaid.status_code == 422 and "Say how the client agreed" in shown(unsaid.text)
    assert row_counts(rt) == before


def test_a_refused_launch_records_no_consent_and_says_where_to_go(
    rt: Runtime, clock: Clock, now: dt.datetime
) -> None:
    code = new_client(rt, now)
    consent(rt, code, "phuong-son-health", "health_check", now)
    open_ref = launch(rt, code, "health_check", "phuong-son-health", now)
    mai = _english(logged_in(clock, "mai"))
    before = row_counts(rt)
    refused = post_form(
        mai,
        "/launch",
        "/launch",
        client=code,
        pathway="health_check",
        partner="hospital-social-work",
        agreed="true",
        method="written",
    )
    assert refused.status_code == 422
    assert f"already has an open “Khám sức khỏe” referral ({open_ref})" in shown(refused.text)
    assert f'href="/referrals/{open_ref}"' in refused.text
    assert row_counts(rt) == before  # the consent ticked on the form went with the launch
    # A partner with no one left to ask: refused, and again nothing of the consent is kept.
    with transaction(rt.engine) as s:
        org = s.scalars(select(Organization.id).where(Organization.slug == "police-nha-trang"))
        s.execute(update(Contact).where(Contact.organization_id == org.one()).values(active=False))
    before = row_counts(rt)
    nobody = post_form(
        mai,
        "/launch",
        "/launch",
        client=code,
        pathway="id_papers",
        partner="police-nha-trang",
        agreed="true",
        method="verbal",
    )
    assert nobody.status_code == 422 and "no active contact" in shown(nobody.text)
    assert row_counts(rt) == before and _consents(rt, code)[-1].purpose == "health_check"


def test_a_new_client_is_registered_and_launched_from_one_form(
    rt: Runtime, clock: Clock, now: dt.datetime
) -> None:
    mai = logged_in(clock, "mai")
    form = mai.get("/launch")
    assert 'name="name"' in form.text and 'name="client"' not in form.text
    assert not KEYS.search(shown(form.text))
    answer = post_form(
        mai,
        "/launch",
        "/launch",
        name="Đinh Thị Mới",
        phone="0905 300 400",
        pathway="legal_aid",
        partner="legal-aid-centre",
        agreed="true",
        method="written",
    )
    assert answer.status_code == 303, shown(answer.text)
    ref = _referral(rt, answer.headers["location"].rsplit("/", 1)[1])
    with Session(rt.engine) as s:
        client = s.get(Client, ref.client_id)
        assert client is not None
        kinds = set(s.scalars(select(Event.kind).where(Event.client_id == client.id)))
    assert client.area_key == "nha-trang"
    assert {"client.added", "consent.granted"} <= kinds
    assert [(k.purpose, k.method) for k in _consents(rt, client.code)] == [("legal_aid", "written")]
    page = mai.get(answer.headers["location"]).text
    assert "Đinh Thị Mới" not in page and "0905" not in page and "300 400" not in page


def test_a_refused_new_client_launch_leaves_no_client(rt: Runtime, clock: Clock) -> None:
    mai = _english(logged_in(clock, "mai"))
    before = row_counts(rt)
    typed = {"name": "Vũ Thị Chưa", "phone": "0905 300 500", "id_number": "012345678901"}
    refused = post_form(
        mai, "/launch", "/launch", **typed, pathway="legal_aid", partner="legal-aid-centre"
    )
    assert refused.status_code == 422 and "has not yet agreed" in shown(refused.text)
    assert row_counts(rt) == before
    for value in typed.values():  # what was typed is kept, to tick and send again
        assert f'value="{value}"' in refused.text


def test_a_known_phone_comes_back_on_the_form_naming_the_client(
    rt: Runtime, clock: Clock, now: dt.datetime
) -> None:
    known = new_client(rt, now, name="Đã Có", phone="0905 864 203")
    mai = _english(logged_in(clock, "mai"))
    before = row_counts(rt)
    fields = {
        "name": "Trương Thị Sáu",
        "phone": "+84 905 864 203",
        "pathway": "id_papers",
        "partner": "police-nha-trang",
        "agreed": "true",
        "method": "verbal",
    }
    refused = post_form(mai, "/launch", "/launch", **fields)
    assert refused.status_code == 409
    assert row_counts(rt) == before
    assert known in shown(refused.text)
    assert f'href="/clients/{known}"' in refused.text
    assert f'href="/launch?client={known}&amp;pathway=id_papers&amp;partner=police-nha-trang"' in (
        refused.text
    )
    assert 'value="Trương Thị Sáu"' in refused.text and 'value="+84 905 864 203"' in refused.text
    assert 'name="different_person"' in refused.text and "Đã Có" not in refused.text
    # Someone else after all: said why, registered and launched.
    other = post_form(
        mai, "/launch", "/launch", **fields, different_person="chị gái, dùng chung máy"
    )
    assert other.status_code == 303, shown(other.text)
    # The known client's own launch, from the refusal's link, keeps the service and partner.
    theirs = mai.get(f"/launch?client={known}&pathway=id_papers&partner=police-nha-trang")
    assert re.search(r'value="police-nha-trang"[^>]* selected', theirs.text)


def test_who_may_not_act_records_nothing(rt: Runtime, clock: Clock, now: dt.datetime) -> None:
    code = new_client(rt, now)
    chosen = {"client": code, "pathway": "id_papers", "partner": "police-nha-trang"}
    binh = logged_in(clock, "binh")  # Ninh Hòa: a Nha Trang client does not exist for them
    hoa = logged_in(clock, "hoa")  # a manager reads every district and launches nothing
    assert binh.get(f"/launch?client={code}").status_code == 404
    before = row_counts(rt)  # after the logins, which are events of their own
    ticked = {**chosen, "agreed": "true", "method": "written"}
    assert post_form(binh, "/launch", "/launch", **ticked).status_code == 404
    assert post_form(hoa, "/launch", "/launch", **ticked).status_code == 403
    assert row_counts(rt) == before


def test_an_erased_client_is_not_launched_for(rt: Runtime, clock: Clock, now: dt.datetime) -> None:
    code = new_client(rt, now)
    with transaction(rt.engine) as s:
        erase_client(s, code=code, by=None, now=now)
    mai = logged_in(clock, "mai")
    page = mai.get(f"/launch?client={code}")
    assert 'id="erased"' in page.text and 'id="launch"' not in page.text
    assert 'id="refer"' not in mai.get(f"/clients/{code}").text
    before = row_counts(rt)
    refused = post_form(
        mai,
        "/launch",
        "/launch",
        client=code,
        pathway="id_papers",
        partner="police-nha-trang",
        agreed="true",
        method="verbal",
    )
    assert refused.status_code == 422 and row_counts(rt) == before


def test_the_clients_page_has_a_refer_button_to_the_form(
    rt: Runtime, clock: Clock, now: dt.datetime
) -> None:
    code = new_client(rt, now)
    page = logged_in(clock, "mai").get(f"/clients/{code}").text
    found = re.search(r'<form method="get" action="/launch" id="refer">(.*?)</form>', page)
    assert found and f'name="client" value="{code}"' in found.group(1)
    assert "<button>" in found.group(1)


def test_an_admin_registers_and_launches_in_the_district_they_choose(
    rt: Runtime, clock: Clock
) -> None:
    admin = logged_in(clock, "admin")
    form = admin.get("/launch").text
    assert 'select name="district"' in form and "Phường Ninh Hòa" in shown(form)
    assert 'data-areas="ninh-hoa"' in form and "(Phường Ninh Hòa)" in shown(form)
    # one line per partner and service, however many of the 65 units it serves (not one each)
    groups = re.findall(
        r'<optgroup label="[^"]*" data-pathway="([^"]+)">(.*?)</optgroup>', form, re.S
    )
    for pathway, group in groups:
        partners = re.findall(r'<option value="([^"]+)"', group)
        assert len(partners) == len(set(partners)), pathway
    assert sum(len(re.findall("<option value=", g)) for _, g in groups) < 100
    answer = post_form(
        admin,
        "/launch",
        "/launch",
        name="Lâm Thị Tám",
        district="ninh-hoa",
        pathway="id_papers",
        partner="police-ninh-hoa",
        agreed="true",
        method="written",
    )
    assert answer.status_code == 303, shown(answer.text)
    ref = _referral(rt, answer.headers["location"].rsplit("/", 1)[1])
    with Session(rt.engine) as s:
        client = s.get(Client, ref.client_id)
    assert client is not None and client.area_key == "ninh-hoa"


def test_after_a_withdrawal_the_client_may_agree_again_on_the_form(
    rt: Runtime, clock: Clock, now: dt.datetime
) -> None:
    code = new_client(rt, now)
    consent(rt, code, "police-nha-trang", "id_papers", now - dt.timedelta(days=3))
    with transaction(rt.engine) as s:
        withdraw_consent(
            s,
            client_code=code,
            partner="police-nha-trang",
            purpose="id_papers",
            by=None,
            now=now - dt.timedelta(days=1),
            ctx=rt.ctx,
        )
    mai = _english(logged_in(clock, "mai"))
    chosen = {"client": code, "pathway": "id_papers", "partner": "police-nha-trang"}
    form = mai.get(f"/launch?client={code}&pathway=id_papers&partner=police-nha-trang")
    assert "hidden" not in _consent_block(form.text)  # withdrawn: asked again
    refused = post_form(mai, "/launch", "/launch", **chosen)
    assert refused.status_code == 422
    assert "withdrew consent" in shown(refused.text) and "22/11/2026" in shown(refused.text)
    again = post_form(mai, "/launch", "/launch", **chosen, agreed="true", method="written")
    assert again.status_code == 303, shown(again.text)
    assert [k.withdrawn_at is None for k in _consents(rt, code)] == [False, True]
