"""Engines and transactions. Every write happens inside `transaction()`: all of it, or none."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, insert, select
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm.exc import StaleDataError
from sqlmodel import Session, SQLModel

from referrals.models.errors import Conflict

# SQLSTATEs of a lost race on PostgreSQL: unique violation, serialization failure, deadlock.
RACE_STATES = frozenset({"23505", "40001", "40P01"})


@lru_cache(maxsize=8)
def get_engine(url: str) -> Engine:
    """The engine for URL, with every table registered first.

    The ORM resolves a table's foreign keys the first time a mapper is used, so every table must
    be on the metadata by then. Read commands skip the ORM (queries/reading.py) and so no longer
    import all tables on the way; any code that holds an engine may use the ORM, so this is the
    one place that makes the registry complete (a fresh `referrals advance` failed without it).
    """
    import referrals.models.tables  # noqa: F401

    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


@contextmanager
def transaction(engine: Engine | Connection) -> Iterator[Session]:
    """A session whose work commits on success and rolls back on any exception.

    Given a Connection, the session runs its transaction on that connection (a loop that commits
    often keeps one connection instead of checking one out of the pool each time).

    A lost race is a Conflict, here for every writer: the database refused the second of two
    writers (a unique index, the referral's version, a deadlock), so nothing was written and the
    loser may look again. The edges then answer 409 or one line, never a 500."""
    try:
        with Session(engine, expire_on_commit=False) as session, session.begin():
            yield session
    except (StaleDataError, DBAPIError) as exc:
        if not lost_race(exc):
            raise
        raise Conflict(
            "someone else changed this at the same moment; nothing was saved: look again",
            key="conflict",
        ) from exc


def lost_race(exc: BaseException) -> bool:
    """True when the database refused a write because a concurrent one won."""
    if isinstance(exc, StaleDataError):
        return True
    if not isinstance(exc, DBAPIError):
        return False
    state = getattr(exc.orig, "sqlstate", None)  # psycopg
    if state is not None:
        return state in RACE_STATES
    # sqlite3 names no SQLSTATE; a unique index's refusal says so in its message.
    return isinstance(exc, IntegrityError) and "UNIQUE constraint failed" in str(exc.orig)


def is_postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


CHUNK = 5000  # bound on bind parameters per IN (...) query


def chunks(values: Sequence[Any], size: int = CHUNK) -> Iterator[Sequence[Any]]:
    for i in range(0, len(values), size):
        yield values[i : i + size]


def insert_many(
    session: Session, model: type[SQLModel], rows: list[dict[str, Any]], *, key: str | None = None
) -> list[int]:
    """Core executemany insert; with `key` (a unique column), return the new ids in row order.

    Ids are read back by the unique key rather than with RETURNING: SQLAlchemy's ordered
    RETURNING for executemany runs one statement per row on SQLite and grows quadratically.
    """
    # SQLModel does not declare `__table__` (SQLAlchemy sets it on every table model).
    table = model.__table__  # type: ignore[attr-defined]  # see the line above
    if not rows:
        return []
    session.execute(insert(table), rows)
    if key is None:
        return []
    keys = [r[key] for r in rows]
    found: dict[Any, int] = {}
    for part in chunks(keys):
        found.update(
            (k, i)
            for i, k in session.execute(
                select(table.c.id, table.c[key]).where(table.c[key].in_(part))
            )
        )
    return [found[k] for k in keys]
