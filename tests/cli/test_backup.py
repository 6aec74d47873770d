"""The restore drill, `referrals check` and `referrals doctor` (issue 9), on both databases.

The drill gets a database of its own, which it really drops: backup, drop, restore, and the
restored database must tell the same story, pass the invariants and the audit chain, and make
the doctor happy.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import PG_ADMIN, SECRET
from sqlalchemy import create_engine, select, text, update
from sqlmodel import Session

from referrals.cli.doctor import Doctor
from referrals.config import Settings, get_settings
from referrals.infra.db import get_engine, transaction
from referrals.infra.runtime import Runtime
from referrals.models.lifecycle import Action
from referrals.models.people import Client, ClientKey, Role, User
from referrals.models.workflow import Referral
from referrals.usecases.clients.clients import reveal_client
from referrals.usecases.referrals.advancing import advance
from support.domain import cli, decline_with_note, ready_referral, row_counts

NAMES = ["Lê Thị Hạnh", "Trần Văn Bảy", "Phạm Thị Cúc"]


@pytest.fixture
def own_db(db_url: str, tmp_path: Path) -> Iterator[str]:
    """A database only this test uses (it will be dropped), of the run's kind."""
    if db_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'drill.db'}"
        return
    name = f"referrals_drill_{os.getpid()}_{secrets.token_hex(3)}"
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    yield PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    with admin.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _use(url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Runtime:
    for key, value in {
        "REFERRALS_DATABASE_URL": url,
        "REFERRALS_SECRET_KEY": SECRET,
        "REFERRALS_DATA_DIR": str(tmp_path / "data"),
    }.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    return Runtime(get_settings())


def _drop(url: str) -> None:
    get_engine(url).dispose()
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        for file in [path, *path.parent.glob(path.name + "-*")]:
            file.unlink()
        return
    name = url.rsplit("/", 1)[1]
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        c.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()


def _reveal(rt: Runtime, code: str, now: dt.datetime) -> str | None:
    with transaction(rt.engine) as s:
        shown = reveal_client(s, code=code, user=rt.user(s), purpose="other", ctx=rt.ctx, now=now)
    return shown["name"]


def test_backup_drop_restore(
    own_db: str,
    tmp_path: Path,
    now: dt.datetime,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    rt = _use(own_db, tmp_path, monkeypatch)
    assert cli(capsys, "init")[0] == 0
    with transaction(rt.engine) as s:
        s.add(User(username="mai", full_name="NT", role=Role.coordinator, area_key="nha-trang"))
    refs = [ready_referral(rt, now, name=n, phone=f"0905 300 00{i}") for i, n in enumerate(NAMES)]
    decline_with_note(rt, refs[0], f"{NAMES[0]} đã chuyển đi", now)
    with transaction(rt.engine) as s:
        advance(s, code=refs[1], action=Action.cancel, by=rt.user(s, "mai"), ctx=rt.ctx, now=now)
        erased, kept = (
            s.scalars(select(Client.code).join(Referral).where(Referral.code == r)).one()
            for r in (refs[1], refs[2])
        )
    assert cli(capsys, "client", "erase", erased, "--yes")[0] == 0
    assert cli(capsys, "audit", "seal")[0] == 0
    before = row_counts(rt)
    assert before["client_key"] == 2

    status, out, err = cli(
        capsys, "backup", "--out", str(tmp_path / "b"), "--keys-out", str(tmp_path / "k"), "--json"
    )
    assert status == 0, err
    written = json.loads(out)
    assert written["keys_count"] == 2
    data, keys = Path(written["data"]).parent, Path(written["keys"]).parent
    assert data.parent == tmp_path / "b" and keys.parent == tmp_path / "k"

    status, _, err = cli(capsys, "restore", str(data), "--keys", str(keys), "--yes")
    assert status == 1 and "not empty" in err  # never over live data
    assert row_counts(rt) == before

    # The data alone: everything but the clients' details, which nobody can read.
    _drop(own_db)
    status, out, err = cli(capsys, "restore", str(data), "--yes")
    assert status == 0 and "2 clients have no data key" in err, out + err
    status, out, _ = cli(capsys, "check", "--json")  # and `check` names them
    assert status == 1
    assert [b["rule"] for b in json.loads(out)["broken"]] == [
        "clients' details have their data key"
    ]
    assert row_counts(rt) == before | {"client_key": 0}
    assert _reveal(rt, kept, now) is None
    status, out, _ = cli(capsys, "keys", "rotate", "--json")  # nothing it could move, no crash
    assert status == 0 and json.loads(out)["rotated"] == 0

    # Data and keys: the same database as before.
    _drop(own_db)
    status, out, err = cli(capsys, "restore", str(data), "--keys", str(keys), "--yes")
    assert status == 0 and "2 data keys back" in out, err
    assert row_counts(rt) == before
    assert _reveal(rt, kept, now) == NAMES[2]
    with Session(rt.engine) as s:
        gone = s.scalars(select(Client).where(Client.code == erased)).one()
        assert gone.erased_at is not None and s.get(ClientKey, gone.id) is None
    status, out, err = cli(capsys, "check")
    assert status == 0 and "rules hold" in out, err
    assert cli(capsys, "audit", "verify")[0] == 0
    status, out, err = cli(capsys, "doctor", "--json")
    assert status == 0, out
    assert {c["check"]: c["level"] for c in json.loads(out)["checks"]}["consistency"] == "ok"


def test_a_damaged_or_foreign_backup_is_refused(
    rt: Runtime, tmp_path: Path, now: dt.datetime, capsys: pytest.CaptureFixture[str]
) -> None:
    ready_referral(rt, now)
    status, out, err = cli(capsys, "backup", "--out", str(tmp_path / "b"), "--json")
    assert status == 0, err
    written = json.loads(out)
    data, keys = Path(written["data"]), Path(written["keys"])
    assert data.parent.parent == keys.parent.parent  # without --keys-out, side by side
    before = row_counts(rt)
    for args, words in [
        ([str(keys.parent)], "not a data backup"),
        ([str(tmp_path)], "no readable manifest.json"),
        ([str(data.parent), "--keys", str(data.parent)], "not a keys backup"),
        ([str(data.parent)], "add --yes"),
    ]:
        status, _, err = cli(capsys, "restore", *args, *([] if "--yes" in words else ["--yes"]))
        assert status != 0 and words in err, (args, err)
    manifest = data.parent / "manifest.json"
    good = manifest.read_text()
    manifest.write_text(json.dumps(json.loads(good) | {"revision": "9999"}))
    status, _, err = cli(capsys, "restore", str(data.parent), "--yes")
    assert status == 1 and "migration 9999, which this code does not know" in err
    manifest.write_text(good)
    with data.open("r+b") as f:
        f.seek(100)
        f.write(b"\x00\x01\x02")
    status, _, err = cli(capsys, "restore", str(data.parent), "--yes")
    assert status == 1 and "damaged" in err
    assert row_counts(rt) == before


def test_check_names_what_breaks(
    rt: Runtime, now: dt.datetime, capsys: pytest.CaptureFixture[str]
) -> None:
    code = ready_referral(rt, now)
    assert cli(capsys, "check")[0] == 0
    with transaction(rt.engine) as s:  # a half-written close: status moved, closed_at not
        s.execute(update(Referral).where(Referral.code == code).values(status="cancelled"))
    status, out, _ = cli(capsys, "check", "--json")
    assert status == 1
    broken = {b["rule"]: b for b in json.loads(out)["broken"]}
    assert set(broken) == {
        "closed referrals have closed_at",
        "a closed referral has no active step",
    }
    with Session(rt.engine) as s:
        rid = s.scalars(select(Referral.id).where(Referral.code == code)).one()
    assert broken["closed referrals have closed_at"]["ids"] == [rid]


def _levels(found: Doctor) -> dict[str, str]:
    return {f.check: f.level for f in found.findings}


def test_doctor_on_a_sound_engine_and_with_the_wrong_secret(
    rt: Runtime, now: dt.datetime, monkeypatch: pytest.MonkeyPatch, settings: Settings
) -> None:
    ready_referral(rt, now)
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    found = Doctor().run()
    assert found.healthy, found.findings
    assert _levels(found) | {"channels": "?"} == {
        "settings": "ok",
        "time": "ok",
        "secret key": "ok",
        "province": "ok",
        "variables": "ok",
        "settings file": "ok",
        "data folder": "ok",
        "database": "ok",
        **({"database clock": "ok"} if rt.engine.dialect.name == "postgresql" else {}),
        "schema": "ok",
        "data keys": "ok",
        "consistency": "ok",
        "areas": "ok",
        "channels": "?",
        "prefect": "ok",
    }
    monkeypatch.setenv("REFERRALS_SECRET_KEY", "another-secret-0123456789abcdef0123456789")
    get_settings.cache_clear()
    found = Doctor().run()
    wrong = next(f for f in found.findings if f.check == "data keys")
    assert not found.healthy and wrong.level == "fail" and "PREVIOUS" in wrong.fix


def test_doctor_names_the_first_thing_to_mend(
    settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # No database there: named, and not created.
    missing = tmp_path / "none" / "referrals.db"
    monkeypatch.setenv("REFERRALS_DATA_DIR", str(missing.parent))
    monkeypatch.delenv("REFERRALS_DATABASE_URL")
    get_settings.cache_clear()
    status, out, _ = cli(capsys, "doctor")
    assert status == 1 and f"✗ data folder: {missing.parent} does not exist" in out
    assert f"✗ database: no database at {missing}\n    fix: run `referrals init`" in out
    assert "schema" not in out and not missing.parent.exists()
    # A database that was never migrated.
    (tmp_path / "new.db").touch()
    monkeypatch.setenv("REFERRALS_DATABASE_URL", f"sqlite:///{tmp_path / 'new.db'}")
    get_settings.cache_clear()
    status, out, _ = cli(capsys, "doctor")
    assert status == 1 and "✗ schema: at migration none" in out and "referrals init" in out
    assert "consistency" not in out  # skipped: the schema comes first
    # A server that does not answer, and a Prefect API that does not either.
    monkeypatch.setenv("REFERRALS_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:9/x")
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")
    get_settings.cache_clear()
    found = Doctor().run()
    levels = _levels(found)
    assert levels["database"] == "fail" and "schema" not in levels
    assert levels["prefect"] == "fail"
    # Production with a placeholder secret never gets that far.
    monkeypatch.setenv("REFERRALS_ENVIRONMENT", "production")
    monkeypatch.setenv("REFERRALS_SECRET_KEY", "changethis")
    get_settings.cache_clear()
    found = Doctor().run()
    assert [(f.check, f.level) for f in found.findings] == [
        ("settings", "fail"),
        ("variables", "ok"),  # checked without the settings: a mistyped name may be the cause
        ("prefect", "fail"),
    ]


def test_doctor_sees_a_clock_that_drifted(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Against PostgreSQL's clock (SQLite has no server clock to compare with)."""
    monkeypatch.setenv("REFERRALS_DATABASE_URL", pg_url)
    monkeypatch.setenv("REFERRALS_SECRET_KEY", SECRET)
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    get_settings.cache_clear()
    found = Doctor(now=lambda: dt.datetime.now(dt.UTC) + dt.timedelta(minutes=3)).run()
    drift = next(f for f in found.findings if f.check == "database clock")
    assert drift.level == "fail" and "180 s off" in drift.detail and "NTP" in drift.fix
