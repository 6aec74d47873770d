"""What the export and the import of HSDS share: the version, the ids, the capacity words."""

from __future__ import annotations

import uuid

HSDS_VERSION = "3.1"
NAMESPACE = uuid.UUID("6f1b7c2e-3d0a-5b8e-9c4f-2a7d1e6b0c53")  # fixed: ids stable across exports
CAPACITY = {
    "open": "còn nhận (open)",
    "waitlist": "danh sách chờ (waitlist)",
    "full": "hết chỗ (full)",
}
UNIT = {"name": "chỗ nhận khách hàng (client places)", "scheme": "referrals", "identifier": "place"}


def hsds_id(province: str, *parts: object) -> str:
    return str(uuid.uuid5(NAMESPACE, ":".join(str(p) for p in (province, *parts))))


def urn(province: str, kind: str, key: str) -> str:
    return f"urn:referrals:{province}:{kind}:{key}"
