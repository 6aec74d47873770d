"""Fixtures: the same suite on SQLite and on a fresh PostgreSQL database per run."""

from __future__ import annotations

import datetime as dt
import os
import secrets
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# Prefect is isolated per run: its own home, offline, before anything imports it.
os.environ["PREFECT_HOME"] = tempfile.mkdtemp(prefix="referrals-prefect-")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
# The temporary server now and then leaves a request unanswered; the client retries a timed-out
# request, so a short timeout turns a 60 s stall (the default) into a 20 s one.
os.environ.setdefault("PREFECT_API_REQUEST_TIMEOUT", "20")
os.environ.pop("PREFECT_API_URL", None)
# The user's own installation is never touched: the platform's data and config folders
# (platformdirs reads XDG_*) point at a scratch folder, for this process and every child.
os.environ["XDG_DATA_HOME"] = tempfile.mkdtemp(prefix="referrals-xdg-data-")
os.environ["XDG_CONFIG_HOME"] = tempfile.mkdtemp(prefix="referrals-xdg-config-")
os.environ.pop("REFERRALS_DATA_DIR", None)
os.environ.pop("REFERRALS_DATABASE_URL", None)
os.environ.pop("REFERRALS_SETTINGS_FILE", None)

import pytest
from sqlalchemy import create_engine, text
from sqlmodel import SQLModel

import referrals.models.tables  # noqa: F401
from referrals.config import Settings, get_settings
from referrals.infra.db import get_engine, transaction
from referrals.infra.runtime import Runtime
from referrals.migrations import upgrade
from referrals.models.people import Role, User
from referrals.usecases.directory.loading import load_province_data
from support import commands
from support.pages import Clock, served, staff_users
from support.receivers import HttpSink, SmtpSink

PG_ADMIN = os.environ.get(
    "REFERRALS_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
SECRET = "test-secret-0123456789abcdef0123456789abcdef"


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this run, dropped at the end."""
    from sqlalchemy.exc import OperationalError

    name = f"referrals_test_{os.getpid()}_{secrets.token_hex(3)}"
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as c:
            c.execute(text(f'CREATE DATABASE "{name}"'))
    except OperationalError as exc:
        where = PG_ADMIN.rsplit("@", 1)[-1]
        reason = str(exc.orig).strip().splitlines()[0]
        pytest.fail(
            f"PostgreSQL at {where} is not reachable ({reason}): start it, or point "
            "REFERRALS_TEST_PG at one (tests/README.md, Running)",
            pytrace=False,
        )
    url = PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    yield url
    get_engine(url).dispose()
    with admin.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


DATABASES = ("sqlite", "postgresql")


@pytest.fixture(scope="session", params=[pytest.param(db, id=db) for db in DATABASES])
def db_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """Both backends, migrated once per run with the real Alembic migrations."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'engine.db'}"
    else:
        url = request.getfixturevalue("pg_url")
    upgrade(url)
    return url


def _clean(url: str) -> None:
    """Empty every table between tests. The audit triggers refuse deleting events, so they are
    set aside for this (PostgreSQL: replica mode skips them; SQLite: dropped and re-created)."""
    engine = get_engine(url)
    tables = list(reversed(SQLModel.metadata.sorted_tables))
    with engine.begin() as c:
        if engine.dialect.name == "postgresql":
            c.execute(text("SET LOCAL session_replication_role = replica"))
            c.execute(
                text(
                    "TRUNCATE "
                    + ", ".join(f'"{t.name}"' for t in tables)
                    + " RESTART IDENTITY CASCADE"
                )
            )
        else:
            triggers = c.execute(
                text("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'")
            ).all()
            for name, _ in triggers:
                c.execute(text(f'DROP TRIGGER "{name}"'))
            for t in tables:
                c.execute(t.delete())
            for _, sql in triggers:
                c.execute(text(sql))


@pytest.fixture(autouse=True)
def fresh_commands() -> None:
    """Each test runs each of its CLI commands once in a fresh process (support/commands.py)."""
    commands.referrals.fresh.clear()


@pytest.fixture
def settings(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings for one test, also in the environment so in-process CLI calls see them."""
    env = {
        "REFERRALS_DATABASE_URL": db_url,
        "REFERRALS_SECRET_KEY": SECRET,
        "REFERRALS_DATA_DIR": str(tmp_path),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()


@pytest.fixture
def rt(settings: Settings) -> Runtime:
    """A clean database with the Khánh Hòa directory and three users."""
    _clean(settings.database_url)
    runtime = Runtime(settings)
    with transaction(runtime.engine) as s:
        load_province_data(s, province=runtime.province)
        s.add(User(username="admin", full_name="Admin", role=Role.admin.value))
        s.add(
            User(
                username="mai",
                full_name="Coordinator NT",
                role=Role.coordinator.value,
                area_key="nha-trang",
            )
        )
        s.add(User(username="hoa", full_name="Manager", role=Role.manager.value))
    return runtime


@pytest.fixture
def now() -> dt.datetime:
    """Monday 23/11/2026 09:00 in Nha Trang."""
    return dt.datetime(2026, 11, 23, 2, 0, tzinfo=dt.UTC)


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    """A real SMTP server on loopback that keeps what it receives."""
    sink = SmtpSink().start()
    yield sink
    sink.stop()


@pytest.fixture
def http() -> Iterator[HttpSink]:
    """A real HTTP server on loopback: a local SMS gateway's JSON API."""
    sink = HttpSink().start()
    yield sink
    sink.stop()


# The browser tests (system/): one headless Chromium per module (Debian's; Playwright downloads
# none here), the app on a real server with a movable clock, and where screenshots go
# (REFERRALS_SCREENSHOTS, e.g. docs/screenshots, else the test's own folder).
CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def server(rt: Runtime, now: dt.datetime) -> Iterator[tuple[str, Clock]]:
    """The app on a real uvicorn server on loopback, staff users in place: its base URL and
    the clock its pages read."""
    staff_users(rt)
    clock = Clock(now)
    with served(clock) as base:
        yield base, clock


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("REFERRALS_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


BAD_INPUT: Counter[str] = Counter()  # the corpus's tally, from each test's report
OUTCOMES: dict[str, Counter[str]] = {}  # per database: passed, failed, error, skipped


def database_of(nodeid: str) -> str:
    """The database a test ran on, from its id (`test_x[sqlite]`, `test_y[postgresql-ann]`)."""
    params = nodeid.rpartition("[")[2].rstrip("]").split("-") if nodeid.endswith("]") else []
    return next((db for db in DATABASES if db in params), "no database")


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    outcome = None
    if report.when == "call":
        outcome = "failed" if report.failed else report.outcome
    elif report.failed:  # a fixture that broke, before or after the test
        outcome = "error"
    elif report.when == "setup" and report.skipped:
        outcome = "skipped"
    if outcome:
        OUTCOMES.setdefault(database_of(report.nodeid), Counter())[outcome] += 1
    if report.when == "teardown":
        for name, value in report.user_properties:
            if name.startswith("bad-input "):
                BAD_INPUT[name.removeprefix("bad-input ")] += int(value)  # type: ignore[call-overload]


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Outcomes per database, then the bad-input corpus's size and server errors per database
    (the bar: 0 server errors)."""
    for db in (*DATABASES, "no database"):
        if db in OUTCOMES:
            counts = ", ".join(f"{n} {what}" for what, n in sorted(OUTCOMES[db].items()))
            terminalreporter.write_line(f"{db}: {counts}")
    for db in ("sqlite", "postgresql"):
        if BAD_INPUT[f"{db} cases"]:
            terminalreporter.write_line(
                f"bad-input corpus on {db}: {BAD_INPUT[f'{db} cases']} cases, "
                f"{BAD_INPUT[f'{db} server errors']} server errors"
            )
