"""Province config folders for the 2025 reform's tests.

`reformed_areas()` is the bundled Khánh Hòa config's areas (the real districts of 2019-2025 and
units from 01/07/2025) with one hypothetical later merger, so chains of reforms are tested too:
Phường Bắc Nha Trang and Phường Ninh Hòa into "Phường Lớn" (`p-lon`) on 01/01/2028. No such
resolution exists; it is test data. `config_with()` writes a copy of the bundled config with the
areas of a test's choosing."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from referrals.config.settings import BUNDLED_CONFIG

MERGED_2028 = ("phuong-bac-nha-trang", "ninh-hoa")
P_LON: dict[str, Any] = {
    "key": "p-lon",
    "name": "Phường Lớn",
    "name_en": "Big Ward",
    "level": "ward",
    "parent": "khanh-hoa",
    "valid_from": "2028-01-01",
}


def reformed_areas() -> list[dict[str, Any]]:
    """The bundled areas, then the hypothetical merger of 2028."""
    ended = {"valid_to": "2027-12-31", "successors": ["p-lon"]}
    areas = [a | ended if a["key"] in MERGED_2028 else a for a in bundled_areas()]
    return [*areas, P_LON]


def bundled_areas() -> list[dict[str, Any]]:
    """The bundled province.yaml's areas, as YAML data."""
    text = (BUNDLED_CONFIG / "province.yaml").read_text(encoding="utf-8")
    areas: list[dict[str, Any]] = yaml.safe_load(text)["areas"]
    return areas


def config_with(
    tmp_path: Path, areas: list[dict[str, Any]], serving: dict[str, list[str]] | None = None
) -> Path:
    """A copy of the bundled config whose province.yaml holds AREAS; its folder. SERVING adds
    areas to the services: every service of an area key given also serves the keys listed. A
    service whose areas are not all among AREAS serves the province (the root area) instead."""
    folder = tmp_path / "config"
    shutil.copytree(BUNDLED_CONFIG, folder)
    _rewrite(folder / "province.yaml", lambda data: data.update(areas=areas))
    known = {a["key"] for a in areas}
    root = next(a["key"] for a in areas if a["level"] == "province")

    def serve(data: dict[str, Any]) -> None:
        for partner in data["partners"]:
            for service in partner["services"]:
                if not set(service["areas"]) <= known:
                    service["areas"] = [root]
                for key in list(service["areas"]):
                    added = (serving or {}).get(key, [])
                    service["areas"] += [k for k in added if k not in service["areas"]]

    _rewrite(folder / "partners.yaml", serve)
    return folder


def _rewrite(path: Path, change: Callable[[dict[str, Any]], object]) -> None:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")


def old_keys_config(tmp_path: Path) -> Path:
    """A copy of the bundled config as an office that recorded under the keys of the first
    releases keeps them (README, "Areas across the 2025 reform"): `nha-trang` and `ninh-hoa`
    are the city and the town again, today's wards `phuong-nha-trang` and `phuong-ninh-hoa`."""
    import re

    folder = tmp_path / "config-old-keys"
    shutil.copytree(BUNDLED_CONFIG, folder)
    for name in ("province.yaml", "partners.yaml"):
        path = folder / name
        text = path.read_text(encoding="utf-8")
        for district, ward in (("tp-nha-trang", "nha-trang"), ("tx-ninh-hoa", "ninh-hoa")):
            text = re.sub(rf"(?<![\w-]){ward}(?![\w-])", f"phuong-{ward}", text)
            text = re.sub(rf"(?<![\w-]){district}(?![\w-])", ward, text)
        path.write_text(text, encoding="utf-8")
    return folder
