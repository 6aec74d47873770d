"""SMS text rules: GSM-7 or UCS-2, how many segments, and the unaccented Vietnamese variant.

One GSM-7 segment holds 160 characters; any character outside GSM-7 (every Vietnamese letter
with a diacritic) switches the whole message to UCS-2, 70 per segment. Operators bill by segment,
and some cheap phones reassemble long messages badly, so contacts may ask for unaccented SMS.
"""

from __future__ import annotations

import math
import unicodedata
from dataclasses import dataclass

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENDED = frozenset("^{}\\[~]|€\f")  # two septets each (escape + char)


@dataclass(frozen=True)
class Encoding:
    name: str  # "GSM-7" or "UCS-2"
    units: int  # septets (GSM-7) or UTF-16 code units (UCS-2)
    segments: int


def encoding(text: str) -> Encoding:
    """How an SMS with this text goes over the air."""
    if all(ch in GSM7_BASIC or ch in GSM7_EXTENDED for ch in text):
        units = sum(2 if ch in GSM7_EXTENDED else 1 for ch in text)
        return Encoding("GSM-7", units, 1 if units <= 160 else math.ceil(units / 153))
    units = len(text.encode("utf-16-le")) // 2
    return Encoding("UCS-2", units, 1 if units <= 70 else math.ceil(units / 67))


def unaccent(text: str) -> str:
    """Vietnamese without diacritics (`Hòa` -> `Hoa`, `đ` -> `d`), as people text without them."""
    text = text.replace("đ", "d").replace("Đ", "D")
    stripped = "".join(
        ch for ch in unicodedata.normalize("NFD", text) if not unicodedata.combining(ch)
    )
    return unicodedata.normalize("NFC", stripped)


def one_line(text: str) -> str:
    """Collapse a rendered template's whitespace: an SMS is one line."""
    return " ".join(text.split())
