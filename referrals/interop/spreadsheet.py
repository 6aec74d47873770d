"""Rows from a spreadsheet the way offices save one: an Excel workbook (.xlsx, read with
openpyxl), or a CSV in UTF-8 (with or without the BOM Excel writes), separated by commas or, as
Excel on a Vietnamese system saves it (the decimal mark there is a comma), by semicolons.

A CSV in Windows-1258 (what "CSV (Comma delimited)" gives on a Vietnamese Windows) is refused
with the encoding named and the way to save it again: guessing an 8-bit encoding would turn
names into something else silently.
"""

from __future__ import annotations

import csv
import datetime as dt
import io

from referrals.models.errors import DomainError

XLSX_MAGIC = b"PK\x03\x04"  # an .xlsx is a zip archive
DELIMITERS = ",;\t"

Rows = list[tuple[int, list[str]]]  # (line or row number, cells as text)


def read_rows(data: bytes) -> Rows:
    """Every row of the file's first sheet, numbered as the office sees them (line 1: header)."""
    if data.startswith(XLSX_MAGIC):
        return _xlsx(data)
    return _csv(_text(data))


def _text(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        try:
            data.decode("cp1258")
        except UnicodeDecodeError:
            raise DomainError(
                f"the file is not UTF-8 (byte {exc.start}); save it as 'CSV UTF-8' or as an "
                "Excel workbook (.xlsx)"
            ) from None
        raise DomainError(
            "the file looks like Windows-1258 (Excel's 'CSV (Comma delimited)' on a Vietnamese "
            "system), not UTF-8: save it as 'CSV UTF-8 (Comma delimited)' or as an Excel "
            "workbook (.xlsx)"
        ) from None


def _csv(text: str) -> Rows:
    first = text.split("\n", 1)[0]
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(first, DELIMITERS)
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=dialect.delimiter)
    return [(reader.line_num, row) for row in reader]


def _xlsx(data: bytes) -> Rows:
    from openpyxl import load_workbook  # only for a workbook: it takes a while to import

    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises zipfile, KeyError or its own errors alike
        raise DomainError(f"the Excel file cannot be read ({type(exc).__name__})") from None
    try:
        sheet = book.worksheets[0]
        rows = [
            (number, [_cell(v) for v in values])
            for number, values in enumerate(sheet.iter_rows(values_only=True), start=1)
        ]
    finally:
        book.close()
    while rows and not any(rows[-1][1]):  # Excel keeps formatted empty rows at the end
        rows.pop()
    for _, cells in rows:
        while cells and not cells[-1]:
            cells.pop()
    return rows


def _cell(value: object) -> str:
    """A cell as the text the office typed: whole numbers without ".0", dates as dd/mm/yyyy."""
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        if value.time() == dt.time():
            return value.strftime("%d/%m/%Y")
        return value.isoformat(timespec="minutes")
    if isinstance(value, dt.date):
        return value.strftime("%d/%m/%Y")
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def template(header: tuple[str, ...], choices: dict[str, list[tuple[str, str]]]) -> bytes:
    """An Excel workbook to fill in: the header, a drop-down of the valid keys in each column of
    `choices` (and, on a second sheet, each key beside its name), ID numbers and phones as text
    so that a leading 0 stays."""
    from openpyxl import Workbook
    from openpyxl.utils import get_column_letter
    from openpyxl.worksheet.datavalidation import DataValidation

    book = Workbook()
    sheet = book.active
    assert sheet is not None  # a new workbook has its sheet
    sheet.title = "rows"
    sheet.append(list(header))
    lists = book.create_sheet("choices")
    for n, (column, pairs) in enumerate(choices.items()):
        key_col, name_col = get_column_letter(2 * n + 1), get_column_letter(2 * n + 2)
        lists[f"{key_col}1"], lists[f"{name_col}1"] = column, f"{column} (name)"
        for row, (key, name) in enumerate(pairs, start=2):
            lists[f"{key_col}{row}"], lists[f"{name_col}{row}"] = key, name
        where = get_column_letter(header.index(column) + 1)
        rule = DataValidation(
            type="list",
            formula1=f"=choices!${key_col}$2:${key_col}${len(pairs) + 1}",
            allow_blank=True,
            showErrorMessage=True,
        )
        rule.add(f"{where}2:{where}1000")
        sheet.add_data_validation(rule)
    for column in ("phone", "id_number"):
        if column in header:
            letter = get_column_letter(header.index(column) + 1)
            for row in range(2, 1001):
                sheet[f"{letter}{row}"].number_format = "@"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
