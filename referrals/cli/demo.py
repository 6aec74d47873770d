"""Demo data for the Khánh Hòa model: users, invented clients, referrals at every stage.

Loaded through the same import and advance paths as real work, so the demo shows real behaviour.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import secrets

from sqlalchemy import select
from sqlmodel import col

from referrals.infra.db import transaction
from referrals.infra.runtime import Runtime
from referrals.models.lifecycle import Action
from referrals.models.people import Role, User
from referrals.usecases.referrals.advancing import advance
from referrals.usecases.referrals.importing import HEADER, import_referrals
from referrals.usecases.staff.accounts import hash_password

# The coordinators work for the former city and town (ended 30/06/2025): they see the clients
# of the wards and communes that replaced them (models/policy.py).
USERS = [
    ("dieuphoi.nt", "Nguyễn Thị Mai (demo)", Role.coordinator, "tp-nha-trang"),
    ("dieuphoi.nh", "Trần Văn Hùng (demo)", Role.coordinator, "tx-ninh-hoa"),
    ("quanly", "Lê Thị Hoa (demo)", Role.manager, None),
]

# name, phone, id number, district, pathway, partner, days ago, then actions taken
CASES = [
    (
        "Phạm Thị Lan",
        "0912 345 001",
        "079190000001",
        "nha-trang",
        "health_check",
        "phuong-son-health",
        12,
        ["accept", "done", "done"],
    ),
    (
        "Võ Thị Hạnh",
        "0912 345 002",
        "",
        "nha-trang",
        "id_papers",
        "police-nha-trang",
        20,
        ["accept", "done"],
    ),
    (
        "Đặng Thị Thu",
        "0912 345 003",
        "079190000003",
        "nha-trang",
        "legal_aid",
        "legal-aid-centre",
        9,
        [],
    ),
    (
        "Huỳnh Thị Ngọc",
        "",
        "079190000004",
        "nha-trang",
        "vocational_training",
        "van-ninh-vocational",
        30,
        ["accept", "done", "done"],
    ),
    (
        "Bùi Thị Kim",
        "0912 345 005",
        "",
        "nha-trang",
        "psychosocial_support",
        "social-work-centre",
        4,
        ["accept"],
    ),
    (
        "Ngô Thị Yến",
        "0912 345 006",
        "",
        "nha-trang",
        "emergency_shelter",
        "social-work-centre",
        1,
        [],
    ),
    (
        "Lý Thị Hồng",
        "0912 345 007",
        "079190000007",
        "nha-trang",
        "tax_code",
        "legal-aid-centre",
        15,
        ["accept", "done", "done", "done"],
    ),
    (
        "Trương Thị Bích",
        "0912 345 008",
        "",
        "ninh-hoa",
        "health_check",
        "ninh-hiep-health",
        6,
        ["accept"],
    ),
    (
        "Phan Thị Nga",
        "0912 345 009",
        "079190000009",
        "ninh-hoa",
        "id_papers",
        "police-ninh-hoa",
        8,
        [],
    ),
    (
        "Đỗ Thị Thảo",
        "0912 345 010",
        "",
        "ninh-hoa",
        "emergency_aid",
        "social-work-centre",
        2,
        ["accept", "done", "done"],
    ),
    (
        "Mai Thị Xuân",
        "0912 345 011",
        "",
        "ninh-hoa",
        "legal_aid",
        "legal-aid-centre",
        3,
        ["decline"],
    ),
    (
        "Cao Thị Diễm",
        "0912 345 012",
        "",
        "ninh-hoa",
        "vocational_training",
        "van-ninh-vocational",
        25,
        ["accept"],
    ),
]


def load_demo(rt: Runtime, *, now: dt.datetime) -> str:
    with transaction(rt.engine) as s:
        if s.scalars(select(User).where(col(User.username) == USERS[0][0])).first() is not None:
            return (
                "demo data already loaded (a new web password: "
                "`referrals user password dieuphoi.nt`)"
            )
        users = {}
        # One random password for the demo accounts, printed once: never a known default.
        password = secrets.token_urlsafe(9)
        hashed = hash_password(password)
        for username, full_name, role, area in USERS:
            users[username] = User(
                username=username,
                full_name=full_name,
                role=role.value,
                area_key=area,
                email=f"{username}@example.vn",  # demo: alerts about undeliverable messages
                password_hash=hashed,
            )
            s.add(users[username])
        s.flush()
        codes: list[str] = []
        for district, coordinator in (("nha-trang", "dieuphoi.nt"), ("ninh-hoa", "dieuphoi.nh")):
            cases = [c for c in CASES if c[3] == district]
            report = import_referrals(
                s, data=_csv(cases, now, rt), coordinator=users[coordinator], ctx=rt.ctx, now=now
            )
            for code, case in zip(report.referrals, cases, strict=True):
                launched = now - dt.timedelta(days=case[6])
                for i, action in enumerate(case[7]):
                    when = launched + dt.timedelta(days=1 + i, hours=2)
                    reason = "partner_lacks_capacity" if action == "decline" else None
                    advance(
                        s,
                        code=code,
                        action=Action(action),
                        by=users[coordinator],
                        ctx=rt.ctx,
                        now=min(when, now),
                        reason=reason,
                    )
            codes += report.referrals
    return (
        f"demo: {len(USERS)} users (dieuphoi.nt, dieuphoi.nh, quanly), {len(CASES)} clients, "
        f"{len(codes)} referrals; try `referrals list` and `referrals show {codes[0]}`\n"
        f"web pages (`referrals serve`): log in as dieuphoi.nt, dieuphoi.nh or quanly with the "
        f"password {password}"
    )


def _csv(cases: list[tuple], now: dt.datetime, rt: Runtime) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(HEADER)
    for name, phone, id_number, district, pathway, partner, days_ago, _ in cases:
        at = (
            (now - dt.timedelta(days=days_ago))
            .astimezone(rt.settings.tz)
            .isoformat(timespec="minutes")
        )
        writer.writerow([name, phone, id_number, district, pathway, partner, "written", at, ""])
    return out.getvalue().encode()
