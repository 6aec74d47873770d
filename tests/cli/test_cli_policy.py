"""The CLI under the same policy as the API and the pages: who may run what, on which district."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlmodel import Session

from referrals.cli.main import main
from referrals.config import get_settings
from referrals.infra.db import transaction
from referrals.infra.runtime import Runtime
from referrals.models.people import Client, Role, User
from referrals.models.workflow import Referral
from support.domain import ready_referral, row_counts


@pytest.fixture
def world(rt: Runtime, now: dt.datetime) -> dict[str, str]:
    with transaction(rt.engine) as s:
        s.add(
            User(username="binh", full_name="NH", role=Role.coordinator.value, area_key="ninh-hoa")
        )
    ref = ready_referral(rt, now)  # Nha Trang
    with Session(rt.engine) as s:
        client_id = s.scalars(select(Referral.client_id).where(Referral.code == ref)).one()
        client = s.get(Client, client_id).code  # type: ignore[union-attr]
    return {"ref": ref, "client": client}


def run(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], user: str, *args: str
) -> tuple[int, str, str]:
    monkeypatch.setenv("REFERRALS_USER", user)
    get_settings.cache_clear()
    with pytest.raises(SystemExit) as exit_:
        main(list(args))
    out, err = capsys.readouterr()
    return int(exit_.value.code or 0), out, err


def test_the_cli_authorisation_matrix(
    rt: Runtime,
    world: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    ref, client = world["ref"], world["client"]
    csv = tmp_path / "nt.csv"
    csv.write_text(
        "name,phone,id_number,district,pathway,partner,consent,launched_at,urgent\n"
        "Nguyễn Văn Nhập,0905 999 111,,nha-trang,legal_aid,legal-aid-centre,written,,\n",
        encoding="utf-8",
    )
    consent = (
        "consent",
        "grant",
        client,
        "--partner",
        "legal-aid-centre",
        "--purpose",
        "legal_aid",
    )
    launch = ("launch", client, "--pathway", "legal_aid", "--partner", "legal-aid-centre")
    refusals = [
        # (user, command, what the one-line error says)
        ("binh", ("show", ref), f"unknown referral '{ref}'"),
        ("binh", ("list", "--district", "nha-trang"), "works in ninh-hoa, not nha-trang"),
        ("binh", ("advance", ref, "--action", "accept"), f"unknown referral '{ref}'"),
        ("hoa", ("advance", ref, "--action", "accept"), "may read referral"),
        ("binh", ("client", "add", "--name", "X", "--district", "nha-trang"), "unknown district"),
        ("binh", consent, f"unknown client '{client}'"),
        ("binh", launch, f"unknown client '{client}'"),
        ("hoa", launch, "may read client"),
        ("binh", ("import", str(csv)), "binh may not launch in nha-trang"),
        (
            "binh",
            ("report", "--from", "2026-11-01", "--to", "2026-11-30", "--district", "nha-trang"),
            "works in ninh-hoa",
        ),
        ("mai", ("client", "export", client), "client export is for manager or admin users"),
        ("mai", ("client", "erase", client, "--yes"), "client erase is for manager or admin users"),
        ("hoa", ("deliver",), "deliver is for admin users"),
        ("mai", ("sweep",), "sweep is for admin users"),
        ("hoa", ("digest",), "digest is for admin users"),
        ("mai", ("outbox",), "outbox is for manager or admin users"),
        ("hoa", ("token", "create", "hoa"), "token create is for admin users"),
        ("hoa", ("keys", "rotate"), "keys rotate is for admin users"),
        ("mai", ("audit", "seal"), "audit seal is for admin users"),
        ("hoa", ("outbox", "retry", "1"), "outbox retry is for admin users"),
    ]
    before = row_counts(rt)
    for user, args, says in refusals:
        code, out, err = run(monkeypatch, capsys, user, *args)
        assert code == 1 and says in err and "Traceback" not in err, (user, args, out, err)
    assert row_counts(rt) == before
    # What each may do.
    code, out, _ = run(monkeypatch, capsys, "binh", "list", "--json")
    assert code == 0 and json.loads(out) == []
    code, out, _ = run(monkeypatch, capsys, "hoa", "list", "--json")
    assert [r["code"] for r in json.loads(out)] == [ref]
    code, out, _ = run(monkeypatch, capsys, "hoa", "show", ref, "--json")
    assert code == 0 and json.loads(out)["code"] == ref
    code, out, _ = run(
        monkeypatch,
        capsys,
        "binh",
        "report",
        "--from",
        "2026-11-01",
        "--to",
        "2026-11-30",
        "--json",
    )
    assert code == 0 and json.loads(out)["period"]["district"] == "ninh-hoa"
    assert run(monkeypatch, capsys, "hoa", "outbox", "--json")[0] == 0
    assert run(monkeypatch, capsys, "hoa", "client", "export", client)[0] == 0
    assert run(monkeypatch, capsys, "mai", *consent)[0] == 0
    assert run(monkeypatch, capsys, "mai", "advance", ref, "--action", "accept")[0] == 0
    assert run(monkeypatch, capsys, "admin", "sweep", "--via", "direct")[0] == 0
