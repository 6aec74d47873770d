"""The CLI tests: each test's commands run in a fresh process once each (support/commands.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from support import commands


@pytest.fixture(autouse=True)
def fresh_commands() -> Iterator[None]:
    commands.referrals.fresh.clear()
    yield
