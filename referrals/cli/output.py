"""Printing: one JSON document on stdout for machines, short aligned text for people."""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Sequence
from typing import Any


def emit_json(data: Any) -> None:
    # Compact on purpose: with `indent`, json falls back to its pure-Python encoder (10x slower).
    sys.stdout.write(
        json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=str) + "\n"
    )


def local_date(iso: str | None, with_time: bool = True) -> str:
    """ISO with offset -> dd/mm/yyyy HH:MM (already in local time)."""
    if not iso:
        return "-"
    value = dt.datetime.fromisoformat(iso)
    return value.strftime("%d/%m/%Y %H:%M" if with_time else "%d/%m/%Y")


def table(rows: Sequence[Sequence[Any]], header: Sequence[str]) -> None:
    cells = [[str(c) for c in header], *[[("-" if c is None else str(c)) for c in r] for r in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    for r in cells:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
