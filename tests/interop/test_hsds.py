"""The partner directory as Open Referral HSDS 3.1 (issue 10): the export validates with a
third-party model of the standard (hsds-validator), another installation that imports it exports
the same directory, and a bad file changes nothing."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from hsds_validator.lib.models import HSDS_MODELS
from sqlalchemy import select
from sqlmodel import Session

from referrals.config import get_settings, load_province
from referrals.infra.db import transaction
from referrals.infra.runtime import Runtime
from referrals.models.directory import Contact, Organization, Service
from referrals.models.people import Role, User
from referrals.queries.directory import directory
from referrals.usecases.directory.admin import set_contact_active
from referrals.usecases.directory.loading import load_province_data
from referrals.usecases.staff.tokens import issue_token
from referrals.web.app import create_app
from support import ROOT
from support.cluster import PG_ADMIN, drop_database, fresh_database
from support.domain import cli, ready_referral, row_counts
from support.pages import Clock, logged_in, staff_users

BUNDLED = ROOT / "referrals" / "config" / "khanh-hoa"
NAME, PHONE = "Lê Thị Hạnh", "0905 456 789"
STATION = """    kind: health
    locations:
      - key: tram
        name: "Trạm Y tế phường Phương Sơn"
        address: "12 Đường Demo, phường Phương Sơn"
        area: nha-trang
        postal_code: "57000"
        hours:
          - days: [MO, TU, WE, TH, FR]
            opens: "07:00"
            closes: "11:30"
          - days: [MO, TU, WE, TH, FR]
            opens: "13:30"
            closes: "17:00"
          - days: [SA]
            opens: "07:30"
            closes: "11:00"
    services:
      - pathway: health_check
        name: "Khám sức khỏe"
        name_en: "Health check"
        areas: [nha-trang]
        locations: [tram]
"""


def _with_station(config: Path) -> None:
    """The bundled directory, with opening hours and an address for one ward health station."""
    path = config / "partners.yaml"
    text = path.read_text(encoding="utf-8")
    anchor = text.index("slug: phuong-son-health")
    start = text.index("    kind: health\n", anchor)
    end = text.index("    contacts:\n", start)
    path.write_text(text[:start] + STATION + text[end:], encoding="utf-8")


@pytest.fixture
def office(rt: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Runtime:
    """Khánh Hòa with its own config folder (with a located partner) and a capacity given."""
    config = tmp_path / "config"
    shutil.copytree(BUNDLED, config)
    _with_station(config)
    monkeypatch.setenv("REFERRALS_CONFIG_DIR", str(config))
    get_settings.cache_clear()
    runtime = Runtime(get_settings())
    with transaction(runtime.engine) as s:
        load_province_data(s, province=runtime.province)
        service = s.scalars(
            select(Service).join(Organization).where(Organization.slug == "phuong-son-health")
        ).one()
        service.capacity = "waitlist"
        service.capacity_at = dt.datetime(2026, 11, 20, 2, 15, tzinfo=dt.UTC)
    return runtime


def _export(capsys: pytest.CaptureFixture[str], out: Path) -> dict[str, Any]:
    status, _, err = cli(capsys, "directory", "export", "--out", str(out))
    assert status == 0, err
    return json.loads(out.read_text(encoding="utf-8"))


def _validate(doc: dict[str, Any]) -> None:
    """Every object through hsds-validator's models. One known flaw of theirs is worked around:
    they type contact.phones as a string, where HSDS 3.1 (contact.json) has an array of phone
    objects, so the phones are checked as Phone objects and the contact without them."""
    for org in doc["organizations"]:
        contacts = org.pop("contacts")
        HSDS_MODELS["Organization"].model_validate(org)
        for contact in contacts:
            for phone in contact["phones"]:
                HSDS_MODELS["Phone"].model_validate(phone)
            HSDS_MODELS["Contact"].model_validate(
                {k: v for k, v in contact.items() if k != "phones"}
            )
        org["contacts"] = contacts
    for service in doc["services"]:
        HSDS_MODELS["Service"].model_validate(service)


def _ids(doc: Any) -> Iterator[str]:
    if isinstance(doc, dict):
        for key, value in doc.items():
            if key == "id" or key.endswith("_id"):
                yield value
            yield from _ids(value)
    elif isinstance(doc, list):
        for item in doc:
            yield from _ids(item)


def test_export_is_hsds_and_names_no_client(
    office: Runtime, now: dt.datetime, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ready_referral(office, now, name=NAME, phone=PHONE)
    doc = _export(capsys, tmp_path / "directory.json")
    _validate(doc)
    text = json.dumps(doc, ensure_ascii=False)
    assert NAME not in text and "84905456789" not in text and "456 789" not in text

    ids = list(_ids(doc))
    assert all(uuid.UUID(i).version == 5 for i in ids)
    objects = [o["id"] for o in doc["organizations"]] + [s["id"] for s in doc["services"]]
    today = dt.datetime.now(ZoneInfo("Asia/Ho_Chi_Minh")).date()  # the export's day
    with Session(office.engine) as s:
        in_force = directory(s, today)  # the export carries the directory of its day only
        assert len(objects) == len(set(objects)) == sum(len(p["services"]) + 1 for p in in_force)
        assert len(in_force) == len(directory(s)) - 2  # the city and town police of 2019-2025
    assert doc == {**_export(capsys, tmp_path / "again.json"), "exported_at": doc["exported_at"]}

    (station,) = [o for o in doc["organizations"] if o["uri"].endswith(":phuong-son-health")]
    (place,) = station["locations"]
    assert place["addresses"][0] | {"id": None, "location_id": None} == {
        "id": None,
        "location_id": None,
        "address_1": "12 Đường Demo, phường Phương Sơn",
        "city": "Phường Nha Trang",
        "state_province": "Khánh Hòa",
        "postal_code": "57000",
        "country": "VN",
        "address_type": "physical",
    }
    assert [(s["byday"], s["opens_at"], s["closes_at"]) for s in place["schedules"]] == [
        ("MO,TU,WE,TH,FR", "07:00+07:00", "11:30+07:00"),
        ("MO,TU,WE,TH,FR", "13:30+07:00", "17:00+07:00"),
        ("SA", "07:30+07:00", "11:00+07:00"),
    ]
    (service,) = [s for s in doc["services"] if s["organization_id"] == station["id"]]
    assert service["service_at_locations"][0]["location_id"] == place["id"]
    assert [a["uri"] for a in service["service_areas"]] == [
        "urn:referrals:khanh-hoa:area:nha-trang"
    ]
    (capacity,) = service["capacities"]
    # The day only (local), not the minute a contact answered about one client's referral.
    assert (capacity["available"], capacity["updated"]) == (0, "2026-11-20T00:00:00.000+07:00")
    assert "(waitlist)" in capacity["description"]
    contact = station["contacts"][0]
    assert contact["phones"][0]["number"] == "+84905000109"
    assert {a["link_type"]: a["value"] for a in contact["attributes"]}["referrals_rank"] == "1"

    out = cli(capsys, "partners")[1]
    assert "@tram Trạm Y tế phường Phương Sơn" in out and "SA 07:30-11:00" in out


def test_coordinator_sees_where_the_client_goes(office: Runtime, now: dt.datetime) -> None:
    code = ready_referral(office, now, "health_check", "phuong-son-health", name=NAME, phone=PHONE)
    other = ready_referral(
        office, now, "id_papers", "police-nha-trang", name="B", phone="0905 111 222"
    )
    staff_users(office)
    browser = logged_in(Clock(now), "mai")
    page = browser.get(f"/referrals/{code}").text
    assert "Nơi tiếp nhận:" in page and "12 Đường Demo, phường Phương Sơn, Phường Nha Trang" in page
    assert "T2–T6 07:00–11:30; T2–T6 13:30–17:00; T7 07:30–11:00" in page
    assert 'id="places"' not in browser.get(f"/referrals/{other}").text
    browser.cookies.set("lang", "en")
    assert "Where to go:" in (page := browser.get(f"/referrals/{code}").text)
    assert "Mon–Fri 07:00–11:30" in page


def test_api_serves_the_same_file(
    office: Runtime, now: dt.datetime, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with transaction(office.engine) as s:
        token = issue_token(
            s, username="mai", name="directory", by=office.user(s, "admin"), now=now
        )
    api = TestClient(create_app())
    assert api.get("/api/v1/directory/hsds").status_code == 401
    got = api.get("/api/v1/directory/hsds", headers={"Authorization": f"Bearer {token}"})
    assert got.status_code == 200
    exported = _export(capsys, tmp_path / "directory.json")
    assert got.json() == {**exported, "exported_at": got.json()["exported_at"]}


@pytest.fixture
def elsewhere(db_url: str, tmp_path: Path) -> Iterator[dict[str, str]]:
    """A second, empty installation of the same province (its own database and config)."""
    config = tmp_path / "elsewhere"
    shutil.copytree(BUNDLED, config)
    pg = not db_url.startswith("sqlite")
    name = fresh_database("referrals_hsds") if pg else None
    url = PG_ADMIN.rsplit("/", 1)[0] + f"/{name}" if pg else f"sqlite:///{tmp_path / 'b.db'}"
    yield {"REFERRALS_DATABASE_URL": url, "REFERRALS_CONFIG_DIR": str(config)}
    if name:
        drop_database(name)


def test_another_installation_imports_the_same_directory(
    office: Runtime,
    elsewhere: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    exported = _export(capsys, tmp_path / "directory.json")
    with Session(office.engine) as s:
        original = directory(s)

    for key, value in elsewhere.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    assert cli(capsys, "init")[0] == 0
    config = Path(elsewhere["REFERRALS_CONFIG_DIR"])
    before = (config / "partners.yaml").read_text(encoding="utf-8")
    status, out, err = cli(capsys, "directory", "import", str(tmp_path / "directory.json"))
    assert status == 0, err
    assert "0 new, 1 changed, 0 made inactive; 1 capacities" in out
    assert "changed  phuong-son-health" in out

    rt = Runtime(get_settings())
    with Session(rt.engine) as s:
        assert directory(s) == original
    (backup,) = config.glob("partners.yaml.*.bak")
    assert backup.read_text(encoding="utf-8") == before
    # partners.yaml now says the same, so the next `init` keeps it.
    assert load_province(config).partners == office.province.partners
    assert cli(capsys, "init")[0] == 0
    again = _export(capsys, tmp_path / "back.json")
    assert again == {**exported, "exported_at": again["exported_at"]}


def test_foreign_directory_maps_onto_keys(
    office: Runtime, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A file from another tool: its own ids, phones beside the contacts (as in HSDS's tabular
    form), names for areas; our attributes for what HSDS lacks."""
    org, contact, loc, svc = (str(uuid.uuid4()) for _ in range(4))
    doc = _export(capsys, tmp_path / "mine.json")
    doc["organizations"].append(
        {
            "id": org,
            "name": "Nhóm Đồng đẳng Hòa Bình",
            "description": "",
            "contacts": [{"id": contact, "name": "Chị Tư (demo)", "title": "Trưởng nhóm"}],
            "phones": [{"id": str(uuid.uuid4()), "contact_id": contact, "number": "0905 000 199"}],
            "locations": [
                {
                    "id": loc,
                    "location_type": "physical",
                    "name": "Nhà văn hóa",
                    "addresses": [{"address_1": "3 Đường Demo", "city": "Ninh Hòa"}],
                    "schedules": [
                        {
                            "id": "s1",
                            "freq": "WEEKLY",
                            "byday": "SA,SU",
                            "opens_at": "18:00",
                            "closes_at": "21:00",
                        }
                    ],
                }
            ],
            "attributes": [{"id": "a1", "link_type": "referrals_kind", "value": "peer_group"}],
        }
    )
    doc["services"].append(
        {
            "id": svc,
            "organization_id": org,
            "name": "Sinh hoạt nhóm",
            "status": "active",
            "service_areas": [{"id": "sa1", "name": "Ninh Hoa Town"}],
            "service_at_locations": [{"id": "sal1", "location_id": loc}],
            "capacities": [
                {
                    "id": "c1",
                    "unit": {"id": "u", "name": "seats"},
                    "available": 0,
                    "updated": "2026-11-21T10:00:00+07:00",
                }
            ],
            "attributes": [
                {"id": "a2", "link_type": "referrals_pathway", "value": "psychosocial_support"}
            ],
        }
    )
    path = tmp_path / "theirs.json"
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    status, out, err = cli(capsys, "directory", "import", str(path))
    assert status == 0, err
    assert "1 new, 0 changed" in out and "new      nhom-dong-dang-hoa-binh" in out
    with Session(office.engine) as s:
        (new,) = [p for p in directory(s) if p["slug"] == "nhom-dong-dang-hoa-binh"]
    assert new["kind"] == "peer_group"
    assert new["contacts"][0]["phone"] == "+84905000199"
    assert new["services"][0] | {"name_en": None, "areas": None} == {
        "pathway": "psychosocial_support",
        "name": "Sinh hoạt nhóm",
        "name_en": None,
        "areas": None,
        "locations": ["nha-van-hoa"],
        "capacity": "full",
    }
    # "Ninh Hoa Town" is the town of 2019-2025: the group serves it and the units after it.
    (written,) = [
        p for p in load_province(office.settings.config_dir).partners if p.slug == new["slug"]
    ]
    assert written.services[0].areas == ["tx-ninh-hoa"]
    assert {"tx-ninh-hoa", "ninh-hoa", "xa-hoa-tri"} <= set(new["services"][0]["areas"])
    assert new["locations"][0]["hours"] == [
        {"days": ["SA", "SU"], "opens": "18:00", "closes": "21:00"}
    ]


BAD = {
    "not JSON": "{ this is not json",
    "no organizations": {"services": []},
    "a service with no pathway": "no pathway",
    "an unknown area": "is not an area of this province",
    "a wrong phone": "is not a phone number",
    "a service of no organization": "is not in the file",
}


def _spoil(doc: dict[str, Any], how: str) -> None:
    org, service = doc["organizations"][0], doc["services"][0]
    if how == "a service with no pathway":
        service["attributes"] = []
    elif how == "an unknown area":
        service["service_areas"] = [{"id": "x", "name": "Hà Nội"}]
    elif how == "a wrong phone":
        org["contacts"][0]["phones"][0]["number"] = "call me"
    elif how == "a service of no organization":
        service["organization_id"] = str(uuid.uuid4())


@pytest.mark.parametrize("how", list(BAD))
def test_bad_file_changes_nothing(
    office: Runtime, how: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = _export(capsys, tmp_path / "directory.json")
    path = tmp_path / "bad.json"
    if isinstance(BAD[how], dict) or how == "not JSON":
        path.write_text(BAD[how] if isinstance(BAD[how], str) else json.dumps(BAD[how]))
    else:
        _spoil(doc, how)
        path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    partners = office.settings.config_dir / "partners.yaml"
    before, counts = partners.read_bytes(), row_counts(office)

    status, _, err = cli(capsys, "directory", "import", str(path))
    assert status == 1
    expected = {"not JSON": "not a JSON file", "no organizations": "organizations: Field required"}
    assert expected.get(how, BAD[how]) in err
    assert partners.read_bytes() == before and row_counts(office) == counts
    assert not list(partners.parent.glob("partners.yaml*.bak"))


def test_dry_run_and_who_may_import(
    office: Runtime,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    doc = _export(capsys, tmp_path / "directory.json")
    doc["organizations"] = [
        o for o in doc["organizations"] if not o["uri"].endswith(":saphira-legal")
    ]
    doc["services"] = [
        s
        for s in doc["services"]
        if s["organization_id"] in {o["id"] for o in doc["organizations"]}
    ]
    path = tmp_path / "smaller.json"
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    partners = office.settings.config_dir / "partners.yaml"
    before, counts = partners.read_bytes(), row_counts(office)

    status, out, _ = cli(capsys, "directory", "import", str(path), "--dry-run")
    assert status == 0 and "would change: 0 new, 0 changed, 1 made inactive" in out
    assert "inactive saphira-legal" in out
    assert partners.read_bytes() == before and row_counts(office) == counts

    monkeypatch.setenv("REFERRALS_USER", "mai")
    get_settings.cache_clear()
    status, _, err = cli(capsys, "directory", "import", str(path))
    assert status == 1 and "admin" in err
    assert partners.read_bytes() == before and row_counts(office) == counts

    monkeypatch.setenv("REFERRALS_USER", "admin")
    get_settings.cache_clear()
    assert cli(capsys, "directory", "import", str(path))[0] == 0
    with Session(office.engine) as s:
        assert (
            not s.scalars(select(Organization).where(Organization.slug == "saphira-legal"))
            .one()
            .active
        )
        assert s.scalars(select(User).where(User.role == Role.admin.value)).first() is not None


def _import(
    capsys: pytest.CaptureFixture[str], doc: dict[str, Any], path: Path, *flags: str
) -> tuple[int, str, str]:
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    return cli(capsys, "directory", "import", str(path), *flags)


def test_inactive_contacts_survive_a_round_trip(
    office: Runtime, now: dt.datetime, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The export leaves out contacts that are off; importing it must not drop them from
    partners.yaml, nor refuse a partner whose contacts are all off."""
    with transaction(office.engine) as s:
        for c in s.scalars(
            select(Contact).join(Organization).where(Organization.slug == "saphira-legal")
        ):
            set_contact_active(
                s, contact_id=c.id, active=False, by=office.user(s, "admin"), now=now
            )
    doc = _export(capsys, tmp_path / "directory.json")
    (saphira,) = [o for o in doc["organizations"] if o["uri"].endswith(":saphira-legal")]
    assert saphira["contacts"] == []
    status, out, err = _import(capsys, doc, tmp_path / "same.json")
    assert status == 0, err
    assert "0 new, 0 changed, 0 made inactive" in out
    partners = {p.slug: p for p in load_province(office.settings.config_dir).partners}
    assert (
        partners["saphira-legal"] == {p.slug: p for p in office.province.partners}["saphira-legal"]
    )
    with Session(office.engine) as s:
        (row,) = [p for p in directory(s) if p["slug"] == "saphira-legal"]
    assert [c["active"] for c in row["contacts"]] == [False, False]


def test_foreign_ids_times_and_repeats(
    office: Runtime, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = _export(capsys, tmp_path / "directory.json")
    for org in doc["organizations"]:  # another tool that kept our ids but not our uri
        del org["uri"]
    (station,) = [o for o in doc["organizations"] if o["name"] == "Trạm Y tế phường Phương Sơn"]
    station["locations"][0]["schedules"] = [
        {
            "id": "s1",
            "freq": "weekly",
            "byday": "mo,tu",
            "opens_at": "00:30Z",
            "closes_at": "4:00Z",
        },
        {"id": "s2", "description": "Nghỉ trưa 11:30-13:30"},
    ]
    (service,) = [s for s in doc["services"] if s["organization_id"] == station["id"]]
    service["service_areas"].append({"id": "again", "name": "Nha Trang"})
    status, out, err = _import(capsys, doc, tmp_path / "theirs.json")
    assert status == 0, err
    assert "0 new, 1 changed, 0 made inactive" in out and "changed  phuong-son-health" in out
    with Session(office.engine) as s:
        (row,) = [p for p in directory(s) if p["slug"] == "phuong-son-health"]
    assert row["locations"][0]["hours"] == [
        {"days": ["MO", "TU"], "opens": "07:30", "closes": "11:00"}
    ]
    assert row["services"][0]["areas"] == ["nha-trang"]

    partners, counts = office.settings.config_dir / "partners.yaml", row_counts(office)
    before = partners.read_bytes()
    station["locations"][0]["schedules"] = [
        {
            "id": "s3",
            "freq": "WEEKLY",
            "interval": 2,
            "byday": "MO",
            "opens_at": "08:00",
            "closes_at": "10:00",
        }
    ]
    station["contacts"].append(dict(station["contacts"][0], id=str(uuid.uuid4())))
    status, _, err = _import(capsys, doc, tmp_path / "worse.json")
    assert status == 1 and "not every week (freq WEEKLY, interval 1)" in err
    station["locations"][0]["schedules"] = []
    status, _, err = _import(capsys, doc, tmp_path / "worst.json")
    assert status == 1 and "two contacts named Y sĩ trạm y tế (demo)" in err
    assert partners.read_bytes() == before and row_counts(office) == counts
