"""Where an installation is found (issue 22): the same database from any folder, never a new
one made by a command that only reads or writes, and a settings file the operator names.

Every call is a fresh `referrals` process with a scratch home: XDG_DATA_HOME and
XDG_CONFIG_HOME stand for the user's folders, as platformdirs reads them on Linux."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REFERRALS = [sys.executable, "-m", "referrals.cli"]
SECRET = "where-test-0123456789abcdef0123456789abcdef"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


def environment(home: Path, **env: str) -> dict[str, str]:
    """This process's environment without REFERRALS_*, with HOME's folders as the user's."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("REFERRALS_")}
    return clean | {
        "XDG_DATA_HOME": str(home / "share"),
        "XDG_CONFIG_HOME": str(home / "config"),
        **env,
    }


def run(home: Path, cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    cwd.mkdir(parents=True, exist_ok=True)
    return subprocess.run(
        [*REFERRALS, *args],
        cwd=cwd,
        env=environment(home, REFERRALS_SECRET_KEY=SECRET, **env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


def test_one_database_from_any_folder(home: Path, tmp_path: Path) -> None:
    """`init` in one folder, then commands from two others find the same database, in the
    platform's data folder, and nothing appears in the folders they were typed in."""
    done = run(home, tmp_path / "a", "init", "--demo")
    assert done.returncode == 0, done.stderr
    database = home / "share" / "referrals" / "referrals.db"
    assert database.is_file()
    listed = run(home, tmp_path / "b", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    codes = [r["code"] for r in json.loads(listed.stdout)]
    assert codes, "the demo's referrals"
    deeper = run(home, tmp_path / "c" / "d", "list", "--json")
    assert [r["code"] for r in json.loads(deeper.stdout)] == codes
    for folder in ("a", "b", "c"):
        assert files_under(tmp_path / folder) == [], folder


@pytest.mark.parametrize(
    "command",
    [
        ["list"],
        ["show", "KH-2026-00001"],
        ["sweep"],
        ["client", "add", "--name", "Nguyễn Văn A", "--district", "nha-trang"],
        ["check"],
    ],
    ids=["list", "show", "sweep", "client-add", "check"],
)
def test_no_command_creates_a_database(home: Path, tmp_path: Path, command: list[str]) -> None:
    """With no database, a read or a write is refused in one line that says where it looked and
    how to make one; no file or folder is created, here or in the data folder."""
    done = run(home, tmp_path / "here", *command)
    assert done.returncode == 1, done
    where = home / "share" / "referrals" / "referrals.db"
    assert done.stderr == (
        f"error: no database at {where}: create it with `referrals init`, or point "
        "REFERRALS_DATA_DIR, REFERRALS_DATABASE_URL or a settings file "
        "(REFERRALS_SETTINGS_FILE) at the installation's (`referrals --help` shows where it "
        "looks)\n"
    )
    assert not (home / "share").exists()
    assert files_under(tmp_path / "here") == []


def test_a_settings_file_names_the_installation(home: Path, tmp_path: Path) -> None:
    """`--settings FILE` or REFERRALS_SETTINGS_FILE: the file's REFERRALS_* settings apply,
    the environment wins over the file, and a file that is not there is one line."""
    data = tmp_path / "var" / "khanh-hoa"
    settings = tmp_path / "etc" / "khanh-hoa.env"
    settings.parent.mkdir(parents=True)
    settings.write_text(f"REFERRALS_DATA_DIR={data}\nREFERRALS_TIMEZONE=Asia/Ho_Chi_Minh\n")

    assert run(home, tmp_path / "x", "--settings", str(settings), "init").returncode == 0
    assert (data / "referrals.db").is_file() and not (home / "share").exists()
    by_variable = run(home, tmp_path / "y", "list", REFERRALS_SETTINGS_FILE=str(settings))
    assert by_variable.returncode == 0, by_variable.stderr

    # The environment wins: the same file, with another data folder in the environment.
    elsewhere = tmp_path / "elsewhere"
    done = run(
        home,
        tmp_path / "y",
        "list",
        REFERRALS_SETTINGS_FILE=str(settings),
        REFERRALS_DATA_DIR=str(elsewhere),
    )
    assert done.returncode == 1 and f"no database at {elsewhere}/referrals.db" in done.stderr

    missing = run(home, tmp_path / "y", "--settings", str(tmp_path / "nope.env"), "list")
    assert missing.returncode == 1
    assert missing.stderr == (
        f"error: REFERRALS_SETTINGS_FILE names {tmp_path / 'nope.env'}, which is not a file\n"
    )

    # The user's own settings file is read when none is named.
    (home / "config" / "referrals").mkdir(parents=True)
    (home / "config" / "referrals" / "settings.env").write_text(f"REFERRALS_DATA_DIR={data}\n")
    assert run(home, tmp_path / "z", "list").returncode == 0


def test_help_says_where_and_prints_no_warning(home: Path, tmp_path: Path) -> None:
    """`referrals --help` ends with the data folder, the database and the settings file, and
    nothing on stderr (no packaging or deprecation warning)."""
    done = run(home, tmp_path, "--help")
    assert done.returncode == 0 and done.stderr == ""
    data = home / "share" / "referrals"
    assert f"Data folder:   {data}\n" in done.stdout
    assert f"Database:      sqlite:///{data}/referrals.db\n" in done.stdout
    assert "Settings file: none" in done.stdout
    named = run(home, tmp_path, "--help", REFERRALS_DATABASE_URL="postgresql+psycopg://u:pw@db/x")
    assert "Database:      postgresql+psycopg://u:***@db/x" in named.stdout
    assert "pw" not in named.stdout.replace("password", "")


def test_the_web_app_does_not_start_without_a_database(home: Path, tmp_path: Path) -> None:
    """The systemd unit's command (uvicorn with the app factory) stops at startup with the
    same explanation, instead of serving errors; nothing is created."""
    done = subprocess.run(
        [sys.executable, "-m", "uvicorn", "referrals.web.app:create_app", "--factory", "--port=0"],
        cwd=tmp_path,
        env=environment(home),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    assert f"no database at {home / 'share' / 'referrals' / 'referrals.db'}" in done.stderr
    assert "Application startup failed" in done.stderr
    assert not (home / "share").exists() and files_under(tmp_path) == []


def test_the_settings_file_carries_prefects_address(home: Path, tmp_path: Path) -> None:
    """The file's PREFECT_* lines reach the command (Prefect's client reads only the
    environment): doctor asks the Prefect server the file names, unless the environment names
    another."""
    settings = tmp_path / "khanh-hoa.env"
    settings.write_text(
        f"REFERRALS_DATA_DIR={tmp_path / 'data'}\nPREFECT_API_URL=http://127.0.0.1:9/api\n"
    )
    assert run(home, tmp_path, "--settings", str(settings), "init").returncode == 0

    def prefect_check(**env: str) -> dict[str, str]:
        done = run(home, tmp_path, "--settings", str(settings), "doctor", "--json", **env)
        return next(c for c in json.loads(done.stdout)["checks"] if c["check"] == "prefect")

    from_file = prefect_check()
    assert from_file["level"] == "fail" and "127.0.0.1:9" in from_file["detail"], from_file
    from_environment = prefect_check(PREFECT_API_URL="http://127.0.0.1:8/api")
    assert "127.0.0.1:8" in from_environment["detail"], from_environment
