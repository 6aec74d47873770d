"""Bulk import from CSV: Excel's UTF-8 with BOM, find-or-create clients, all or nothing."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from referrals.infra.db import transaction
from referrals.infra.runtime import Runtime
from referrals.models.workflow import Referral, Step
from referrals.usecases.referrals.importing import ImportRefused, import_referrals
from support.domain import new_client, row_counts

HEADER = "name,phone,id_number,district,pathway,partner,consent,launched_at,urgent\n"


def run(rt: Runtime, text: str, now: dt.datetime, bom: bool = True, user: str = "mai"):
    """Import as `user`: mai coordinates Nha Trang; the admin (the office) imports anywhere."""
    data = ("\ufeff" if bom else "") + text
    with transaction(rt.engine) as s:
        return import_referrals(
            s, data=data.encode(), coordinator=rt.user(s, user), ctx=rt.ctx, now=now
        )


def test_import_creates_clients_consents_and_referrals(rt: Runtime, now: dt.datetime) -> None:
    existing = new_client(rt, now, name="Đã Có", id_number="079190000099", phone=None)
    csv_text = HEADER + (
        "Trần Thị A,0905 123 001,,nha-trang,id_papers,police-nha-trang,written,20/11/2026,\n"
        "Trần Thị A,0905 123 001,,nha-trang,health_check,phuong-son-health,verbal,,có\n"
        "Đã Có,,079190000099,nha-trang,legal_aid,legal-aid-centre,written,2026-11-20T08:30,no\n"
        "Lê Thị B,,,ninh-hoa,health_check,ninh-hiep-health,written,,\n"
    )
    report = run(rt, csv_text, now, user="admin")  # rows in both districts
    assert len(report.referrals) == 4
    assert (report.clients_created, report.clients_found, report.consents_recorded) == (2, 1, 4)
    with transaction(rt.engine) as s:
        refs = {
            r.code: r
            for r in s.scalars(select(Referral).where(Referral.code.in_(report.referrals)))
        }
        first = refs[report.referrals[0]]
        due = s.scalar(select(Step.due_at).where(Step.referral_id == first.id, Step.seq == 0))
        from referrals.models.people import Client

        third_client = s.get(Client, refs[report.referrals[2]].client_id).code
    assert first.launched_at == dt.datetime(2026, 11, 19, 17, 0, tzinfo=dt.UTC)  # 20/11 00:00 local
    assert due == dt.datetime(
        2026, 11, 25, 10, 0, tzinfo=dt.UTC
    )  # Fri 20 + 2 wd (Tue 24 is a holiday)
    assert refs[report.referrals[1]].priority == "urgent"
    assert refs[report.referrals[0]].client_id == refs[report.referrals[1]].client_id
    assert third_client == existing


@pytest.mark.parametrize(
    ("rows", "line", "message"),
    [
        ("X,0905 1,,nha-trang,id_papers,police-nha-trang,written,,\n", 3, "phone"),
        (
            "X,,12345,nha-trang,id_papers,police-nha-trang,written,,\n",
            3,
            "9 (CMND) or 12 (CCCD) digits",
        ),
        ("X,,,hanoi,id_papers,police-nha-trang,written,,\n", 3, "unknown district 'hanoi'"),
        ("X,,,nha-trang,id_papers,police-hanoi,written,,\n", 3, "unknown partner 'police-hanoi'"),
        ("X,,,nha-trang,id_papers,police-nha-trang,maybe,,\n", 3, "consent"),
        ("X,,,nha-trang,id_papers,police-nha-trang,written,31/02/2026,\n", 3, "launched_at"),
        ("X,,,nha-trang,legal_aid,police-nha-trang,written,,\n", 3, "does not offer legal_aid"),
        ("X,,,nha-trang,id_papers,police-ninh-hoa,written,,\n", 3, "does not serve nha-trang"),
        (
            "X,,,nha-trang,id_papers,police-nha-trang,written,,\nX2,,,nha-trang,id_papers,police-nha-trang,written,,maybe\n",
            4,
            "urgent",
        ),
    ],
)
def test_one_bad_row_imports_nothing_and_names_its_line(
    rt: Runtime, now: dt.datetime, rows: str, line: int, message: str
) -> None:
    good = "Good Row,0905 123 009,,nha-trang,health_check,phuong-son-health,written,,\n"
    before = row_counts(rt)
    with pytest.raises(ImportRefused) as err:
        run(rt, HEADER + good + rows, now)
    assert f"line {line}:" in str(err.value) and message in str(err.value)
    assert "nothing was imported" in str(err.value)
    assert row_counts(rt) == before


def test_header_and_encoding_errors(rt: Runtime, now: dt.datetime) -> None:
    from referrals.models.errors import DomainError

    with pytest.raises(DomainError, match="missing consent"):
        run(
            rt,
            "name,phone,id_number,district,pathway,partner\nX,,,nha-trang,id_papers,police-nha-trang\n",
            now,
        )
    with pytest.raises(DomainError, match="not UTF-8"), transaction(rt.engine) as s:
        import_referrals(
            s,
            data=(HEADER + "Lê Hà,,,nha-trang,id_papers,police-nha-trang,written,,\n").encode(
                "cp1258"
            ),
            coordinator=rt.user(s),
            ctx=rt.ctx,
            now=now,
        )
    with pytest.raises(DomainError, match="no rows"):
        run(rt, HEADER, now, bom=False)


def test_import_reports_progress_by_stage(rt: Runtime, now: dt.datetime) -> None:
    rows = "".join(f"P{i},,,nha-trang,id_papers,police-nha-trang,written,,\n" for i in range(1200))
    calls: list[tuple[str, int, int]] = []
    with transaction(rt.engine) as s:
        import_referrals(
            s,
            data=(HEADER + rows).encode(),
            coordinator=rt.user(s),
            ctx=rt.ctx,
            now=now,
            progress=lambda *call: calls.append(call),
        )
    assert [c for c in calls if c[0] == "rows"] == [
        ("rows", 0, 1200),
        ("rows", 500, 1200),
        ("rows", 1000, 1200),
    ]
    assert [c[0] for c in calls if c[0] != "rows"] == [
        "clients",
        "launch",
        "launch",
        "launch",
        "write",
        "write",
    ]
    assert calls[-1] == ("write", 1200, 1200)
