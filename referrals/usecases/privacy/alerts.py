"""What the sweep tells managers about data-protection work: an e-mail of its own
(`privacy.alert`, notifiers/templates), queued through the outbox the late steps use
(notifiers/messages.py: `outbox_row`, `queue`).

A late request, a breach clock close to its end or past it, and the coming retention erasures
each name the request's or breach's code, the work and its deadline, and the command that shows
it; client codes only in the retention list; never a name or a text. Each message's idempotency
key names what it is about and its deadline, so it is queued once.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlmodel import Session, col

from referrals.models.people import User
from referrals.models.workflow import Notification
from referrals.notifiers import messages
from referrals.notifiers.messages import Template, language_of, outbox_row, queue, who

# How each kind of work is named in the messages (the template's "service" and "step").
KIND_VI = {
    "access": "xem dữ liệu",
    "provide": "cung cấp dữ liệu",
    "correct": "chỉnh sửa dữ liệu",
    "erase": "xóa dữ liệu",
    "restrict": "hạn chế xử lý",
    "withdraw_consent": "rút lại sự đồng ý",
    "object": "phản đối xử lý",
    "protective_measure": "biện pháp bảo vệ",
}
KIND_EN = {
    "access": "see the data",
    "provide": "provide the data",
    "correct": "correct the data",
    "erase": "erase the data",
    "restrict": "restrict processing",
    "withdraw_consent": "withdraw consent",
    "object": "object to processing",
    "protective_measure": "protective measure",
}
WORK = {
    # which -> (vi, en) names of the deadline
    "ack": ("Phản hồi chủ thể dữ liệu (Nghị định 356, Điều 5)", "Answer the data subject"),
    "due": ("Thực hiện yêu cầu (Nghị định 356, Điều 5)", "Carry out the request"),
    "breach": (
        "Thông báo cơ quan chuyên trách trong 72 giờ (Luật 91/2025, Điều 23)",
        "Notify the specialised agency within 72 hours",
    ),
    "retention": ("Xóa dữ liệu cá nhân hết thời hạn lưu trữ", "Erase personal data past retention"),
}
MAX_CODES = 100  # a retention notice lists at most this many codes, then how many more


def managers(session: Session, area: str | None = None) -> tuple[list[User], list[str]]:
    """The managers told: of a district (and those of every district), or all of them."""
    people = messages.People.load(session)
    if area is not None:
        return people.managers(area)
    found = messages.digest_readers(session)
    return found, ([] if found else ["no active manager with an e-mail"])


def _rows(
    recipients: Sequence[User],
    *,
    what: str,
    code: str,
    about: tuple[str, str],
    work: tuple[str, str],
    due_at: dt.datetime,
    key: str,
    now: dt.datetime,
    extra: dict[str, Any],
) -> list[dict[str, Any]]:
    """One e-mail per manager, in their language (`privacy.alert`)."""
    rows = []
    for person in recipients:
        language = language_of(person)
        vi = language == "vi"
        context = {
            "what": what,
            "code": code,
            "about": about[0] if vi else about[1],
            "work": work[0] if vi else work[1],
            "due_at": due_at.isoformat(),
            "state": "soon",
            "late": "",
            "count": 0,
            "clients": [],
            **{k: (v[0] if vi else v[1]) if isinstance(v, tuple) else v for k, v in extra.items()},
        }
        rows.append(
            outbox_row(
                template=Template.privacy,
                person=person,
                channel="email",
                language=language,
                context=context,
                key=f"{key}:{due_at.isoformat()}:{who(person)}:email",
                now=now,
                referral_id=None,
            )
        )
    return rows


def _queue_new(session: Session, rows: list[dict[str, Any]]) -> int:
    """Queue the rows whose key is not queued yet: a message is queued once, whatever ran."""
    keys = [r["idempotency_key"] for r in rows]
    told = set(
        session.scalars(
            select(col(Notification.idempotency_key)).where(
                col(Notification.idempotency_key).in_(keys)
            )
        )
    )
    return queue(session, [r for r in rows if r["idempotency_key"] not in told])


def request_late(
    session: Session,
    *,
    code: str,
    kind: str,
    which: str,
    due_at: dt.datetime,
    days_late: int,
    recipients: Sequence[User],
    now: dt.datetime,
) -> int:
    """A request's acknowledgement or completion is late: managers are told, once."""
    rows = _rows(
        recipients,
        what="request",
        code=code,
        about=(
            f"Yêu cầu {code} của chủ thể dữ liệu ({KIND_VI[kind]})",
            f"Data subject's request {code} ({KIND_EN[kind]})",
        ),
        work=WORK[which],
        due_at=due_at,
        key=f"privacy:{code}:{which}",
        now=now,
        extra={
            "state": "late",
            "late": (f"{days_late} ngày", f"{days_late} days"),
            "command": f"referrals privacy requests show {code}",
        },
    )
    return _queue_new(session, rows)


def breach_clock(
    session: Session,
    *,
    code: str,
    due_at: dt.datetime,
    over: bool,
    hours_late: int,
    recipients: Sequence[User],
    now: dt.datetime,
) -> int:
    """A breach's 72 hours are nearly gone, or gone: managers are told, once each."""
    rows = _rows(
        recipients,
        what="breach",
        code=code,
        about=(f"Vi phạm dữ liệu cá nhân {code}", f"Personal-data breach {code}"),
        work=WORK["breach"],
        due_at=due_at,
        key=f"privacy:{code}:{'overdue' if over else 'warn'}",
        now=now,
        extra={
            "state": "late" if over else "soon",
            "late": (f"{hours_late} giờ", f"{hours_late} hours"),
            "command": f"referrals privacy breach notice {code}",
        },
    )
    return _queue_new(session, rows)


def retention_coming(
    session: Session,
    *,
    codes: Sequence[str],
    erase_from: dt.datetime,
    recipients: Sequence[User],
    now: dt.datetime,
) -> int:
    """The clients whose personal details the sweep will erase from `erase_from`: their codes,
    one reminder to managers for the batch."""
    shown = list(codes[:MAX_CODES])
    if len(codes) > MAX_CODES:
        shown.append(f"(+{len(codes) - MAX_CODES})")
    rows = _rows(
        recipients,
        what="retention",
        code="-",
        about=("Lưu trữ dữ liệu cá nhân", "Personal data retention"),
        work=WORK["retention"],
        due_at=erase_from,
        key=f"privacy:retention:{now.date().isoformat()}",
        now=now,
        extra={"count": len(codes), "clients": shown, "command": "referrals privacy retention"},
    )
    return _queue_new(session, rows)
