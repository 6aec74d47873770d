"""Areas with time (issue 23, first slice): which units were in force on a day, who succeeded
whom, and a succession file that cannot be right refused with its line.

The fixtures are a copy of the bundled config whose areas are rewritten: two districts that end
on 30/06/2025, the wards that replaced them from 01/07/2025, and one of those merged again
later (a chain). The names are test data, not a claim about the real reform."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from referrals.config import ConfigError, load_province
from referrals.config.areas import areas_on, descendants, predecessors
from support.reform import config_with

# Two wards from 01/07/2025, the first merged again into a third from 01/01/2028.
WARDS: list[dict[str, object]] = [
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

P_NINH_HOA = {
    "key": "p-ninh-hoa",
    "name": "Phường Ninh Hòa",
    "name_en": "Ninh Hoa Ward",
    "level": "ward",
    "parent": "khanh-hoa",
    "valid_from": "2025-07-01",
}
AREAS = [
    {"key": "khanh-hoa", "name": "Tỉnh Khánh Hòa", "name_en": "Khanh Hoa", "level": "province"},
    {
        "key": "nha-trang",
        "name": "Thành phố Nha Trang",
        "name_en": "Nha Trang City",
        "level": "district",
        "parent": "khanh-hoa",
        "valid_to": "2025-06-30",
        "successors": ["p-bac", "p-nam"],
    },
    {
        "key": "ninh-hoa",
        "name": "Thị xã Ninh Hòa",
        "name_en": "Ninh Hoa Town",
        "level": "district",
        "parent": "khanh-hoa",
        "valid_to": "2025-06-30",
        "successors": ["p-ninh-hoa"],
    },
    *WARDS[:2],
    P_NINH_HOA,
    WARDS[2],
]


def test_areas_in_force_and_their_succession(tmp_path: Path) -> None:
    areas = load_province(config_with(tmp_path, AREAS)).province.areas
    keys = lambda on: [a.key for a in areas_on(areas, on)]  # noqa: E731
    assert keys(dt.date(2020, 12, 31)) == ["khanh-hoa", "nha-trang", "ninh-hoa"]
    assert keys(dt.date(2025, 6, 30)) == ["khanh-hoa", "nha-trang", "ninh-hoa"]
    assert keys(dt.date(2025, 7, 1)) == ["khanh-hoa", "p-bac", "p-nam", "p-ninh-hoa"]
    assert keys(dt.date(2028, 1, 1)) == ["khanh-hoa", "p-nam", "p-ninh-hoa", "p-lon"]
    # A coordinator of the former district sees every unit that took over its territory.
    assert descendants(areas, "nha-trang") == ["p-bac", "p-nam", "p-lon"]
    assert descendants(areas, "p-nam") == []
    assert predecessors(areas, "p-lon") == ["p-bac"]


def run_areas(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REFERRALS_")}
    return subprocess.run(
        [sys.executable, "-m", "referrals.cli", "areas", *args],
        env=env | {"REFERRALS_CONFIG_DIR": str(config)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_areas_command_in_a_fresh_process(tmp_path: Path) -> None:
    """`referrals areas --on DATE`: the seeds' districts for 2020, today's wards with what they
    replaced for 2026; no database needed (it reads the province's YAML)."""
    config = config_with(tmp_path, AREAS)
    old = run_areas(config, "--on", "31/12/2020", "--json")
    assert old.returncode == 0, old.stderr
    assert [a["key"] for a in json.loads(old.stdout)["areas"]] == [
        "khanh-hoa",
        "nha-trang",
        "ninh-hoa",
    ]
    new = json.loads(run_areas(config, "--on", "2026-01-01", "--json").stdout)
    assert new["on"] == "2026-01-01"
    ward = next(a for a in new["areas"] if a["key"] == "p-bac")
    assert (ward["valid_from"], ward["valid_to"], ward["predecessors"], ward["successors"]) == (
        "2025-07-01",
        "2027-12-31",
        ["nha-trang"],
        ["p-lon"],
    )
    text = run_areas(config, "--on", "01/01/2026")
    assert text.returncode == 0 and text.stderr == ""
    assert text.stdout.splitlines()[0] == "areas in force on 01/01/2026: 4"
    assert "Phường Bắc  since 01/07/2025 until 31/12/2027  (was nha-trang)" in text.stdout
    bad = run_areas(config, "--on", "31/02/2026")
    assert (
        bad.returncode == 1 and bad.stderr.startswith("error: ") and "Traceback" not in bad.stderr
    )


def with_change(index: int, **change: object) -> list[dict[str, object]]:
    areas = [dict(a) for a in AREAS]
    areas[index].update(change)
    return areas


@pytest.mark.parametrize(
    ("areas", "needle", "message"),
    [
        (with_change(1, successors=["p-bac", "p-tay"]), "- p-tay", "successors.1: no area 'p-tay'"),
        (
            with_change(6, valid_to="2030-12-31", successors=["p-bac"]),
            None,
            "makes a cycle",
        ),
        (
            with_change(4, valid_from="2025-06-01"),
            "- p-nam",
            "successors.1: 'p-nam' is in force from 2025-06-01, before 'nha-trang' ended "
            "(2025-06-30)",
        ),
        (with_change(2, valid_to=None), "- p-ninh-hoa", "an area with successors must end"),
        (with_change(3, valid_to="2025-01-01"), "2025-01-01", "ends (2025-01-01) before it starts"),
    ],
    ids=["unknown successor", "cycle", "overlapping validity", "no end", "end before start"],
)
def test_a_bad_succession_is_refused_with_its_line(
    tmp_path: Path, areas: list[dict[str, object]], needle: str | None, message: str
) -> None:
    """The error names the file and the line of what is wrong (the first line holding NEEDLE),
    and the entry."""
    folder = config_with(tmp_path, areas)
    with pytest.raises(ConfigError) as refused:
        load_province(folder)
    text = str(refused.value)
    assert message in text, text
    if needle is not None:
        lines = (folder / "province.yaml").read_text(encoding="utf-8").splitlines()
        line = next(n for n, content in enumerate(lines, 1) if needle in content)
        assert text.startswith(f"{folder / 'province.yaml'}:{line} (entry areas["), text
