"""What our Apprise plugins tell the engine beyond Apprise's one bool, and what they share.

Apprise's `notify()` answers True or False. A paid gateway says more, and the engine needs it:
- `provider_id`: the gateway's id for the message, which its delivery receipts name later;
- `permanent`: retrying cannot help (a wrong number, an unapproved template, no balance), so the
  engine moves on to the contact's next channel at once instead of after six attempts;
- `retry_after`: the gateway asked us to slow down; the engine puts the message back for that
  long without counting an attempt.
A plugin sets these on its instance in `send()`; the engine makes a fresh instance per message,
sets `tracking_id` (our outbox id, which the gateways echo back or use to refuse duplicates)
before calling `notify()`, and reads them after.

Receipts arrive later, at the engine's web endpoint: `read_receipts()` checks that a callback
really comes from the gateway (its signature, or ours on the callback URL) and is fresh, and
turns it into `Receipt`s; anything else raises `ReceiptRefused` and changes nothing.

Tokens that rotate (Zalo's refresh token is single-use) live in a `TokenStore`. Outside the
engine it is this process's memory; the engine installs one on its database (sealed), so every
worker of a cluster sees the newest token (`use_tokens`).
"""

from __future__ import annotations

import datetime as dt
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

_PHONE_MARKS = re.compile(r"[\s().+-]")


def national_mobile(value: str) -> str | None:
    """A Vietnamese mobile number's 9 national digits, however it is written (`+84 90 188 8484`,
    `84901888484`, `0901888484`); None if it is not one (10 digits since the 2018 renumbering).
    Each gateway writes it its own way: eSMS `0` + these, Zalo `84` + these."""
    digits = _PHONE_MARKS.sub("", value or "")
    if not digits.isdigit():
        return None
    if digits.startswith("84") and len(digits) == 11:
        return digits[2:]
    if digits.startswith("0") and len(digits) == 10:
        return digits[1:]
    return None


@dataclass(frozen=True)
class Receipt:
    """A gateway's word on one message: reached the phone, or not and why."""

    provider_id: str  # the id the gateway gave when it accepted the message
    delivered: bool
    reason: str | None = None  # the carrier's or the gateway's reason, when not delivered
    at: dt.datetime | None = None  # when it was delivered or given up, as the gateway says
    tracking_id: str | None = None  # our outbox id, when the gateway echoes it


class ReceiptRefused(Exception):
    """A callback that is forged, stale or not of the gateway's shape: answer 4xx, change nothing.

    `status` is the HTTP answer: 403 for a bad signature, 400 for a malformed body."""

    def __init__(self, message: str, status: int = 403) -> None:
        super().__init__(message)
        self.status = status


class Outcome:
    """Mixed into our plugins: what a send found out, beyond Apprise's bool (see module doc)."""

    receipts: ClassVar[bool] = True  # the gateway reports delivery: "sent" is not the end

    tracking_id: str | None = None
    provider_id: str | None = None
    permanent: bool = False
    retry_after: float | None = None

    def read_receipts(
        self,
        *,
        method: str,
        query: Mapping[str, str],
        headers: Mapping[str, str],
        body: bytes,
        now: dt.datetime,
    ) -> list[Receipt]:
        """The receipts in one callback request; raise ReceiptRefused if it is not genuine."""
        raise ReceiptRefused("this channel takes no receipts", status=404)


Change = Callable[[dict[str, Any] | None], dict[str, Any] | None]


class TokenStore(Protocol):
    """Where rotating credentials live between sends, shared by every sender."""

    def load(self, key: str) -> dict[str, Any] | None:
        """The stored value, or None."""
        ...

    def update(self, key: str, change: Change) -> dict[str, Any] | None:
        """Read the value under a lock that other senders wait on, call `change(current)` and
        store what it returns (None: keep the current value); return the value now stored.
        A refresh runs inside `change`, so two senders never spend the same refresh token."""
        ...


class MemoryTokens:
    """A TokenStore in this process's memory: for Apprise used on its own, and for tests."""

    def __init__(self) -> None:
        self._values: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def load(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            value = self._values.get(key)
            return dict(value) if value is not None else None

    def update(self, key: str, change: Change) -> dict[str, Any] | None:
        with self._lock:
            current = self._values.get(key)
            new = change(dict(current) if current is not None else None)
            if new is not None:
                self._values[key] = dict(new)
            value = self._values.get(key)
            return dict(value) if value is not None else None


_tokens: TokenStore = MemoryTokens()


def tokens() -> TokenStore:
    """The store plugins keep rotating credentials in."""
    return _tokens


def use_tokens(store: TokenStore) -> TokenStore:
    """Install `store` for every plugin of this process; returns the previous one."""
    global _tokens
    previous, _tokens = _tokens, store
    return previous
