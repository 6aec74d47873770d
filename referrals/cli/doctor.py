"""`referrals doctor`: is this deployment fit to run, and if not, what to do about it.

Each check answers ok, warn (works, but not as production should) or fail (something will not
work), with the fix in one line. Checks that need an earlier one (the database before its
schema) are skipped when it failed, so the first failure is the one to mend.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import os
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Literal

Level = Literal["ok", "warn", "fail"]
MAX_SKEW = dt.timedelta(seconds=30)


@dataclass
class Finding:
    check: str
    level: Level
    detail: str
    fix: str = ""


class Doctor:
    """Runs the checks in order, sharing what earlier ones found (settings, the engine)."""

    def __init__(self, now: Callable[[], dt.datetime] | None = None) -> None:
        self.findings: list[Finding] = []
        self.now = now or (lambda: dt.datetime.now(dt.UTC))
        self.settings: Any = None
        self.runtime: Any = None
        self.database_ok = False

    def add(self, check: str, level: Level, detail: str, fix: str = "") -> None:
        self.findings.append(Finding(check, level, detail, fix))

    @property
    def healthy(self) -> bool:
        return all(f.level != "fail" for f in self.findings)

    def as_dicts(self) -> list[dict[str, str]]:
        return [asdict(f) for f in self.findings]

    def run(self) -> Doctor:
        for check in (
            self.check_settings,
            self.check_province,
            self.check_data_dir,
            self.check_database,
            self.check_schema,
            self.check_keys,
            self.check_invariants,
            self.check_channels,
            self.check_prefect,
        ):
            try:
                check()
            except Exception as e:  # a check that breaks is a finding, not the end of the run
                name = check.__name__.removeprefix("check_")
                what = f"{type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''}"
                self.add(name, "fail", f"could not check: {what}", "fix this first, then re-run")
        return self

    def check_settings(self) -> None:
        from pydantic import ValidationError

        from referrals.config.settings import DEVELOPMENT_SECRET, get_settings

        try:
            self.settings = get_settings()
        except ValidationError as e:
            problems = "; ".join(str(err["msg"]) for err in e.errors())
            self.add(
                "settings",
                "fail",
                problems,
                "set the REFERRALS_* variables (README: Configuration)",
            )
            return
        s = self.settings
        self.add("settings", "ok", f"{s.environment}")
        local = self.now().astimezone(s.tz)
        if local.year < 2025:
            self.add("time", "fail", f"the clock says {local:%d/%m/%Y}", "set the clock; run NTP")
        else:
            self.add("time", "ok", f"{local:%d/%m/%Y %H:%M} in {s.timezone} (UTC{local:%z})")
        if s.secret_key == DEVELOPMENT_SECRET:
            self.add(
                "secret key",
                "warn",
                "the development default: anyone with the code can read the data",
                'set REFERRALS_SECRET_KEY: python -c "import secrets; print(secrets.token_urlsafe(48))"',
            )
        else:
            self.add("secret key", "ok", f"set ({len(s.secret_key)} characters)")

    def check_province(self) -> None:
        if self.settings is None:
            return
        from referrals.infra.runtime import Runtime

        self.runtime = Runtime(self.settings)
        try:
            province = self.runtime.province
        except Exception as e:  # a config error of any kind is the finding
            self.runtime = None
            self.add("province", "fail", str(e)[:500], "fix the YAML in REFERRALS_CONFIG_DIR")
            return
        self.add("province", "ok", f"{province.province.name} ({self.settings.config_dir})")

    def check_data_dir(self) -> None:
        if self.settings is None:
            return
        folder = self.settings.data_dir
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=folder):
                pass
        except OSError as e:
            self.add(
                "data folder",
                "fail",
                f"{folder}: {e.strerror}",
                "make it writable by the service user",
            )
            return
        self.add("data folder", "ok", f"{folder.resolve()} is writable")

    def check_database(self) -> None:
        if self.runtime is None:
            return
        from sqlalchemy import text

        url = self.settings.database_url
        try:
            with self.runtime.engine.connect() as c:
                if self.runtime.engine.dialect.name == "postgresql":
                    version = c.execute(text("SHOW server_version")).scalar_one()
                    server_now = c.execute(text("SELECT now()")).scalar_one()
                    self._clock("database clock", server_now)
                    what = f"PostgreSQL {version}"
                else:
                    what = "SQLite " + c.execute(text("SELECT sqlite_version()")).scalar_one()
        except Exception as e:
            self.add(
                "database",
                "fail",
                f"cannot connect: {str(e).splitlines()[0][:300]}",
                "check REFERRALS_DATABASE_URL and that the server runs",
            )
            return
        self.database_ok = True
        self.add("database", "ok", f"{what} at {_safe(url)}")

    def check_schema(self) -> None:
        if not self.database_ok:
            return
        from referrals.migrations import current_revision, head_revision

        with self.runtime.engine.connect() as c:
            current = current_revision(c)
        head = head_revision()
        if current != head:
            self.add(
                "schema",
                "fail",
                f"at migration {current or 'none'}, the code needs {head}",
                "run `referrals init` (it migrates, and is safe to re-run)",
            )
            self.database_ok = False
            return
        self.add("schema", "ok", f"migrated to {head}")

    def check_keys(self) -> None:
        if not self.database_ok:
            return
        from sqlalchemy import select
        from sqlmodel import Session, col

        from referrals.models.people import Client, ClientKey
        from referrals.usecases.clients.keys import key_status

        vault = self.runtime.ctx.vault
        with Session(self.runtime.engine) as s:
            sample = s.execute(
                select(col(Client.code), col(ClientKey.wrapped)).join(ClientKey)
            ).first()
            status = key_status(s, vault)
        if sample is not None:
            try:
                vault.client_cipher(sample[0], sample[1])
            except ValueError:
                self.add(
                    "data keys",
                    "fail",
                    "REFERRALS_SECRET_KEY does not open the clients' data keys",
                    "use the secret this data was written with; an older one goes in "
                    "REFERRALS_PREVIOUS_SECRET_KEYS",
                )
                return
        if status["to_rotate"]:
            self.add(
                "data keys",
                "warn",
                f"{status['to_rotate']} clients under an older key or without a data key",
                "run `referrals keys rotate`",
            )
        else:
            self.add("data keys", "ok", f"every client under key {vault.key_id}")

    def check_invariants(self) -> None:
        if not self.database_ok:
            return
        from referrals.queries.invariants import check
        from referrals.queries.reading import Reader

        engine = self.runtime.engine
        with Reader(engine.raw_connection(), engine.dialect.name) as reader:
            broken = check(reader, vault=self.runtime.ctx.vault)
        if broken:
            self.add(
                "consistency",
                "fail",
                "; ".join(f"{b.rule}: {b.count} (e.g. {b.ids})" for b in broken),
                "see `referrals check --json`; restore from a backup if the data was damaged",
            )
        else:
            self.add("consistency", "ok", "every rule holds and the audit chain verifies")

    def check_channels(self) -> None:
        if self.runtime is None:
            return
        from referrals.notifiers.channels import ChannelError, Channels

        try:
            channels = Channels(self.runtime.province.province.delivery)
            channels.check()
        except ChannelError as e:
            self.add("channels", "fail", str(e), "set the channel's variables (README: channels)")
            return
        if not channels.kinds:
            self.add(
                "channels",
                "warn",
                "no channel is on: messages wait in the outbox",
                "set REFERRALS_SMS_URL and/or REFERRALS_EMAIL_URL",
            )
        else:
            self.add("channels", "ok", f"Apprise accepts {', '.join(channels.kinds)}")

    def check_prefect(self) -> None:
        api = os.environ.get("PREFECT_API_URL", "").rstrip("/")
        if not api:
            self.add(
                "prefect",
                "ok",
                "no PREFECT_API_URL: `referrals serve` runs its own local Prefect server",
            )
            return
        import httpx

        try:
            health = httpx.get(f"{api}/health", timeout=5)
            health.raise_for_status()
        except httpx.HTTPError as e:
            self.add(
                "prefect",
                "fail",
                f"{api} does not answer: {e}",
                "start it (`systemctl start referrals-prefect`) or fix PREFECT_API_URL",
            )
            return
        self.add("prefect", "ok", f"{api} answers")
        if stamp := health.headers.get("date"):
            self._clock("prefect clock", email.utils.parsedate_to_datetime(stamp))
        key = self.runtime.key if self.runtime else "<province>"  # deploy/prefect.yaml's name
        self.check_task_worker(api, key)
        pool = os.environ.get("REFERRALS_WORK_POOL") or f"referrals-{key}"
        found = httpx.post(f"{api}/work_pools/{pool}/workers/filter", json={}, timeout=5)
        if found.status_code == 404:
            self.add(
                "workers",
                "fail",
                f"no work pool {pool!r}",
                f"prefect work-pool create {pool} --type process; then deploy (deploy/README.md)",
            )
            return
        found.raise_for_status()
        live = [w["name"] for w in found.json() if self._beating(w)]
        if not live:
            self.add(
                "workers",
                "fail",
                f"no live worker on pool {pool!r}: nothing runs the flows",
                f"start one: prefect worker start --pool {pool} (systemd: referrals-worker@{key})",
            )
        else:
            self.add("workers", "ok", f"{len(live)} live on pool {pool!r}: {', '.join(live)}")

    def check_task_worker(self, api: str, key: str) -> None:
        """Is a task worker subscribed to this installation's `deliver-now` task (issue 21)?"""
        import httpx

        if not self.settings.deliver_at_once:
            self.add(
                "task worker",
                "warn",
                "messages wait for the clock's pass (up to 5 minutes): delivery at once is off",
                f"set REFERRALS_DELIVER_AT_ONCE=true and run referrals-tasks@{key}",
            )
            return
        from referrals.notifiers.background import task_for

        task = task_for(key)
        found = httpx.post(
            f"{api}/task_workers/filter",
            json={"task_worker_filter": {"task_keys": [task.task_key]}},
            timeout=5,
        )
        found.raise_for_status()
        if found.json():
            self.add("task worker", "ok", f"{len(found.json())} subscribed to {task.name}")
        else:
            self.add(
                "task worker",
                "fail",
                f"no task worker runs {task.name}: messages wait for the clock's pass",
                f"start one: systemctl enable --now referrals-tasks@{key} "
                "(or python -m referrals.flows.task_worker)",
            )

    def _beating(self, worker: dict[str, Any]) -> bool:
        """Alive by its own heartbeat: Prefect marks a dead worker OFFLINE only after three
        missed beats and its next check, up to two minutes later."""
        beat = worker.get("last_heartbeat_time")
        if worker.get("status") != "ONLINE" or not beat:
            return False
        every = float(worker.get("heartbeat_interval_seconds") or 30)
        last = dt.datetime.fromisoformat(beat.replace("Z", "+00:00"))
        return self.now() - last < dt.timedelta(seconds=2 * every + 5)

    def _clock(self, name: str, other: dt.datetime) -> None:
        skew = abs(self.now() - other)
        if skew > MAX_SKEW:
            self.add(
                name,
                "fail",
                f"this machine's clock is {skew.total_seconds():.0f} s off",
                "run NTP on every machine (systemd-timesyncd or chrony)",
            )
        else:
            self.add(name, "ok", f"within {skew.total_seconds():.1f} s of this machine")


def _safe(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
