"""The partner directory as Open Referral HSDS: export and import of N partners, each beside a
baseline measured in the same run.

    .venv/bin/python benchmarks/bench_directory.py                # N = 100 and 1,000; both databases
    .venv/bin/python benchmarks/bench_directory.py --n 200 --db sqlite

Each partner has 2 services (2 areas each, offered at its location), 2 contacts and 1 location
with 2 opening sessions: 8 rows of the directory's tables, and about 30 HSDS objects.

- export: `export_directory` and `json.dumps`, against raw: the same tables read whole with
  SQLAlchemy Core and dumped as JSON.
- import: `referrals directory import` (`import_file`: parse, map, check, write partners.yaml,
  load the tables in one transaction) of that export into a fresh installation, against the
  `init` path: the same directory loaded from partners.yaml into another fresh installation.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_launch import drop_database, fresh_database
from harness import run_sizes
from sqlalchemy import select
from sqlmodel import Session

from referrals.cli.directory import import_file
from referrals.config import Settings
from referrals.config.province import _load, load_province
from referrals.config.settings import BUNDLED_CONFIG
from referrals.infra.db import transaction
from referrals.infra.runtime import Runtime
from referrals.interop.hsds import export_directory
from referrals.migrations import upgrade
from referrals.models import tables as t
from referrals.usecases.directory.loading import load_province_data

NOW = dt.datetime(2026, 11, 23, 2, 0, tzinfo=dt.UTC)
KINDS = ("legal", "health", "police", "education", "social_work", "peer_group")
PATHWAYS = (
    "id_papers",
    "tax_code",
    "health_check",
    "legal_aid",
    "vocational_training",
    "psychosocial_support",
    "emergency_shelter",
    "emergency_aid",
)


def partners_yaml(n: int) -> str:
    lines = ["partners:"]
    for i in range(n):
        lines += [
            f"  - slug: partner-{i:05d}",
            f'    name: "Đơn vị {i}"',
            f'    name_en: "Partner {i}"',
            f"    kind: {KINDS[i % len(KINDS)]}",
            "    locations:",
            "      - key: main",
            f'        name: "Trụ sở {i}"',
            f'        address: "{i} Đường Demo"',
            "        area: nha-trang",
            "        hours:",
            '          - {days: [MO, TU, WE, TH, FR], opens: "07:00", closes: "11:30"}',
            '          - {days: [MO, TU, WE, TH, FR], opens: "13:30", closes: "17:00"}',
            "    services:",
        ]
        for pathway in (PATHWAYS[i % 8], PATHWAYS[(i + 3) % 8]):
            lines += [
                f"      - pathway: {pathway}",
                '        name: "Dịch vụ"',
                '        name_en: "Service"',
                "        areas: [nha-trang, ninh-hoa]",
                "        locations: [main]",
            ]
        lines.append("    contacts:")
        for rank in (1, 2):
            lines += [
                f'      - name: "Cán bộ {rank}"',
                '        role: "Cán bộ"',
                f'        phone: "0905 {rank}{i:05d}"',
                f"        rank: {rank}",
            ]
    return "\n".join(lines) + "\n"


def installation(kind: str, workdir: Path, name: str, partners: str | None) -> Runtime:
    config = workdir / name
    shutil.copytree(BUNDLED_CONFIG, config)
    if partners is not None:
        (config / "partners.yaml").write_text(partners, encoding="utf-8")
    url = fresh_database(kind, workdir)
    upgrade(url)
    return Runtime(
        Settings(
            database_url=url,
            data_dir=workdir,
            config_dir=config,
            secret_key=os.environ["REFERRALS_SECRET_KEY"],
        )
    )


def raw_export(rt: Runtime) -> float:
    start = time.perf_counter()
    models = (
        t.Area,
        t.Organization,
        t.Service,
        t.ServiceArea,
        t.Location,
        t.ServiceLocation,
        t.Contact,
    )
    with rt.engine.connect() as c:
        rows = {
            m.__tablename__: [dict(r._mapping) for r in c.execute(select(m.__table__))]  # type: ignore[attr-defined]
            for m in models
        }
    json.dumps(rows, default=str, ensure_ascii=False)
    return time.perf_counter() - start


def one(kind: str, n: int, workdir: Path) -> dict[str, object]:
    os.environ.setdefault("REFERRALS_SECRET_KEY", "benchmark-secret-0123456789abcdef0123456789")
    source = installation(kind, workdir, "source", partners_yaml(n))
    target = installation(kind, workdir, "target", None)
    try:
        _load.cache_clear()
        start = time.perf_counter()  # the `init` path: partners.yaml into the tables
        province = load_province(source.settings.config_dir)
        with transaction(source.engine) as s:
            load_province_data(s, province=province)
        init_load = time.perf_counter() - start
        with transaction(target.engine) as s:
            load_province_data(s, province=target.province)

        raw = raw_export(source)
        start = time.perf_counter()
        with Session(source.engine) as s:
            doc = export_directory(s, province=source.province, tz=source.settings.tz, now=NOW)
        text = json.dumps(doc, ensure_ascii=False, indent=2)
        export = time.perf_counter() - start
        path = workdir / "directory.json"
        path.write_text(text, encoding="utf-8")

        start = time.perf_counter()
        change = import_file(target, path, user="admin", now=NOW)
        imported = time.perf_counter() - start
        assert len(change.added) == n, change
    finally:
        for rt in (source, target):
            rt.engine.dispose()
            drop_database(rt.settings.database_url)
    return {
        "db": kind,
        "n": n,
        "file_kib": round(len(text.encode()) / 1024),
        "raw_export_s": round(raw, 3),
        "export_s": round(export, 3),
        "export_ratio": round(export / raw, 2),
        "init_load_s": round(init_load, 3),
        "import_s": round(imported, 3),
        "import_ratio": round(imported / init_load, 2),
        "partners_per_s_imported": round(n / imported),
    }


def main() -> None:
    run_sizes(__file__, __doc__, "directory", one, sizes=[100, 1000])


if __name__ == "__main__":
    main()
