"""The processing record (Decree 356/2025 Art. 19, Form 10): the data held, purposes, partners
and their consents, retention and protective measures, counted from the database, no name; and
the `data_protection:` settings refused when wrong, like the rest of province.yaml."""

from __future__ import annotations

import datetime as dt
import json
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from referrals.config.privacy import DataProtection
from referrals.infra.db import transaction
from referrals.infra.runtime import Runtime
from referrals.models.errors import DomainError
from referrals.usecases.privacy.record import as_markdown, processing_record
from support.domain import consent, launch, new_client

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
NAMES = ("Lý Thị Diệu Hiền", "Cao Thị Mỹ Dung")


def test_the_record_counts_what_is_held_and_shared_without_names(
    rt: Runtime, now: dt.datetime
) -> None:
    for name in NAMES:
        client = new_client(rt, now, name=name, id_number=None)
        consent(rt, client, "legal-aid-centre", "legal_aid", now)
    consent(rt, client, "cdc-khanh-hoa", "health_check", now)
    launch(rt, client, "health_check", "cdc-khanh-hoa", now)
    with transaction(rt.engine) as s:
        record = processing_record(s, province=rt.province, by=rt.user(s, "hoa"), now=now)
    held = {d["field"]: d["records"] for d in record["data"]}
    assert held["name"] == held["phone"] == 2 and held["id_number"] == 0 and held["services"] == 1
    assert {d["field"]: d["kind"] for d in record["data"]}["services"] == "sensitive"
    sharing = {s["partner"]: s for s in record["sharing"]}
    assert sharing["legal-aid-centre"]["active_consents"] == {"legal_aid": 2}
    assert sharing["cdc-khanh-hoa"] == {
        "partner": "cdc-khanh-hoa",
        "name": sharing["cdc-khanh-hoa"]["name"],
        "active_consents": {"health_check": 1},
        "referrals": {"health_check": 1},
    }
    assert record["retention"]["retention_days"] is None
    assert record["rights"]["limits"]["erase"] == {
        "days": 20,
        "via_third_party_days": 30,
        "extension_max_days": 20,
    }
    markdown = as_markdown(record, TZ)
    assert "| Họ và tên (Full name) | cơ bản (basic) | Decree 356 Art. 3 | có | 2 |" in markdown
    assert "chưa đặt thời hạn" in markdown
    for name in NAMES:
        assert name not in markdown and name not in json.dumps(record, ensure_ascii=False)
    with pytest.raises(DomainError, match="manager or admin"), transaction(rt.engine) as s:
        processing_record(s, province=rt.province, by=rt.user(s, "mai"), now=now)


def test_the_settings_are_validated_like_the_province_file() -> None:
    with pytest.raises(ValidationError, match="extra"):
        DataProtection.model_validate({"retention_dayz": 30})
    with pytest.raises(ValidationError, match="shorter than days"):
        DataProtection.model_validate(
            {"limits": {"erase": {"days": 20, "via_third_party_days": 10, "extension_max_days": 5}}}
        )
    with pytest.raises(ValidationError, match="retention_notice_days"):
        DataProtection.model_validate({"retention_days": 30, "retention_notice_days": 30})
    assert DataProtection().limits.of("access").days == 10  # Decree 356 Art. 5 k3
