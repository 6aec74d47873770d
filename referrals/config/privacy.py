"""`data_protection:` in province.yaml: the time limits of the 2026 data-protection law as
settings (Law 91/2025/QH15 and Decree 356/2025/ND-CP; docs/research/pdpl-2025.md), the office's
data-protection contact for the breach notice (Form 08), and the retention period.

Every default is the decree's figure; an office changes one only on its lawyer's word. Plain
"ngày" limits are calendar days (the research's safe reading, §4): they end at the office's
closing time on the last day, earlier than the Civil Code's end of day. Working days skip
weekends, Vietnamese holidays (Tết included) and the province's days off.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field, model_validator

from referrals.config.fields import Email, Strict, Text


class RequestKind(StrEnum):
    """What a data subject asks for (Law Art. 4 k1; Decree 356 Art. 5 k2-k5)."""

    access = "access"  # see the data (Art. 4 k1 c)
    provide = "provide"  # have it provided (Art. 4 k1 d, Art. 15)
    correct = "correct"  # correct it (Art. 4 k1 c, Art. 13)
    erase = "erase"  # erase it (Art. 4 k1 d, Art. 14)
    restrict = "restrict"  # restrict processing (Art. 4 k1 d, Art. 10)
    withdraw_consent = "withdraw_consent"  # withdraw consent (Art. 4 k1 b, Art. 10)
    object = "object"  # object to processing (Art. 4 k1 d)
    protective_measure = "protective_measure"  # ask for protective measures (Art. 4 k1 e)


class Limit(Strict):
    """One kind's limits (Decree 356 Art. 5): calendar days to carry the request out, the longer
    limit when a processor or third party (a partner) must act, and the most one extension may
    add (one extension only, with a reason told to the subject)."""

    days: int = Field(ge=1, le=365)
    via_third_party_days: int = Field(ge=1, le=365)
    extension_max_days: int = Field(ge=1, le=365)

    @model_validator(mode="after")
    def _longer_via_third_party(self) -> Limit:
        if self.via_third_party_days < self.days:
            raise ValueError("via_third_party_days cannot be shorter than days")
        return self


# Decree 356 Art. 5 k2 (withdrawal, restriction, objection): 15 days, 20 via a third party, +15.
_K2 = Limit(days=15, via_third_party_days=20, extension_max_days=15)
# Art. 5 k3 (see, correct, provide): 10 days, 15 via a third party, +10.
_K3 = Limit(days=10, via_third_party_days=15, extension_max_days=10)
# Art. 5 k4 (erasure): 20 days, 30 via a third party, +20.
_K4 = Limit(days=20, via_third_party_days=30, extension_max_days=20)
# Art. 5 k5 (protective measures): 15 days, +15; the clause has no third-party figure.
_K5 = Limit(days=15, via_third_party_days=15, extension_max_days=15)


class Limits(Strict):
    access: Limit = _K3
    provide: Limit = _K3
    correct: Limit = _K3
    erase: Limit = _K4
    restrict: Limit = _K2
    withdraw_consent: Limit = _K2
    object: Limit = _K2
    protective_measure: Limit = _K5

    def of(self, kind: RequestKind | str) -> Limit:
        limit: Limit = getattr(self, RequestKind(kind).value)
        return limit


class Officer(Strict):
    """The data-protection unit or person (Law Art. 33 k2; Decree 356 Art. 28 k1 b, Form 08
    section 1): named in every breach notice."""

    name: Text
    title: Text | None = None
    phone: str | None = Field(default=None, max_length=20)
    email: Email | None = None


class DataProtection(Strict):
    """`data_protection:` in province.yaml. Absent: the decree's figures, retention off."""

    acknowledge_working_days: int = Field(
        default=2, ge=1, le=30, description="Decree 356 Art. 5 k2-k5: 02 ngày làm việc"
    )
    limits: Limits = Limits()
    roll_to_working_day: bool = Field(
        default=False,
        description="a calendar-day limit ending on a weekend or holiday moves to the next "
        "working day (Civil Code Art. 148 k5); off: the earlier, safer date",
    )
    breach_notify_hours: int = Field(
        default=72, ge=1, le=24 * 30, description="Law 91 Art. 23 k1: 72 giờ from discovery"
    )
    breach_warn_hours: int = Field(
        default=24, ge=1, le=24 * 30, description="managers are warned this long before"
    )
    retention_days: int | None = Field(
        default=None,
        ge=30,
        le=365 * 100,
        description="erase a client's personal details after this many days without activity "
        "and with no open referral (Law Art. 14 k1 b-c); null: never",
    )
    retention_notice_days: int = Field(
        default=7, ge=1, le=90, description="managers are told this long before an erasure"
    )
    officer: Officer | None = None
    registration: str | None = Field(
        default=None, max_length=200, description="founding decision or registration number"
    )
    tax_code: str | None = Field(default=None, max_length=20)
    website: str | None = Field(default=None, max_length=200)
    authority: Text = Field(
        default="Cơ quan chuyên trách bảo vệ dữ liệu cá nhân, Bộ Công an",
        description="whom Form 08 is addressed to (Law Art. 23 k1; Decree 356 Art. 39 k1)",
    )

    @model_validator(mode="after")
    def _warn_before(self) -> DataProtection:
        if self.breach_warn_hours >= self.breach_notify_hours:
            raise ValueError("breach_warn_hours must be shorter than breach_notify_hours")
        if self.retention_days is not None and self.retention_notice_days >= self.retention_days:
            raise ValueError("retention_notice_days must be shorter than retention_days")
        return self
