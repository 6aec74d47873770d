"""A client recorded under a unit that ended in the 2025 reform is moved from their page
(issue 23), on both databases: the page says the unit ended and offers the units that took over
its territory, in words; the move is on the client's history and the referral then goes
through; a coordinator of another unit sees no such form."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import update

from referrals.infra.db import transaction
from referrals.infra.runtime import Runtime
from referrals.models.people import User
from support.domain import new_client
from support.pages import Clock, logged_in, post_form, staff_users

BEFORE = dt.datetime(2025, 1, 10, 2, 0, tzinfo=dt.UTC)


def test_a_coordinator_moves_a_client_of_the_ended_city(rt: Runtime, now: dt.datetime) -> None:
    client = new_client(rt, BEFORE, name="Võ Thị Thành Phố", district="tp-nha-trang")
    staff_users(rt)
    with transaction(rt.engine) as s:  # mai works for the former city
        s.execute(update(User).where(User.username == "mai").values(area_key="tp-nha-trang"))
    mai = logged_in(Clock(now), "mai")
    page = mai.get(f"/clients/{client}").text
    assert 'id="move"' in page
    assert "Thành phố Nha Trang không còn hiệu lực (đến 30/06/2025)" in page
    form = page.split('id="move"')[1].split("</form>")[0]
    assert "Phường Bắc Nha Trang" in form and ">tp-nha-trang<" not in form  # names, not keys
    moved = post_form(
        mai, f"/clients/{client}/move", f"/clients/{client}", district="phuong-bac-nha-trang"
    )
    assert moved.status_code == 303
    after = mai.get(f"/clients/{client}").text
    assert 'id="move"' not in after and "Phường Bắc Nha Trang" in after
    assert "chuyển sang đơn vị hành chính khác" in after  # on the history
    # A unit mai does not work in (a forged form): refused, nothing moved.
    refused = post_form(mai, f"/clients/{client}/move", f"/clients/{client}", district="ninh-hoa")
    assert refused.status_code == 404  # a unit out of her scope is as if absent
    assert "Phường Bắc Nha Trang" in mai.get(f"/clients/{client}").text
    binh = logged_in(Clock(now), "binh")  # Phường Ninh Hòa's coordinator: not this client
    assert binh.get(f"/clients/{client}").status_code == 404
