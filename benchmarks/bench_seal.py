"""Sealing the audit chain: N unsealed events sealed by `models.audit.seal`, then verified,
beside a raw baseline in the same run: the same rows read and updated with plain SQL, a batch
of 5,000 per transaction, without the HMAC.

    .venv/bin/python benchmarks/bench_seal.py                  # N = 100,000; both databases
    .venv/bin/python benchmarks/bench_seal.py --n 20000 --db sqlite

The events are set-based inserts of the size and shape the engine writes (kind, actor, a small
JSON body). The seal runs once over all of them, as the first sweep after an upgrade would; a
sweep every five minutes seals only what came since.
"""

from __future__ import annotations

import datetime as dt
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_launch import drop_database, fresh_database, prepared_runtime
from harness import numbers, run_sizes
from sqlalchemy import bindparam, text

from referrals.models.types import UTCDateTime
from referrals.queries.audit import BATCH, verify
from referrals.queries.reading import Reader
from referrals.usecases.audit import seal

ROOT = Path(__file__).resolve().parent.parent
T0 = dt.datetime(2026, 11, 23, 2, 0, tzinfo=dt.UTC)


def seed(rt, n: int) -> None:  # type: ignore[no-untyped-def]
    postgres = rt.engine.dialect.name == "postgresql"
    series = numbers(postgres)
    data = '\'{"step": "acknowledge", "due_at": "2026-11-26T10:00:00+00:00"}\''
    with rt.engine.begin() as c:
        c.execute(
            text(
                "INSERT INTO event (kind, at, actor, data) SELECT 'step.active', :t0,"
                f" 'user:mai', {data} {series}"
            ).bindparams(bindparam("t0", type_=UTCDateTime)),
            {"t0": T0, "n": n},
        )


def raw_baseline(rt) -> float:  # type: ignore[no-untyped-def]
    """Read every event in batches and write one value back per row: the I/O of a seal."""
    start = time.perf_counter()
    after = 0
    while True:
        with rt.engine.begin() as c:
            rows = c.execute(
                text(
                    "SELECT id, referral_id, client_id, step_id, kind, at, actor, data FROM event"
                    " WHERE id > :after ORDER BY id LIMIT :n"
                ),
                {"after": after, "n": BATCH},
            ).all()
            if not rows:
                return time.perf_counter() - start
            # A scratch table: the events themselves may not be touched (append-only triggers).
            c.execute(
                text("INSERT INTO bench_scratch (id, value) VALUES (:id, :value)"),
                [{"id": r[0], "value": "x" * 64} for r in rows],
            )
            after = rows[-1][0]


def one(kind: str, n: int, workdir: Path) -> dict[str, object]:
    rt = prepared_runtime(fresh_database(kind, workdir), workdir)
    try:
        seed(rt, n)
        with rt.engine.begin() as c:
            c.execute(text("CREATE TABLE bench_scratch (id BIGINT PRIMARY KEY, value VARCHAR(64))"))
        base = raw_baseline(rt)
        start = time.perf_counter()
        sealed = seal(rt.engine, vault=rt.ctx.vault)
        sealing = time.perf_counter() - start
        with Reader(rt.engine.raw_connection(), rt.engine.dialect.name) as reader:
            start = time.perf_counter()
            verdict = verify(reader, vault=rt.ctx.vault)
            verifying = time.perf_counter() - start
    finally:
        rt.engine.dispose()
        drop_database(rt.settings.database_url)
    return {
        "db": kind,
        "n": n,
        "sealed": sealed,
        "verified_ok": verdict.ok and verdict.sealed == n,
        "raw_read_write_s": round(base, 2),
        "seal_s": round(sealing, 2),
        "seal_ratio": round(sealing / base, 2),
        "verify_s": round(verifying, 2),
        "events_per_s_sealed": round(n / sealing),
    }


def main() -> None:
    run_sizes(__file__, __doc__, "seal", one, sizes=[100_000])


if __name__ == "__main__":
    main()
