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
        return f"database error: {str(exc.orig).strip().splitlines()[0]} (check REFERRALS_DATABASE_URL; run `referrals init`)"
    if _driver_error(exc):  # the read path talks to sqlite3 / psycopg directly
        return f"database error: {str(exc).strip().splitlines()[0]} (check REFERRALS_DATABASE_URL; run `referrals init`)"
    if isinstance(exc, IntegrityError):
        return f"refused by the database: {str(exc.orig).strip().splitlines()[0]}"
    if isinstance(exc, ValueError | OSError):
        return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return f"internal error: {type(exc).__name__}: {exc} (REFERRALS_DEBUG=1 shows the traceback)".splitlines()[
        0
    ]


def _driver_error(exc: BaseException) -> bool:
    psycopg = sys.modules.get("psycopg")
    return isinstance(exc, sqlite3.Error) or (
        psycopg is not None and isinstance(exc, psycopg.Error)
    )
