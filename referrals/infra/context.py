"""What domain operations need besides a session: the clock's zone, the calendar, the vault."""

from __future__ import annotations

from dataclasses import dataclass
from zoneinfo import ZoneInfo

from referrals.config import Province, Settings
from referrals.infra.calendar import WorkingCalendar
from referrals.infra.crypto import Vault, vault_for


@dataclass(frozen=True)
class Context:
    tz: ZoneInfo
    calendar: WorkingCalendar
    vault: Vault

    @classmethod
    def build(cls, settings: Settings, province: Province) -> Context:
        return cls(
            tz=settings.tz,
            calendar=WorkingCalendar.for_province(province.province, settings.tz),
            vault=vault_for(settings.secret_key, settings.previous_keys),
        )
