"""Are the Prefect deployments those deploy/prefect.yaml declares for this installation? The
check "deployments" of `referrals upgrade-check` (Doctor.check_deployments) and of `referrals
doctor` (Doctor.check_prefect, once the server answers), apart from doctor.py's other checks.

An upgrade that changes deploy/prefect.yaml (an entrypoint, a schedule, a parameter, a deployment
added or renamed) changes nothing on the server until `prefect deploy` runs again: until then the
workers run the old deployments. So each deployment of the file is rendered for this installation
as `prefect deploy` renders it, and compared with the server's; the findings go to the Doctor's
`add`. Prefect is imported inside the functions that use it (the CLI's `--help` must not load it).
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from referrals.cli.doctor import Level, _count

DEPLOY = "prefect --no-prompt deploy --all --prefect-file deploy/prefect.yaml"
# prefect.utilities.templating's placeholder syntax; `{{ $NAME }}` is an environment variable.
PLACEHOLDER = re.compile(r"({{\s*([\w\.\-\[\]$]+)\s*}})")


class Add(Protocol):
    """Doctor.add: one finding."""

    def __call__(self, check: str, level: Level, detail: str, fix: str = "") -> None: ...


@dataclass
class Deployments:
    """The comparison for one installation; each finding goes to REPORT (the Doctor's `add`)."""

    report: Add
    key: str  # the installation's (REFERRALS_PROVINCE, else the province's); "" if not known
    # REFERRALS_CHECKOUT, from the environment or the settings file ("" if unset): asked for
    # only when deploy/prefect.yaml is looked for.
    checkout: Callable[[], str]
    added: int = field(default=0, init=False)  # how many findings reported

    def add(self, check: str, level: Level, detail: str, fix: str = "") -> None:
        self.added += 1
        self.report(check, level, detail, fix)

    def check(self, answers: Callable[[str], bool]) -> None:
        """upgrade-check's: deploy/prefect.yaml against the Prefect server, when ANSWERS (the
        Doctor's /health, which reports a server that does not answer) says it answers.
        (doctor compares them in check_prefect, once the server answers.)"""
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
        if answers(api):
            self.compare(api)

    def compare(self, api: str) -> None:
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
        key = self.key
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

        before = self.added
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
        if self.added == before:
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
        named = self.checkout()
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
