"""Finding a client (issue 19): by words of the name without accents or case, a phone in any
form, an ID number, a client's or a referral's code; only within the searcher's scope; every
list that shows names on the record; no name in clear in the database."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import subprocess
import sys

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text

from referrals.infra.context import Context
from referrals.infra.crypto import Vault
from referrals.infra.db import transaction
from referrals.infra.runtime import Runtime
from referrals.models.errors import DomainError
from referrals.models.search import ClientTerm
from referrals.models.workflow import Event
from referrals.usecases.clients.finding import Found, find_clients, index_missing, words
from referrals.usecases.clients.keys import rotate
from referrals.usecases.clients.subject import erase_client
from referrals.usecases.staff.tokens import issue_token
from referrals.web.app import create_app
from support.domain import consent, launch, new_client
from support.pages import Clock, logged_in, post_form, staff_users


def _find(
    rt: Runtime, now: dt.datetime, q: str, user: str = "mai", ctx: Context | None = None
) -> list[Found]:
    with transaction(rt.engine) as s:
        by = rt.user(s, user)
        return find_clients(s, by=by, text=q, ctx=ctx or rt.ctx, now=now, via="test")


def _launch(rt: Runtime, client: str, now: dt.datetime) -> str:
    consent(rt, client, "phuong-son-health", "health_check", now)
    return launch(rt, client, "health_check", "phuong-son-health", now)


def _codes(found: list[Found]) -> list[str]:
    return [f.code for f in found]


def test_words_fold_accents_case_and_d() -> None:
    assert words("Nguyễn Thị  LAN") == ["nguyen", "thi", "lan"]
    assert words("Đặng Văn Đức") == ["dang", "van", "duc"]
    assert words("nguyen-thi lan, lan") == ["nguyen", "thi", "lan"]
    # Composed and decomposed forms of the same letters are one word.
    assert words("Nguy\u1ec5n") == words("Nguye\u0302\u0303n") == ["nguyen"]


def test_a_name_is_found_without_accents_in_any_order_and_by_one_word(
    rt: Runtime, now: dt.datetime
) -> None:
    lan = new_client(rt, now, name="Nguyễn Thị Lan")
    other = new_client(rt, now, name="Nguyễn Văn Lâm")
    assert _codes(_find(rt, now, "nguyen thi lan")) == [lan]
    assert _codes(_find(rt, now, "LAN nguyễn")) == [lan]
    assert set(_codes(_find(rt, now, "Nguyen"))) == {lan, other}
    assert _find(rt, now, "nguyen thi lan hoa") == []  # every word typed must be in the name
    found = _find(rt, now, "lan")[0]
    assert (found.name, found.district_name) == ("Nguyễn Thị Lan", "Phường Nha Trang")


def test_a_phone_in_any_form_an_id_number_and_codes_find_the_client(
    rt: Runtime, now: dt.datetime
) -> None:
    c = new_client(rt, now, name="Lê Thị Bảy", phone="0905 112 358", id_number="079190001234")
    ref = _launch(rt, c, now)
    for q in ("0905112358", "+84 905 112 358", "84905112358", "(0905) 112-358"):
        assert _codes(_find(rt, now, q)) == [c], q
    assert _codes(_find(rt, now, "079 190 001 234")) == [c]
    assert _codes(_find(rt, now, c.lower())) == [c]
    assert _codes(_find(rt, now, ref)) == [c]
    assert _codes(_find(rt, now, ref.replace("-", ""))) == [c]
    assert _find(rt, now, "0905 999 999") == []


def test_newest_activity_first_and_open_referrals_counted(rt: Runtime, now: dt.datetime) -> None:
    older = new_client(rt, now - dt.timedelta(days=30), name="Trần Thị Mai")
    newer = new_client(rt, now - dt.timedelta(days=10), name="Trần Thị Mai Anh")
    assert _codes(_find(rt, now, "tran mai")) == [newer, older]
    _launch(rt, older, now)  # older: activity today
    found = _find(rt, now, "tran mai")
    assert _codes(found) == [older, newer]
    assert [f.open_referrals for f in found] == [1, 0]


def test_a_coordinator_finds_only_their_district_and_a_manager_every_one(
    rt: Runtime, now: dt.datetime
) -> None:
    here = new_client(rt, now, name="Phạm Thị Hoa", id_number="079190005555")
    there = new_client(rt, now, name="Phạm Thị Hoa", district="ninh-hoa", phone="0905 555 000")
    assert _codes(_find(rt, now, "pham thi hoa")) == [here]
    assert _find(rt, now, "0905555000") == []  # another district's phone: as if absent
    assert _find(rt, now, there) == []  # and its code
    assert set(_codes(_find(rt, now, "pham thi hoa", user="hoa"))) == {here, there}


def test_each_client_listed_by_name_gets_an_access_event(rt: Runtime, now: dt.datetime) -> None:
    a = new_client(rt, now, name="Võ Thị Năm")
    b = new_client(rt, now, name="Võ Thị Năm Hai")
    _find(rt, now, "vo nam")
    with transaction(rt.engine) as s:
        listed = s.scalars(select(Event).where(Event.kind == "pii.listed")).all()
        assert sorted(e.client_id for e in listed) == sorted(
            s.scalar(text("SELECT id FROM client WHERE code = :c"), {"c": c}) for c in (a, b)
        )
        assert {e.actor for e in listed} == {"user:mai"}
        assert all(e.data == {"fields": ["name"], "via": "test"} for e in listed)
        assert "năm" not in str([e.data for e in listed]).lower()  # what was typed is not kept


def test_the_database_holds_no_word_of_a_name(rt: Runtime, now: dt.datetime) -> None:
    new_client(rt, now, name="Huỳnh Thị Xuân")
    with transaction(rt.engine) as s:
        dump = "\n".join(
            str(row)
            for table in ("client", "client_term", "event")
            for row in s.execute(text(f"SELECT * FROM {table}"))
        ).lower()
    for word in ("huỳnh", "huynh", "xuân", "xuan"):
        assert word not in dump


def test_erased_clients_leave_the_index_and_rotation_reindexes(
    rt: Runtime, now: dt.datetime
) -> None:
    gone = new_client(rt, now, name="Đỗ Thị Sáu")
    with transaction(rt.engine) as s:
        erase_client(s, code=gone, by=rt.user(s, "hoa"), now=now)
    assert _find(rt, now, "do thi sau") == []
    assert _codes(_find(rt, now, gone)) == [gone] and _find(rt, now, gone)[0].name is None
    kept = new_client(rt, now, name="Đỗ Thị Bảy")
    with transaction(rt.engine) as s:  # as after the upgrade that brought the index
        s.execute(ClientTerm.__table__.delete())  # type: ignore[attr-defined]
    assert _find(rt, now, "do bay") == []
    assert index_missing(rt.engine, rt.ctx.vault) == 1
    assert _codes(_find(rt, now, "do bay")) == [kept]
    rotated = Vault("another secret of at least 32 characters", (rt.settings.secret_key,))
    after = dataclasses.replace(rt.ctx, vault=rotated)  # as a restart with the new secret
    assert _codes(_find(rt, now, "do bay", ctx=after)) == [kept]  # old terms still match
    rotate(rt.engine, vault=rotated)
    with transaction(rt.engine) as s:
        terms = set(s.scalars(select(ClientTerm.term)))
        assert terms == {rotated.lookup(w, "name") for w in ("do", "thi", "bay")}
        assert s.scalar(select(func.count()).select_from(ClientTerm)) == 3
    assert _codes(_find(rt, now, "do bay", ctx=after)) == [kept]


@pytest.mark.parametrize("q", ["", " ", "a", "!!", "x" * 121])
def test_too_little_or_too_much_is_refused(rt: Runtime, now: dt.datetime, q: str) -> None:
    with pytest.raises((DomainError, ValueError)):
        _find(rt, now, q)


def test_the_header_search_lists_names_with_a_way_to_refer(rt: Runtime, now: dt.datetime) -> None:
    """The box in every staff page's header posts the words (never in the address); the
    results show the name, the district's name, a link to the client and one to refer them."""
    staff_users(rt)
    mai = logged_in(Clock(now), "mai")
    lan = new_client(rt, now, name="Nguyễn Thị Lan")
    new_client(rt, now, name="Nguyễn Thị Lan", district="ninh-hoa", phone="0905 000 321")
    home = mai.get("/cases")
    assert 'action="/search"' in home.text and 'method="post"' in home.text
    shown = post_form(mai, "/search", "/cases", q="nguyen thi lan")
    assert shown.status_code == 200 and shown.headers["cache-control"] == "no-store"
    assert shown.text.count('class="name"') == 1  # not Ninh Hòa's client
    assert "Nguyễn Thị Lan" in shown.text and "Phường Nha Trang" in shown.text
    assert f'href="/clients/{lan}"' in shown.text and f'href="/launch?client={lan}"' in shown.text
    assert "nha-trang" not in shown.text.split("<main")[1]  # names, not keys
    refused = post_form(mai, "/search", "/cases", q="!")
    assert refused.status_code == 422 and 'id="error"' in refused.text


def test_the_api_finds_and_registers_within_the_token_holders_district(
    rt: Runtime, now: dt.datetime
) -> None:
    with transaction(rt.engine) as s:
        token = issue_token(s, username="mai", name="t", by=rt.user(s, "admin"), now=now)
    api = TestClient(create_app())
    auth = {"Authorization": f"Bearer {token}"}
    made = api.post(
        "/api/v1/clients",
        json={"name": "Mai Thị Chín", "phone": "0905 909 090", "district": "nha-trang"},
        headers=auth,
    )
    assert made.status_code == 201, made.text
    code = made.json()["code"]
    again = api.post(
        "/api/v1/clients",
        json={"name": "Mai Chín", "phone": "+84905909090", "district": "nha-trang"},
        headers=auth,
    )
    assert again.status_code == 409 and code in again.text
    elsewhere = api.post(
        "/api/v1/clients", json={"name": "X Y", "district": "ninh-hoa"}, headers=auth
    )
    assert elsewhere.status_code == 404  # another district: as if absent (models/policy.py)
    found = api.get("/api/v1/clients", params={"q": "mai chin"}, headers=auth)
    assert found.status_code == 200 and [f["code"] for f in found.json()] == [code]
    assert found.json()[0]["district_name"] == "Phường Nha Trang"
    assert api.get("/api/v1/clients", params={"q": "x"}, headers=auth).status_code == 422
    assert api.get("/api/v1/clients", params={"q": "mai chin"}).status_code == 401


def test_another_districts_client_is_not_found_through_the_api_or_the_cli(
    rt: Runtime, now: dt.datetime
) -> None:
    """The scope holds at every door: the API's token holder and the CLI's user see their own
    district only (the CLI in a fresh process, as a coordinator types it)."""
    there = new_client(rt, now, name="Kiều Thị Thơm", district="ninh-hoa", phone="0905 313 131")
    here = new_client(rt, now, name="Kiều Thị Thơm Hai")
    with transaction(rt.engine) as s:
        token = issue_token(s, username="mai", name="t", by=rt.user(s, "admin"), now=now)
    api = TestClient(create_app())
    auth = {"Authorization": f"Bearer {token}"}
    for q in ("kieu thom", "0905313131", there):
        found = api.get("/api/v1/clients", params={"q": q}, headers=auth).json()
        assert there not in [f["code"] for f in found], q
    assert [f["code"] for f in api.get(
        "/api/v1/clients", params={"q": "kieu thom"}, headers=auth
    ).json()] == [here]  # fmt: skip
    env = os.environ | {"REFERRALS_USER": "mai"}
    done = subprocess.run(
        [sys.executable, "-m", "referrals.cli", "client", "find", "0905313131", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0 and json.loads(done.stdout) == [], done.stderr
