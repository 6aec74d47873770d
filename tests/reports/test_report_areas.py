"""The period report across the 2025 reform (issue 23), on both databases: by default every
referral counts under the units in force at the period's end, and `--areas-as-of` regroups it
under another day's units through the succession, so the office can put 2020 beside 2026; both
generations give the same totals. A record under a district that was split counts under its
successors together, never in one of them by guess. Services are also counted by the office's
groups (pathways.yaml), each person once in a group.

The areas are the bundled config's (the real reform: phường Phương Sơn merged into Phương Sài on
01/11/2024, which became part of Phường Tây Nha Trang on 01/07/2025) and one hypothetical merger
in 2028 of Phường Bắc Nha Trang and Phường Ninh Hòa into p-lon (support/reform.py)."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from referrals.config.settings import get_settings
from referrals.infra.db import transaction
from referrals.infra.runtime import Runtime
from referrals.queries.reading import Reader
from referrals.queries.report import Period, build_report, counts
from referrals.reports.render import render
from referrals.usecases.directory.loading import load_province_data
from support.domain import consent, launch, new_client
from support.reform import config_with, reformed_areas

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
SPAN = Period(dt.date(2024, 1, 1), dt.date(2026, 11, 30), TZ)
CITY = "nha-trang+phuong-bac-nha-trang+phuong-nam-nha-trang+phuong-tay-nha-trang"
TOWN = (
    "ninh-hoa+phuong-dong-ninh-hoa+phuong-hoa-thang+xa-bac-ninh-hoa+xa-hoa-tri+xa-nam-ninh-hoa"
    "+xa-tan-dinh+xa-tay-ninh-hoa"
)


def at(day: str) -> dt.datetime:
    return dt.datetime.fromisoformat(f"{day}T09:00:00").replace(tzinfo=TZ)


@pytest.fixture
def history(rt: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Five people referred from 2024 to 2026, each under the unit of the day, by the police of
    the day; the first also for a tax code and legal advice (three services of one group)."""
    folder = config_with(tmp_path, reformed_areas())
    monkeypatch.setenv("REFERRALS_CONFIG_DIR", str(folder))
    get_settings.cache_clear()
    rt = Runtime(get_settings())
    with transaction(rt.engine) as s:
        load_province_data(s, province=rt.province)
        rt.user(s, "mai").area_key = "khanh-hoa"  # she launches in every unit below
    people = {}
    for name, day, area, police in (
        ("ward-2024", "2024-03-04", "nha-trang-phuong-son", "police-tp-nha-trang"),
        ("city-2025", "2025-01-06", "tp-nha-trang", "police-tp-nha-trang"),
        ("town-2025", "2025-01-06", "tx-ninh-hoa", "police-tx-ninh-hoa"),
        ("north-2026", "2026-03-02", "phuong-bac-nha-trang", "police-bac-nha-trang"),
        ("ward-2026", "2026-03-02", "ninh-hoa", "police-ninh-hoa"),
    ):
        people[name] = client = new_client(rt, at(day), district=area)
        consent(rt, client, police, "id_papers", at(day))
        launch(rt, client, "id_papers", police, at(day))
    first = people["ward-2024"]
    for pathway in ("tax_code", "legal_aid"):
        consent(rt, first, "legal-aid-centre", pathway, at("2024-03-05"))
        launch(rt, first, pathway, "legal-aid-centre", at("2024-03-05"))
    return people


def report(rt: Runtime, **kw: Any) -> dict[str, Any]:
    with Reader.open(rt.settings.database_url) as read:
        return build_report(
            read,
            period=SPAN,
            calendar=rt.ctx.calendar,
            now=at("2026-12-01"),
            service_groups=rt.province.service_groups,
            **kw,
        )


def launched(data: dict[str, Any]) -> dict[str, int]:
    out: dict[str, int] = {}
    for row in data["rows"]:
        out[row["district"]] = out.get(row["district"], 0) + row["launched"]
    return out


def test_both_generations_of_units_give_the_same_totals(
    rt: Runtime, history: dict[str, str]
) -> None:
    today = report(rt)  # the units in force on 30/11/2026, the period's last day
    assert today["period"]["areas_as_of"] == "2026-11-30"
    assert launched(today) == {
        "phuong-tay-nha-trang": 3,  # Phương Sơn's of 2024 (three services), via Phương Sài
        "phuong-bac-nha-trang": 1,
        "ninh-hoa": 1,
        CITY: 1,  # recorded under the whole city: split in four, so under the four together
        TOWN: 1,  # the town, split in eight
    }
    assert today["names"]["districts"][CITY] == {
        "vi": "Phường Nha Trang + Phường Bắc Nha Trang + Phường Nam Nha Trang + Phường Tây Nha "
        "Trang",
        "en": "Nha Trang Ward + Bac Nha Trang Ward + Nam Nha Trang Ward + Tay Nha Trang Ward",
    }
    seeds = report(rt, areas_on=dt.date(2020, 12, 31))  # the districts of the 2019 reports
    assert seeds["period"]["areas_as_of"] == "2020-12-31"
    assert launched(seeds) == {
        "tp-nha-trang": 1 + 3 + 1,  # the city's own, its ward's of 2024, Bắc Nha Trang's of 2026
        "tx-ninh-hoa": 1 + 1,  # the town's own, and Phường Ninh Hòa's of 2026
    }
    later = report(rt, areas_on=dt.date(2028, 6, 1))  # after the hypothetical merger
    assert launched(later) == {
        "phuong-tay-nha-trang": 3,
        "p-lon": 2,  # Bắc Nha Trang's and Phường Ninh Hòa's
        "nha-trang+p-lon+phuong-nam-nha-trang+phuong-tay-nha-trang": 1,
        "p-lon+" + TOWN.removeprefix("ninh-hoa+"): 1,
    }
    for other in (seeds, later):
        assert other["total"] == today["total"]
        assert other["services"] == today["services"]
    assert today["total"]["launched"] == 7 and today["total"]["clients"] == 5
    # The dashboard's counts group by the units of the day they are asked for, the same way.
    with Reader.open(rt.settings.database_url) as read:
        rows = counts(read, since=SPAN.since, until=SPAN.until, areas_on=dt.date(2020, 12, 31))
    assert {r["district"] for r in rows} == set(launched(seeds))


def test_service_groups_count_each_person_once(rt: Runtime, history: dict[str, str]) -> None:
    data = report(rt)
    legal = next(g for g in data["service_groups"] if g["key"] == "legal_help")
    # Five people had ID papers; one of them also a tax code and legal advice: five people,
    # seven referrals.
    assert (legal["clients"], legal["launched"]) == (5, 7)
    assert legal["services"] == ["id_papers", "legal_aid", "tax_code"]
    health = next(g for g in data["service_groups"] if g["key"] == "health")
    assert (health["clients"], health["launched"]) == (0, 0)
    text = render(data, "md", lang="vi")
    assert "Theo nhóm dịch vụ (mỗi người chỉ tính một lần trong một nhóm)" in text
    assert "| Trợ giúp pháp lý | 5 | 7 |" in text
    assert "Phường Nha Trang + Phường Bắc Nha Trang" in text and CITY not in text


def test_the_cli_regroups_in_a_fresh_process(rt: Runtime, history: dict[str, str]) -> None:
    """`referrals report --areas-as-of`, as the manager types it, with a Vietnamese date."""
    command = [
        *("report", "--from", "01/01/2024", "--to", "30/11/2026"),
        *("--areas-as-of", "31/12/2020", "--json"),
    ]
    done = subprocess.run(
        [sys.executable, "-m", "referrals.cli", *command],
        env=os.environ | {"REFERRALS_USER": "hoa"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["period"]["areas_as_of"] == "2020-12-31"
    assert launched(data) == {"tp-nha-trang": 5, "tx-ninh-hoa": 2}
    text = subprocess.run(
        [sys.executable, "-m", "referrals.cli", *command[:-1]],
        env=os.environ | {"REFERRALS_USER": "hoa"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    ).stdout
    assert "đơn vị hành chính theo ngày 31/12/2020" in text
