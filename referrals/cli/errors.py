"""Every expected failure, in one line fit for an operator."""

from __future__ import annotations

import sqlite3
import sys

from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError, OperationalError


def one_line(exc: BaseException) -> str:
    from referrals.config import ConfigError
    from referrals.models.errors import DomainError

    if isinstance(exc, DomainError | ConfigError):
        return str(exc)
    if isinstance(exc, ValidationError):
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        msg = str(err["msg"]).removeprefix("Value error, ")
        return f"{where}: {msg}" if where else msg
    if isinstance(exc, OperationalError):
        return _database(str(exc.orig))
    if _driver_error(exc):  # the read path talks to sqlite3 / psycopg directly
        return _database(str(exc))
    if isinstance(exc, IntegrityError):
        return f"refused by the database: {str(exc.orig).strip().splitlines()[0]}"
    if isinstance(exc, ValueError | OSError):
        return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return f"internal error: {type(exc).__name__}: {exc} (REFERRALS_DEBUG=1 shows the traceback)".splitlines()[
        0
    ]


def _database(message: str) -> str:
    """A database's refusal, with the hint that fits: a server that is down needs no `init`."""
    first = message.strip().splitlines()[0] if message.strip() else "no answer"
    if "connection refused" in message.lower() or "could not connect" in message.lower():
        return f"database error: {first} (is the database server running? check REFERRALS_DATABASE_URL)"
    return f"database error: {first} (check REFERRALS_DATABASE_URL; run `referrals init`)"


def _driver_error(exc: BaseException) -> bool:
    psycopg = sys.modules.get("psycopg")
    return isinstance(exc, sqlite3.Error) or (
        psycopg is not None and isinstance(exc, psycopg.Error)
    )
