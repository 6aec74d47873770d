"""Client search (issue 19): a coordinator finds a client among N (a fifth in their district) by
words of a name, a phone and an ID number, against the bare SQL of the same lookup.

    .venv/bin/python benchmarks/bench_search.py                 # N = 50,000; SQLite and PostgreSQL
    .venv/bin/python benchmarks/bench_search.py --n 5000 --db sqlite

- **search**: `find_clients` as the page, the API and the CLI call it, each in its own
  transaction: hashing the words (or normalising the phone), the index lookup, the scope, the
  newest-activity order, decrypting the names shown, and one access event per client shown.
- **bare SQL**: the same lookup on a raw connection with the hashes computed beforehand: the
  index query, the district filter, the order and the limit, nothing decrypted or written.

Names are drawn from Vietnamese frequencies (Nguyễn about 38 %, "Thị" for most women), so a
surname alone matches thousands: the searches are what coordinators type, a surname with a
given name ("nguyen lan") or a whole name, each from a client who exists.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("REFERRALS_SECRET_KEY", "benchmark-secret-0123456789abcdef0123456789")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_launch import drop_database, fresh_database, prepared_runtime
from harness import run_sizes
from sqlalchemy import insert, text

import referrals.models.tables as t
from referrals.infra.db import transaction
from referrals.models.people import Role, User
from referrals.usecases.clients.clients import ClientIn, seal_client
from referrals.usecases.clients.finding import LIMIT, find_clients, words

SURNAMES = [("Nguyễn", 38), ("Trần", 11), ("Lê", 9), ("Phạm", 7), ("Hoàng", 5), ("Huỳnh", 5),
            ("Phan", 4), ("Vũ", 4), ("Võ", 4), ("Đặng", 2), ("Bùi", 2), ("Đỗ", 2), ("Hồ", 2),
            ("Ngô", 1), ("Dương", 1), ("Lý", 1)]  # fmt: skip
MIDDLE = [("Thị", 60), ("Văn", 15), ("Ngọc", 6), ("Minh", 5), ("Thanh", 5), ("Thu", 3),
          ("Hoàng", 3), ("Kim", 3)]  # fmt: skip
GIVEN = [
    "Lan",
    "Hoa",
    "Mai",
    "Hương",
    "Hạnh",
    "Linh",
    "Trang",
    "Nga",
    "Thảo",
    "Hằng",
    "Phương",
    "Thủy",
    "Yến",
    "Vân",
    "Ngọc",
    "Hà",
    "Nhung",
    "Loan",
    "Dung",
    "Hiền",
    "Tâm",
    "Thúy",
    "Oanh",
    "Xuân",
    "Cúc",
    "Đào",
    "Huệ",
    "Liên",
    "Quyên",
    "Trinh",
    "Nhi",
    "My",
    "Vy",
    "Anh",
    "Tú",
    "Hùng",
    "Dũng",
    "Nam",
    "Sơn",
    "Tuấn",
    "Minh",
    "Hải",
    "Long",
    "Phúc",
    "Khánh",
    "Bảo",
    "Duy",
    "Quân",
    "Tài",
    "Thành",
    "Trung",
    "Hiếu",
    "Nhân",
]
SEARCHES = 60


def _pick(pairs: list[tuple[str, int]], rng: random.Random) -> str:
    return rng.choices([p for p, _ in pairs], weights=[w for _, w in pairs])[0]


def _seed(rt: Any, n: int, rng: random.Random, now: dt.datetime) -> list[dict[str, str]]:
    """n clients, a fifth in Nha Trang, sealed as the import seals them, inserted in bulk."""
    people = []
    for i in range(n):
        district = "nha-trang" if i % 5 == 0 else ("ninh-hoa", "khanh-hoa")[i % 2]
        name = f"{_pick(SURNAMES, rng)} {_pick(MIDDLE, rng)} {rng.choice(GIVEN)}"
        people.append(
            {"name": name, "phone": f"09{i:08d}", "id_number": f"0791{i:08d}", "district": district}
        )
    with transaction(rt.engine) as s:
        sealed = [
            seal_client(ClientIn(**p), ctx=rt.ctx, created_by=None, now=now - dt.timedelta(hours=i))
            for i, p in enumerate(people)
        ]
        for start in range(0, n, 5000):
            chunk = sealed[start : start + 5000]
            s.execute(insert(t.Client), [c.row for c in chunk])
        ids = dict(s.execute(text("SELECT code, id FROM client")).tuples().all())
        s.execute(
            insert(t.ClientKey),
            [{"client_id": ids[c.row["code"]], "wrapped": c.wrapped_key} for c in sealed],
        )
        s.execute(
            insert(t.ClientTerm),
            [{"term": h, "client_id": ids[c.row["code"]]} for c in sealed for h in c.terms],
        )
        s.add(
            User(username="mai", full_name="Mai", role=Role.coordinator.value, area_key="nha-trang")
        )
    return people


def _timed(fn: Any) -> float:
    start = time.perf_counter()
    fn()
    return 1000 * (time.perf_counter() - start)


def _stats(ms: list[float]) -> dict[str, float]:
    return {"median_ms": statistics.median(ms), "p95_ms": statistics.quantiles(ms, n=20)[-1]}


def _bare_name(rt: Any, typed: list[str]) -> Any:
    hashes = [rt.ctx.vault.lookup(w, "name") for w in typed]
    marks = ", ".join(f":h{i}" for i in range(len(hashes)))
    sql = text(f"""
        SELECT c.id FROM client c JOIN area a ON a.key = c.area_key
        WHERE c.area_key = 'nha-trang' AND c.id IN (
            SELECT client_id FROM client_term WHERE term IN ({marks})
            GROUP BY client_id HAVING COUNT(*) = {len(hashes)})
        ORDER BY c.created_at DESC LIMIT {LIMIT}""")
    params = {f"h{i}": h for i, h in enumerate(hashes)}
    return lambda c: c.execute(sql, params).all()


def _bare_lookup(rt: Any, column: str, value: str, kind: str) -> Any:
    sql = text(f"SELECT id FROM client WHERE {column} = :h AND area_key = 'nha-trang'")
    h = rt.ctx.vault.lookup(value, kind)
    return lambda c: c.execute(sql, {"h": h}).all()


def one(kind: str, n: int, workdir: Path) -> dict[str, Any]:
    url = fresh_database(kind, workdir)
    try:
        rt = prepared_runtime(url, workdir)
        rng = random.Random(19)
        now = dt.datetime(2026, 12, 2, 2, 0, tzinfo=dt.UTC)
        start = time.perf_counter()
        people = _seed(rt, n, rng, now)
        seeded_s = time.perf_counter() - start
        with rt.engine.connect() as c:  # statistics for the planner, as autovacuum would
            c.execute(text("ANALYZE"))
            c.commit()
        here = [p for p in people if p["district"] == "nha-trang"]
        sample = rng.sample(here, SEARCHES)
        cases: dict[str, list[tuple[str, Any]]] = {
            "name: surname + given": [
                (f"{words(p['name'])[0]} {words(p['name'])[-1]}", None) for p in sample
            ],
            "name: whole name": [(p["name"], None) for p in sample],
            "phone": [(f"+84 {p['phone'][1:4]} {p['phone'][4:]}", None) for p in sample],
            "ID number": [(p["id_number"], None) for p in sample],
        }
        bare = {
            "name: surname + given": [
                _bare_name(rt, [words(p["name"])[0], words(p["name"])[-1]]) for p in sample
            ],
            "name: whole name": [_bare_name(rt, words(p["name"])) for p in sample],
            "phone": [
                _bare_lookup(rt, "phone_lookup", f"+84{p['phone'][1:]}", "phone") for p in sample
            ],
            "ID number": [
                _bare_lookup(rt, "id_number_lookup", p["id_number"], "id_number") for p in sample
            ],
        }
        results: dict[str, Any] = {"db": kind, "n": n, "in_district": len(here)}
        results["seed_s"] = seeded_s
        for label, queries in cases.items():
            search_ms, found = [], []
            for q, _ in queries:

                def go(q: str = q, found: list[int] = found) -> None:
                    with transaction(rt.engine) as s:
                        found.append(
                            len(find_clients(s, by=rt.user(s, "mai"), text=q, ctx=rt.ctx,
                                             now=now, via="bench"))
                        )  # fmt: skip

                search_ms.append(_timed(go))
            bare_ms = []
            with rt.engine.connect() as c:
                for fn in bare[label]:
                    bare_ms.append(_timed(lambda fn=fn: fn(c)))
            s_stats, b_stats = _stats(search_ms), _stats(bare_ms)
            results[label] = {
                "search": s_stats,
                "bare_sql": b_stats,
                "ratio_median": s_stats["median_ms"] / b_stats["median_ms"],
                "mean_results": statistics.mean(found),
                "all_found": all(found),
            }
        return results
    finally:
        drop_database(url)


if __name__ == "__main__":
    run_sizes(__file__, __doc__, "search", one, [50_000])
