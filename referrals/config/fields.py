"""The field types the province's files share: keys, names, phone numbers, e-mail addresses
and quiet hours, and the strict base of every entry (re-exported by referrals.config.province)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

Slug = Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]*$", max_length=60)]
Key = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=60)]
Text = Annotated[str, Field(min_length=1, max_length=200)]
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


PHONE_TEXT = re.compile(r"^\+?[0-9][0-9 ().-]{2,30}$")  # ASCII digits and separators only


class InvalidValue(ValueError):
    """A value a person typed that a validator refuses, with a key (and its parameters) for the
    refusal in the reader's words: the English message is for logs and the CLI; a page says
    `err_<key>` from web/words.py (pydantic hands the exception to the page in its error)."""

    def __init__(self, message: str, *, key: str, **params: str) -> None:
        super().__init__(message)
        self.key, self.params = key, params


def e164(value: str, region: str = "VN") -> str:
    """Normalise a Vietnamese or international phone number to E.164, or raise ValueError.

    Letters (vanity numbers), other scripts' digits and doubled signs are refused before the
    parser sees them: it would read them, and a coordinator would not have meant them."""
    if not PHONE_TEXT.match(value.strip()):
        raise InvalidValue(
            f"{value[:40]!r} is not a phone number", key="bad_phone", text=value[:40]
        )
    import phonenumbers  # ~0.1 s: only paid when a number is checked

    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        raise InvalidValue(
            f"{value!r} is not a phone number", key="bad_phone", text=value[:40]
        ) from None
    if not phonenumbers.is_possible_number(number):
        raise InvalidValue(
            f"{value!r} is not a possible phone number", key="bad_phone", text=value[:40]
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _email(value: str) -> str:
    if not EMAIL.match(value):
        raise ValueError(f"{value!r} is not an e-mail address")
    return value.lower()


def _quiet_hours(value: str) -> str:
    """`HH:MM-HH:MM` (may cross midnight), or `none`."""
    if value == "none":
        return value
    m = re.fullmatch(r"([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)", value)
    if not m or m.group(1, 2) == m.group(3, 4):
        raise ValueError(f"{value!r}: give quiet hours as HH:MM-HH:MM (e.g. 21:00-07:00) or none")
    return value


def quiet_window(value: str | None) -> tuple[dt.time, dt.time] | None:
    """The (start, end) local times of a validated quiet-hours value; None for `none`."""
    if not value or value == "none":
        return None
    start, end = value.split("-")
    return dt.time.fromisoformat(start), dt.time.fromisoformat(end)


Phone = Annotated[str, AfterValidator(e164)]
Email = Annotated[str, AfterValidator(_email)]
QuietHours = Annotated[str, AfterValidator(_quiet_hours)]
# The ways a message reaches a person: Zalo (ZNS) and SMS to a phone, e-mail to an address.
Channel = Literal["zalo", "sms", "email"]
DEFAULT_ORDER: tuple[Channel, ...] = ("sms", "email")  # Delivery.order's default


def reachable(order: Sequence[str], *, phone: str | None, email: str | None) -> list[str]:
    """The channels of `order` a person has an address for: Zalo and SMS need a phone."""
    return [c for c in order if (email if c == "email" else phone)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
