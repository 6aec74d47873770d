"""Never a second client by accident (issue 19): a phone or ID number that is already a client's
refuses a new client and names the existing one; "a different person", with a reason, goes
through and is on the record, the reason sealed like any free text about a client."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys

import pytest
from sqlalchemy import select, text

from referrals.infra.db import transaction
from referrals.infra.runtime import Runtime
from referrals.models.workflow import Event
from referrals.usecases.clients.clients import ClientIn, LikelySame, SamePerson, add_client
from referrals.usecases.clients.subject import erase_client
from referrals.usecases.referrals.importing import (
    HEADER,
    ImportRefused,
    ImportReport,
    import_referrals,
)
from support.domain import new_client, row_counts
from support.pages import Clock, logged_in, post_form, staff_users


def _add(rt: Runtime, now: dt.datetime, user: str = "mai", **fields: str) -> str:
    data = ClientIn(**({"name": "Trần Thị Hai", "district": "nha-trang"} | fields))
    with transaction(rt.engine) as s:
        return add_client(s, data=data, ctx=rt.ctx, created_by=rt.user(s, user), now=now).code


def test_a_known_phone_in_another_form_is_refused_naming_the_client(
    rt: Runtime, now: dt.datetime
) -> None:
    first = new_client(rt, now, phone="0905 321 654")
    before = row_counts(rt)
    with pytest.raises(SamePerson, match=first) as refused:
        _add(rt, now, phone="+84 905 321 654")
    assert refused.value.key == "same_person" and refused.value.params["clients"] == first
    assert row_counts(rt) == before  # nothing written


def test_a_known_id_number_is_refused_and_a_different_person_goes_through(
    rt: Runtime, now: dt.datetime
) -> None:
    first = new_client(rt, now, phone=None, id_number="079190009999")
    with pytest.raises(SamePerson, match=first):
        _add(rt, now, id_number="079 190 009 999")
    why = "chị em sinh đôi, cùng tên khai sinh"
    second = _add(rt, now, id_number="079190009999", different_person=why)
    assert second != first
    with transaction(rt.engine) as s:
        said = s.scalars(select(Event).where(Event.kind == "client.not_same_person")).one()
        assert said.data["client"] == second and said.data["not"] == [first]
        assert why not in str(said.data)  # sealed, not in clear
        dump = "\n".join(str(r) for r in s.execute(text("SELECT data FROM event")))
        assert why not in dump


def test_a_client_of_another_district_is_not_named_to_a_coordinator(
    rt: Runtime, now: dt.datetime
) -> None:
    elsewhere = new_client(rt, now, district="ninh-hoa", phone="0905 777 888")
    with pytest.raises(SamePerson) as refused:
        _add(rt, now, phone="0905777888")  # mai works in Nha Trang
    assert refused.value.key == "same_person_elsewhere"
    assert elsewhere not in str(refused.value)
    with pytest.raises(SamePerson, match=elsewhere):  # the admin sees every district
        _add(rt, now, user="admin", phone="0905777888")


def test_an_erased_client_does_not_block_a_new_one(rt: Runtime, now: dt.datetime) -> None:
    gone = new_client(rt, now, phone="0905 444 555")
    with transaction(rt.engine) as s:
        erase_client(s, code=gone, by=rt.user(s, "hoa"), now=now)
    assert _add(rt, now, phone="0905 444 555") != gone


def test_the_page_refuses_with_a_link_and_asks_why(rt: Runtime, now: dt.datetime) -> None:
    """Registering on the clients page: the refusal keeps what was typed, links the existing
    client and offers "a different person"; with a reason, the client is registered."""
    staff_users(rt)
    mai = logged_in(Clock(now), "mai")
    first = new_client(rt, now, phone="0905 246 810")
    fields = {"name": "Phan Thị Ba", "phone": "0905246810"}
    refused = post_form(mai, "/clients", "/clients", **fields)
    assert refused.status_code == 409
    assert f'href="/clients/{first}"' in refused.text and 'name="different_person"' in refused.text
    assert 'value="Phan Thị Ba"' in refused.text  # nothing to type again
    assert "đã có số điện thoại" in refused.text  # said in the office's words
    ok = post_form(mai, "/clients", "/clients", **fields, different_person="người khác, cùng máy")
    assert ok.status_code == 303 and ok.headers["location"] != f"/clients/{first}"


def test_the_cli_refuses_then_registers_a_different_person_in_fresh_processes(
    rt: Runtime, now: dt.datetime
) -> None:
    """`referrals client add` as a coordinator runs it: each call a new process."""
    first = new_client(rt, now, phone="0905 135 791")
    env = os.environ | {"REFERRALS_USER": "mai"}
    add = [sys.executable, "-m", "referrals.cli", "client", "add", "--name", "Hà Thị Tư"]
    add += ["--phone", "0905135791", "--district", "nha-trang", "--json"]

    def run(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*add, *extra], env=env, capture_output=True, text=True, timeout=60, check=False
        )

    refused = run()
    assert refused.returncode == 1 and refused.stderr.count("\n") == 1
    assert first in refused.stderr and "Traceback" not in refused.stderr
    done = run("--different-person", "em gái, dùng chung điện thoại")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["code"] not in (first, "")


def test_a_likely_same_name_in_the_district_warns_with_the_candidates(
    rt: Runtime, now: dt.datetime
) -> None:
    """The same words once folded, or one word a letter away in a name of three words: the
    coordinator is shown them before a second record is made; with a reason it is made."""
    lan = new_client(rt, now, name="Nguyễn Thị Lan")
    before = row_counts(rt)
    for typed in ("nguyen thi lan", "Lan Nguyễn Thị", "Nguyễn Thị Lam", "Nguyễn Thy Lan"):
        with pytest.raises(LikelySame, match=lan) as warned:
            _add(rt, now, name=typed)
        assert warned.value.key == "likely_same" and warned.value.params["clients"] == lan
    assert row_counts(rt) == before  # nothing written
    # Not alike: another given name, an extra word, or the same name in another district.
    for other in ("Nguyễn Thị Hoa", "Nguyễn Thị Lan Anh", "Nguyễn Lan", "Nguyễn Thị Bích Anh"):
        _add(rt, now, name=other)
    assert _add(rt, now, user="admin", name="Nguyễn Thị Lan", district="ninh-hoa")
    second = _add(rt, now, name="Nguyễn Thị Lân", different_person="sinh năm 1990, quê Phú Yên")
    with transaction(rt.engine) as s:
        said = s.scalars(select(Event).where(Event.kind == "client.not_same_person")).one()
        assert said.data["client"] == second and said.data["not"] == [lan]


def test_the_likely_match_is_shown_on_the_page_and_in_the_cli(
    rt: Runtime, now: dt.datetime
) -> None:
    staff_users(rt)
    mai = logged_in(Clock(now), "mai")
    first = new_client(rt, now, name="Trương Thị Hạnh")
    warned = post_form(mai, "/clients", "/clients", name="truong thi hanh")
    assert warned.status_code == 409 and f'href="/clients/{first}"' in warned.text
    assert 'name="different_person"' in warned.text
    env = os.environ | {"REFERRALS_USER": "mai"}
    add = [sys.executable, "-m", "referrals.cli", "client", "add", "--name", "Trương Thị Hạnh"]
    done = subprocess.run(
        [*add, "--district", "nha-trang"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1 and first in done.stderr and done.stderr.count("\n") == 1


def _import(rt: Runtime, now: dt.datetime, *rows: str) -> ImportReport:
    header = ",".join(HEADER) + "\n"
    with transaction(rt.engine) as s:
        return import_referrals(
            s,
            data=(header + "".join(r + "\n" for r in rows)).encode(),
            coordinator=rt.user(s, "mai"),
            ctx=rt.ctx,
            now=now,
        )


def test_an_import_refuses_a_likely_namesake_unless_the_row_says_why(
    rt: Runtime, now: dt.datetime
) -> None:
    """A file is a way in too: a new person whose name is a client's of that district, or
    another row's, is refused with the line, unless the row says why it is someone else."""
    lan = new_client(rt, now, name="Nguyễn Thị Lan")
    row = "{name},{phone},,nha-trang,health_check,phuong-son-health,written,,,{why}"
    before = row_counts(rt)
    with pytest.raises(ImportRefused, match=f"line 2: {lan} in this district has this name"):
        _import(rt, now, row.format(name="nguyen thi lan", phone="", why=""))
    with pytest.raises(ImportRefused, match="line 3: line 2 has this name in this district"):
        _import(
            rt,
            now,
            row.format(name="Trần Văn Tám", phone="", why=""),
            row.format(name="Tran Van Tam", phone="", why=""),
        )
    assert row_counts(rt) == before  # nothing written
    # The same person twice in a file, known by one phone: one client, no question.
    twice = _import(
        rt,
        now,
        row.format(name="Lý Thị Mười", phone="0905 818 181", why=""),
        row.format(name="Lý Thị Mười", phone="0905818181", why="").replace(
            "health_check,phuong-son-health", "legal_aid,legal-aid-centre"
        ),
    )
    assert twice.clients_created == 1 and len(twice.referrals) == 2
    said = _import(rt, now, row.format(name="Nguyễn Thị Lan", phone="", why="sinh năm 2001"))
    assert said.clients_created == 1
    with transaction(rt.engine) as s:
        kept = s.scalars(select(Event).where(Event.kind == "client.not_same_person")).one()
        assert kept.data["via"] == "import" and "2001" not in str(kept.data)  # sealed
