"""A new client is recorded under a unit in force that day (issue 23), on both databases: an
ended district is refused, naming the units in force that took over its territory (through
later reforms too), and nothing is written. The directory keeps each area's validity and
successors as province.yaml says.

The areas are the bundled config's (the real 2025 reform) and one hypothetical merger in 2028
(support/reform.py)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlmodel import col, select

from referrals.config import load_province
from referrals.infra.db import transaction
from referrals.infra.runtime import Runtime
from referrals.models.directory import AreaSuccessor
from referrals.models.errors import DomainError
from referrals.models.people import Client
from referrals.usecases.directory.loading import load_province_data
from referrals.usecases.referrals.launch_form import launch_choices
from support.domain import new_client
from support.reform import config_with, reformed_areas

CITY_WARDS = "nha-trang, phuong-bac-nha-trang, phuong-tay-nha-trang, phuong-nam-nha-trang"


def local(day: str) -> dt.datetime:
    """09:00 in Nha Trang on DAY."""
    return dt.datetime.fromisoformat(f"{day}T02:00:00+00:00")


@pytest.fixture
def reformed(rt: Runtime, tmp_path: Path) -> Runtime:
    """The bundled directory, then the reform's areas loaded over it, as `referrals init` does."""
    folder = config_with(tmp_path, reformed_areas())
    with transaction(rt.engine) as s:
        load_province_data(s, province=load_province(folder))
    return rt


def clients(rt: Runtime) -> int:
    with transaction(rt.engine) as s:
        return len(s.scalars(select(col(Client.id))).all())


def test_a_new_client_gets_a_unit_in_force_that_day(reformed: Runtime) -> None:
    rt = reformed
    assert new_client(rt, local("2025-06-30"), district="tp-nha-trang")  # its last day
    assert new_client(rt, local("2026-11-23"), district="phuong-bac-nha-trang")
    before = clients(rt)
    with pytest.raises(DomainError) as refused:
        new_client(rt, local("2026-11-23"), district="tp-nha-trang")
    assert str(refused.value) == (
        "area 'tp-nha-trang' (Thành phố Nha Trang) ended on 30/06/2025: record it under a unit "
        f"in force on 23/11/2026: {CITY_WARDS}"
    )
    assert refused.value.key == "area_not_in_force"
    # A ward of the city that ended in the 2024 mergers: through them to the 2025 ward.
    with pytest.raises(DomainError, match=r"force on 23/11/2026: phuong-tay-nha-trang$"):
        new_client(rt, local("2026-11-23"), district="nha-trang-phuong-son")
    # Through the 2028 merger: Bắc Nha Trang has ended too, and p-lon took it over.
    with pytest.raises(
        DomainError, match=r"force on 01/02/2028: nha-trang, phuong-tay-nha-trang, "
    ):
        new_client(rt, local("2028-02-01"), district="tp-nha-trang")
    with pytest.raises(DomainError, match=r"'p-lon' \(Phường Lớn\) is not in force yet: "):
        new_client(rt, local("2026-11-23"), district="p-lon")
    # A unit with both ends, before its start: not yet, not "ended".
    with pytest.raises(DomainError, match=r"'ninh-hoa' \(Phường Ninh Hòa\) is not in force yet"):
        new_client(rt, local("2025-01-02"), district="ninh-hoa")
    assert clients(rt) == before  # refusals wrote nothing


def test_the_directory_keeps_validity_and_successors(reformed: Runtime, tmp_path: Path) -> None:
    """What province.yaml says, in the tables; loading the bundled config again (without the
    2028 merger) takes that merger's successors away, as a corrected YAML would."""
    rt = reformed
    with transaction(rt.engine) as s:
        links = {(r.area_key, r.successor_key) for r in s.scalars(select(AreaSuccessor))}
        choices = launch_choices(
            s, by=rt.user(s, "admin"), client_code=None, now=local("2026-11-23"), tz=rt.settings.tz
        )
    assert {("tp-nha-trang", "nha-trang"), ("nha-trang-loc-tho", "nha-trang")} <= links
    assert {("phuong-bac-nha-trang", "p-lon"), ("ninh-hoa", "p-lon")} <= links
    # A new client's form offers the units of the day only: the 65 of the reform, the province.
    keys = {a.key for a in choices.areas}
    assert len(keys) == 66 and {"khanh-hoa", "nha-trang", "dac-khu-truong-sa"} <= keys
    assert not {"tp-nha-trang", "nha-trang-loc-tho", "p-lon"} & keys
    with transaction(rt.engine) as s:
        load_province_data(s, province=rt.province)
    with transaction(rt.engine) as s:
        left = {(r.area_key, r.successor_key) for r in s.scalars(select(AreaSuccessor))}
    assert not {k for k in left if k[1] == "p-lon"} and ("tp-nha-trang", "nha-trang") in left
