"""What the size-sweeping benchmarks share: one fresh child process per (database, N), so each
measure starts cold and its memory is its own, and one JSON file of results per run."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> str:
    return (
        f"{platform.node()} {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}"
    )


def run_sizes(
    script: str,
    doc: str | None,
    name: str,
    one: Callable[[str, int, Path], dict[str, Any]],
    sizes: list[int],
) -> None:
    """`--n` sizes x `--db` databases, each in a child running `one(db, n, workdir)`."""
    parser = argparse.ArgumentParser(
        description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, nargs="+", default=sizes)
    parser.add_argument("--db", nargs="+", default=["sqlite", "postgresql"])
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        with tempfile.TemporaryDirectory() as tmp:
            print(json.dumps(one(args.db[0], args.n[0], Path(tmp))))
        return
    results: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "runs": [],
    }
    for kind in args.db:
        for n in args.n:
            child = subprocess.run(
                [sys.executable, script, "--one", "--db", kind, "--n", str(n)],
                capture_output=True,
                text=True,
                check=True,
            )
            run = json.loads(child.stdout.strip().splitlines()[-1])
            print(json.dumps(run), flush=True)
            results["runs"].append(run)
    write_results(name, results)


def write_results(name: str, results: dict[str, Any]) -> Path:
    """`results/<name>-<UTC date and minute>.json`, named in the output."""
    out = RESULTS / f"{name}-{dt.datetime.now(dt.UTC):%Y%m%d-%H%M}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"written {out}")
    return out


def numbers(postgres: bool) -> str:
    """`FROM ... AS g(n)` yielding n = 1..:n, for seeding big tables in one INSERT ... SELECT."""
    if postgres:
        return "FROM generate_series(1, :n) AS g(n)"
    return (
        "FROM (WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < :n)"
        " SELECT n FROM g) AS g"
    )


@contextmanager
def past_append_only(c: Any) -> Iterator[None]:
    """Inside one transaction on connection `c`: the events' append-only triggers set aside, for
    a benchmark's untimed set-up that deletes what it wrote (PostgreSQL: replica mode for the
    transaction; SQLite: the triggers dropped and re-created)."""
    from sqlalchemy import text

    if c.dialect.name == "postgresql":
        c.execute(text("SET LOCAL session_replication_role = replica"))
        yield
        return
    triggers = c.execute(text("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'")).all()
    for name, _ in triggers:
        c.execute(text(f'DROP TRIGGER "{name}"'))
    yield
    for _, sql in triggers:
        c.execute(text(sql))
