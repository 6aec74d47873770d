"""`referrals doctor`: is this deployment fit to run, and if not, what to do about it; and
`referrals upgrade-check`: is anything out of date with this version of the code.

Each check answers ok, warn (works, but not as production should) or fail (something will not
work), with the fix in one line. Checks that need an earlier one (the database before its
schema) are skipped when it failed, so the first failure is the one to mend.

`upgrade-check` runs the checks an upgrade can leave behind (UPGRADE_CHECKS): settings this
version does not know, the province's YAML, migrations pending (or a database migrated by newer
code), and Prefect deployments that differ from deploy/prefect.yaml. `doctor` runs them too.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import os
import re
import shlex
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

Level = Literal["ok", "warn", "fail"]
MAX_SKEW = dt.timedelta(seconds=30)
DEPLOY = "prefect --no-prompt deploy --all --prefect-file deploy/prefect.yaml"
# prefect.utilities.templating's placeholder syntax; `{{ $NAME }}` is an environment variable.
PLACEHOLDER = re.compile(r"({{\s*([\w\.\-\[\]$]+)\s*}})")
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
        """upgrade-check's: deploy/prefect.yaml against the Prefect server. (doctor compares
        them in check_prefect, once the server answers.)"""
        api = os.environ.get("PREFECT_API_URL", "").rstrip("/")
        if not api:
            self.add(
                "deployments",
                "warn",
                "no PREFECT_API_URL: deploy/prefect.yaml was not compared with a Prefect server",
                "load the installation's environment (PREFECT_API_URL) and re-run; "
                "`referrals serve` alone has no deployments to update",
            )
            return
        if self._prefect_health(api, "deployments") is not None:
            self.compare_deployments(api)

    def compare_deployments(self, api: str) -> None:
        """Each deployment of deploy/prefect.yaml, rendered for this installation as `prefect
        deploy` renders it, against the server's: missing, or a different entrypoint, work
        pool, schedules, concurrency limit, parameters, job variables or pull steps. Deployments
        on the same pools that the file does not declare are named (a warning: a leftover of an
        older release, or one an operator added)."""
        import yaml

        found = self._prefect_yaml()
        if found is None:
            return
        path, checkout = found
        key = self.runtime.key if self.runtime else os.environ.get("REFERRALS_PROVINCE", "")
        if not key:
            self.add(
                "deployments",
                "warn",
                "deploy/prefect.yaml was not compared: this installation's key (REFERRALS_PROVINCE) "
                "is not known until the settings and the province load",
                "fix the findings above, then re-run",
            )
            return
        # `prefect deploy` fills `{{ $NAME }}` from its environment only: what the environment
        # lacks here (the key from the settings file or the province, the checkout found) must
        # be given to it on its command line.
        supplied = {
            name: value
            for name, value in (("REFERRALS_PROVINCE", key), ("REFERRALS_CHECKOUT", str(checkout)))
            if not os.environ.get(name)
        }
        deploy = f"cd {shlex.quote(str(checkout))} && " + "".join(
            f"{name}={shlex.quote(value)} " for name, value in supplied.items()
        )
        deploy += f"{DEPLOY} (with the installation's environment loaded)"
        config = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        values = {**os.environ, **supplied}
        wanted = [
            Wanted.of(render(d, values), render(config.get("pull"), values))
            for d in config.get("deployments") or []
        ]
        unset = sorted({name for w in wanted for name in w.placeholders()})
        if unset:
            self.add(
                "deployments",
                "fail",
                f"{path} needs {', '.join(unset)}, which the environment does not set",
                f"set {'it' if len(unset) == 1 else 'them'} in the installation's environment; "
                f"then {deploy}",
            )
            return
        for w in wanted:
            try:
                w.read_flow_name(checkout)
            except (OSError, ValueError, SyntaxError) as e:
                self.add(
                    "deployments",
                    "fail",
                    f"{path}: entrypoint {w.entrypoint}: {type(e).__name__}: {e}",
                    f"point REFERRALS_CHECKOUT at this release's checkout (now {checkout})",
                )
                return
        self._compare_with_server(api, path, wanted, deploy)

    def _compare_with_server(self, api: str, path: Path, wanted: list[Wanted], deploy: str) -> None:
        from prefect.client.orchestration import SyncPrefectClient
        from prefect.client.schemas.filters import WorkPoolFilter, WorkPoolFilterName
        from prefect.exceptions import ObjectNotFound
        from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_KEY

        before = len(self.findings)
        pools = sorted({w.pool for w in wanted if w.pool})
        with SyncPrefectClient(
            api, auth_string=PREFECT_API_AUTH_STRING.value(), api_key=PREFECT_API_KEY.value()
        ) as client:
            for pool in pools:
                try:
                    client.read_work_pool(pool)
                except ObjectNotFound:
                    self.add(
                        "deployments",
                        "fail",
                        f"no work pool {pool!r} on {api}: its deployments cannot be made",
                        f"prefect work-pool create {pool} --type process; then {deploy}",
                    )
            matched = set()
            for w in wanted:
                try:
                    have = client.read_deployment_by_name(w.full_name)
                except ObjectNotFound:
                    self.add("deployments", "fail", f"{w.full_name} is not on {api}", deploy)
                    continue
                matched.add(have.id)
                if differences := w.differences(have):
                    self.add(
                        "deployments",
                        "fail",
                        f"{w.full_name} is out of date: " + "; ".join(differences),
                        deploy,
                    )
            on_pools = (
                client.read_deployments(
                    work_pool_filter=WorkPoolFilter(name=WorkPoolFilterName(any_=pools))
                )
                if pools
                else []
            )
            extra = sorted(
                f"{client.read_flow(d.flow_id).name}/{d.name}"
                for d in on_pools
                if d.id not in matched
            )
        if len(self.findings) == before:
            self.add(
                "deployments",
                "ok",
                f"{_count(wanted, 'deployment')} on {api} as {path} declares them",
            )
        if extra:
            self.add(
                "deployments",
                "warn",
                f"on pool {', '.join(pools)} but not in {path}: {', '.join(extra)}",
                "if a release before this one made "
                + ("it" if len(extra) == 1 else "them")
                + ": "
                + "; ".join(f"prefect deployment delete {shlex.quote(n)}" for n in extra),
            )

    def _prefect_yaml(self) -> tuple[Path, Path] | None:
        """deploy/prefect.yaml and its checkout: REFERRALS_CHECKOUT's (the variable the file
        itself uses), else the checkout this code runs from; None (and a finding) if neither."""
        named = os.environ.get("REFERRALS_CHECKOUT") or self._settings_file[1].get(
            "REFERRALS_CHECKOUT", ""
        )
        if named:
            checkout = Path(named).expanduser()
            if (checkout / "deploy" / "prefect.yaml").is_file():
                return checkout / "deploy" / "prefect.yaml", checkout
            self.add(
                "deployments",
                "fail",
                f"REFERRALS_CHECKOUT={named} holds no deploy/prefect.yaml",
                "point REFERRALS_CHECKOUT at this repository's checkout (the workers run the "
                "flows from there)",
            )
            return None
        here = Path(__file__).resolve().parents[2]
        if (here / "deploy" / "prefect.yaml").is_file() and (here / "pyproject.toml").is_file():
            return here / "deploy" / "prefect.yaml", here
        self.add(
            "deployments",
            "warn",
            "deploy/prefect.yaml not found: REFERRALS_CHECKOUT is not set and this code is not "
            "running from a checkout",
            "set REFERRALS_CHECKOUT to the repository's checkout (e.g. /opt/referrals)",
        )
        return None

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


@dataclass
class Wanted:
    """One deployment as deploy/prefect.yaml declares it, rendered for this installation."""

    name: str
    entrypoint: str
    pool: str | None
    job_variables: dict[str, Any]
    schedules: list[dict[str, Any]]
    limit: int | None
    strategy: str | None
    parameters: dict[str, Any]
    pull: list[dict[str, Any]] | None
    flow: str = field(default="", init=False)

    @classmethod
    def of(cls, d: dict[str, Any], pull: Any) -> Wanted:
        """As `prefect deploy` reads one entry of `deployments:` (prefect/cli/deploy/_core.py):
        a deployment's own `pull` before the file's, the old `schedule` as one of `schedules`,
        `concurrency_limit` a number or {limit, collision_strategy}."""
        pool = d.get("work_pool") or {}
        limit = d.get("concurrency_limit")
        schedules = d.get("schedules") or ([d["schedule"]] if d.get("schedule") else [])
        return cls(
            name=str(d.get("name") or ""),
            entrypoint=str(d.get("entrypoint") or ""),
            pool=pool.get("name"),
            job_variables=pool.get("job_variables") or {},
            schedules=list(schedules),
            limit=limit.get("limit") if isinstance(limit, dict) else limit,
            strategy=limit.get("collision_strategy") if isinstance(limit, dict) else None,
            parameters=d.get("parameters") or {},
            pull=d.get("pull", pull),
        )

    @property
    def full_name(self) -> str:
        return f"{self.flow}/{self.name}"

    def placeholders(self) -> set[str]:
        """`{{ ... }}` left in what is compared (a variable the environment does not set)."""
        compared = (self.name, self.entrypoint, self.pool, self.job_variables, self.schedules)
        text = repr((*compared, self.parameters, self.pull))
        return {m[1] for m in PLACEHOLDER.findall(text)}

    def read_flow_name(self, checkout: Path) -> None:
        """The flow's name, from its source as Prefect reads it (the @flow decorator's `name`,
        else the function's), without running the module."""
        from prefect.flows import load_flow_arguments_from_entrypoint

        entry = self.entrypoint
        if ":" in entry:
            file, function = entry.rsplit(":", 1)
            entry = f"{checkout / file}:{function}"
        self.flow = str(load_flow_arguments_from_entrypoint(entry, {"name"})["name"])

    def differences(self, have: Any) -> list[str]:
        """What the server's deployment (a Prefect DeploymentResponse) has otherwise."""
        found: list[str] = []

        def differ(what: str, server: Any, ours: Any) -> None:
            found.append(f"{what}: {server} on the server, {ours} in prefect.yaml")

        if have.entrypoint != self.entrypoint:
            differ("entrypoint", have.entrypoint, self.entrypoint)
        if self.pool and have.work_pool_name != self.pool:
            differ("work pool", have.work_pool_name, self.pool)
        theirs = sorted(_schedule(s.schedule, s.active, s.parameters) for s in have.schedules)
        ours = sorted(_yaml_schedule(s) for s in self.schedules)
        if theirs != ours:
            differ("schedules", ", ".join(theirs) or "none", ", ".join(ours) or "none")
        gcl = have.global_concurrency_limit
        limit = gcl.limit if gcl is not None else have.concurrency_limit
        if limit != self.limit:
            differ("concurrency limit", limit or "none", self.limit or "none")
        if self.strategy is not None:
            options = have.concurrency_options
            strategy = str(options.collision_strategy.value) if options else None
            if strategy != self.strategy:
                differ("collision strategy", strategy or "none", self.strategy)
        if (have.parameters or {}) != self.parameters:
            differ("parameters", have.parameters or {}, self.parameters)
        if (have.job_variables or {}) != self.job_variables:
            differ("job variables", have.job_variables or {}, self.job_variables)
        if self.pull is not None and (have.pull_steps or []) != self.pull:
            differ("pull steps", have.pull_steps or [], self.pull)
        return found


def render(template: Any, values: Mapping[str, str]) -> Any:
    """prefect.yaml's `{{ $NAME }}` filled from VALUES, as `prefect deploy` fills them from its
    environment (prefect.utilities.templating.apply_values: always as text, and left as they
    are when unset); other placeholders (Prefect variables, blocks) are left too."""
    if isinstance(template, str):
        for whole, name in PLACEHOLDER.findall(template):
            if name.startswith("$") and name[1:] in values:
                template = template.replace(whole, str(values[name[1:]]))
        return template
    if isinstance(template, dict):
        return {k: render(v, values) for k, v in template.items()}
    if isinstance(template, list):
        return [render(v, values) for v in template]
    return template


def _schedule(schedule: Any, active: bool | None, parameters: dict[str, Any] | None) -> str:
    """One schedule (Prefect's schedule object) in a line that tells it from another."""
    from prefect.client.schemas.schedules import CronSchedule, IntervalSchedule, RRuleSchedule

    zone = getattr(schedule, "timezone", None) or "UTC"
    if isinstance(schedule, IntervalSchedule):
        what = f"every {schedule.interval.total_seconds():g} s"
        what += f" ({zone})" if zone != "UTC" else ""
    elif isinstance(schedule, CronSchedule):
        what = f"cron '{schedule.cron}' ({zone})" + ("" if schedule.day_or else " day_or=false")
    elif isinstance(schedule, RRuleSchedule):
        what = f"rrule '{schedule.rrule}' ({zone})"
    else:
        what = repr(schedule)
    if active is False:
        what += " (inactive)"
    if parameters:
        what += f" with {parameters}"
    return what


def _yaml_schedule(config: dict[str, Any]) -> str:
    """A schedule of prefect.yaml, made into Prefect's schedule object as `prefect deploy` makes
    it (prefect/cli/deploy/_schedules.py), so that the defaults are Prefect's."""
    import json

    from prefect.client.schemas.schedules import CronSchedule, IntervalSchedule, RRuleSchedule

    zone = config.get("timezone")
    schedule: Any
    if cron := config.get("cron"):
        given = {"cron": cron, "timezone": zone, "day_or": config.get("day_or")}
        schedule = CronSchedule(**{k: v for k, v in given.items() if v is not None})
    elif interval := config.get("interval"):
        if isinstance(interval, int | float):
            interval = dt.timedelta(seconds=interval)
        given = {"interval": interval, "timezone": zone}
        schedule = IntervalSchedule(**{k: v for k, v in given.items() if v is not None})
    elif rrule := config.get("rrule"):
        try:
            schedule = RRuleSchedule(**json.loads(rrule))
            if zone:
                schedule.timezone = zone
        except json.JSONDecodeError:
            schedule = RRuleSchedule(rrule=rrule, timezone=zone)
    else:
        raise ValueError(f"a schedule of an unknown kind: {config}")
    return _schedule(schedule, config.get("active"), config.get("parameters"))


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
