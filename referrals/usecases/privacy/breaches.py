"""Personal-data breaches (Law 91/2025/QH15 Art. 23; Decree 356/2025/ND-CP Art. 28, Form 08):
recorded with the moment of discovery and the clock it starts (72 hours, continuous: Law Art. 23
k1, "chậm nhất là 72 giờ kể từ khi phát hiện"), whom the office told and when, and the notice's
required content generated for the specialised agency.

The notice holds what Decree 356 Art. 28 k1 a-d asks, in Form 08's sections: the nature of the
breach (time, place, act, who was involved, the categories and amount of data: counted from the
database, never a name), the data-protection contact (province.yaml `data_protection.officer`),
the likely consequences, and the measures taken. Vietnamese first, then English. The breach's
texts are sealed under the office's key (they are about many clients, or none).
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

from pydantic import Field, field_validator
from sqlalchemy import String, cast, func, select
from sqlmodel import Session, col

from referrals.config import Province
from referrals.config.privacy import DataProtection
from referrals.infra.context import Context
from referrals.models.codes import new_code
from referrals.models.errors import DomainError, NotFound
from referrals.models.people import Client, Consent, User, actor_name
from referrals.models.privacy import Breach, BreachNotice, Told
from referrals.models.workflow import Event, Extension, Referral
from referrals.usecases.privacy.requests import _aware, _In, require_staff


class Category(StrEnum):
    """What a breach may have exposed: the client's fields, the services they used (health,
    legal, shelter: sensitive, Decree 356 Art. 4), their consents, free-text notes."""

    name = "name"
    phone = "phone"
    id_number = "id_number"
    services = "services"
    consents = "consents"
    notes = "notes"


CATEGORY_VI = {
    "name": "Họ và tên",
    "phone": "Số điện thoại",
    "id_number": "Số định danh cá nhân / CCCD",
    "services": "Dịch vụ đã được chuyển gửi (có thể là dữ liệu nhạy cảm: sức khỏe, đời sống riêng tư)",
    "consents": "Sự đồng ý theo mục đích và đối tác",
    "notes": "Ghi chú tự do về đối tượng",
}
CATEGORY_EN = {
    "name": "Full name",
    "phone": "Phone number",
    "id_number": "Personal ID number",
    "services": "Services referred to (may be sensitive: health, private life)",
    "consents": "Consents by purpose and partner",
    "notes": "Free-text notes about the client",
}
TEXTS = ("place", "nature", "involved", "consequences", "measures")
MAX_TEXT = 4000


class BreachIn(_In):
    discovered_at: dt.datetime
    occurred_at: dt.datetime | None = None
    categories: list[Category] = Field(min_length=1, max_length=len(Category))
    areas: list[str] = Field(default=[], max_length=200)
    pathways: list[str] = Field(default=[], max_length=50)
    place: str | None = Field(default=None, max_length=MAX_TEXT)
    nature: str = Field(min_length=3, max_length=MAX_TEXT)
    involved: str | None = Field(default=None, max_length=MAX_TEXT)
    consequences: str | None = Field(default=None, max_length=MAX_TEXT)
    measures: str | None = Field(default=None, max_length=MAX_TEXT)

    @field_validator("discovered_at", "occurred_at")
    @classmethod
    def _instant(cls, value: dt.datetime | None) -> dt.datetime | None:
        return None if value is None else _aware(value, "the time")


class NotifyIn(_In):
    told: Told
    recipient: str = Field(min_length=2, max_length=200)
    channel: str = Field(min_length=2, max_length=40)
    reference: str | None = Field(default=None, max_length=100)
    at: dt.datetime

    @field_validator("at")
    @classmethod
    def _instant(cls, value: dt.datetime) -> dt.datetime:
        return _aware(value, "--at")


def record_breach(
    session: Session,
    *,
    data: BreachIn,
    province: Province,
    by: User | None,
    ctx: Context,
    now: dt.datetime,
) -> Breach:
    """Record a breach; its clock runs from `discovered_at`."""
    require_staff(by, "recording a breach")
    cfg = province.province.data_protection
    if data.discovered_at > now + dt.timedelta(minutes=5):
        raise DomainError("a breach cannot be discovered in the future", key="privacy_future")
    if data.occurred_at and data.occurred_at > data.discovered_at:
        raise DomainError("a breach cannot occur after its discovery", key="privacy_order")
    known_areas = {a.key for a in province.province.areas}
    if unknown := sorted(set(data.areas) - known_areas):
        raise NotFound(f"no area {', '.join(unknown)} in province.yaml")
    known_paths = {p.key for p in province.pathways}
    if unknown := sorted(set(data.pathways) - known_paths):
        raise NotFound(f"no pathway {', '.join(unknown)}")
    seal = ctx.vault.encrypt
    breach = Breach(
        code=new_code("VP"),
        discovered_at=data.discovered_at,
        occurred_at=data.occurred_at,
        notify_due_at=data.discovered_at + dt.timedelta(hours=cfg.breach_notify_hours),
        categories=sorted({c.value for c in data.categories}),
        areas=sorted(set(data.areas)),
        pathways=sorted(set(data.pathways)),
        created_at=now,
        created_by=actor_name(by),
    )
    for t in TEXTS:
        setattr(breach, f"{t}_enc", seal(getattr(data, t), f"breach.{t}"))
    session.add(breach)
    session.flush()
    _event(session, breach, "privacy.breach.recorded", actor_name(by), now)
    return breach


def _event(
    session: Session, breach: Breach, kind: str, actor: str, now: dt.datetime, **data: Any
) -> None:
    session.add(Event(kind=kind, at=now, actor=actor, data={"breach": breach.code, **data}))


def get_breach(session: Session, code: str, *, lock: bool = False) -> Breach:
    query = select(Breach).where(col(Breach.code) == code)
    if lock:
        query = query.with_for_update()
    found = session.scalars(query).first()
    if found is None:
        raise NotFound(f"unknown breach {code!r}")
    return found


def notify(
    session: Session, *, code: str, data: NotifyIn, by: User | None, now: dt.datetime
) -> BreachNotice:
    """Record that someone was told of the breach; telling the agency stops the clock."""
    require_staff(by, "recording who was told of a breach")
    breach = get_breach(session, code, lock=True)
    if data.at > now + dt.timedelta(minutes=5):
        raise DomainError("--at is in the future", key="privacy_future")
    if data.at < breach.discovered_at:
        raise DomainError("--at is before the breach was discovered", key="privacy_order")
    actor = actor_name(by)
    notice = BreachNotice(
        breach_id=_bid(breach),
        told=data.told.value,
        recipient=data.recipient,
        channel=data.channel,
        reference=data.reference,
        at=data.at,
        by=actor,
    )
    session.add(notice)
    if data.told is Told.authority and breach.notified_at is None:
        breach.notified_at = data.at
    late = data.told is Told.authority and data.at > breach.notify_due_at
    _event(session, breach, "privacy.breach.notified", actor, now, told=data.told.value, late=late)
    session.flush()
    return notice


def _bid(breach: Breach) -> int:
    assert breach.id is not None
    return breach.id


def counts(session: Session, breach: Breach) -> dict[str, int]:
    """How many clients and records of each affected category the breach's scope holds (its
    areas and services; all when none): counted now, never listed."""
    scope = select(col(Client.id)).where(
        col(Client.merged_into_id).is_(None), col(Client.erased_at).is_(None)
    )
    if breach.areas:
        scope = scope.where(col(Client.area_key).in_(breach.areas))
    if breach.pathways:
        scope = scope.where(
            col(Client.id).in_(
                select(col(Referral.client_id)).where(
                    col(Referral.pathway_key).in_(breach.pathways)
                )
            )
        )
    ids = scope.scalar_subquery()

    def n(query: Any) -> int:
        return int(session.scalar(query) or 0)

    clients = select(func.count()).select_from(Client).where(col(Client.id).in_(ids))
    out = {"clients": n(clients)}
    fields = {"name": Client.name_enc, "phone": Client.phone_enc, "id_number": Client.id_number_enc}
    referrals = select(func.count()).select_from(Referral).where(col(Referral.client_id).in_(ids))
    if breach.pathways:
        referrals = referrals.where(col(Referral.pathway_key).in_(breach.pathways))
    for category in breach.categories:
        if category in fields:
            out[category] = n(clients.where(col(fields[category]).is_not(None)))
        elif category == "services":
            out[category] = n(referrals)
        elif category == "consents":
            out[category] = n(
                select(func.count()).select_from(Consent).where(col(Consent.client_id).in_(ids))
            )
        elif category == "notes":
            events = n(
                select(func.count())
                .select_from(Event)
                .where(
                    col(Event.client_id).in_(ids)
                    | col(Event.referral_id).in_(
                        select(col(Referral.id)).where(col(Referral.client_id).in_(ids))
                    ),
                    cast(Event.data, String).like("%note_enc%"),
                )
            )
            reasons = n(
                select(func.count())
                .select_from(Extension)
                .join(Referral, col(Referral.id) == col(Extension.referral_id))
                .where(col(Referral.client_id).in_(ids), col(Extension.reason_enc).is_not(None))
            )
            out[category] = events + reasons
    return out


def opened(breach: Breach, ctx: Context) -> dict[str, str | None]:
    """The breach's texts; one sealed under a secret no longer held reads as None."""
    out: dict[str, str | None] = {}
    for t in TEXTS:
        try:
            out[t] = ctx.vault.decrypt(getattr(breach, f"{t}_enc"), f"breach.{t}")
        except ValueError:
            out[t] = None
    return out


def as_dict(
    session: Session, breach: Breach, now: dt.datetime, *, texts: dict[str, Any] | None = None
) -> dict[str, Any]:
    told = session.scalars(
        select(BreachNotice)
        .where(col(BreachNotice.breach_id) == breach.id)
        .order_by(col(BreachNotice.at), col(BreachNotice.id))
    )
    left = (breach.notify_due_at - now).total_seconds() / 3600
    return {
        "code": breach.code,
        "discovered_at": breach.discovered_at.isoformat(),
        "occurred_at": _iso(breach.occurred_at),
        "notify_due_at": breach.notify_due_at.isoformat(),
        "notified_at": _iso(breach.notified_at),
        "hours_left": None if breach.notified_at else round(left, 1),
        "overdue": breach.notified_at is None and now > breach.notify_due_at,
        "categories": breach.categories,
        "areas": breach.areas,
        "pathways": breach.pathways,
        "told": [
            {
                "told": t.told,
                "recipient": t.recipient,
                "channel": t.channel,
                "reference": t.reference,
                "at": t.at.isoformat(),
                "by": t.by,
            }
            for t in told
        ],
        **({"texts": texts} if texts is not None else {}),
    }


def list_breaches(session: Session, *, by: User | None, now: dt.datetime) -> list[dict[str, Any]]:
    require_staff(by, "listing breaches")
    found = session.scalars(select(Breach).order_by(col(Breach.discovered_at).desc()))
    return [as_dict(session, b, now) for b in found]


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value else None


def _when(at: dt.datetime | None, ctx: Context) -> str:
    return at.astimezone(ctx.tz).strftime("%H:%M %d/%m/%Y") if at else "-"


def notice(
    session: Session,
    *,
    code: str,
    province: Province,
    by: User | None,
    ctx: Context,
    now: dt.datetime,
    lang: str = "both",
) -> tuple[str, dict[str, Any]]:
    """The notice to the specialised agency (Decree 356 Art. 28 k1 a-d, Form 08), as markdown
    (Vietnamese, then English, or one of them) and as data. Generating it is an event."""
    require_staff(by, "the breach notice")
    breach = get_breach(session, code)
    cfg = province.province.data_protection
    texts = opened(breach, ctx)
    numbers = counts(session, breach)
    data = as_dict(session, breach, now, texts=texts)
    data["counts"] = numbers
    office = province.province.office
    data["office"] = {
        "name": office.name if office else province.province.name,
        "address": office.address if office else None,
        "phone": office.phone if office else None,
        "registration": cfg.registration,
        "tax_code": cfg.tax_code,
        "website": cfg.website,
        "officer": cfg.officer.model_dump() if cfg.officer else None,
        "authority": cfg.authority,
    }
    parts = []
    if lang in ("vi", "both"):
        parts.append(_vi(data, breach, cfg, ctx))
    if lang in ("en", "both"):
        parts.append(_en(data, breach, cfg, ctx))
    session.add(
        Event(
            kind="privacy.breach.notice",
            at=now,
            actor=actor_name(by),
            data={"breach": breach.code, "lang": lang},
        )
    )
    return "\n\n---\n\n".join(parts), data


def _officer(cfg: DataProtection, none: str) -> list[str]:
    o = cfg.officer
    if o is None:
        return [f"- {none}"]
    return [
        f"- {o.name}" + (f", {o.title}" if o.title else ""),
        f"- {o.phone or '-'} / {o.email or '-'}",
    ]


def _vi(data: dict[str, Any], breach: Breach, cfg: DataProtection, ctx: Context) -> str:
    t, office, n = data["texts"], data["office"], data["counts"]
    scope = []
    if breach.areas:
        scope.append("địa bàn: " + ", ".join(breach.areas))
    if breach.pathways:
        scope.append("dịch vụ: " + ", ".join(breach.pathways))
    lines = [
        "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM",
        "Độc lập - Tự do - Hạnh phúc",
        "",
        "# THÔNG BÁO VI PHẠM QUY ĐỊNH BẢO VỆ DỮ LIỆU CÁ NHÂN",
        "",
        "(Mẫu số 08, Nghị định 356/2025/NĐ-CP; Điều 23 khoản 1 Luật Bảo vệ dữ liệu cá nhân "
        "91/2025/QH15)",
        "",
        f"Kính gửi: {office['authority']}",
        "",
        f"Mã vụ việc: {breach.code}",
        f"Thời điểm phát hiện: {_when(breach.discovered_at, ctx)}; hạn thông báo (72 giờ kể từ "
        f"khi phát hiện): {_when(breach.notify_due_at, ctx)}",
        "",
        "## 1. Thông tin tổ chức",
        "",
        f"- Tên tổ chức: {office['name']}",
        f"- Địa chỉ: {office['address'] or '-'}",
        f"- Quyết định thành lập / số đăng ký: {office['registration'] or '-'}",
        f"- Mã số thuế: {office['tax_code'] or '-'}",
        f"- Điện thoại: {office['phone'] or '-'}; trang thông tin: {office['website'] or '-'}",
        "",
        "## 2. Chi tiết liên lạc của bộ phận, nhân sự bảo vệ dữ liệu cá nhân (Điều 28 khoản 1 "
        "điểm b)",
        "",
        *_officer(cfg, "chưa chỉ định (data_protection.officer trong province.yaml)"),
        "",
        "## 3. Mô tả tính chất của việc vi phạm (Điều 28 khoản 1 điểm a)",
        "",
        f"- Thời gian: xảy ra {_when(breach.occurred_at, ctx) if breach.occurred_at else 'chưa xác định'}; "
        f"phát hiện {_when(breach.discovered_at, ctx)}",
        f"- Địa điểm: {t['place'] or '-'}",
        f"- Hành vi vi phạm: {t['nature'] or '-'}",
        f"- Tổ chức, cá nhân liên quan: {t['involved'] or '-'}",
        "- Các loại dữ liệu cá nhân và số lượng dữ liệu liên quan"
        + (f" ({'; '.join(scope)})" if scope else " (toàn bộ dữ liệu đang lưu giữ)")
        + ":",
        f"  - Số chủ thể dữ liệu (đối tượng) có dữ liệu đang lưu giữ: {n['clients']}",
        *(f"  - {CATEGORY_VI[c]}: {n[c]} bản ghi" for c in breach.categories),
        "",
        "## 4. Mô tả các hậu quả, thiệt hại có thể xảy ra (Điều 28 khoản 1 điểm c)",
        "",
        t["consequences"] or "-",
        "",
        "## 5. Mô tả biện pháp được đưa ra để giải quyết, giảm thiểu tác hại (Điều 28 khoản 1 "
        "điểm d)",
        "",
        t["measures"] or "-",
        "",
        "Biện pháp bảo vệ sẵn có của hệ thống: họ tên, số điện thoại, số định danh được mã hóa "
        "bằng khóa riêng của từng đối tượng (AES-GCM); xóa dữ liệu bằng hủy khóa; nhật ký kiểm "
        "toán chỉ ghi thêm, có chuỗi băm; tin nhắn cho đối tác không chứa thông tin nhận dạng.",
        "",
        "## 6. Tài liệu kèm theo",
        "",
        "- Biên bản xác nhận vi phạm (Điều 23 khoản 2 Luật 91/2025/QH15)",
        "",
        "## 7. Cam kết",
        "",
        "Tổ chức cam kết các thông tin trên là đúng sự thật.",
        "",
        "(Người đại diện ký, ghi rõ họ tên, đóng dấu)",
    ]
    return "\n".join(lines)


def _en(data: dict[str, Any], breach: Breach, cfg: DataProtection, ctx: Context) -> str:
    t, office, n = data["texts"], data["office"], data["counts"]
    scope = []
    if breach.areas:
        scope.append("areas: " + ", ".join(breach.areas))
    if breach.pathways:
        scope.append("services: " + ", ".join(breach.pathways))
    lines = [
        "# NOTICE OF A BREACH OF PERSONAL DATA PROTECTION RULES (English, for reference)",
        "",
        "(Form 08, Decree 356/2025/ND-CP; Law 91/2025/QH15 Art. 23 k1)",
        "",
        f"To: {office['authority']}",
        "",
        f"Case: {breach.code}",
        f"Discovered: {_when(breach.discovered_at, ctx)}; notice due (72 hours from discovery): "
        f"{_when(breach.notify_due_at, ctx)}",
        "",
        "## 1. The organisation",
        "",
        f"- Name: {office['name']}",
        f"- Address: {office['address'] or '-'}",
        f"- Founding decision / registration: {office['registration'] or '-'}",
        f"- Tax code: {office['tax_code'] or '-'}",
        f"- Phone: {office['phone'] or '-'}; website: {office['website'] or '-'}",
        "",
        "## 2. Data-protection contact (Art. 28 k1 b)",
        "",
        *_officer(cfg, "not appointed (data_protection.officer in province.yaml)"),
        "",
        "## 3. Nature of the breach (Art. 28 k1 a)",
        "",
        f"- Time: occurred {_when(breach.occurred_at, ctx) if breach.occurred_at else 'unknown'}; "
        f"discovered {_when(breach.discovered_at, ctx)}",
        f"- Place: {t['place'] or '-'}",
        f"- Act: {t['nature'] or '-'}",
        f"- Organisations and people involved: {t['involved'] or '-'}",
        "- Categories and amount of personal data"
        + (f" ({'; '.join(scope)})" if scope else " (all data held)")
        + ":",
        f"  - Data subjects (clients) whose data is held: {n['clients']}",
        *(f"  - {CATEGORY_EN[c]}: {n[c]} records" for c in breach.categories),
        "",
        "## 4. Likely consequences and harm (Art. 28 k1 c)",
        "",
        t["consequences"] or "-",
        "",
        "## 5. Measures taken to deal with and reduce the harm (Art. 28 k1 d)",
        "",
        t["measures"] or "-",
        "",
        "## 6. Attachments",
        "",
        "- The written record confirming the breach (Law 91/2025/QH15 Art. 23 k2)",
        "",
        "## 7. Commitment",
        "",
        "The organisation commits that the above is true. (Signed and stamped.)",
    ]
    return "\n".join(lines)


def due_breaches(session: Session, now: dt.datetime, cfg: DataProtection) -> list[Breach]:
    """Breaches not yet notified whose warning or overdue alert has come."""
    warn_from = now + dt.timedelta(hours=cfg.breach_warn_hours)
    return list(
        session.scalars(
            select(Breach).where(
                col(Breach.notified_at).is_(None),
                col(Breach.closed_at).is_(None),
                col(Breach.notify_due_at) <= warn_from,
                col(Breach.overdue_alerted_at).is_(None),
            )
        )
    )
