"""Partners with time (issue 23), on both databases: a partner, service or contact is in force
for a span of days and an ended partner names its successors. A launch to an ended partner is
refused naming the partners in force that took over its work, and writes nothing; a referral
it already had keeps running; a service no longer offered is refused; the launch form and the
HSDS export show what is in force today. A service of a district that ended serves the wards
that replaced it. A bad succession is refused with its line.

The partners are the bundled config's: the city police of the 2019 reports ended on 28/02/2025
(district police were abolished) and the police of the four wards that replaced the city took
over from 01/07/2025. Legal aid's tax codes ending on 31/12/2025 is test data."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import yaml

from referrals.config import ConfigError, load_province
from referrals.config.settings import get_settings
from referrals.infra.db import transaction
from referrals.infra.runtime import Runtime
from referrals.interop.hsds.export import export_directory
from referrals.models.errors import DomainError
from referrals.models.lifecycle import Action
from referrals.usecases.directory.loading import load_province_data
from referrals.usecases.referrals.advancing import advance
from referrals.usecases.referrals.launch_form import launch_choices
from support.domain import consent, launch, new_client, row_counts
from support.reform import bundled_areas, config_with

BEFORE = dt.datetime(2025, 1, 10, 2, 0, tzinfo=dt.UTC)
AFTER = dt.datetime(2026, 11, 23, 2, 0, tzinfo=dt.UTC)
CITY_POLICE, NORTH_POLICE = "police-tp-nha-trang", "police-bac-nha-trang"


def partners_changed(folder: Path, change: Any) -> None:
    path = folder / "partners.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    change({p["slug"]: p for p in data["partners"]}, data["partners"])
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")


def tax_codes_ended(by_slug: dict[str, Any], _: list[Any]) -> None:
    for service in by_slug["legal-aid-centre"]["services"]:
        if service["pathway"] == "tax_code":
            service["valid_to"] = "2025-12-31"


@pytest.fixture
def reformed(rt: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Runtime:
    folder = config_with(tmp_path, bundled_areas())
    partners_changed(folder, tax_codes_ended)
    monkeypatch.setenv("REFERRALS_CONFIG_DIR", str(folder))
    get_settings.cache_clear()
    runtime = Runtime(get_settings())
    with transaction(runtime.engine) as s:
        load_province_data(s, province=runtime.province)
        runtime.user(s, "mai").area_key = "khanh-hoa"  # she launches in every unit below
    return runtime


def test_a_launch_to_an_ended_partner_names_its_successor(reformed: Runtime) -> None:
    rt = reformed
    old_client = new_client(rt, BEFORE, district="tp-nha-trang")
    consent(rt, old_client, CITY_POLICE, "id_papers", BEFORE)
    running = launch(rt, old_client, "id_papers", CITY_POLICE, BEFORE)
    client = new_client(rt, AFTER, district="phuong-bac-nha-trang")
    consent(rt, client, CITY_POLICE, "id_papers", AFTER)
    before = row_counts(rt)
    with pytest.raises(DomainError) as refused:
        launch(rt, client, "id_papers", CITY_POLICE, AFTER)
    assert refused.value.key == "partner_not_in_force"
    assert str(refused.value) == (
        "partner police-tp-nha-trang (Công an thành phố Nha Trang) ended on 28/02/2025: launch "
        "to police-nha-trang or police-bac-nha-trang or police-tay-nha-trang or "
        "police-nam-nha-trang"
    )
    assert row_counts(rt) == before
    # The referral launched while the city police were in force keeps running.
    with transaction(rt.engine) as s:
        advance(s, code=running, action=Action.accept, by=rt.user(s), ctx=rt.ctx, now=AFTER)
    consent(rt, client, NORTH_POLICE, "id_papers", AFTER)
    assert launch(rt, client, "id_papers", NORTH_POLICE, AFTER)


def test_a_service_no_longer_offered_is_refused(reformed: Runtime) -> None:
    rt = reformed
    client = new_client(rt, AFTER, district="phuong-nam-nha-trang")
    consent(rt, client, "legal-aid-centre", "tax_code", AFTER)
    with pytest.raises(DomainError, match=r"does not offer tax_code since 31/12/2025$"):
        launch(rt, client, "tax_code", "legal-aid-centre", AFTER)
    # Legal advice, listed for the two old districts only, serves the wards after them.
    consent(rt, client, "legal-aid-centre", "legal_aid", AFTER)
    assert launch(rt, client, "legal_aid", "legal-aid-centre", AFTER)


def test_the_form_and_the_export_show_what_is_in_force(reformed: Runtime) -> None:
    rt = reformed
    with transaction(rt.engine) as s:
        by = rt.user(s, "admin")
        choices = launch_choices(s, by=by, client_code=None, now=AFTER, tz=rt.settings.tz)
        offered = {(o.partner, o.pathway) for o in choices.offers}
        hsds = export_directory(s, province=rt.province, tz=rt.settings.tz, now=AFTER)
        old = export_directory(s, province=rt.province, tz=rt.settings.tz, now=BEFORE)
    assert (NORTH_POLICE, "id_papers") in offered
    assert not {(CITY_POLICE, "id_papers"), ("legal-aid-centre", "tax_code")} & offered
    names = {o["name"] for o in hsds["organizations"]}
    assert "Công an phường Bắc Nha Trang" in names and "Công an thành phố Nha Trang" not in names
    areas = {a["name"] for s in hsds["services"] for a in s["service_areas"]}
    assert "Thành phố Nha Trang" not in areas and "Phường Bắc Nha Trang" in areas
    assert "Phường Lộc Thọ" not in areas  # a ward of the city, ended in 2025
    # The directory as it was on 10/01/2025: the city police, not yet the ward's.
    names = {o["name"] for o in old["organizations"]}
    assert "Công an thành phố Nha Trang" in names and "Công an phường Bắc Nha Trang" not in names


@pytest.mark.parametrize(
    ("change", "error"),
    [
        (
            lambda by, _: by[CITY_POLICE].update(successors=["police-nowhere"]),
            r"partners.yaml:\d+ .*police-tp-nha-trang.* successors.0: no partner 'police-nowhere'",
        ),
        (
            lambda by, _: by["police-ninh-hoa"].update(successors=["police-xa-hoa-tri"]),
            r"partners.yaml:\d+ .*successors: a partner with successors must end: set valid_to",
        ),
    ],
    ids=["unknown successor", "no end"],
)
def test_a_bad_partner_succession_is_refused_with_its_line(
    tmp_path: Path, change: Any, error: str
) -> None:
    folder = config_with(tmp_path, bundled_areas())
    partners_changed(folder, change)
    with pytest.raises(ConfigError, match=error):
        load_province(folder)
