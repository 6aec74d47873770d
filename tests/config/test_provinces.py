"""Two provinces, two installations sharing nothing (deploy/README.md says why): each one's
links, data keys, lookups and doctor refuse the other's, whatever an operator mixes up."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlmodel import Session

from referrals.config import get_settings
from referrals.infra.runtime import Runtime
from referrals.models.links import link_token
from referrals.models.people import Client
from referrals.models.workflow import Notification
from referrals.web.app import create_app
from support import ROOT
from support.cluster import PG_ADMIN, drop_database, fresh_database
from support.domain import cli

PHONE = "0905 777 888"


@pytest.fixture
def provinces(db_url: str, tmp_path: Path) -> Iterator[dict[str, dict[str, str]]]:
    """Khánh Hòa and a second province (its own key, YAML, database and secret)."""
    second = tmp_path / "ninh-thuan"
    shutil.copytree(ROOT / "referrals" / "config" / "khanh-hoa", second)
    province = yaml.safe_load((second / "province.yaml").read_text(encoding="utf-8"))
    province |= {"key": "ninh-thuan", "name": "Ninh Thuận", "name_en": "Ninh Thuan Province"}
    (second / "province.yaml").write_text(yaml.safe_dump(province, allow_unicode=True))
    pg = not db_url.startswith("sqlite")
    names = [fresh_database("referrals_province") for _ in range(2)] if pg else []
    urls = (
        [PG_ADMIN.rsplit("/", 1)[0] + f"/{n}" for n in names]
        if pg
        else [f"sqlite:///{tmp_path / f'{p}.db'}" for p in ("kh", "nt")]
    )
    yield {
        key: {
            "REFERRALS_DATABASE_URL": url,
            "REFERRALS_SECRET_KEY": f"{key}-secret-0123456789abcdef0123456789",
            "REFERRALS_CONFIG_DIR": str(config),
            "REFERRALS_DATA_DIR": str(tmp_path / key),
        }
        for key, url, config in zip(
            ("khanh-hoa", "ninh-thuan"),
            urls,
            (ROOT / "referrals" / "config" / "khanh-hoa", second),
            strict=True,
        )
    }
    for name in names:
        drop_database(name)


def _as(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Runtime:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    return Runtime(get_settings())


def test_two_provinces_share_nothing(
    provinces: dict[str, dict[str, str]],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("REFERRALS_EMAIL_URL", "")
    seen: dict[str, dict[str, object]] = {}
    for key, env in provinces.items():  # the same person, known to both offices
        rt = _as(env, monkeypatch)
        assert cli(capsys, "init")[0] == 0
        status, out, err = cli(
            capsys, "client", "add", "--name", "Võ Thị Lan", "--phone", PHONE,
            "--district", "nha-trang",
        )  # fmt: skip
        assert status == 0, err
        client = out.strip()
        grant = ["--partner", "police-nha-trang", "--purpose", "id_papers"]
        assert cli(capsys, "consent", "grant", client, *grant)[0] == 0
        status, out, err = cli(
            capsys, "launch", client, "--pathway", "id_papers", *grant[:2], "--json"
        )
        assert status == 0, err
        with Session(rt.engine) as s:
            message = s.scalars(select(Notification.id).order_by(Notification.id)).first()
            lookup = s.scalars(select(Client.phone_lookup)).one()
        seen[key] = {
            "referral": json.loads(out)["code"],
            "link": link_token(rt.ctx.vault, message),  # type: ignore[arg-type]
            "lookup": lookup,
        }
        rt.engine.dispose()
    kh, nt = seen["khanh-hoa"], seen["ninh-thuan"]
    assert kh["lookup"] != nt["lookup"]  # no shared hash links the person across provinces

    for key, env in provinces.items():
        other = "ninh-thuan" if key == "khanh-hoa" else "khanh-hoa"
        _as(env, monkeypatch)
        web = TestClient(create_app())
        assert web.get(f"/l/{seen[key]['link']}").status_code == 200
        assert web.get(f"/l/{seen[other]['link']}").status_code == 404  # another office's link
        status, out, _ = cli(capsys, "list", "--json")
        codes = {r["code"] for r in json.loads(out)}
        assert codes == {seen[key]["referral"]}

    # A worker of one province pointed at the other's database is stopped by the doctor.
    mixed = provinces["ninh-thuan"] | {
        "REFERRALS_DATABASE_URL": provinces["khanh-hoa"]["REFERRALS_DATABASE_URL"]
    }
    _as(mixed, monkeypatch)
    status, out, _ = cli(capsys, "doctor", "--json")
    keys = {c["check"]: c for c in json.loads(out)["checks"]}["data keys"]
    assert status == 1 and keys["level"] == "fail" and "does not open" in keys["detail"]
