"""`scripts/test` checks what the tests need from the machine before it installs or runs
anything: each missing prerequisite is one line naming it and what to do (issue 22)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from support import ROOT


def test_missing_prerequisites_are_one_line_each(tmp_path: Path) -> None:
    """An old python3 first on PATH and a PostgreSQL that does not answer: two lines, exit 2,
    and no venv touched (the script stops before installing)."""
    old = tmp_path / "bin" / "python3"
    old.parent.mkdir()
    old.write_text('#!/bin/sh\n[ "$1" = --version ] && echo "Python 3.9.2"\nexit 1\n')
    old.chmod(0o755)
    env = os.environ | {
        "PATH": f"{old.parent}:{os.environ['PATH']}",
        "REFERRALS_TEST_PG": "postgresql+psycopg://postgres@127.0.0.1:1/postgres",
    }
    venv = ROOT / ".venv" / "pyvenv.cfg"
    before = venv.stat().st_mtime if venv.exists() else None
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "test")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done
    assert done.stdout == ""
    assert done.stderr.splitlines() == [
        "missing: Python 3.11 or newer as python3 (found: Python 3.9.2)",
        "missing: PostgreSQL at 127.0.0.1:1/postgres (start it, or set "
        "REFERRALS_TEST_PG=postgresql+psycopg://USER@HOST:PORT/DB)",
        "scripts/test: the machine lacks what the tests need (above); nothing was run",
    ]
    assert (venv.stat().st_mtime if venv.exists() else None) == before
