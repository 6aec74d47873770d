"""Retention (Law 91/2025/QH15 Art. 3 k3, Art. 14 k1 b-c): the personal details of a client
with no open referral, no open data request and no activity for `data_protection.retention_days`
are erased by the sweep with the existing crypto-shredding erasure (usecases/clients/subject.py
`erase_client`): the code, the referrals and their events stay, so the period report's counts
do not move.

Managers are told first: one message listing the client codes (never names),
`retention_notice_days` before; each client noticed gets a `privacy.retention.notice` event.
A client is erased only once noticed that long ago and still eligible: any activity after the
notice (a new referral, a consent, an answer) voids it, and a fresh notice comes when the
client is due again. Off when `retention_days` is absent or null.

A client's last activity is the latest of: the record's creation; their referrals' launch,
update and closure; the events on them or their referrals (views and these notices aside); their
consents granted or withdrawn; and their data requests.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, func, select
from sqlmodel import Session, col

from referrals.config.privacy import DataProtection
from referrals.infra.db import transaction
from referrals.models.errors import DomainError
from referrals.models.lifecycle import OPEN
from referrals.models.people import Client, Consent
from referrals.models.privacy import PrivacyRequest
from referrals.models.workflow import Event, Referral
from referrals.usecases.clients.subject import erase_client
from referrals.usecases.privacy import alerts

NOTICE = "privacy.retention.notice"
ERASED = "privacy.retention.erased"
QUIET = ("pii.%", "privacy.retention.%")  # event kinds that are not activity


@dataclass(frozen=True)
class Due:
    """A client the retention rule reaches: when last active, when their details may go."""

    client_id: int
    code: str
    last_activity: dt.datetime
    erase_at: dt.datetime  # last activity + retention
    noticed_at: dt.datetime | None  # a notice still valid (given after the last activity)

    def as_dict(self, tz: Any) -> dict[str, Any]:
        return {
            "client": self.code,
            "last_activity": self.last_activity.astimezone(tz).isoformat(),
            "erase_from": self.erase_at.astimezone(tz).isoformat(),
            "noticed_at": self.noticed_at.astimezone(tz).isoformat() if self.noticed_at else None,
        }


def _latest(into: dict[int, dt.datetime], rows: Any, kept: dict[int, int]) -> None:
    for client_id, at in rows:
        if at is None or client_id is None:
            continue
        if isinstance(at, str):  # SQLite's max() over a datetime column
            at = dt.datetime.fromisoformat(at)
        at = at.replace(tzinfo=dt.UTC) if at.tzinfo is None else at.astimezone(dt.UTC)
        person = kept.get(client_id, client_id)
        if person not in into or at > into[person]:
            into[person] = at


def candidates(session: Session, cfg: DataProtection, now: dt.datetime) -> list[Due]:
    """The clients whose notice time has come (last activity + retention - notice days),
    oldest activity first."""
    if cfg.retention_days is None:
        return []
    retention = dt.timedelta(days=cfg.retention_days)
    notice = dt.timedelta(days=cfg.retention_notice_days)
    busy_referrals = select(col(Referral.client_id)).where(col(Referral.status).in_(sorted(OPEN)))
    busy_requests = select(col(PrivacyRequest.client_id)).where(
        col(PrivacyRequest.closed_at).is_(None)
    )
    clients = {
        cid: (code, created.replace(tzinfo=dt.UTC) if created.tzinfo is None else created)
        for cid, code, created in session.execute(
            select(col(Client.id), col(Client.code), col(Client.created_at)).where(
                col(Client.erased_at).is_(None),
                col(Client.merged_into_id).is_(None),
                col(Client.id).not_in(busy_referrals),
                col(Client.id).not_in(busy_requests),
            )
        )
    }
    if not clients:
        return []
    kept = dict(
        session.execute(
            select(col(Client.id), col(Client.merged_into_id)).where(
                col(Client.merged_into_id).is_not(None)
            )
        )
        .tuples()
        .all()
    )
    last: dict[int, dt.datetime] = {cid: created for cid, (_, created) in clients.items()}
    loud = [~col(Event.kind).like(q) for q in QUIET]
    _latest(
        last,
        session.execute(
            select(col(Referral.client_id), func.max(col(Referral.launched_at))).group_by(
                col(Referral.client_id)
            )
        ),
        kept,
    )
    for column in (Referral.updated_at, Referral.closed_at):
        _latest(
            last,
            session.execute(
                select(col(Referral.client_id), func.max(col(column))).group_by(
                    col(Referral.client_id)
                )
            ),
            kept,
        )
    _latest(
        last,
        session.execute(
            select(col(Event.client_id), func.max(col(Event.at)))
            .where(col(Event.client_id).is_not(None), *loud)
            .group_by(col(Event.client_id))
        ),
        kept,
    )
    _latest(
        last,
        session.execute(
            select(col(Referral.client_id), func.max(col(Event.at)))
            .join(Event, col(Event.referral_id) == col(Referral.id))
            .where(*loud)
            .group_by(col(Referral.client_id))
        ),
        kept,
    )
    for column in (Consent.granted_at, Consent.withdrawn_at):
        _latest(
            last,
            session.execute(
                select(col(Consent.client_id), func.max(col(column))).group_by(
                    col(Consent.client_id)
                )
            ),
            kept,
        )
    _latest(
        last,
        session.execute(
            select(col(PrivacyRequest.client_id), func.max(col(PrivacyRequest.closed_at))).group_by(
                col(PrivacyRequest.client_id)
            )
        ),
        kept,
    )
    noticed: dict[int, dt.datetime] = {}
    _latest(
        noticed,
        session.execute(
            select(col(Event.client_id), func.max(col(Event.at)))
            .where(col(Event.kind) == NOTICE)
            .group_by(col(Event.client_id))
        ),
        {},
    )
    due = []
    for cid, (code, _) in clients.items():
        at = last[cid]
        if at + retention - notice > now:
            continue
        seen = noticed.get(cid)
        due.append(Due(cid, code, at, at + retention, seen if seen and seen >= at else None))
    return sorted(due, key=lambda d: (d.last_activity, d.code))


def ready(due: Due, cfg: DataProtection, now: dt.datetime) -> bool:
    """Erasable now: past the retention, and noticed at least the notice's days ago."""
    notice = dt.timedelta(days=cfg.retention_notice_days)
    return due.noticed_at is not None and now >= max(due.erase_at, due.noticed_at + notice)


def sweep_retention(engine: Engine, *, cfg: DataProtection, now: dt.datetime) -> dict[str, int]:
    """The sweep's retention pass: notice the clients newly due (one message for them all),
    then erase those noticed long enough ago, each in its own transaction."""
    out = {"retention_noticed": 0, "retention_erased": 0, "retention_messages": 0}
    if cfg.retention_days is None:
        return out
    notice = dt.timedelta(days=cfg.retention_notice_days)
    with transaction(engine) as s:
        found = candidates(s, cfg, now)
        new = [d for d in found if d.noticed_at is None]
        if new:
            erase_from = max(min(d.erase_at for d in new), now + notice)
            for d in new:
                s.add(
                    Event(
                        client_id=d.client_id,
                        kind=NOTICE,
                        at=now,
                        actor="system:sweep",
                        data={
                            "erase_from": max(d.erase_at, now + notice).isoformat(),
                            "retention_days": cfg.retention_days,
                        },
                    )
                )
            told, _ = alerts.managers(s)
            out["retention_messages"] = alerts.retention_coming(
                s, codes=[d.code for d in new], erase_from=erase_from, recipients=told, now=now
            )
            out["retention_noticed"] = len(new)
    for d in found:
        if not ready(d, cfg, now):
            continue
        try:
            with transaction(engine) as s:
                erase_client(s, code=d.code, by=None, now=now)
                s.add(
                    Event(
                        client_id=d.client_id,
                        kind=ERASED,
                        at=now,
                        actor="system:sweep",
                        data={
                            "retention_days": cfg.retention_days,
                            "last_activity": d.last_activity.isoformat(),
                        },
                    )
                )
        except DomainError:  # a referral opened since, or erased by someone else: next pass
            continue
        out["retention_erased"] += 1
    return out


def preview(session: Session, *, cfg: DataProtection, now: dt.datetime) -> list[Due]:
    """What the sweep would notice or erase at `now` (a dry run): nothing is written."""
    return candidates(session, cfg, now)
