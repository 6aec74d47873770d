"""What the browser tests of this folder share: one headless Chromium per module (Debian's, as
Playwright downloads none here), the app on a real server with a movable clock, and where
screenshots go (REFERRALS_SCREENSHOTS, e.g. docs/screenshots, else the test's own folder)."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright

from referrals.infra.runtime import Runtime
from support.pages import Clock, served, staff_users

CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
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
