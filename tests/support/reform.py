"""A province config folder with areas of the tests' choosing: the bundled Khánh Hòa config with
its `areas` replaced (partners keep serving nha-trang and ninh-hoa). The wards below are test
data for the 2025 reform's shape, not a claim about the real units."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import yaml

from referrals.config.settings import BUNDLED_CONFIG

# Two wards from 01/07/2025, the first merged again into a third from 01/01/2028.
WARDS: list[dict[str, Any]] = [
    {
        "key": "p-bac",
        "name": "Phường Bắc",
        "name_en": "North Ward",
        "level": "ward",
        "parent": "khanh-hoa",
        "valid_from": "2025-07-01",
        "valid_to": "2027-12-31",
        "successors": ["p-lon"],
    },
    {
        "key": "p-nam",
        "name": "Phường Nam",
        "name_en": "South Ward",
        "level": "ward",
        "parent": "khanh-hoa",
        "valid_from": "2025-07-01",
    },
    {
        "key": "p-lon",
        "name": "Phường Lớn",
        "name_en": "Big Ward",
        "level": "ward",
        "parent": "khanh-hoa",
        "valid_from": "2028-01-01",
    },
]


def bundled_areas() -> list[dict[str, Any]]:
    """The bundled province.yaml's areas, as YAML data."""
    text = (BUNDLED_CONFIG / "province.yaml").read_text(encoding="utf-8")
    areas: list[dict[str, Any]] = yaml.safe_load(text)["areas"]
    return areas


def config_with(tmp_path: Path, areas: list[dict[str, Any]]) -> Path:
    """A copy of the bundled config whose province.yaml holds AREAS; its folder."""
    folder = tmp_path / "config"
    shutil.copytree(BUNDLED_CONFIG, folder)
    path = folder / "province.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["areas"] = areas
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return folder
