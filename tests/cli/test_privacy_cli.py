"""`referrals privacy ...` as a manager types it: every command in a fresh process (its repeats
in this one), on both databases. Requests with their deadlines, one extension (the second refused in one line), a
closure that makes and links the export; a breach, who was told, its notice (no name in it);
the processing record; the retention preview and the sweep that acts on it."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml
from sqlalchemy import update

from referrals.config.settings import BUNDLED_CONFIG
from referrals.infra.db import transaction
from referrals.infra.runtime import Runtime
from referrals.models.people import User
from support.commands import Commands, Done, refused
from support.domain import consent, launch, new_client

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
NAME = "Huỳnh Thị Thanh Tâm"
WORDS = "Chị Tâm muốn xem hồ sơ"


def local(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=TZ)


@pytest.fixture
def env(rt: Runtime, tmp_path: Path) -> Commands:
    """The test's database, a config with a year's retention, a manager with an e-mail."""
    folder = tmp_path / "config"
    shutil.copytree(BUNDLED_CONFIG, folder)
    path = folder / "province.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["data_protection"]["retention_days"] = 365
    data["data_protection"]["officer"] = {"name": "Phòng Pháp chế", "email": "phapche@example.vn"}
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    with transaction(rt.engine) as s:
        s.execute(update(User).where(User.username == "hoa").values(email="hoa@chicuc.example.vn"))
    return Commands({"REFERRALS_CONFIG_DIR": str(folder), "REFERRALS_USER": "hoa"})


def run(env: Commands, *args: str, user: str = "hoa") -> Done:
    """Each command's first run in a fresh process, its repeats here (support/commands.py)."""
    return env(*args, REFERRALS_USER=user)


def ok(env: Commands, *args: str, user: str = "hoa") -> str:
    done = run(env, *args, user=user)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_requests_in_fresh_processes(rt: Runtime, env: dict[str, str], tmp_path: Path) -> None:
    client = new_client(rt, local("2026-02-01 09:00"), name=NAME)
    added = json.loads(
        ok(
            env,
            "privacy",
            "requests",
            "add",
            client,
            "--kind",
            "access",
            "--channel",
            "letter",
            "--received",
            "13/02/2026",
            "--text",
            WORDS,
            "--now",
            "2026-02-13T10:00",
            "--json",
        )
    )
    code = added["code"]
    assert added["ack_due_at"] == "2026-02-24T17:00:00+07:00"  # two working days after Tết
    assert added["due_at"] == "2026-02-23T17:00:00+07:00"  # ten calendar days
    text = ok(
        env, "privacy", "requests", "add", client, "--kind", "erase", "--channel", "phone",
        "--third-party", "--now", "2026-02-13T10:00",
    )  # fmt: skip
    assert "done by 15/03/2026 17:00" in text  # 30 days via a third party
    bad = refused(
        run(env, "privacy", "requests", "add", client, "--kind", "forget", "--channel", "letter")
    )
    assert "kind" in bad
    assert "manager or admin" in refused(run(env, "privacy", "requests", "list", user="mai"))

    assert "acknowledged" in ok(
        env, "privacy", "requests", "ack", code, "--now", "2026-02-20T09:00"
    )
    extended = ok(
        env, "privacy", "requests", "extend", code, "--days", "10", "--reason", "Cần bản sao từ CDC",
        "--now", "2026-02-20T09:05",
    )  # fmt: skip
    assert "done by 05/03/2026 17:00" in extended
    again = refused(
        run(env, "privacy", "requests", "extend", code, "--days", "1", "--reason", "again",
            "--now", "2026-02-21T09:00")
    )  # fmt: skip
    assert "already extended once" in again

    rows = json.loads(ok(env, "privacy", "requests", "list", "--now", "2026-02-21T09:00", "--json"))
    # The next deadline first: the erasure's answer (24/02) before the extended access (05/03).
    assert [(r["kind"], r["extended"]) for r in rows] == [("erase", False), ("access", True)]
    assert WORDS not in json.dumps(rows, ensure_ascii=False)
    table = ok(env, "privacy", "requests", "list", "--state", "all", "--now", "2026-02-21T09:00")
    assert code in table and "access" in table
    shown = json.loads(ok(env, "privacy", "requests", "show", code, "--json"))
    assert shown["text"] == WORDS and shown["extension_reason"] == "Cần bản sao từ CDC"

    out = tmp_path / "export.json"
    closed = json.loads(
        ok(
            env,
            "privacy",
            "requests",
            "close",
            code,
            "--outcome",
            "done",
            "--export",
            str(out),
            "--note",
            "Đã giao bản sao tận tay",
            "--now",
            "2026-02-25T09:00",
            "--json",
        )
    )
    assert (
        closed["linked"]["kind"] == "client.exported" and closed["event"] == closed["linked"]["id"]
    )
    assert json.loads(out.read_text(encoding="utf-8"))["client"]["name"] == NAME
    assert "was closed" in refused(
        run(env, "privacy", "requests", "close", code, "--outcome", "done")
    )


def test_breaches_record_and_retention_in_fresh_processes(
    rt: Runtime, env: dict[str, str], tmp_path: Path
) -> None:
    at = local("2025-07-07 09:00")
    kept = new_client(rt, at, name=NAME)
    consent(rt, kept, "cdc-khanh-hoa", "health_check", at)
    launch(rt, kept, "health_check", "cdc-khanh-hoa", at)
    old = new_client(rt, at, name="Mai Thị Cũ")

    added = json.loads(
        ok(
            env,
            "privacy",
            "breach",
            "add",
            "--discovered",
            "2026-02-13T22:30",
            "--category",
            "name",
            "--category",
            "services",
            "--area",
            "nha-trang",
            "--nature",
            "Mất máy tính xách tay",
            "--measures",
            "Đổi khóa",
            "--now",
            "2026-02-14T08:00",
            "--json",
        )
    )
    code = added["code"]
    assert added["notify_due_at"] == "2026-02-16T22:30:00+07:00"
    assert f"{code}  13/02/2026 22:30  16/02/2026 22:30  61.5 h left" in ok(
        env, "privacy", "breach", "list", "--now", "2026-02-14T09:00"
    )
    told = ok(
        env, "privacy", "breach", "notify", code, "--told", "authority",
        "--recipient", "Cục A05, Bộ Công an", "--channel", "portal", "--at", "2026-02-15T10:00",
        "--now", "2026-02-15T10:05",
    )  # fmt: skip
    assert "authority told 15/02/2026 10:00" in told
    listed = json.loads(ok(env, "privacy", "breach", "list", "--json"))
    assert listed[0]["notified_at"] == "2026-02-15T10:00:00+07:00"
    notice = ok(env, "privacy", "breach", "notice", code)
    assert notice.startswith("CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM") and "Phòng Pháp chế" in notice
    assert "Họ và tên: 2 bản ghi" in notice and NAME not in notice and "Mai Thị Cũ" not in notice
    written = tmp_path / "notice.md"
    assert "written" in ok(
        env, "privacy", "breach", "notice", code, "--lang", "en", "--out", str(written)
    )
    assert "Art. 28 k1 d" in written.read_text(encoding="utf-8")

    record = json.loads(ok(env, "privacy", "record", "--json"))
    assert record["subjects"]["clients"] == 2 and record["retention"]["retention_days"] == 365
    health = next(p for p in record["purposes"] if p["pathway"] == "health_check")
    assert health["referrals"] == 1 and health["active_consents"] == 1
    assert [s["partner"] for s in record["sharing"]] == ["cdc-khanh-hoa"]
    markdown = ok(env, "privacy", "record")
    assert markdown.startswith("# Hồ sơ hoạt động xử lý dữ liệu cá nhân") and NAME not in markdown

    preview = json.loads(
        ok(env, "privacy", "retention", "--now", "2026-07-01T09:00", "--json", user="admin")
    )
    assert preview["clients"] == [
        {**preview["clients"][0], "client": old, "action": "notice"}
    ]  # the other has an open referral
    swept = json.loads(
        ok(env, "sweep", "--via", "direct", "--now", "2026-07-01T09:00", "--json", user="admin")
    )
    assert swept["retention_noticed"] == 1 and swept["retention_erased"] == 0
    assert "wait" in ok(env, "privacy", "retention", "--now", "2026-07-05T09:00")
    swept_text = ok(env, "sweep", "--via", "direct", "--now", "2026-07-08T09:00", user="admin")
    assert "retention: 0 clients announced, 1 erased" in swept_text
    assert "no client due" in ok(env, "privacy", "retention", "--now", "2026-07-09T09:00")
