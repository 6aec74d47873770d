"""A coordinator of a former district works on the areas that took over its territory (issue 23),
on both databases: the policy (one record), the listings' SQL and the name search agree, and so
does a fresh `referrals list` process. A coordinator of a new ward does not see the district's
older records, nor the other ward's.

The areas are the bundled config's (the city of Nha Trang and the town of Ninh Hòa ended on
30/06/2025, taken over by four and eight units) and one hypothetical merger in 2028 of Phường
Bắc Nha Trang and Phường Ninh Hòa into p-lon (support/reform.py)."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from referrals.config.settings import get_settings
from referrals.infra.db import transaction
from referrals.infra.runtime import Runtime
from referrals.models import policy
from referrals.models.errors import DomainError
from referrals.models.people import User
from referrals.models.roles import Role
from referrals.notifiers.messages import People
from referrals.queries.reading import Reader, acting_user, list_referrals
from referrals.queries.views import client_events, list_clients
from referrals.usecases.clients.finding import find_clients
from referrals.usecases.directory.loading import load_province_data
from support.domain import consent, launch, new_client
from support.reform import config_with, reformed_areas

BEFORE = dt.datetime(2025, 1, 6, 2, 0, tzinfo=dt.UTC)  # Monday 06/01/2025 09:00 in Nha Trang
AFTER = dt.datetime(2026, 11, 23, 2, 0, tzinfo=dt.UTC)
COORDINATORS = {"mai": "tp-nha-trang", "lan": "tx-ninh-hoa", "binh": "phuong-bac-nha-trang"}
CITY_POLICE, NORTH_POLICE = "police-tp-nha-trang", "police-bac-nha-trang"


@pytest.fixture
def reformed(rt: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Runtime:
    """The installation's config is the reform's (the policy reads the installation's), its
    directory loaded as `referrals init` does; mai coordinates the former city."""
    folder = config_with(tmp_path, reformed_areas())
    monkeypatch.setenv("REFERRALS_CONFIG_DIR", str(folder))
    get_settings.cache_clear()
    runtime = Runtime(get_settings())
    with transaction(runtime.engine) as s:
        load_province_data(s, province=runtime.province)
        runtime.user(s, "mai").area_key = COORDINATORS["mai"]
        for name in ("lan", "binh"):
            role = Role.coordinator.value
            s.add(User(username=name, full_name=name, role=role, area_key=COORDINATORS[name]))
    return runtime


def referral(
    rt: Runtime, now: dt.datetime, district: str, name: str, police: str
) -> tuple[str, str]:
    client = new_client(rt, now, name=name, district=district)
    consent(rt, client, police, "id_papers", now)
    return client, launch(rt, client, "id_papers", police, now)


def test_a_former_districts_coordinator_works_on_its_successors(reformed: Runtime) -> None:
    rt = reformed
    city, city_ref = referral(rt, BEFORE, "tp-nha-trang", "Trần Thị Thành Phố", CITY_POLICE)
    north, north_ref = referral(
        rt, AFTER, "phuong-bac-nha-trang", "Trần Thị Phường Bắc", NORTH_POLICE
    )
    south = new_client(rt, AFTER, name="Trần Thị Phường Nam", district="phuong-nam-nha-trang")
    ward_2024 = new_client(rt, BEFORE, name="Trần Thị Lộc Thọ", district="nha-trang-loc-tho")
    town = new_client(rt, BEFORE, name="Trần Thị Thị Xã", district="tx-ninh-hoa")
    town_ward = new_client(rt, AFTER, name="Trần Thị Ninh Hòa", district="ninh-hoa")
    expected = {
        # the city, its wards of the day, and the wards that replaced it
        "mai": {city, north, south, ward_2024},
        "lan": {town, town_ward},  # Ninh Hòa town, and the ward that took over its centre
        "binh": {north},  # a ward's coordinator: the ward alone, not the city's older records
    }
    with Reader.open(rt.settings.database_url) as read:
        for name, codes in expected.items():
            me = acting_user(read, name)
            listed = list_clients(read, district=policy.district_scope(me))
            assert {c["code"] for c in listed} == codes, name
            # The policy, record by record, says the same as the listing's SQL.
            seen = {c["code"] for c in list_clients(read, district=None)}
            by_policy = {
                c["code"]
                for c in list_clients(read, district=None)
                if policy.sees_area(me, c["district"])
            }
            assert by_policy == codes and codes < seen, name
        refs = list_referrals(read, tz=rt.settings.tz, now=AFTER, district="tp-nha-trang")
        assert {r["code"] for r in refs} == {city_ref, north_ref}
        refs = list_referrals(read, tz=rt.settings.tz, now=AFTER, district="phuong-bac-nha-trang")
        assert {r["code"] for r in refs} == {north_ref}
    assert policy.acts_in_area(acting_user_of(rt, "mai"), "p-lon")  # through the 2028 merger
    assert not policy.acts_in_area(acting_user_of(rt, "binh"), "tp-nha-trang")
    assert policy.acts_in_area(acting_user_of(rt, "lan"), "p-lon")  # p-lon took Ninh Hòa ward
    # A manager of the former city is told of its wards' late referrals; one of the town not.
    with transaction(rt.engine) as s:
        for name, area in (("city-manager", "tp-nha-trang"), ("town-manager", "tx-ninh-hoa")):
            s.add(
                User(
                    username=name,
                    full_name=name,
                    role=Role.manager.value,
                    area_key=area,
                    email=f"{name}@example.vn",
                )
            )
    with transaction(rt.engine) as s:
        told, _ = People.load(s).managers("phuong-bac-nha-trang")
        assert {u.username for u in told} == {"city-manager"}
    # The name search, through the ORM, keeps to the same scope.
    with transaction(rt.engine) as s:
        found = find_clients(
            s, by=rt.user(s, "mai"), text="Trần Thị", ctx=rt.ctx, now=AFTER, via="cli"
        )
        assert {f.code for f in found} == {city, north, south, ward_2024}
        found = find_clients(
            s, by=rt.user(s, "binh"), text="Trần Thị", ctx=rt.ctx, now=AFTER, via="cli"
        )
        assert {f.code for f in found} == {north}


def acting_user_of(rt: Runtime, name: str) -> policy.User:
    with Reader.open(rt.settings.database_url) as read:
        return acting_user(read, name)


def test_the_scope_holds_in_a_fresh_process(reformed: Runtime) -> None:
    """`referrals list` and `show`, as each coordinator, in new processes reading the
    installation's config from REFERRALS_CONFIG_DIR."""
    rt = reformed
    _, city_ref = referral(rt, BEFORE, "tp-nha-trang", "Lê Thị Một", CITY_POLICE)
    _, north_ref = referral(rt, AFTER, "phuong-bac-nha-trang", "Lê Thị Hai", NORTH_POLICE)

    def run(user: str, *args: str) -> subprocess.CompletedProcess[str]:
        env = os.environ | {"REFERRALS_USER": user}
        return subprocess.run(
            [sys.executable, "-m", "referrals.cli", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    listed = run("mai", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert {r["code"] for r in json.loads(listed.stdout)} == {city_ref, north_ref}
    listed = run("binh", "list", "--json")
    assert {r["code"] for r in json.loads(listed.stdout)} == {north_ref}
    shown = run("mai", "show", north_ref, "--json")
    assert shown.returncode == 0 and json.loads(shown.stdout)["code"] == north_ref
    hidden = run("binh", "show", city_ref)
    assert hidden.returncode == 1 and f"unknown referral {city_ref!r}" in hidden.stderr


def test_a_client_of_an_ended_district_is_moved_before_a_launch(reformed: Runtime) -> None:
    """A launch today for a client recorded under the ended city is refused, naming the units
    to move them to, and writes nothing; `referrals client move`, in a fresh process, records
    them under a ward (on their history), and the launch goes through. Only someone who acts in
    both areas may move them, and only to a unit in force."""
    rt = reformed
    client = new_client(rt, BEFORE, name="Phạm Thị Chuyển", district="tp-nha-trang")
    consent(rt, client, NORTH_POLICE, "id_papers", AFTER)
    with pytest.raises(DomainError) as refused:
        launch(rt, client, "id_papers", NORTH_POLICE, AFTER)
    assert refused.value.key == "client_area_ended"
    wards = "nha-trang|phuong-bac-nha-trang|phuong-tay-nha-trang|phuong-nam-nha-trang"
    assert str(refused.value).endswith(
        f"recorded under Thành phố Nha Trang (tp-nha-trang), not in force on 23/11/2026: move "
        f"them first (referrals client move {client} --district {wards}), then launch"
    )
    with Reader.open(rt.settings.database_url) as read:
        assert list_referrals(read, tz=rt.settings.tz, now=AFTER, client=client) == []

    def move(user: str, district: str) -> subprocess.CompletedProcess[str]:
        command = ["client", "move", client, "--district", district, "--json"]
        return subprocess.run(
            [sys.executable, "-m", "referrals.cli", *command],
            env=os.environ | {"REFERRALS_USER": user},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    hidden = move("binh", "phuong-bac-nha-trang")  # a ward's coordinator: not the city's clients
    assert hidden.returncode == 1 and f"unknown client {client!r}" in hidden.stderr
    ended = move("mai", "nha-trang-loc-tho")
    assert ended.returncode == 1 and "ended on 30/06/2025" in ended.stderr, ended.stderr
    elsewhere = move("mai", "ninh-hoa")  # not a unit mai works in
    assert elsewhere.returncode == 1 and "unknown area 'ninh-hoa'" in elsewhere.stderr
    moved = move("mai", "phuong-bac-nha-trang")
    assert moved.returncode == 0, moved.stderr
    assert json.loads(moved.stdout) == {"code": client, "district": "phuong-bac-nha-trang"}
    referral_code = launch(rt, client, "id_papers", NORTH_POLICE, AFTER)
    with Reader.open(rt.settings.database_url) as read:
        (row,) = list_referrals(read, tz=rt.settings.tz, now=AFTER, client=client)
        assert row["code"] == referral_code and row["district"] == "phuong-bac-nha-trang"
        kinds = [e["kind"] for e in client_events(read, code=client)]
    assert "client.moved" in kinds
