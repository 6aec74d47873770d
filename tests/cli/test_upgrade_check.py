"""`referrals upgrade-check` (issue 22, "Upgrades without surprises"): after `git pull`, what is
out of date with this version, each with its fix: REFERRALS_* variables it does not read (with
the name meant), migrations pending (named) or a database newer than the code, and Prefect
deployments unlike deploy/prefect.yaml, against a real Prefect server. `doctor` runs the same
checks. The database here is SQLite (test_upgrade_path.py upgrades both kinds).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from conftest import SECRET
from sqlalchemy import create_engine, text

from referrals.cli.doctor import Doctor, Finding
from referrals.config import get_settings
from referrals.config.settings import BUNDLED_CONFIG
from referrals.config.variables import READ_ELSEWHERE, known_variables, setting_variables
from referrals.migrations import head_revision, pending_revisions, upgrade
from support import ROOT
from support.prefect_server import prefect_server

BIN = Path(sys.executable).parent
QUIET = ("--no-services", "--no-ui", "--analytics-off")  # the API alone: schedules need no runs
DEPLOY = f"{BIN / 'prefect'} --no-prompt deploy --all --prefect-file deploy/prefect.yaml"


@pytest.fixture
def installation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """A migrated SQLite installation of this test's own; its settings alone in the environment
    (the in-process checks read it; `referrals` processes inherit it)."""
    url = f"sqlite:///{tmp_path / 'engine.db'}"
    upgrade(url)
    for name in list(os.environ):
        if name.startswith("REFERRALS_"):
            monkeypatch.delenv(name)
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))  # no settings file of ours
    env = {
        "REFERRALS_DATABASE_URL": url,
        "REFERRALS_SECRET_KEY": SECRET,
        "REFERRALS_DATA_DIR": str(tmp_path / "data"),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    yield env
    get_settings.cache_clear()


def referrals(*args: str, status: int, **env: str) -> str:
    """`referrals ARGS` in a fresh process; its stdout."""
    done = subprocess.run(
        [sys.executable, "-m", "referrals.cli", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == status, (args, done.stdout[-3000:], done.stderr[-3000:])
    assert "Traceback" not in done.stderr, done.stderr
    return done.stdout


def upgrade_check(**env: str) -> tuple[bool, list[Finding]]:
    """In a fresh process: whether it is up to date (exit 0), and its findings."""
    done = subprocess.run(
        [sys.executable, "-m", "referrals.cli", "upgrade-check", "--json"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "Traceback" not in done.stderr, done.stderr
    found = json.loads(done.stdout)
    assert done.returncode == (0 if found["up_to_date"] else 1), done.stderr
    return found["up_to_date"], [Finding(**c) for c in found["checks"]]


def of(findings: list[Finding], check: str) -> list[Finding]:
    return [f for f in findings if f.check == check]


def test_unknown_variables_are_named_with_the_one_meant(
    installation: dict[str, str], tmp_path: Path
) -> None:
    settings = tmp_path / "settings.env"  # the settings file (REFERRALS_SETTINGS_FILE) too
    settings.write_text("REFERRALS_PUBLIC_URL=https://kh.example.vn\nREFERRALS_SMS_ULR=json://x\n")
    out = referrals(
        "upgrade-check",
        status=1,
        REFERRALS_SETTINGS_FILE=str(settings),
        REFERRALS_DATABSE_URL="postgresql+psycopg://referrals@db.internal/referrals",
        REFERRALS_COLOUR="blue",
    )
    assert (
        "✗ variables: REFERRALS_DATABSE_URL (in the environment) is not read by this version: "
        "did you mean REFERRALS_DATABASE_URL?\n    fix: rename it to REFERRALS_DATABASE_URL\n"
    ) in out
    assert (
        f"✗ variables: REFERRALS_SMS_ULR (in {settings}) is not read by this version: did you "
        "mean REFERRALS_SMS_URL?\n    fix: rename it to REFERRALS_SMS_URL\n"
    ) in out
    assert (
        "✗ variables: REFERRALS_COLOUR (in the environment) is not read by this version\n"
        "    fix: remove it (README: Configuration"
    ) in out
    # Nothing else is out of date: the schema is current; no Prefect server to compare with.
    assert f"✓ schema: migrated to {head_revision()}\n" in out
    assert "! deployments: no PREFECT_API_URL" in out

    # Mended: exit 0, every line ✓ but the deployments' warning.
    settings.write_text("REFERRALS_PUBLIC_URL=https://kh.example.vn\nREFERRALS_SMS_URL=json://x\n")
    out = referrals("upgrade-check", status=0, REFERRALS_SETTINGS_FILE=str(settings))
    lines = [line for line in out.splitlines() if not line.startswith("    ")]
    assert [line[:2] for line in lines] == ["✓ "] * 6 + ["! "], out
    assert (
        f"✓ variables: 6 REFERRALS_* variables in the environment and {settings}, all known to "
        "this version"
    ) in out


def test_a_provinces_own_channel_variables_are_known(
    installation: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REFERRALS_TWILIO_URL", "twilio://sid:token@0905000100")
    found = of(Doctor().upgrade().findings, "variables")
    assert [(f.level, f.detail.split(" (")[0]) for f in found] == [("fail", "REFERRALS_TWILIO_URL")]

    config = tmp_path / "province"  # a province whose SMS goes out through that variable
    config.mkdir()
    for name in ("partners.yaml", "pathways.yaml"):
        (config / name).write_bytes((BUNDLED_CONFIG / name).read_bytes())
    province = yaml.safe_load((BUNDLED_CONFIG / "province.yaml").read_text(encoding="utf-8"))
    province["delivery"]["channels"]["sms"] = "${REFERRALS_TWILIO_URL}"
    (config / "province.yaml").write_text(yaml.safe_dump(province, allow_unicode=True))
    monkeypatch.setenv("REFERRALS_CONFIG_DIR", str(config))
    get_settings.cache_clear()
    found = of(Doctor().run().findings, "variables")  # doctor runs the check too
    assert [f.level for f in found] == ["ok"], found


def test_every_referrals_variable_in_the_repository_is_known() -> None:
    """A variable read anywhere (the code, the units, prefect.yaml, the tests, the scripts) is a
    setting or listed in referrals/config/variables.py, with who reads it. (Documents are not
    readers: their examples may show a mistyped name.)"""
    named: dict[str, set[str]] = {}
    files: list[Path] = []
    for folder in ("referrals", "deploy", "tests", "scripts", "benchmarks"):
        files += [p for p in (ROOT / folder).rglob("*") if p.is_file()]
    for path in files:
        if path.suffix in {".md", ".pyc", ".mo", ".po", ".pot", ".png", ".db"}:
            continue
        if path == Path(__file__):  # its mistyped names are the point
            continue
        try:
            content = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        for name in re.findall(r"\bREFERRALS_[A-Z0-9_]*[A-Z0-9]\b", content):
            named.setdefault(name, set()).add(str(path.relative_to(ROOT)))
    assert {"REFERRALS_WEB_PORT", "REFERRALS_CHECKOUT", "REFERRALS_TEST_PG"} <= set(named)
    unknown = {n: sorted(where) for n, where in named.items() if n not in known_variables()}
    assert not unknown, f"add these to referrals/config/variables.py: {unknown}"
    assert not READ_ELSEWHERE & setting_variables()  # a setting is not listed twice
    assert {"REFERRALS_DATABASE_URL", "REFERRALS_DELIVER_AT_ONCE"} <= setting_variables()


def test_migrations_pending_and_a_database_newer_than_the_code(
    installation: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    older = pending_revisions(None)[-3][0]  # the code is two migrations ahead of the database
    url = f"sqlite:///{tmp_path / 'older.db'}"
    upgrade(url, older)
    monkeypatch.setenv("REFERRALS_DATABASE_URL", url)
    get_settings.cache_clear()
    for found in (Doctor().upgrade(), Doctor().run()):
        (schema,) = of(found.findings, "schema")
        waiting = pending_revisions(older)
        assert len(waiting) == 2 and schema.level == "fail" and not found.healthy
        assert schema.detail == (
            f"at migration {older}, the code needs {head_revision()}: 2 migrations pending: "
            + ", ".join(f'{r} "{title}"' for r, title in waiting)
        )
        assert "referrals init" in schema.fix and "referrals backup" in schema.fix
        assert not of(found.findings, "consistency")  # doctor: nothing after the schema

    # The province's YAML refused (a key this version does not know: its models refuse it,
    # naming the file, the line and the entry): the schema is still checked.
    config = tmp_path / "province"
    config.mkdir()
    for name in ("province.yaml", "partners.yaml", "pathways.yaml"):
        (config / name).write_bytes((BUNDLED_CONFIG / name).read_bytes())
    partners = (config / "partners.yaml").read_text(encoding="utf-8")
    partners = partners.replace("    services:\n", "    servces: []\n    services:\n", 1)
    (config / "partners.yaml").write_text(partners, encoding="utf-8")
    monkeypatch.setenv("REFERRALS_CONFIG_DIR", str(config))
    get_settings.cache_clear()
    found = Doctor().upgrade().findings
    (province,) = of(found, "province")
    assert province.level == "fail" and "servces: Extra inputs are not permitted" in province.detail
    assert re.search(r"partners\.yaml:\d+ \(entry partners\[0\] ", province.detail)
    assert [f.level for f in of(found, "schema")] == ["fail"]
    monkeypatch.delenv("REFERRALS_CONFIG_DIR")
    get_settings.cache_clear()

    # Newer code migrated it, then was rolled back: the code cannot know what it did.
    upgrade(url)
    with create_engine(url).begin() as c:
        c.execute(text("UPDATE alembic_version SET version_num = '0099'"))
    (schema,) = of(Doctor().upgrade().findings, "schema")
    assert schema.level == "fail" and schema.detail.startswith(
        f"at migration 0099, which this code does not know (it knows up to {head_revision()})"
    )
    assert "release that made migration 0099" in schema.fix and "referrals restore" in schema.fix
    with create_engine(url).begin() as c:
        c.execute(text("UPDATE alembic_version SET version_num = :head"), {"head": head_revision()})
    (schema,) = of(Doctor().upgrade().findings, "schema")
    assert (schema.level, schema.detail) == ("ok", f"migrated to {head_revision()}")


@pytest.fixture
def prefect_api(tmp_path: Path) -> Iterator[str]:
    """A real Prefect server on loopback (SQLite; only its API: no services, no UI)."""
    home = tmp_path / "prefect-server"
    home.mkdir()
    with prefect_server(home, *QUIET) as api:
        yield api


def _prefect(api: str, command: str, tmp_path: Path, **env: str) -> None:
    """A `prefect` command line (as an operator types it) against the server."""
    done = subprocess.run(
        command,
        shell=True,
        cwd=ROOT,
        env={**os.environ, "PREFECT_API_URL": api, "PREFECT_HOME": str(tmp_path), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, (command, done.stdout[-2000:], done.stderr[-2000:])


def _drift(api: str) -> None:
    """What an older release (or a hand in the UI) left on the server."""
    import datetime as dt

    from prefect.client.orchestration import SyncPrefectClient
    from prefect.client.schemas.actions import DeploymentUpdate
    from prefect.client.schemas.schedules import IntervalSchedule

    with SyncPrefectClient(api) as c:
        clock = c.read_deployment_by_name("clock/khanh-hoa")
        for s in clock.schedules:
            c.delete_deployment_schedule(clock.id, s.id)
        every_minute = IntervalSchedule(interval=dt.timedelta(seconds=60))
        c.create_deployment_schedules(clock.id, [(every_minute, True)])
        deliver = c.read_deployment_by_name("deliver-notifications/khanh-hoa")
        c.update_deployment(deliver.id, DeploymentUpdate(concurrency_limit=5))
        c.delete_deployment(c.read_deployment_by_name("sweep-deadlines/khanh-hoa").id)
        digest = c.read_deployment_by_name("manager-digest/khanh-hoa")
        c.update_deployment_schedule(digest.id, digest.schedules[0].id, active=False)
        c.create_deployment(
            flow_id=clock.flow_id,
            name="khanh-hoa-old",
            work_pool_name="referrals-khanh-hoa",
            entrypoint="referrals/flows/clock.py:clock",
        )


@pytest.mark.prefect
def test_deployments_against_a_real_prefect_server(
    installation: dict[str, str],
    prefect_api: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Deployed as deploy/README.md says, with REFERRALS_PROVINCE and REFERRALS_CHECKOUT set.
    province = {"REFERRALS_PROVINCE": "khanh-hoa", "REFERRALS_CHECKOUT": str(ROOT)}
    _prefect(prefect_api, f"{BIN / 'prefect'} work-pool create referrals-khanh-hoa --type process",
             tmp_path)  # fmt: skip
    _prefect(prefect_api, DEPLOY, tmp_path, **province)

    # upgrade-check renders the file for this installation without them: the key from the
    # province's config, the checkout this code runs from. Up to date: exit 0.
    monkeypatch.setenv("PREFECT_API_URL", prefect_api)
    ok, found = upgrade_check()
    assert ok and [(f.level, f.detail) for f in of(found, "deployments")] == [
        (
            "ok",
            f"6 deployments on {prefect_api} as {ROOT / 'deploy' / 'prefect.yaml'} declares them",
        )
    ]
    doctor = of(Doctor().run().findings, "deployments")  # doctor compares them too
    assert [f.level for f in doctor] == ["ok"]

    _drift(prefect_api)
    out = referrals("upgrade-check", status=1)
    fix = (
        f"    fix: cd {ROOT} && REFERRALS_PROVINCE=khanh-hoa REFERRALS_CHECKOUT={ROOT} prefect "
        "--no-prompt deploy --all --prefect-file deploy/prefect.yaml (with the installation's "
        "environment loaded)\n"
    )
    for line in (
        "✗ deployments: clock/khanh-hoa is out of date: schedules: every 60 s on the server, "
        "every 300 s in prefect.yaml\n",
        "✗ deployments: deliver-notifications/khanh-hoa is out of date: concurrency limit: 5 on "
        "the server, 2 in prefect.yaml\n",
        f"✗ deployments: sweep-deadlines/khanh-hoa is not on {prefect_api}\n",
        "✗ deployments: manager-digest/khanh-hoa is out of date: schedules: cron '30 7 * * *' "
        "(Asia/Ho_Chi_Minh) (inactive) on the server, cron '30 7 * * *' (Asia/Ho_Chi_Minh) in "
        "prefect.yaml\n",
    ):
        assert line + fix in out, out
    assert (
        f"! deployments: on pool referrals-khanh-hoa but not in {ROOT / 'deploy' / 'prefect.yaml'}"
        ": clock/khanh-hoa-old\n    fix: if a release before this one made it: prefect "
        "deployment delete clock/khanh-hoa-old\n"
    ) in out
    assert out.count("✗ deployments") == 4 and "✗" not in out.replace("✗ deployments", "")

    # The fix, typed as shown (the environment loaded), brings every deployment up to date.
    command = (
        fix.removeprefix("    fix: ").split(" (with")[0].replace(" prefect ", f" {BIN}/prefect ")
    )
    _prefect(prefect_api, command, tmp_path)
    ok, found = upgrade_check()
    assert ok and [f.level for f in of(found, "deployments")] == ["ok", "warn"], found

    # Another installation on the same server: nothing of its own is there yet.
    monkeypatch.setenv("REFERRALS_PROVINCE", "ninh-thuan")
    get_settings.cache_clear()
    found = of(Doctor().upgrade().findings, "deployments")
    assert found[0].detail == f"no work pool 'referrals-ninh-thuan' on {prefect_api}: its " + (
        "deployments cannot be made"
    )
    assert found[0].fix.startswith("prefect work-pool create referrals-ninh-thuan --type process")
    missing = [f.detail.split(" is not on ")[0] for f in found[1:]]
    flows = ["clock", "deliver-notifications", "sweep-deadlines", "manager-digest"]
    assert missing == [
        f"{flow}/ninh-thuan" for flow in (*flows, "period-report", "launch-referral")
    ]
