"""`referrals doctor`: is this deployment fit to run, and if not, what to do about it; and
`referrals upgrade-check`: is anything out of date with this version of the code.

Each check answers ok, warn (works, but not as production should) or fail (something will not
work), with the fix in one line. Checks that need an earlier one (the database before its
schema) are skipped when it failed, so the first failure is the one to mend.

`upgrade-check` runs the checks an upgrade can leave behind (UPGRADE_CHECKS): settings this
version does not know, the province's YAML, migrations pending (or a database migrated by newer
code), and Prefect deployments that differ from deploy/prefect.yaml (deployments.py). `doctor`
runs them too.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import os
import re
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from referrals.cli.deployments import Deployments
    from referrals.notifiers.channels import Channels

Level = Literal["ok", "warn", "fail"]
MAX_SKEW = dt.timedelta(seconds=30)
CHANNEL_VARIABLE = re.compile(r"\$\{([^}]+)\}")  # notifiers/channels.py's `${NAME}`


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
        self.engine: Any = None
        self.database_now: dt.datetime | None = None

    def add(self, check: str, level: Level, detail: str, fix: str = "") -> None:
        self.findings.append(Finding(check, level, detail, fix))

    @property
    def healthy(self) -> bool:
        return all(f.level != "fail" for f in self.findings)

    def as_dicts(self) -> list[dict[str, str]]:
        return [asdict(f) for f in self.findings]

    def run(self) -> Doctor:
        """Every check: `referrals doctor`."""
        return self._run(
            self.check_settings,
            self.check_clock_and_secret,
            self.check_province,
            self.check_variables,
            self.check_data_dir,
            self.check_database,
            self.check_database_clock,
            self.check_schema,
            self.check_keys,
            self.check_invariants,
            self.check_areas,
            self.check_channels,
            self.check_prefect,  # and the deployments, when the server answers
        )

    def upgrade(self) -> Doctor:
        """What an upgrade can leave out of date: `referrals upgrade-check`."""
        return self._run(
            self.check_settings,
            self.check_province,
            self.check_variables,
            self.check_database,
            self.check_schema,
            self.check_areas,
            self.check_deployments,
        )

    def _run(self, *checks: Callable[[], None]) -> Doctor:
        for check in checks:
            self._guarded(check.__name__.removeprefix("check_"), check)
        return self

    def _guarded(self, name: str, check: Callable[..., None], *args: Any) -> None:
        try:
            check(*args)
        except Exception as e:  # a check that breaks is a finding, not the end of the run
            what = f"{type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''}"
            self.add(name, "fail", f"could not check: {what}", "fix this first, then re-run")

    def check_settings(self) -> None:
        from pydantic import ValidationError

        from referrals.config.settings import get_settings

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
        except ValueError as e:  # the settings file named is not there
            self.add("settings", "fail", str(e), "name an existing settings file, or none")
            return
        self.add("settings", "ok", f"{self.settings.environment}")

    def check_clock_and_secret(self) -> None:
        from referrals.config.settings import DEVELOPMENT_SECRET

        s = self.settings
        if s is None:
            return
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
        """Where this installation is (the same from any folder), and that its data folder can
        be written. Nothing is created: `referrals init` makes the folder."""
        if self.settings is None:
            return
        from referrals.config.settings import settings_file

        folder = self.settings.data_dir
        named = settings_file()
        self.add("settings file", "ok", str(named) if named else "none (the environment only)")
        if not folder.is_dir():
            self.add(
                "data folder",
                "fail",
                f"{folder} does not exist",
                "run `referrals init` (it creates it), or set REFERRALS_DATA_DIR to the "
                "installation's",
            )
            return
        try:
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
        self.add("data folder", "ok", f"{folder} is writable")

    def check_database(self) -> None:
        if self.settings is None:
            return
        from sqlalchemy import text

        from referrals.config.settings import NoDatabase
        from referrals.infra.runtime import Runtime

        url = self.settings.database_url
        try:
            # The province's runtime, or (its YAML refused) one for the engine alone: the schema
            # does not depend on the province.
            self.engine = (self.runtime or Runtime(self.settings)).engine
            with self.engine.connect() as c:
                if self.engine.dialect.name == "postgresql":
                    version = c.execute(text("SHOW server_version")).scalar_one()
                    self.database_now = c.execute(text("SELECT now()")).scalar_one()
                    what = f"PostgreSQL {version}"
                else:
                    what = "SQLite " + c.execute(text("SELECT sqlite_version()")).scalar_one()
        except NoDatabase as e:
            self.add("database", "fail", str(e).split(":", 1)[0], "run `referrals init`")
            return
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

    def check_database_clock(self) -> None:
        if self.database_now is not None:  # PostgreSQL's (SQLite has no server clock)
            self._clock("database clock", self.database_now)

    def check_schema(self) -> None:
        """Migrations pending (named, with their titles), or a database migrated by code newer
        than this (rolled back after an upgrade)."""
        if not self.database_ok:
            return
        from referrals.migrations import (
            current_revision,
            head_revision,
            known_revision,
            pending_revisions,
        )

        with self.engine.connect() as c:
            current = current_revision(c)
        head = head_revision()
        if current is not None and not known_revision(current):
            self.add(
                "schema",
                "fail",
                f"at migration {current}, which this code does not know (it knows up to {head}): "
                "newer code migrated this database and was rolled back",
                f"run the release that made migration {current} again, or restore the backup "
                "taken before that upgrade (`referrals restore`); `referrals init` cannot undo it",
            )
            self.database_ok = False
            return
        pending = pending_revisions(current)
        if pending:
            if current is None:
                what = f"the whole schema, {_count(pending, 'migration')} pending"
            else:
                what = f"{_count(pending, 'migration')} pending: " + ", ".join(
                    f'{revision} "{title}"' for revision, title in pending
                )
            self.add(
                "schema",
                "fail",
                f"at migration {current or 'none'}, the code needs {head}: {what}",
                "back up (`referrals backup`), then run `referrals init` (it migrates, and is "
                "safe to re-run)",
            )
            self.database_ok = False
            return
        self.add("schema", "ok", f"migrated to {head}")

    def check_keys(self) -> None:
        if not self.database_ok or self.runtime is None:  # the province's context is needed
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
        if not self.database_ok or self.runtime is None:  # the province's context is needed
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

    def check_areas(self) -> None:
        """Records under an area on a day it was not in force: the province config's areas
        (their keys or dates) changed under existing records, e.g. an upgrade's bundled config
        giving an old district's key to today's ward (queries/areas.py)."""
        if not self.database_ok or self.runtime is None:
            return
        from referrals.queries.areas import records_out_of_force
        from referrals.queries.reading import Reader

        engine = self.runtime.engine
        with Reader(engine.raw_connection(), engine.dialect.name) as reader:
            found = records_out_of_force(reader, self.runtime.settings.tz)
        if not found:
            self.add("areas", "ok", "every client and referral is under an area of its day")
            return
        self.add(
            "areas",
            "fail",
            "; ".join(
                f"{a['key']} ({a['name']}): {a['clients']} clients and {a['referrals']} "
                f"referrals recorded when it was not in force"
                for a in found
            ),
            "the province config changed these areas' keys or dates under existing records: "
            "keep the meaning your records have in your own config (REFERRALS_CONFIG_DIR; "
            "see README, 'Areas across the 2025 reform') and run `referrals init` again",
        )

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
                "set REFERRALS_ZALO_URL, REFERRALS_SMS_URL and/or REFERRALS_EMAIL_URL",
            )
        else:
            self.add("channels", "ok", f"Apprise accepts {', '.join(channels.kinds)}")
        self.check_zalo(channels)

    def check_zalo(self, channels: Channels) -> None:
        """Zalo carries only approved templates: a contact that tries Zalo first, with no
        template for a message type it is sent, gets that message by its next channel."""
        from referrals.notifiers.messages import PARTNER_MESSAGES

        assert self.runtime is not None  # checked by the caller
        delivery = self.runtime.province.province.delivery
        first = sum(
            1
            for p in self.runtime.province.partners
            for c in p.contacts
            if (c.channels or delivery.order)[0] == "zalo"
        )
        if not first:
            return
        missing = sorted(set(PARTNER_MESSAGES) - set(delivery.zalo_templates))
        if "zalo" not in channels.kinds:
            self.add(
                "zalo",
                "warn",
                f"{first} contacts try Zalo first, and the Zalo channel is off here: "
                "their messages move on to their next channel",
                "set REFERRALS_ZALO_URL (README: Zalo, brandname SMS)",
            )
        elif missing:
            self.add(
                "zalo",
                "warn",
                f"{first} contacts try Zalo first; no ZNS template for {', '.join(missing)}: "
                "those go by their next channel",
                "add the approved templates under delivery.zalo_templates in province.yaml",
            )
        else:
            self.add("zalo", "ok", f"{first} contacts try Zalo first; every message has a template")

    def check_prefect(self) -> None:
        api = os.environ.get("PREFECT_API_URL", "").rstrip("/")
        if not api:
            self.add(
                "prefect",
                "ok",
                "no PREFECT_API_URL: `referrals serve` runs its own local Prefect server",
            )
            return
        health = self._prefect_health(api, "prefect")
        if health is None:
            return
        self.add("prefect", "ok", f"{api} answers")
        if stamp := health.headers.get("date"):
            self._clock("prefect clock", email.utils.parsedate_to_datetime(stamp))
        key = self.runtime.key if self.runtime else "<province>"  # deploy/prefect.yaml's name
        self._guarded("task worker", self.check_task_worker, api, key)
        self._guarded("workers", self.check_workers, api, key)
        self._guarded("deployments", self.compare_deployments, api)

    def _prefect_health(self, api: str, check: str) -> Any:
        """The server's answer to /health, or None (and a finding) when it does not answer."""
        import httpx

        try:
            health = httpx.get(f"{api}/health", timeout=5)
            health.raise_for_status()
        except httpx.HTTPError as e:
            self.add(
                check,
                "fail",
                f"{api} does not answer: {e}",
                "start it (`systemctl start referrals-prefect`) or fix PREFECT_API_URL",
            )
            return None
        return health

    def check_workers(self, api: str, key: str) -> None:
        import httpx

        pool = os.environ.get("REFERRALS_WORK_POOL") or f"referrals-{key}"
        found = httpx.post(
            f"{api}/work_pools/{pool}/workers/filter", json={}, timeout=5, headers=_prefect_auth()
        )
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
            headers=_prefect_auth(),
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

    def check_variables(self) -> None:
        """REFERRALS_* variables, in the environment or the settings file, that this version does
        not read: a typo, or a setting an upgrade renamed or removed. Each is silently ignored
        otherwise (a mistyped REFERRALS_DATABASE_URL leaves the engine on its default database)."""
        from referrals.config.variables import PREFIX, closest, known_variables, setting_variables

        known = known_variables(self._channel_variables())
        read_any_case = setting_variables()  # pydantic-settings reads these in any case
        file, values = self._settings_file
        seen: dict[str, list[str]] = {}
        for name in os.environ:
            if name.upper().startswith(PREFIX):
                seen.setdefault(name, []).append("the environment")
        for name in values:
            if name.upper().startswith(PREFIX):
                seen.setdefault(name, []).append(str(file))
        unknown = {
            name: where
            for name, where in seen.items()
            if name not in known and name.upper() not in read_any_case
        }
        for name, places in sorted(unknown.items()):
            guess = closest(name, known)
            self.add(
                "variables",
                "fail",
                f"{name} (in {' and '.join(places)}) is not read by this version"
                + (f": did you mean {guess}?" if guess else ""),
                f"rename it to {guess}"
                if guess
                else "remove it (README: Configuration lists the variables this version reads)",
            )
        if not unknown:
            sources = "the environment" + (f" and {file}" if file else "")
            self.add(
                "variables",
                "ok",
                f"{_count(seen, 'REFERRALS_* variable')} in {sources}, all known to this version",
            )

    @cached_property
    def _settings_file(self) -> tuple[Path | None, dict[str, str]]:
        """The settings file (`settings_file()`) and what it sets; none if it is not there
        (check_settings says so)."""
        from dotenv import dotenv_values

        from referrals.config.settings import settings_file

        try:
            path = settings_file()
        except ValueError:
            return None, {}
        if path is None:
            return None, {}
        return path, {k: v or "" for k, v in dotenv_values(path).items()}

    def _channel_variables(self) -> frozenset[str]:
        """The ${NAMES} this province's channel URLs read (province.yaml -> delivery)."""
        if self.runtime is None:
            return frozenset()
        templates = self.runtime.province.province.delivery.channels.values()
        return frozenset(
            name
            for template in templates
            for name in CHANNEL_VARIABLE.findall(template)
            if not name.startswith("prefect:")
        )

    def check_deployments(self) -> None:
        """upgrade-check's: deploy/prefect.yaml against the Prefect server (deployments.py).
        (doctor compares them in check_prefect, once the server answers.)"""
        self._deployments().check(lambda api: self._prefect_health(api, "deployments") is not None)

    def compare_deployments(self, api: str) -> None:
        """doctor's, once the Prefect server at API answers (deployments.py)."""
        self._deployments().compare(api)

    def _deployments(self) -> Deployments:
        """The comparison (deployments.py) for this installation, its findings added here."""
        from referrals.cli.deployments import Deployments

        return Deployments(
            self.add,
            key=self.runtime.key if self.runtime else os.environ.get("REFERRALS_PROVINCE", ""),
            checkout=lambda: (
                os.environ.get("REFERRALS_CHECKOUT")
                or self._settings_file[1].get("REFERRALS_CHECKOUT", "")
            ),
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


def _count(items: Any, word: str) -> str:
    return f"{len(items)} {word}{'' if len(items) == 1 else 's'}"


def show(found: Doctor, *, as_json: bool, verdict: str = "healthy") -> None:
    """The findings as `referrals doctor` prints them: ✓ / ! / ✗ each, the fix under it; or one
    JSON document, {VERDICT: bool, "checks": [...]}."""
    from referrals.cli.output import emit_json

    if as_json:
        emit_json({verdict: found.healthy, "checks": found.as_dicts()})
        return
    marks = {"ok": "✓", "warn": "!", "fail": "✗"}
    for f in found.findings:
        print(f"{marks[f.level]} {f.check}: {f.detail}")
        if f.fix and f.level != "ok":
            print(f"    fix: {f.fix}")


def _safe(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def _prefect_auth() -> dict[str, str]:
    """The Authorization header Prefect's own client sends: PREFECT_API_AUTH_STRING (a
    self-hosted server's basic auth) or PREFECT_API_KEY."""
    import base64

    from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_KEY

    if auth := PREFECT_API_AUTH_STRING.value():
        return {"Authorization": "Basic " + base64.b64encode(auth.encode()).decode()}
    if key := PREFECT_API_KEY.value():
        return {"Authorization": f"Bearer {key}"}
    return {}
