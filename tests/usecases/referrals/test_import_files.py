"""Importing the files offices really have (issue 19, slice 2): an Excel workbook, a CSV that
Excel saved on a Vietnamese system (semicolons, a BOM), one in Windows-1258 refused with its
encoding named, and unknown keys answered with the valid ones; all or nothing, as before."""

from __future__ import annotations

import datetime as dt
import io
import json

import pytest
from openpyxl import Workbook
from sqlalchemy import select

from referrals.infra.db import transaction
from referrals.infra.runtime import Runtime
from referrals.models.errors import DomainError
from referrals.models.workflow import Referral
from referrals.usecases.referrals.importing import HEADER, ImportRefused, import_referrals
from support.domain import cli, row_counts

ROWS = [
    ["Phạm Thị Xê", "0905 123 101", "", "nha-trang", "id_papers", "police-nha-trang", "written"],
    ["Võ Văn Ích", "", "079190000777", "nha-trang", "legal_aid", "legal-aid-centre", "verbal"],
]


def _import(rt: Runtime, data: bytes, now: dt.datetime) -> list[str]:
    with transaction(rt.engine) as s:
        report = import_referrals(s, data=data, coordinator=rt.user(s, "mai"), ctx=rt.ctx, now=now)
    return report.referrals


def _workbook(rows: list[list[object]]) -> bytes:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(list(HEADER))
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def test_an_excel_workbook_imports_like_its_csv(rt: Runtime, now: dt.datetime) -> None:
    on = dt.datetime(2026, 11, 20)  # a date cell, as Excel stores one
    rows: list[list[object]] = [[*ROWS[0], on, ""], [*ROWS[1], "", "có"]]
    codes = _import(rt, _workbook(rows), now)
    assert len(codes) == 2
    with transaction(rt.engine) as s:
        first = s.scalars(select(Referral).where(Referral.code == codes[0])).one()
        urgent = s.scalars(select(Referral).where(Referral.code == codes[1])).one()
    assert first.launched_at.astimezone(rt.settings.tz).date() == on.date()
    assert urgent.priority == "urgent"


def test_a_vietnamese_excel_csv_with_semicolons_and_a_bom(rt: Runtime, now: dt.datetime) -> None:
    text = ";".join(HEADER) + "\r\n"
    text += "".join(";".join([*r, "", ""]) + "\r\n" for r in ROWS)
    assert len(_import(rt, ("\ufeff" + text).encode(), now)) == 2


def test_windows_1258_is_refused_naming_the_encoding(rt: Runtime, now: dt.datetime) -> None:
    row = ["Lê Hà", *ROWS[0][1:], "", ""]  # letters Windows-1258 has precomposed
    text = ",".join(HEADER) + "\n" + ",".join(row) + "\n"
    before = row_counts(rt)
    with pytest.raises(DomainError, match="Windows-1258") as refused:
        _import(rt, text.encode("cp1258"), now)
    assert "CSV UTF-8" in str(refused.value)
    assert row_counts(rt) == before


def test_an_unknown_district_or_partner_lists_the_valid_keys(rt: Runtime, now: dt.datetime) -> None:
    bad = [
        ["A", "0905 123 201", "", "cam-ranh", "id_papers", "police-nha-trang", "written"],
        ["B", "0905 123 202", "", "nha-trang", "id_papers", "police-cam-ranh", "written"],
    ]
    before = row_counts(rt)
    with pytest.raises(ImportRefused) as refused:
        _import(rt, _workbook(bad), now)
    said = dict(refused.value.problems)
    assert said[2].startswith("unknown district 'cam-ranh' (in force today: ")
    assert " nha-trang," in said[2] and "tp-nha-trang" not in said[2]  # today's units only
    assert said[3].startswith("unknown partner 'police-cam-ranh' (known: ")
    assert "police-nha-trang" in said[3]
    assert row_counts(rt) == before


def test_the_cli_imports_a_workbook(
    rt: Runtime, now: dt.datetime, tmp_path: object, capsys: pytest.CaptureFixture[str]
) -> None:
    from pathlib import Path

    book = Path(str(tmp_path)) / "chuyen-gui.xlsx"
    book.write_bytes(_workbook([[*ROWS[0], "", ""]]))
    code, out, err = cli(capsys, "import", str(book), "--now", now.isoformat(), "--json")
    assert code == 0, err
    assert json.loads(out)["launched"] == 1


def test_the_template_offers_the_valid_values_and_imports_once_filled(
    rt: Runtime, now: dt.datetime, tmp_path: object, capsys: pytest.CaptureFixture[str]
) -> None:
    from pathlib import Path

    from openpyxl import load_workbook

    out = Path(str(tmp_path)) / "mau.xlsx"
    code, said, err = cli(capsys, "import", "--template", str(out))
    assert code == 0 and "mau.xlsx" in said, err
    book = load_workbook(out)
    rows, choices = book["rows"], book["choices"]
    assert [c.value for c in rows[1]] == list(HEADER)
    listed = {str(c.value) for col in choices.iter_cols() for c in col if c.value}
    assert {"nha-trang", "police-nha-trang", "id_papers", "written", "có"} <= listed
    offered = {str(dv.sqref)[0] for dv in rows.data_validations.dataValidation}
    assert offered == {"D", "E", "F", "G", "I"}  # district, pathway, partner, consent, urgent
    assert rows["C2"].number_format == "@"  # ID numbers stay text: a leading 0 is kept
    rows.append(["Đỗ Thị Mẫu", "0905 123 301", "079190000888", "nha-trang", "id_papers",
                 "police-nha-trang", "written", None, "không"])  # fmt: skip
    book.save(out)
    code, said, err = cli(capsys, "import", str(out), "--now", now.isoformat(), "--json")
    assert code == 0 and json.loads(said)["launched"] == 1, err
