"""An office that installed the first release upgrades to this one (issue 22, "Upgrades without
surprises"), on SQLite and on a fresh PostgreSQL database.

The database is made by the first migration alone (0001) and filled as the first release wrote
its rows: the directory, an admin and a coordinator, clients with their details sealed under
the secret (the first release's format, written out here, not the engine's code), consents,
three referrals (one waiting for the partner, one cancelled, one under way) with their steps,
events and outbox rows in the statuses of the time ('pending' messages). `upgrade-check` names
the pending migrations; the migrations run; then, each in a fresh process as an operator types
it, `referrals check` holds, `upgrade-check` finds the schema current, and the rest of the
upgrade (`init`, `keys rotate`, `audit seal`) leaves the data whole, the names readable.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import os
import secrets
import subprocess
import sys
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import PG_ADMIN, SECRET
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import create_engine, text

from referrals.migrations import head_revision, pending_revisions, upgrade
from support.reform import old_keys_config

T0 = dt.datetime(2026, 11, 23, 2, 0, tzinfo=dt.UTC)  # Monday 09:00 in Nha Trang
ADMIN = "quantri"
NAMES = {"C-8QP9B-9NYE8": "Lê Thị Hạnh", "C-3MZ7K-QW4TD": "Trần Văn Bảy"}


@pytest.fixture(params=["sqlite", "postgresql"])
def first_release(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database of this test's own (PostgreSQL: created here, dropped after)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'first.db'}"
        return
    name = f"referrals_upgrade_{os.getpid()}_{secrets.token_hex(3)}"
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    finally:
        from referrals.infra.db import get_engine

        get_engine(PG_ADMIN.rsplit("/", 1)[0] + f"/{name}").dispose()
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


# The first release's crypto (referrals/models/crypto.py at migration 0001), as it wrote.
def _derive(purpose: bytes) -> bytes:
    kdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"referrals", info=purpose)
    return kdf.derive(SECRET.encode())


def seal(value: str, column: str) -> str:
    key = _derive(b"pii-encryption-v1")
    nonce = os.urandom(12)
    sealed = AESGCM(key).encrypt(nonce, value.encode(), column.encode())
    return f"{hashlib.sha256(key).hexdigest()[:8]}:{base64.b64encode(nonce + sealed).decode()}"


def lookup(value: str, kind: str) -> str:
    normal = unicodedata.normalize("NFC", value).strip().upper()
    return hmac.new(_derive(b"pii-lookup-v1"), f"{kind}:{normal}".encode(), "sha256").hexdigest()


def fill_as_the_first_release(url: str) -> None:
    """Rows as the first release's code wrote them, in 0001's tables, with raw SQL."""
    sqlite = url.startswith("sqlite")

    def at(hours: float) -> Any:  # UTCDateTime: naive UTC text on SQLite, timestamptz on PG
        value = T0 + dt.timedelta(hours=hours)
        return value.replace(tzinfo=None).isoformat(" ", "microseconds") if sqlite else value

    def rows(table: str, *values: dict[str, Any]) -> None:
        columns = list(values[0])
        names = ", ".join(f'"{c}"' for c in columns)
        marks = ", ".join(f":{c}" for c in columns)
        c.execute(text(f'INSERT INTO "{table}" ({names}) VALUES ({marks})'), list(values))

    steps = [
        ("acknowledge", "partner", "Xác nhận tiếp nhận", "Acknowledge referral", 2),
        ("application_received", "partner", "Tiếp nhận đủ hồ sơ", "Complete application", 5),
        ("card_issued", "partner", "Cấp thẻ căn cước", "Identity card issued", 7),
        ("client_confirmed", "coordinator", "Xác nhận với người được hỗ trợ", "Confirmed", 3),
    ]
    definition = {
        "key": "id_papers",
        "name": "Làm giấy tờ tùy thân",
        "name_en": "Identity papers",
        "steps": [
            {"key": k, "actor": a, "name": n, "name_en": e, "due": {"working_days": d}}
            for k, a, n, e, d in steps
        ],
    }
    engine = create_engine(url)
    with engine.begin() as c:
        rows(
            "area",
            {"key": "khanh-hoa", "name": "Tỉnh Khánh Hòa", "name_en": "Khanh Hoa Province",
             "level": "province", "parent_key": None},
            {"key": "nha-trang", "name": "Thành phố Nha Trang", "name_en": "Nha Trang City",
             "level": "district", "parent_key": "khanh-hoa"},
        )  # fmt: skip
        rows(
            "organization",
            {"id": 1, "slug": "police-nha-trang", "name": "Công an thành phố Nha Trang",
             "name_en": "Nha Trang City Police", "kind": "police", "active": True},
        )  # fmt: skip
        rows(
            "contact",
            {"id": 1, "organization_id": 1, "name": "Cán bộ tiếp nhận hồ sơ (demo)",
             "role": "Cán bộ Đội Cảnh sát quản lý hành chính", "phone": "+84905000113",
             "email": "tiepnhan.police-nha-trang@example.vn", "language": "vi", "rank": 1,
             "sms_unaccented": False, "active": True, "updated_at": at(-48)},
        )  # fmt: skip
        rows(
            "service",
            {"id": 1, "organization_id": 1, "pathway_key": "id_papers",
             "name": "Làm giấy tờ tùy thân", "name_en": "Identity papers", "active": True},
        )  # fmt: skip
        rows("servicearea", {"service_id": 1, "area_key": "nha-trang"})
        rows(
            "pathwayversion",
            {"id": 1, "key": "id_papers", "version": 1, "digest": "5d1f0c2a9b7e4c13",
             "name": "Làm giấy tờ tùy thân", "name_en": "Identity papers",
             "definition": json.dumps(definition, ensure_ascii=False), "created_at": at(-48)},
        )  # fmt: skip
        rows(
            "user",
            {"id": 1, "username": ADMIN, "full_name": "Quản trị hệ thống", "role": "admin",
             "area_key": None, "email": None, "active": True},
            {"id": 2, "username": "mai", "full_name": "Nguyễn Thị Mai", "role": "coordinator",
             "area_key": "nha-trang", "email": "mai@example.vn", "active": True},
        )  # fmt: skip
        hanh, bay = NAMES
        rows(
            "client",
            {"id": 1, "code": hanh, "area_key": "nha-trang",
             "name_enc": seal(NAMES[hanh], "client.name"),
             "phone_enc": seal("+84905123456", "client.phone"),
             "id_number_enc": seal("056190001234", "client.id_number"),
             "phone_lookup": lookup("+84905123456", "phone"),
             "id_number_lookup": lookup("056190001234", "id_number"),
             "created_at": at(-24), "created_by": 2},
            {"id": 2, "code": bay, "area_key": "nha-trang",
             "name_enc": seal(NAMES[bay], "client.name"), "phone_enc": None,
             "id_number_enc": None, "phone_lookup": None, "id_number_lookup": None,
             "created_at": at(-23), "created_by": 2},
        )  # fmt: skip
        rows(
            "consent",
            *(
                {"id": i, "client_id": i, "organization_id": 1, "purpose": "id_papers",
                 "method": "written", "granted_at": at(-22), "granted_by": 2,
                 "withdrawn_at": None, "withdrawn_by": None}
                for i in (1, 2)
            ),
        )  # fmt: skip

        def referral(rid: int, code: str, client: int, status: str, **more: Any) -> dict[str, Any]:
            return {
                "id": rid, "code": code, "client_id": client, "pathway_key": "id_papers",
                "pathway_version": 1, "organization_id": 1, "service_id": 1,
                "area_key": "nha-trang", "coordinator_id": 2, "status": status,
                "held_from": None, "priority": "routine", "outcome": None,
                "outcome_reason": None, "launched_at": at(-20 + rid), "closed_at": None,
                "updated_at": None, "version": 1,
            } | more  # fmt: skip

        rows(
            "referral",
            referral(1, "R-F7SV4-RCFHM", 1, "requested"),
            referral(2, "R-9KX2W-T5BQA", 2, "cancelled", outcome="not-successful",
                     outcome_reason="no_longer_needed", closed_at=at(-10),
                     updated_at=at(-10), version=2),
            referral(3, "R-7HNB3-M0DPE", 2, "in-progress", updated_at=at(-2), version=4),
        )  # fmt: skip

        def step(sid: int, rid: int, seq: int, status: str, **more: Any) -> dict[str, Any]:
            key, actor, *_, days = steps[seq]
            return {
                "id": sid, "referral_id": rid, "seq": seq, "key": key, "actor": actor,
                "status": status, "due_rule": json.dumps({"working_days": days}),
                "activated_at": None, "due_at": None, "completed_at": None,
                "completed_by": None, "reminders_sent": 0, "escalation_level": 0,
            } | more  # fmt: skip

        rows(
            "step",
            step(1, 1, 0, "active", activated_at=at(-19), due_at=at(29)),
            *(step(1 + seq, 1, seq, "pending") for seq in (1, 2, 3)),
            step(5, 2, 0, "skipped", activated_at=at(-18), due_at=at(30)),
            *(step(5 + seq, 2, seq, "skipped") for seq in (1, 2, 3)),
            step(9, 3, 0, "done", activated_at=at(-17), due_at=at(31),
                 completed_at=at(-5), completed_by="partner:police-nha-trang"),
            step(10, 3, 1, "done", activated_at=at(-5), due_at=at(115),
                 completed_at=at(-2), completed_by="partner:police-nha-trang"),
            step(11, 3, 2, "active", activated_at=at(-2), due_at=at(166)),
            step(12, 3, 3, "pending"),
        )  # fmt: skip

        events: list[dict[str, Any]] = []

        def event(kind: str, hours: float, data: dict[str, Any], **ids: int | None) -> None:
            events.append(
                {"id": len(events) + 1, "referral_id": ids.get("referral"),
                 "client_id": ids.get("client"), "step_id": ids.get("step"), "kind": kind,
                 "at": at(hours), "actor": ids.pop("actor", None) or "user:mai",
                 "data": json.dumps(data, ensure_ascii=False)}
            )  # fmt: skip

        for cid, code in enumerate(NAMES, start=1):
            event("client.added", -24 + cid, {"client": code, "district": "nha-trang"}, client=cid)
            event("consent.granted", -22, {"partner": "police-nha-trang", "purpose": "id_papers",
                                           "method": "written"}, client=cid)  # fmt: skip
        for rid, first in ((1, 1), (2, 5), (3, 9)):
            event("referral.requested", -20 + rid, {"from": "draft", "to": "requested",
                  "pathway": "id_papers", "version": 1, "partner": "police-nha-trang"},
                  referral=rid)  # fmt: skip
            event("step.active", -20 + rid, {"step": "acknowledge", "due_at": "2026-11-25T10:00:00+00:00"},
                  referral=rid, step=first)  # fmt: skip
        event("referral.cancelled", -10, {"from": "requested", "to": "cancelled",
              "reason": "no_longer_needed"}, referral=2)  # fmt: skip
        for sid, seq in ((5, 0), (6, 1), (7, 2), (8, 3)):
            event("step.skipped", -10, {"step": steps[seq][0]}, referral=2, step=sid)
        partner = "partner:police-nha-trang"
        event("step.done", -5, {"step": "acknowledge"}, referral=3, step=9, actor=partner)
        event("referral.accepted", -5, {"from": "requested", "to": "accepted"}, referral=3,
              actor=partner)  # fmt: skip
        event("step.active", -5, {"step": "application_received",
              "due_at": "2026-11-27T10:00:00+00:00"}, referral=3, step=10, actor=partner)  # fmt: skip
        event("step.done", -2, {"step": "application_received"}, referral=3, step=10,
              actor=partner)  # fmt: skip
        event("referral.in-progress", -2, {"from": "accepted", "to": "in-progress"}, referral=3,
              actor=partner)  # fmt: skip
        event("step.active", -2, {"step": "card_issued", "due_at": "2026-12-02T10:00:00+00:00"},
              referral=3, step=11, actor=partner)  # fmt: skip
        rows("event", *events)

        def message(nid: int, rid: int, code: str, channel: str, status: str) -> dict[str, Any]:
            return {
                "id": nid, "referral_id": rid, "contact_id": 1, "user_id": None,
                "channel": channel, "template": "referral.new", "language": "vi",
                "context": json.dumps({"code": code, "service": "Làm giấy tờ tùy thân",
                                       "step": "acknowledge", "due_at": "2026-11-25T10:00:00+00:00",
                                       "urgent": False}, ensure_ascii=False),
                "subject": None, "body": None,
                "idempotency_key": f"{code}:referral.new:1:{channel}", "status": status,
                "attempts": 0, "next_attempt_at": at(-20 + rid), "lease_until": None,
                "sent_at": None,
                "last_error": "referral closed before delivery" if status == "cancelled" else None,
                "created_at": at(-20 + rid),
            }  # fmt: skip

        rows(
            "notification",
            message(1, 1, "R-F7SV4-RCFHM", "sms", "pending"),
            message(2, 1, "R-F7SV4-RCFHM", "email", "pending"),
            message(3, 2, "R-9KX2W-T5BQA", "sms", "cancelled"),
            message(4, 3, "R-7HNB3-M0DPE", "sms", "pending"),
        )
        if not sqlite:  # the ids were given: move the sequences past them, as inserts would
            for table in ("organization", "contact", "service", "pathwayversion", "user",
                          "client", "consent", "referral", "step", "event", "notification"):  # fmt: skip
                c.execute(
                    text(f"SELECT setval(pg_get_serial_sequence('\"{table}\"', 'id'), "
                         f'(SELECT MAX(id) FROM "{table}"))')
                )  # fmt: skip
    engine.dispose()


def referrals(
    url: str,
    tmp_path: Path,
    *args: str,
    status: int = 0,
    user: str = ADMIN,
    config: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """`referrals ARGS` in a fresh process, with only this installation's settings (and its
    own province config folder, if given)."""
    env = (
        {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("REFERRALS_") and k != "PREFECT_API_URL"
        }
        | {
            "REFERRALS_DATABASE_URL": url,
            "REFERRALS_SECRET_KEY": SECRET,
            "REFERRALS_DATA_DIR": str(tmp_path / "data"),
            "REFERRALS_USER": user,
            "XDG_CONFIG_HOME": str(tmp_path / "config"),  # no settings file of the machine's
        }
        | ({"REFERRALS_CONFIG_DIR": str(config)} if config else {})
    )
    done = subprocess.run(
        [sys.executable, "-m", "referrals.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == status, (args, done.stdout[-3000:], done.stderr[-3000:])
    assert "Traceback" not in done.stderr, done.stderr
    return done


def checks(done: subprocess.CompletedProcess[str]) -> dict[str, dict[str, str]]:
    return {c["check"]: c for c in json.loads(done.stdout)["checks"]}


def test_a_database_of_the_first_release_upgrades_and_holds(
    first_release: str, tmp_path: Path
) -> None:
    url = first_release
    upgrade(url, "0001")
    fill_as_the_first_release(url)

    # Before: upgrade-check names every migration to run, with its title, and exits 1.
    before = referrals(url, tmp_path, "upgrade-check", "--json", status=1)
    schema = checks(before)["schema"]
    pending = pending_revisions("0001")
    assert len(pending) == len(pending_revisions(None)) - 1 and pending[0][0] == "0002"
    assert schema["level"] == "fail" and f"{len(pending)} migrations pending" in schema["detail"]
    assert schema["detail"].startswith(f"at migration 0001, the code needs {head_revision()}")
    for revision, title in pending:
        assert f'{revision} "{title}"' in schema["detail"]
    assert "referrals init" in schema["fix"]
    assert not json.loads(before.stdout)["up_to_date"]

    # The migrations alone (what `referrals init` runs first): every rule holds at once.
    upgrade(url)
    done = referrals(url, tmp_path, "check", "--json")
    assert json.loads(done.stdout) == {"ok": True, "broken": []}
    after = checks(referrals(url, tmp_path, "upgrade-check", "--json"))
    assert after["schema"] == {
        "check": "schema",
        "level": "ok",
        "detail": f"migrated to {head_revision()}",
        "fix": "",
    }
    assert after["variables"]["level"] == "ok" and after["deployments"]["level"] == "warn"

    # The rest of the upgrade, as deploy/README.md has it: the province's YAML loaded onto the
    # old directory, the old clients given data keys, the old events sealed into the chain.
    # The bundled config of today gives `nha-trang` to the ward of 2025, not the city the first
    # release meant: `init` refuses to move the records under it, and says what to do.
    refused = referrals(url, tmp_path, "init", status=1)
    assert refused.stderr.startswith(
        "error: 'nha-trang' would change from district 'Thành phố Nha Trang' to ward 'Phường Nha "
        "Trang' under 2 clients and 3 referrals"
    )
    assert "REFERRALS_CONFIG_DIR" in refused.stderr and refused.stderr.count("\n") == 1
    config = old_keys_config(tmp_path)  # the office's own copy keeps the first release's keys
    done = referrals(url, tmp_path, "init", config=config)
    assert "database ready" in done.stdout and "clients' names indexed" in done.stdout
    # Its records of November 2026 are under the city, which ended in 2025: named, to be moved.
    areas = checks(referrals(url, tmp_path, "upgrade-check", "--json", config=config, status=1))
    assert areas["areas"]["level"] == "fail"
    assert areas["areas"]["detail"].startswith(
        "nha-trang (Thành phố Nha Trang): 2 clients and 3 referrals recorded when it was not in force"
    )
    rotated = json.loads(referrals(url, tmp_path, "keys", "rotate", "--json", config=config).stdout)
    assert rotated["rotated"] == len(NAMES)
    sealed = json.loads(referrals(url, tmp_path, "audit", "seal", "--json", config=config).stdout)
    assert sealed["sealed"] > 0
    for code, name in NAMES.items():
        out = tmp_path / f"{code}.json"
        referrals(url, tmp_path, "client", "export", code, "--out", str(out), config=config)
        assert json.loads(out.read_text(encoding="utf-8"))["client"]["name"] == name
    done = referrals(url, tmp_path, "check", "--json", config=config)
    assert json.loads(done.stdout) == {"ok": True, "broken": []}
    listed = json.loads(
        referrals(url, tmp_path, "list", "--json", "--limit", "0", config=config).stdout
    )
    assert {r["code"]: r["status"] for r in listed} == {
        "R-F7SV4-RCFHM": "requested",
        "R-9KX2W-T5BQA": "cancelled",
        "R-7HNB3-M0DPE": "in-progress",
    }
