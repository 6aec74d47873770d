"""A new client is recorded under a unit in force that day (issue 23, second slice), on both
databases: an ended district is refused, naming the units in force that took over its
territory (through later reforms too), and nothing is written. The directory keeps each area's
validity and successors as province.yaml says.

The areas are test data: the bundled districts ending on 30/06/2025, two wards after them, and
one of those merged again in 2028 (the names claim nothing about the real reform)."""

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
from support.reform import WARDS, bundled_areas, config_with

ENDED = {
    "nha-trang": {"valid_to": "2025-06-30", "successors": ["p-bac", "p-nam"]},
    "ninh-hoa": {"valid_to": "2025-06-30", "successors": ["p-nam"]},
}


def local(day: str) -> dt.datetime:
    """09:00 in Nha Trang on DAY."""
    return dt.datetime.fromisoformat(f"{day}T02:00:00+00:00")


@pytest.fixture
def reformed(rt: Runtime, tmp_path: Path) -> Runtime:
    """The bundled directory, then the reform's areas loaded over it, as `referrals init` does."""
    areas = [area | ENDED.get(area["key"], {}) for area in bundled_areas()] + WARDS
    folder = config_with(tmp_path, areas)
    with transaction(rt.engine) as s:
        load_province_data(s, province=load_province(folder))
    return rt


def clients(rt: Runtime) -> int:
    with transaction(rt.engine) as s:
        return len(s.scalars(select(col(Client.id))).all())


def test_a_new_client_gets_a_unit_in_force_that_day(reformed: Runtime) -> None:
    rt = reformed
    assert new_client(rt, local("2025-06-30"), district="nha-trang")  # its last day
    assert new_client(rt, local("2026-11-23"), district="p-bac")
    before = clients(rt)
    with pytest.raises(DomainError) as refused:
        new_client(rt, local("2026-11-23"), district="nha-trang")
    assert str(refused.value) == (
        "area 'nha-trang' (Thành phố Nha Trang) ended on 30/06/2025: record it under a unit in "
        "force on 23/11/2026: p-bac, p-nam"
    )
    assert refused.value.key == "area_not_in_force"
    # Through the 2028 merger: p-bac has ended too, and p-lon took it over.
    with pytest.raises(DomainError, match=r"force on 01/02/2028: p-nam, p-lon$"):
        new_client(rt, local("2028-02-01"), district="nha-trang")
    with pytest.raises(DomainError, match=r"'p-lon' .* is not in force yet: .*p-bac, p-nam"):
        new_client(rt, local("2026-11-23"), district="p-lon")
    # A unit with both ends, before its start: not yet, not "ended".
    with pytest.raises(DomainError, match=r"'p-bac' .* is not in force yet: .*nha-trang, ninh-hoa"):
        new_client(rt, local("2025-01-02"), district="p-bac")
    assert clients(rt) == before  # refusals wrote nothing


def test_the_directory_keeps_validity_and_successors(reformed: Runtime, tmp_path: Path) -> None:
    """What province.yaml says, in the tables; loading the bundled config again (its districts
    without successors) takes theirs away, as a corrected YAML would, and leaves those of areas
    it does not list (nothing is deleted from the directory)."""
    rt = reformed
    with transaction(rt.engine) as s:
        links = {(r.area_key, r.successor_key) for r in s.scalars(select(AreaSuccessor))}
        choices = launch_choices(
            s, by=rt.user(s, "admin"), client_code=None, now=local("2026-11-23"), tz=rt.settings.tz
        )
    assert links == {
        ("nha-trang", "p-bac"),
        ("nha-trang", "p-nam"),
        ("ninh-hoa", "p-nam"),
        ("p-bac", "p-lon"),
    }
    # A new client's form offers the units of the day only.
    assert {a.key for a in choices.areas} == {"khanh-hoa", "p-bac", "p-nam"}
    with transaction(rt.engine) as s:
        load_province_data(s, province=rt.province)
    with transaction(rt.engine) as s:
        left = {(r.area_key, r.successor_key) for r in s.scalars(select(AreaSuccessor))}
    assert left == {("p-bac", "p-lon")}
