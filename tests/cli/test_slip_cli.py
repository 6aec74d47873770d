"""`referrals slip CODE --out FILE.pdf` as operators run it: each call a fresh process, on both
databases. It writes the slip (the code in it, its QR code the arrival link, nothing of the
client); a refusal is one line on stderr, exit 1, and no file."""

from __future__ import annotations

import datetime as dt
import io
import subprocess
from pathlib import Path

import pypdfium2
import zxingcpp
from pypdf import PdfReader
from sqlalchemy import select

from referrals.infra.db import transaction
from referrals.infra.runtime import Runtime
from referrals.models.links import slip_url
from referrals.models.people import Role, User
from referrals.models.workflow import Event, Referral
from support.commands import referrals
from support.domain import ready_referral

NAME, PHONE = "Vũ Thị Không Tên", "0905 975 312"
PUBLIC = "https://chuyengui.example.vn"


def run(user: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Each command's first run in a fresh process, its repeats here (support/commands.py)."""
    return referrals(*args, REFERRALS_USER=user, REFERRALS_PUBLIC_URL=PUBLIC)


def test_slip_in_a_fresh_process(rt: Runtime, now: dt.datetime, tmp_path: Path) -> None:
    code = ready_referral(rt, now, name=NAME, phone=PHONE)
    out = tmp_path / "slip.pdf"
    done = run("mai", "slip", code, "--out", str(out), "--now", "2026-11-24T16:30:00+07:00")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"slip for {code} written to {out}" and done.stderr == ""

    pdf = out.read_bytes()
    text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf)).pages)
    assert code in text and "24/11/2026" in text and "Công an phường Nha Trang" in text
    assert NAME not in text and "975 312" not in text
    with transaction(rt.engine) as s:
        referral_id = s.scalars(select(Referral.id).where(Referral.code == code)).one()
        printed = s.scalars(select(Event).where(Event.kind == "slip.printed")).one()
    image = pypdfium2.PdfDocument(pdf)[0].render(scale=3).to_pil()
    assert [b.text for b in zxingcpp.read_barcodes(image)] == [
        slip_url(PUBLIC, rt.ctx.vault, referral_id)
    ]
    assert (printed.actor, printed.at) == (
        "user:mai",
        dt.datetime(2026, 11, 24, 9, 30, tzinfo=dt.UTC),
    )

    # Refusals: one line on stderr, exit 1, no file written; another district's coordinator
    # is told the referral does not exist.
    with transaction(rt.engine) as s:
        s.add(
            User(username="binh", full_name="NH", role=Role.coordinator.value, area_key="ninh-hoa")
        )
    missing = tmp_path / "none.pdf"
    for user, args in (
        ("mai", ("R-NOSUC-H0000",)),
        ("mai", (code, "--now", "yesterday")),
        ("binh", (code,)),
    ):
        refused = run(user, "slip", *args, "--out", str(missing))
        assert refused.returncode == 1, refused
        assert refused.stderr.startswith("error: ") and refused.stderr.count("\n") == 1
        assert "Traceback" not in refused.stderr and not missing.exists()
    assert f"unknown referral '{code}'" in refused.stderr  # binh's, as if absent
