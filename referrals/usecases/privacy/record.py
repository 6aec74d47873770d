"""The processing record: what personal data the engine holds, for which purposes, shared with
which partners, kept how long, and how it is protected, generated from the config and the
consents. These are the facts the impact-assessment dossier asks for (Law 91/2025/QH15 Art. 21;
Decree 356/2025/ND-CP Art. 19 k3, Form 10 part A II: 3 data types with counts, 4 consent,
5 retention, 6 erasure, 7 transfers, 11 protective measures). The risk assessment, the diagrams
and the filing remain the office's. Counts only, never a name.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import func, select
from sqlmodel import Session, col

from referrals.config import Province
from referrals.models.directory import Organization
from referrals.models.people import Client, Consent, User
from referrals.models.privacy import Breach, PrivacyRequest
from referrals.models.workflow import Referral
from referrals.usecases.privacy.requests import require_staff

# (key, Vietnamese, English, basic/sensitive, the article, where it is held, encrypted)
FIELDS = (
    ("name", "Họ và tên", "Full name", "basic", "Decree 356 Art. 3", "client.name_enc", True),
    (
        "phone",
        "Số điện thoại",
        "Phone number",
        "basic",
        "Decree 356 Art. 3",
        "client.phone_enc",
        True,
    ),
    (
        "id_number",
        "Số định danh cá nhân / CCCD",
        "Personal ID number",
        "basic",
        "Decree 356 Art. 3",
        "client.id_number_enc",
        True,
    ),
    (
        "area",
        "Địa bàn cư trú (phường/xã)",
        "Area (ward/commune)",
        "basic",
        "Decree 356 Art. 3",
        "client.area_key",
        False,
    ),
    (
        "services",
        "Dịch vụ được chuyển gửi (khám sức khỏe, trợ giúp pháp lý, tạm lánh...)",
        "Services referred to (health check, legal aid, shelter...)",
        "sensitive",
        "Decree 356 Art. 4 k1 c, d, e",
        "referral.pathway_key",
        False,
    ),
    (
        "notes",
        "Ghi chú tự do (lý do, kết quả, yêu cầu của chủ thể dữ liệu)",
        "Free-text notes (reasons, outcomes, data subjects' requests)",
        "sensitive",
        "Decree 356 Art. 4 k1 c",
        "event.data note_enc, extension.reason_enc, privacy_request.*_enc",
        True,
    ),
)

MEASURES = (
    (
        "Mã hóa họ tên, số điện thoại, số định danh và ghi chú bằng khóa riêng của từng đối tượng (AES-256-GCM), khóa được bọc bằng khóa bí mật của hệ thống",
        "Name, phone, ID number and notes encrypted under each client's own key (AES-256-GCM), wrapped under the installation's secret",
    ),
    (
        "Tìm kiếm bằng giá trị băm có khóa (HMAC), không lưu bản rõ",
        "Search by keyed hashes (HMAC), never the clear value",
    ),
    (
        "Xóa dữ liệu bằng hủy khóa (crypto-shredding): mọi bản sao, kể cả bản sao lưu không kèm khóa, không còn đọc được (Luật 91 Điều 14 k3)",
        "Erasure by crypto-shredding: every copy, backups without the keys included, becomes unreadable (Law 91 Art. 14 k3)",
    ),
    (
        "Nhật ký kiểm toán chỉ ghi thêm, niêm phong bằng chuỗi HMAC; trigger cơ sở dữ liệu chặn sửa, xóa",
        "Append-only audit trail sealed by an HMAC chain; database triggers refuse edits and deletes",
    ),
    (
        "Phân quyền theo vai trò và địa bàn (cán bộ điều phối, lãnh đạo, quản trị) (Nghị định 356 Điều 4 k2)",
        "Role- and district-based access (coordinator, manager, admin) (Decree 356 Art. 4 k2)",
    ),
    (
        "Tin nhắn cho đối tác chỉ có mã chuyển gửi, không có tên, số điện thoại hay loại dịch vụ nhạy cảm",
        "Messages to partners carry a referral code, never a name, phone or revealing service",
    ),
    (
        "Chỉ chuyển gửi khi có sự đồng ý theo từng đối tác và mục đích; rút lại sự đồng ý hủy các chuyển gửi đang mở",
        "Referrals only with consent per partner and purpose; a withdrawal cancels the open referrals",
    ),
)


def processing_record(
    session: Session, *, province: Province, by: User | None, now: dt.datetime
) -> dict[str, Any]:
    """The record as data (the JSON output; `as_markdown` renders it)."""
    require_staff(by, "the processing record")
    cfg = province.province.data_protection

    def n(query: Any) -> int:
        return int(session.scalar(query) or 0)

    people = select(func.count()).select_from(Client).where(col(Client.merged_into_id).is_(None))
    held = people.where(col(Client.erased_at).is_(None))
    fields_held = {
        "name": n(held.where(col(Client.name_enc).is_not(None))),
        "phone": n(held.where(col(Client.phone_enc).is_not(None))),
        "id_number": n(held.where(col(Client.id_number_enc).is_not(None))),
        "area": n(held),
        "services": n(
            select(func.count())
            .select_from(Referral)
            .join(Client, col(Client.id) == col(Referral.client_id))
            .where(col(Client.erased_at).is_(None))
        ),
        "notes": None,
    }
    active = col(Consent.withdrawn_at).is_(None)
    consents = {
        (org, purpose): count
        for org, purpose, count in session.execute(
            select(col(Consent.organization_id), col(Consent.purpose), func.count())
            .where(active)
            .group_by(col(Consent.organization_id), col(Consent.purpose))
        ).tuples()
    }
    referrals = {
        (org, path): count
        for org, path, count in session.execute(
            select(col(Referral.organization_id), col(Referral.pathway_key), func.count()).group_by(
                col(Referral.organization_id), col(Referral.pathway_key)
            )
        ).tuples()
    }
    orgs = {o.id: o for o in session.scalars(select(Organization).order_by(col(Organization.slug)))}
    purposes = [
        {
            "pathway": p.key,
            "name": p.name,
            "name_en": p.name_en,
            "referrals": sum(c for (_, k), c in referrals.items() if k == p.key),
            "active_consents": sum(c for (_, k), c in consents.items() if k == p.key),
        }
        for p in province.pathways
    ]
    sharing = []
    for org_id, org in orgs.items():
        given = {k: c for (o, k), c in consents.items() if o == org_id}
        sent = {k: c for (o, k), c in referrals.items() if o == org_id}
        if not given and not sent:
            continue
        sharing.append(
            {
                "partner": org.slug,
                "name": org.name,
                "active_consents": dict(sorted(given.items())),
                "referrals": dict(sorted(sent.items())),
            }
        )
    requests = session.execute(
        select(
            func.count(),
            func.count(col(PrivacyRequest.closed_at)),
        ).select_from(PrivacyRequest)
    ).one()
    breaches = session.execute(
        select(func.count(), func.count(col(Breach.notified_at))).select_from(Breach)
    ).one()
    office = province.province.office
    return {
        "generated_at": now.isoformat(),
        "basis": [
            "Luật Bảo vệ dữ liệu cá nhân 91/2025/QH15, Điều 21",
            "Nghị định 356/2025/NĐ-CP, Điều 19 khoản 3, Mẫu số 10",
        ],
        "controller": {
            "name": office.name if office else province.province.name,
            "name_en": office.name_en if office else province.province.name_en,
            "address": office.address if office else None,
            "phone": office.phone if office else None,
            "registration": cfg.registration,
            "tax_code": cfg.tax_code,
            "officer": cfg.officer.model_dump() if cfg.officer else None,
        },
        "subjects": {
            "clients": n(people),
            "with_personal_data": n(held),
            "erased": n(people.where(col(Client.erased_at).is_not(None))),
        },
        "data": [
            {
                "field": key,
                "name": vi,
                "name_en": en,
                "kind": kind,
                "article": article,
                "stored_in": where,
                "encrypted": encrypted,
                "records": fields_held[key],
            }
            for key, vi, en, kind, article, where, encrypted in FIELDS
        ],
        "purposes": purposes,
        "sharing": sharing,
        "retention": {
            "retention_days": cfg.retention_days,
            "notice_days": cfg.retention_notice_days,
            "erasure": "crypto-shredding (erase_client): the client's key, name, phone and ID "
            "number; the pseudonymous code and the anonymous history stay",
        },
        "rights": {
            "acknowledge_working_days": cfg.acknowledge_working_days,
            "limits": cfg.limits.model_dump(),
            "requests": {"total": requests[0], "closed": requests[1]},
        },
        "breaches": {
            "notify_hours": cfg.breach_notify_hours,
            "total": breaches[0],
            "notified": breaches[1],
        },
        "measures": [{"vi": vi, "en": en} for vi, en in MEASURES],
    }


def as_markdown(record: dict[str, Any], tz: Any) -> str:
    """The record for people: Vietnamese, with the English names beside."""
    c = record["controller"]
    at = dt.datetime.fromisoformat(record["generated_at"]).astimezone(tz)
    retention = record["retention"]["retention_days"]
    lines = [
        "# Hồ sơ hoạt động xử lý dữ liệu cá nhân (Processing record)",
        "",
        f"Lập lúc {at:%H:%M %d/%m/%Y}; căn cứ: {'; '.join(record['basis'])}.",
        "Số liệu đếm từ cơ sở dữ liệu, không nêu tên người nào.",
        "",
        "## 1. Bên kiểm soát dữ liệu (Controller)",
        "",
        f"- {c['name']} ({c['name_en']})",
        f"- Địa chỉ: {c['address'] or '-'}; điện thoại: {c['phone'] or '-'}",
        f"- Quyết định thành lập: {c['registration'] or '-'}; mã số thuế: {c['tax_code'] or '-'}",
        "- Nhân sự bảo vệ dữ liệu cá nhân: "
        + (
            f"{c['officer']['name']}, {c['officer'].get('title') or '-'}, "
            f"{c['officer'].get('phone') or '-'}, {c['officer'].get('email') or '-'}"
            if c["officer"]
            else "chưa chỉ định (data_protection.officer)"
        ),
        "",
        "## 2. Chủ thể và loại dữ liệu (Data subjects and data types; Form 10 A.II.3)",
        "",
        f"Đối tượng: {record['subjects']['clients']} (còn dữ liệu cá nhân: "
        f"{record['subjects']['with_personal_data']}, đã xóa: {record['subjects']['erased']})",
        "",
        "| Dữ liệu (data) | Loại (kind) | Căn cứ | Mã hóa | Số bản ghi |",
        "|---|---|---|---|---|",
        *(
            f"| {d['name']} ({d['name_en']}) | {'cơ bản' if d['kind'] == 'basic' else 'nhạy cảm'} "
            f"({d['kind']}) | {d['article']} | {'có' if d['encrypted'] else 'không'} | "
            f"{'-' if d['records'] is None else d['records']} |"
            for d in record["data"]
        ),
        "",
        "## 3. Mục đích xử lý (Purposes: the services)",
        "",
        "| Dịch vụ | Service | Chuyển gửi | Đồng ý còn hiệu lực |",
        "|---|---|---|---|",
        *(
            f"| {p['name']} | {p['name_en']} | {p['referrals']} | {p['active_consents']} |"
            for p in record["purposes"]
        ),
        "",
        "## 4. Chia sẻ với đối tác (Shared with partners; Form 10 A.II.7-8)",
        "",
        "Chỉ khi đối tượng đồng ý theo từng đối tác và mục đích (consent per partner and purpose).",
        "",
        "| Đối tác | Đồng ý còn hiệu lực (theo mục đích) | Chuyển gửi (theo dịch vụ) |",
        "|---|---|---|",
        *(
            f"| {s['name']} (`{s['partner']}`) | "
            + (", ".join(f"{k}: {v}" for k, v in s["active_consents"].items()) or "-")
            + " | "
            + (", ".join(f"{k}: {v}" for k, v in s["referrals"].items()) or "-")
            + " |"
            for s in record["sharing"]
        ),
        "",
        "## 5. Thời hạn lưu trữ và xóa (Retention and erasure; Form 10 A.II.5-6)",
        "",
        (
            f"- Lưu trữ: {retention} ngày không hoạt động và không có chuyển gửi đang mở, rồi xóa "
            f"tự động; báo lãnh đạo trước {record['retention']['notice_days']} ngày"
            if retention
            else "- Lưu trữ: chưa đặt thời hạn (data_protection.retention_days): không tự động xóa"
        ),
        "- Xóa bằng hủy khóa: khóa, họ tên, số điện thoại, số định danh của đối tượng; mã giả "
        "danh và lịch sử ẩn danh được giữ để thống kê",
        "",
        "## 6. Quyền của chủ thể dữ liệu (Data subjects' rights; Decree 356 Art. 5)",
        "",
        f"- Phản hồi trong {record['rights']['acknowledge_working_days']} ngày làm việc",
        *(
            f"- {kind}: {v['days']} ngày; {v['via_third_party_days']} ngày nếu cần bên thứ ba; "
            f"gia hạn 1 lần tối đa {v['extension_max_days']} ngày"
            for kind, v in record["rights"]["limits"].items()
        ),
        f"- Yêu cầu đã nhận: {record['rights']['requests']['total']}, đã đóng: "
        f"{record['rights']['requests']['closed']}",
        "",
        "## 7. Vi phạm (Breaches; Law 91 Art. 23)",
        "",
        f"- Thông báo cơ quan chuyên trách trong {record['breaches']['notify_hours']} giờ kể từ "
        f"khi phát hiện; đã ghi nhận {record['breaches']['total']} vụ, đã thông báo "
        f"{record['breaches']['notified']}",
        "",
        "## 8. Biện pháp bảo vệ (Protective measures; Form 10 A.II.11)",
        "",
        *(f"- {m['vi']} ({m['en']})" for m in record["measures"]),
        "",
        "Phần đánh giá rủi ro, sơ đồ luồng dữ liệu và việc nộp hồ sơ (Mẫu số 02a/02b, 10) do cơ "
        "quan thực hiện.",
    ]
    return "\n".join(lines) + "\n"
