"""Every CLI command as a user runs it: each one a fresh `referrals` process, on both databases.

The in-process tests (test_cli.py and the others) share one interpreter, so whatever a fresh
process lacks (an import, a table registered on the way) goes unnoticed there: a fresh
`referrals advance` once failed with NoReferencedTableError in every process. Here the CLI makes
its own database (`referrals init`), and one realistic journey runs every command that
`referrals --help` and each group's `--help` list, each in its own process; the test fails when
the CLI has a command the journey did not run. `serve` alone is left to tests/cli/test_serve.py.
"""

from __future__ import annotations

import json
import os
import resource
import secrets
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
import typer
from sqlalchemy import create_engine, text

from referrals.cli.main import app
from referrals.config.settings import BUNDLED_CONFIG
from support.receivers import HttpSink, SignedSink, SmtpSink, free_port

T = TypeVar("T")

SCRIPT = Path(sys.executable).with_name("referrals")  # the console script pip installed
COMMAND = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "referrals.cli"]
PG_ADMIN = os.environ.get(
    "REFERRALS_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
SECRET = "process-secret-0123456789abcdef0123456789abcdef"
NEW_SECRET = "process-secret-rotated-0123456789abcdef012345"
# Commands the journey does not run, each with the test that runs it in a process of its own.
PRIVACY_CLI = "tests/cli/test_privacy_cli.py runs it in fresh processes on both databases"
ELSEWHERE = {
    "client merge": "tests/cli/test_client_merge_cli.py runs it in fresh processes on both databases",
    "client move": "tests/usecases/clients/test_area_scope.py runs it in fresh processes on both "
    "databases",
    "privacy requests add": PRIVACY_CLI,
    "privacy requests ack": PRIVACY_CLI,
    "privacy requests extend": PRIVACY_CLI,
    "privacy requests close": PRIVACY_CLI,
    "privacy requests list": PRIVACY_CLI,
    "privacy requests show": PRIVACY_CLI,
    "privacy breach add": PRIVACY_CLI,
    "privacy breach notify": PRIVACY_CLI,
    "privacy breach notice": PRIVACY_CLI,
    "privacy breach list": PRIVACY_CLI,
    "privacy record": PRIVACY_CLI,
    "privacy retention": PRIVACY_CLI,
    "no-show rebook": "tests/cli/test_no_show_cli.py runs it in fresh processes on both databases",
    "no-show remind": "tests/cli/test_no_show_cli.py runs it in fresh processes on both databases",
    "slip": "tests/cli/test_slip_cli.py runs it in fresh processes on both databases",
    "serve": "tests/cli/test_serve.py starts it for real: a Prefect server, the schedules, a clean stop",
    "upgrade-check": "tests/cli/test_upgrade_check.py and test_upgrade_path.py run it in fresh processes (a Prefect server, both databases)",
    "peer-link create": "tests/cli/test_intake_cli.py runs it in fresh processes on both databases",
    "peer-link revoke": "tests/cli/test_intake_cli.py runs it in fresh processes on both databases",
    "intake list": "tests/cli/test_intake_cli.py runs it in fresh processes on both databases",
    "extension list": "tests/cli/test_extension_cli.py runs it in fresh processes on both databases",
    "extension decide": "tests/cli/test_extension_cli.py runs it in fresh processes on both databases",
    "areas": "tests/config/test_areas.py runs it in fresh processes (it reads the YAML, no database)",
}
WORKERS = 3  # processes at once where the steps are independent
TIMEOUT = 180  # seconds for one command: a hang fails the test instead of blocking the suite


def tree() -> Any:
    return typer.main.get_command(app)


def runnable(node: Any = None, path: tuple[str, ...] = ()) -> set[str]:
    """Every command a user can run: the leaves, and a group that runs without a subcommand
    (`referrals outbox` lists the messages)."""
    node = tree() if node is None else node
    subs = getattr(node, "commands", None)
    if not subs:
        return {" ".join(path)}
    found = {" ".join(path)} if path and node.invoke_without_command else set()
    for name, sub in subs.items():
        found |= runnable(sub, (*path, name))
    return found


def groups(node: Any = None, path: tuple[str, ...] = ()) -> dict[tuple[str, ...], list[str]]:
    """Each group (the root too) and the names of its commands."""
    node = tree() if node is None else node
    found = {path: sorted(node.commands)}
    for name, sub in node.commands.items():
        if getattr(sub, "commands", None):
            found |= groups(sub, (*path, name))
    return found


def command_of(args: tuple[str, ...]) -> str:
    """The command ARGS run, e.g. `client add` for ("client", "add", "--name", ...)."""
    node, path = tree(), []
    for arg in args:
        subs = getattr(node, "commands", None) or {}
        if arg not in subs:
            break
        node = subs[arg]
        path.append(arg)
    return " ".join(path)


def listed(help_text: str) -> list[str]:
    """The command names in a `--help`'s "Commands:" section (up to the blank line before the
    epilog, which says where the installation is)."""
    section = help_text.split("Commands:", 1)[1] if "Commands:" in help_text else ""
    lines = section.split("\n\n", 1)[0].splitlines()
    names = (line.split()[0] for line in lines if line.startswith("  ") and line[2] != " ")
    return sorted(names)


def together(*steps: Callable[[], T]) -> list[T]:
    """Run independent steps (each one or more processes) side by side; the first failure
    is raised once all have finished."""
    with ThreadPoolExecutor(WORKERS) as pool:
        futures = [pool.submit(step) for step in steps]
        return [f.result() for f in futures]


@dataclass
class Done:
    args: tuple[str, ...]
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


class Journey:
    """Runs `referrals` in fresh processes against one database; remembers which commands ran."""

    def __init__(self, tmp: Path, url: str, *, smtp: SmtpSink, http: HttpSink) -> None:
        config = tmp / "config"  # the province's own folder: `directory import` rewrites it
        shutil.copytree(BUNDLED_CONFIG, config)
        self.env = {
            k: v for k, v in os.environ.items() if not k.startswith(("REFERRALS_", "PREFECT_"))
        } | {
            "REFERRALS_DATABASE_URL": url,
            "REFERRALS_SECRET_KEY": SECRET,
            "REFERRALS_DATA_DIR": str(tmp / "data"),
            "REFERRALS_CONFIG_DIR": str(config),
            "REFERRALS_EMAIL_URL": smtp.url(),
            "REFERRALS_SMS_URL": http.url(),
            "PREFECT_HOME": str(tmp / "prefect"),
            "DO_NOT_TRACK": "1",
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        }
        self.ran: set[str] = set()
        self.processes = 0
        self._lock = threading.Lock()

    def run(
        self,
        *args: str,
        user: str | None = None,
        stdin: str | None = None,
        env: dict[str, str] | None = None,
        status: int = 0,
    ) -> Done:
        """One command in a new process; it must exit with STATUS, and an error must be one
        line on stderr, never a traceback."""
        environment = self.env | (env or {}) | ({"REFERRALS_USER": user} if user else {})
        done = subprocess.run(
            [*COMMAND, *args],
            env=environment,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )
        shown = f"`referrals {' '.join(args)}` (as {user or 'admin'}) exited {done.returncode}\n"
        shown += f"--- stdout:\n{done.stdout[-3000:]}\n--- stderr:\n{done.stderr[-3000:]}"
        assert done.returncode == status, shown
        assert "Traceback" not in done.stderr, shown
        if status:
            assert done.stderr.startswith("error: ") and done.stderr.count("\n") == 1, shown
        with self._lock:
            self.ran.add(command_of(args))
            self.processes += 1
        return Done(args, done.stdout, done.stderr)

    def json(self, *args: str, **kwargs: Any) -> Any:
        return self.run(*args, **kwargs).json()


@pytest.fixture(params=["sqlite", "postgresql"])
def databases(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """Two databases of this test's own: the one the CLI makes, and an empty one to restore
    its backup into (PostgreSQL: created here and dropped after)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'engine.db'}", f"sqlite:///{tmp_path / 'restored.db'}"
        return
    name = f"referrals_processes_{os.getpid()}_{secrets.token_hex(3)}"
    names = [name, f"{name}_restored"]
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        for n in names:
            c.execute(text(f'CREATE DATABASE "{n}"'))
    base = PG_ADMIN.rsplit("/", 1)[0]
    try:
        yield f"{base}/{names[0]}", f"{base}/{names[1]}"
    finally:
        with admin.connect() as c:
            for n in names:
                c.execute(text(f'DROP DATABASE IF EXISTS "{n}" WITH (FORCE)'))
        admin.dispose()


def test_the_help_lists_every_command_of_the_cli() -> None:
    """`referrals --help` and each group's `--help` list exactly the commands the journey must
    run (the CLI's own tree), and the allow-list names commands that exist."""
    tree_groups = groups()
    helps = together(
        *(
            lambda path=path: subprocess.run(
                [*COMMAND, *path, "--help"], capture_output=True, text=True, timeout=TIMEOUT
            )
            for path in tree_groups
        )
    )
    for (path, names), shown in zip(tree_groups.items(), helps, strict=True):
        assert shown.returncode == 0, shown.stderr
        assert listed(shown.stdout) == names, f"referrals {' '.join(path)} --help"
    assert {"advance", "client add", "outbox", "outbox retry", "serve"} <= runnable()
    assert set(ELSEWHERE) <= runnable()
    # `serve` is started by tests/cli/test_serve.py; here, only that its options parse in a process.
    serve = subprocess.run(
        [*COMMAND, "serve", "--help"], capture_output=True, text=True, timeout=TIMEOUT
    )
    assert serve.returncode == 0 and "--prefect-port" in serve.stdout, serve.stderr


def test_every_command_in_a_fresh_process(
    databases: tuple[str, str], tmp_path: Path, smtp: SmtpSink, http: HttpSink
) -> None:
    """A province's first weeks, as staff and operators type them: every command at least once,
    side by side where a real office would run them at once, on a database `init` made."""
    url, restored_url = databases
    j = Journey(tmp_path, url, smtp=smtp, http=http)
    hook = SignedSink(port=free_port())  # another system's endpoint, down until it is started
    started = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu, clock = started.ru_utime + started.ru_stime, time.monotonic()

    # The CLI makes its own database; the admin adds staff and replaces the partner directory.
    out = j.run("init").out
    assert "database ready" in out and "24 partners" in out  # 22 in force, 2 of history

    def coordinator() -> None:
        out = j.run(
            "user", "add", "lan", "--name", "Nguyễn Thị Lan", "--role", "coordinator",
            "--district", "nha-trang", "--email", "lan@example.vn", "--password-stdin",
            stdin="first-password-1\n",
        ).out  # fmt: skip
        assert "user lan added (coordinator)" in out

    def manager() -> None:
        out = j.run(
            "user", "add", "quanly", "--name", "Trần Quản Lý", "--role", "manager",
            "--email", "quanly@example.vn", "--password-stdin", stdin="manager-password-1\n",
        ).out  # fmt: skip
        assert "user quanly added (manager)" in out

    def pathways() -> None:
        found = {p["key"]: p for p in j.json("pathways", "--json")}
        assert [s["key"] for s in found["emergency_shelter"]["steps"]] == [
            "acknowledge",
            "client_safe",
            "client_confirmed",
        ]

    def hsds() -> None:
        path = tmp_path / "directory.json"
        assert "written" in j.run("directory", "export", "--out", str(path)).out
        doc = json.loads(path.read_text(encoding="utf-8"))
        assert len(doc["organizations"]) == 22  # in force today: not the police of 2019-2025
        legal = next(o for o in doc["organizations"] if o["uri"].endswith(":legal-aid-centre"))
        legal["name"] = "Trung tâm Trợ giúp pháp lý (tên mới)"
        path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
        out = j.run("directory", "import", str(path)).out
        assert "imported: 0 new, 1 changed, 0 made inactive" in out and "legal-aid-centre" in out
        assert list((tmp_path / "config").glob("partners.yaml.*.bak"))
        partners = {p["slug"]: p for p in j.json("partners", "--json")}
        assert len(partners) == 22 and len(j.json("partners", "--all", "--json")) == 24
        assert partners["legal-aid-centre"]["name"] == "Trung tâm Trợ giúp pháp lý (tên mới)"

    together(hsds, coordinator, manager, pathways)

    # Coordinator Lan registers clients, records consents and launches; a manager launches
    # without consent; a batch comes from a spreadsheet; another system subscribes.
    def grant(client: str, partner: str, purpose: str, *extra: str) -> None:
        out = j.run(
            "consent", "grant", client, "--partner", partner, "--purpose", purpose,
            "--now", "2026-11-23T08:00", *extra, user="lan",
        ).out  # fmt: skip
        assert "consent recorded" in out

    def launch(client: str, pathway: str, partner: str, *extra: str, user: str = "lan") -> str:
        done = j.json(
            "launch", client, "--pathway", pathway, "--partner", partner,
            "--now", "2026-11-23T09:00", "--json", *extra, user=user,
        )  # fmt: skip
        assert done["via"] == "direct" and done["code"].startswith("R-")
        return done["code"]

    def first_client() -> tuple[str, str]:
        client = j.run(
            "client", "add", "--name", "Nguyễn Thị A", "--phone", "0905 123 456",
            "--district", "nha-trang", user="lan",
        ).out.strip()  # fmt: skip
        assert client.startswith("C-")
        again = j.run(
            "client", "add", "--name", "Nguyễn T. A", "--phone", "+84 905 123 456",
            "--district", "nha-trang", user="lan", status=1,
        )  # fmt: skip
        assert client in again.err and "--different-person" in again.err  # named, and the way on
        found = j.json("client", "find", "nguyen a", "--json", user="lan")  # no accents needed
        assert [(f["code"], f["name"]) for f in found] == [(client, "Nguyễn Thị A")]
        assert client in j.run("client", "find", "+84905123456", user="lan").out
        grant(client, "social-work-centre", "emergency_shelter")
        return client, launch(client, "emergency_shelter", "social-work-centre", "--urgent")

    def second_client() -> str:
        added = j.json(
            "client", "add", "--name", "Lê Thị C", "--id-number", "079190000003",
            "--district", "nha-trang", "--json", user="lan",
        )  # fmt: skip
        assert added["district"] == "nha-trang"
        override = ("--override-consent", "emergency_protection")
        return launch(
            added["code"], "emergency_aid", "social-work-centre", *override, user="quanly"
        )

    def batch() -> list[str]:
        csv = tmp_path / "batch.csv"
        csv.write_text(
            "name,phone,id_number,district,pathway,partner,consent,launched_at,urgent\n"
            "Phạm Thị D,0905 123 001,,nha-trang,id_papers,police-nha-trang,written,20/11/2026,\n"
            "Võ Văn E,,079190000002,ninh-hoa,health_check,ninh-hiep-health,verbal,"
            "2026-11-20T08:30,có\n"
            "Đặng Văn F,0905 123 003,,nha-trang,legal_aid,legal-aid-centre,written,,\n"
            "Hồ Thị G,0905 123 004,,nha-trang,health_check,hospital-social-work,written,,không\n"
            "Trần Văn B,,079190000001,nha-trang,id_papers,police-nha-trang,verbal,,\n",
            encoding="utf-8-sig",
        )
        j.run("import", "--template", str(tmp_path / "mau.xlsx"))  # the workbook to fill in
        assert (tmp_path / "mau.xlsx").read_bytes().startswith(b"PK")
        report = j.json("import", str(csv), "--now", "2026-11-23T09:00", "--json")
        assert report["launched"] == 5 and report["clients_created"] == 5
        assert report["consents_recorded"] == 5
        return report["referrals"]

    def subscribe() -> None:
        added = j.json(
            "webhook", "add", "case-system", "--url", hook.url(),
            "--events", "referral.*,step.done", "--json",
        )  # fmt: skip
        assert added["name"] == "case-system" and len(added["secret"]) >= 32
        hook.secret = added["secret"]

    def lan_account() -> None:
        out = j.run("user", "password", "lan", "--password-stdin", stdin="second-password-2\n")
        assert "password of lan set" in out.out
        token = j.run("token", "create", "lan", "--name", "case-system").out.strip()
        assert len(token) >= 32 and len(token.split()) == 1

    (r6, r7, r3, r4, r2), (c1, r1), r5, *_ = together(
        batch, first_client, second_client, subscribe, lan_account
    )

    # The referrals move on: every action of `advance`, and a consent withdrawn.
    def advance(code: str, action: str, at: str, *extra: str, user: str = "lan") -> str:
        out = j.run("advance", code, "--action", action, "--now", at, *extra, user=user).out
        return out.strip().removeprefix(f"{code} is ")

    def completed() -> None:
        assert advance(r1, "accept", "2026-11-23T09:30") == "accepted"
        assert advance(r1, "done", "2026-11-23T10:00") == "in-progress"
        step = ("--step", "client_confirmed")
        assert advance(r1, "done", "2026-11-23T11:00", *step) == "completed"
        refused = j.run("advance", r1, "--action", "accept", user="lan", status=1).err
        assert f"referral {r1} is completed" in refused

    def paused() -> None:
        assert advance(r6, "hold", "2026-11-23T09:40", "--reason", "other") == "on-hold"
        assert advance(r6, "resume", "2026-11-23T09:50") == "requested"

    def declined() -> None:
        assert advance(r2, "decline", "2026-11-23T10:00", "--reason", "not_our_service") == (
            "rejected"
        )

    def failed() -> None:
        assert advance(r3, "fail", "2026-11-23T11:00", "--reason", "client_unreachable") == (
            "failed"
        )

    def withdrawn() -> None:
        client = j.json("show", r4, "--json", user="lan")["client"]
        out = j.run(
            "consent", "withdraw", client, "--partner", "hospital-social-work",
            "--now", "2026-11-23T12:00", user="lan",
        ).out  # fmt: skip
        assert f"1 consent(s) withdrawn; referrals cancelled: {r4}" in out

    def cancelled() -> None:  # Ninh Hòa's: the admin, not Nha Trang's coordinator
        assert advance(r7, "cancel", "2026-11-23T12:00", user="admin") == "cancelled"

    together(completed, paused, declined, failed, withdrawn, cancelled)

    # Time moves (the deadline sweep, the managers' digest, delivery passes) while the staff
    # read, export and report.
    expected = {
        r1: "completed",
        r2: "rejected",
        r3: "failed",
        r4: "cancelled",
        r5: "requested",
        r6: "requested",
        r7: "cancelled",
    }

    def messaging() -> None:
        swept = j.json("sweep", "--now", "2026-11-27T17:00", "--json")
        assert swept["overdue"] == 2 and swept["messages"] > 0 and swept["sealed"] > 0
        together(sweeps, digest)
        first = j.json("deliver", "--now", "2026-11-30T08:00", "--json")
        assert first["sent"] > 0 and first["dead"] == 0 and first["waiting"] == {}
        assert first["webhooks"]["failed"] == 1  # the subscriber is down: one try, the rest wait
        assert any(m.to == ["quanly@example.vn"] for m in smtp.mails)  # the digest
        assert any(r5 in m.subject for m in smtp.mails) and http.hits  # e-mails and SMS
        together(resend, revoke)

    def sweeps() -> None:
        rows = j.json("sweeps", "--json", user="quanly")
        assert len(rows) == 1 and rows[0]["counts"]["overdue"] == 2 and rows[0]["finished_at"]

    def digest() -> None:
        counts = j.json("digest", "--now", "2026-11-30T07:30", "--json")
        assert counts == {"queued": 1, "already": 0, "nothing_to_say": 0}

    def resend() -> None:
        failing = j.json("outbox", "--status", "failed", "--json", user="quanly")
        assert [m["channel"] for m in failing] == ["webhook"]
        hook.start()  # the subscriber is back: the operator sends the failed event again
        try:
            out = j.run("outbox", "retry", str(failing[0]["id"]), "--now", "2026-11-30T08:05")
            assert f"message {failing[0]['id']} is queued again" in out.out
            second = j.json("deliver", "--now", "2026-11-30T08:10", "--json")
        finally:
            hook.stop()
        assert second["webhooks"]["sent"] >= 1 and second["webhooks"]["failed"] == 0
        assert hook.rejected == 0  # each event signed with the secret `webhook add` printed
        kinds = {e["kind"] for e in hook.events}
        assert {"referral.accepted", "referral.completed", "referral.rejected"} <= kinds
        assert {"referral": r1, "kind": "referral.completed"}.items() <= next(
            e for e in hook.events if e["kind"] == "referral.completed"
        ).items()
        assert "webhook case-system is off" in j.run("webhook", "off", "case-system").out
        assert (
            f"case-system (off): {hook.url()} <- referral.*, step.done"
            in j.run("webhook", "list").out
        )

    def revoke() -> None:
        messages = j.json("outbox", "--limit", "0", "--json")
        sms = next(
            m
            for m in messages
            if (m["referral"], m["template"], m["channel"]) == (r5, "referral.new", "sms")
        )
        assert sms["status"] == "sent"
        out = j.run("outbox", "revoke", str(sms["id"]), "--now", "2026-11-30T09:00").out
        assert f"the link in message {sms['id']} is withdrawn" in out
        assert "link.revoked" in [e["kind"] for e in j.json("show", r5, "--json")["events"]]

    clients: dict[str, str] = {}

    def everything() -> None:
        rows = j.json("list", "--json")
        assert {r["code"]: r["status"] for r in rows} == expected
        clients.update((r["code"], r["client"]) for r in rows)

    def one() -> None:
        human = j.run("show", r1, user="lan").out
        assert f"{r1}  emergency_shelter -> social-work-centre  [completed]  client {c1}" in human
        assert "referral.completed" in human and "Nguyễn Thị A" not in human

    def late() -> None:
        rows = j.json("list", "--overdue", "--now", "2026-11-27T17:00", "--json")
        assert {r["code"] for r in rows} == {r5, r6}
        assert all(r["days_late"] >= 1 for r in rows)

    def rights() -> None:
        copy = tmp_path / "client.json"
        out = j.run("client", "export", c1, "--out", str(copy), user="quanly").out
        assert f"client {c1} exported to" in out
        held = json.loads(copy.read_text(encoding="utf-8"))
        assert held["client"]["name"] == "Nguyễn Thị A"
        assert [r["code"] for r in held["referrals"]] == [r1]
        refused = j.run("client", "erase", c1, user="quanly", status=2).err
        assert "add --yes" in refused
        out = j.run("client", "erase", c1, "--yes", user="quanly").out
        assert f"client {c1}: personal data erased" in out
        after = j.json("client", "export", c1, user="quanly")["client"]
        assert after["name"] is None and after["phone"] is None and after["erased_at"]

    def bundle() -> None:
        path = tmp_path / "bundle.json"
        assert "written" in j.run("fhir", "export", r1, "--out", str(path), user="lan").out
        doc = json.loads(path.read_text(encoding="utf-8"))
        resources = {e["resource"]["resourceType"]: e["resource"] for e in doc["entry"]}
        assert doc["resourceType"] == "Bundle" and resources["Task"]["status"] == "completed"
        assert resources["Patient"]["id"] == c1 and "name" not in resources["Patient"]

    period = ("--from", "2026-11-01", "--to", "30/11/2026", "--now", "2026-12-01T09:00")

    def markdown() -> None:
        md = j.run("report", *period, user="quanly").out
        assert md.startswith("# Báo cáo") and "Làm giấy tờ tùy thân" in md

    def figures() -> None:
        data = j.json("report", *period, "--format", "json", user="quanly")
        assert data["total"] == {
            "clients": 7,
            "launched": 7,
            "successful": 1,
            "not_successful": 4,
            "still_open": 2,
            "overdue": 2,
        }

    def spreadsheet() -> None:
        csv = tmp_path / "report.csv"
        j.run("report", *period, "--format", "csv", "--out", str(csv), user="quanly")
        assert csv.read_bytes().startswith(b"\xef\xbb\xbf")
        assert "Phạm Thị D" not in csv.read_text(encoding="utf-8-sig")

    def page() -> None:
        html = tmp_path / "report.html"
        j.run(
            "report", *period, "--format", "html", "--lang", "en", "--district", "nha-trang",
            "--out", str(html), user="quanly",
        )  # fmt: skip
        text = html.read_text(encoding="utf-8")
        assert text.startswith("<!doctype html>") and "<svg" in text

    together(messaging, rights, everything, one, late, bundle, markdown, figures, spreadsheet, page)

    # The secret key is rotated; the audit chain, the invariants and the deployment check out;
    # a backup restored into an empty database holds the same referrals, the details readable.
    j.env |= {"REFERRALS_SECRET_KEY": NEW_SECRET, "REFERRALS_PREVIOUS_SECRET_KEYS": SECRET}
    rotated = j.json("keys", "rotate", "--json")
    assert rotated["rotated"] == 6  # every client but the erased one
    assert j.json("audit", "seal", "--json")["sealed"] > 0

    def keys() -> None:
        assert j.json("keys", "status", "--json")["to_rotate"] == 0

    def chain() -> None:
        verdict = j.json("audit", "verify", "--json")
        assert verdict["ok"] and verdict["unsealed"] == 0 and verdict["first_broken"] is None

    def invariants() -> None:
        assert j.json("check", "--json", user="quanly") == {"ok": True, "broken": []}

    def doctor() -> None:
        found = j.json("doctor", "--json")
        assert found["healthy"], found
        levels = {c["check"]: c["level"] for c in found["checks"]}
        assert {levels[k] for k in ("database", "schema", "data keys", "consistency")} == {"ok"}
        assert levels["channels"] == "ok"

    def backup() -> None:
        folders = ("--out", str(tmp_path / "backup"), "--keys-out", str(tmp_path / "keys"))
        done = j.json("backup", *folders, "--json")
        assert done["keys_count"] == 6
        there = {"REFERRALS_DATABASE_URL": restored_url}
        data, keys = Path(done["data"]).parent, Path(done["keys"]).parent
        back = j.json("restore", str(data), "--keys", str(keys), "--yes", "--json", env=there)
        assert back == {"keys": 6, "keys_of_erased_clients": 0, "clients_without_keys": 0}
        rows = j.json("list", "--json", env=there)
        assert {r["code"]: r["status"] for r in rows} == expected
        held = j.json("client", "export", clients[r2], user="quanly", env=there)
        assert held["client"]["name"] == "Trần Văn B"
        assert j.json("check", "--json", env=there) == {"ok": True, "broken": []}

    together(backup, keys, chain, invariants, doctor)

    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = used.ru_utime + used.ru_stime - cpu
    print(f"\n{j.processes} processes in {time.monotonic() - clock:.1f} s, {cpu:.1f} s of CPU")

    # Every command of the CLI ran at least once in this journey, each in a process of its own.
    missing = runnable() - j.ran - set(ELSEWHERE)
    assert not missing, f"commands without a process test (add them to the journey): {missing}"
