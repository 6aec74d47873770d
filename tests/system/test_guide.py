"""Issue 22: the production guide, executed. Every command block of deploy/README.md runs, in
order, on a scratch copy of this machine (tests/support/guide.py says what stands in for what):
the guide's own commands install the code, create the databases, write the settings, put nginx
in front with HTTPS, start the Prefect server and the province's units from the unit files
they installed, set the first accounts' passwords, take backups and upgrade. Then the test
checks what the guide promises, from outside: through the proxy's HTTPS, with the names'
certificates.

Needs root (a mount namespace, useradd, runuser), PostgreSQL, Debian's nginx, openssl and
systemd-analyze, and the package index pip installs from (as scripts/test does).
"""

from __future__ import annotations

import base64
import json
import os
import re
import socket
import time
from pathlib import Path

import httpx
import pytest

from referrals.notifiers.background import task_for
from support.guide import ROOT, Guide, commit

# Not root, the guide cannot run (useradd, sudo, a mount namespace): scripts/test says so before
# the run. The tools it needs are scripts/test's prerequisites, so a missing one fails here.
pytestmark = pytest.mark.skipif(
    os.geteuid() != 0, reason="runs the guide as root (sudo), in a mount namespace"
)

PROVINCE = "khanh-hoa"
FLOWS = {
    "clock",
    "deliver-notifications",
    "sweep-deadlines",
    "manager-digest",
    "period-report",
    "launch-referral",
}
UPGRADED = "# upgraded by tests/system/test_guide.py"


def test_the_production_guide_runs_as_written(tmp_path: Path) -> None:
    started = time.monotonic()
    with Guide(tmp_path) as guide:
        steps = guide.blocks()
        skipped = [b for b in steps if b.skip]
        assert len(skipped) <= 1, [b.title() for b in skipped]  # marks stay rare
        doctors = 0
        for block in steps:
            if "git pull" in block.text:
                upgrade_waiting(guide)
            done = guide.run(block)
            if done and "referrals doctor" in block.text:
                doctor_said_ok(done.stdout)  # step 6's, and the upgrade's
                doctors += 1
        assert doctors == 2
        settings_read_alike(guide)
        prefect_behind_the_proxy(guide)
        workers_ran_the_runs(guide)
        web_app_behind_the_proxy(guide)
        backups_taken(guide)
        upgraded(guide)
        units_running(guide)
        took = sorted(guide.ran, key=lambda r: -r[1])[:5]
        print(f"\nthe guide ran in {time.monotonic() - started:.0f} s; slowest blocks:")
        for block, seconds in took:
            print(f"  {seconds:5.1f} s  {block.title()}")


def upgrade_waiting(guide: Guide) -> None:
    """A release to upgrade to: one more commit in the repository the guide cloned."""
    init = guide.stand.origin / "referrals" / "__init__.py"
    init.write_text(init.read_text(encoding="utf-8") + f"{UPGRADED}\n", encoding="utf-8")
    commit(guide.stand.origin, "a new release")


def settings_read_alike(guide: Guide) -> None:
    """The env files mean the same to systemd (the units) and to sh (`province`): no comment
    after a value, quotes where the shell needs them."""
    for name in ("prefect", PROVINCE):
        path = f"/etc/referrals/{name}.env"
        shell = guide.machine.run(
            f"set -a; . {path}; set +a; python3 -c 'import json, os; print(json.dumps(dict(os.environ)))'"
        ).stdout
        systemd = guide.machine.run(
            "python3 -c 'import json, sys; sys.path.insert(0, sys.argv[1]); import guide;"
            f' print(json.dumps(guide.environment_file(__import__("pathlib").Path("{path}"))))\''
            f" {ROOT / 'tests' / 'support'}"
        ).stdout
        by_systemd, by_shell = json.loads(systemd), json.loads(shell)
        assert by_systemd and {k: by_shell.get(k) for k in by_systemd} == by_systemd, path
        assert not any("#" in v for v in by_systemd.values()), by_systemd
        mode = guide.machine.run(f"stat -c '%a %U:%G' {path}").stdout.split()
        assert mode == ["640", "root:referrals"], (path, mode)


def prefect_api(guide: Guide) -> httpx.Client:
    """The Prefect API as a worker reaches it: HTTPS at the proxy, with the auth string."""
    auth = base64.b64encode(f"admin:{guide.stand.chosen['<prefect-password>']}".encode())
    return proxied(guide, "prefect.example.vn", headers={"Authorization": f"Basic {auth.decode()}"})


def proxied(guide: Guide, name: str, **options: object) -> httpx.Client:
    """A client of NAME at the proxy, from outside the scratch machine (where the name is not
    known): to 127.0.0.1, with NAME as the Host and as TLS's server name, checked against the
    certificate the test's CA issued."""
    port = guide.stand.ports[443]

    def named(request: httpx.Request) -> None:
        request.headers["Host"] = name
        request.extensions["sni_hostname"] = name

    return httpx.Client(
        base_url=f"https://127.0.0.1:{port}",
        verify=str(guide.ca / "ca.pem"),
        event_hooks={"request": [named]},
        timeout=30,
        **options,  # type: ignore[arg-type]
    )


def prefect_behind_the_proxy(guide: Guide) -> None:
    """The server answers through the proxy; nothing but /health without the auth string; the
    UI asks for it; the province's deployments are there, on its pool."""
    with proxied(guide, "prefect.example.vn") as anonymous:
        assert anonymous.get("/api/health").json() is True
        assert anonymous.post("/api/deployments/filter", json={}).status_code == 401
        assert anonymous.get("/ui-settings").json()["auth"] == "BASIC"  # the UI's login
        ui = anonymous.get("/", headers={"Accept": "text/html"}, follow_redirects=True)
        assert ui.status_code == 200 and "<html" in ui.text.lower(), ui.text[:300]
    with prefect_api(guide) as api:
        deployments = api.post("/api/deployments/filter", json={}).json()
        flows = {f["id"]: f["name"] for f in api.post("/api/flows/filter", json={}).json()}
    assert {(flows[d["flow_id"]], d["name"], d["work_pool_name"]) for d in deployments} == {
        (flow, PROVINCE, f"referrals-{PROVINCE}") for flow in FLOWS
    }
    assert next(d for d in deployments if flows[d["flow_id"]] == "clock")["schedules"]


def workers_ran_the_runs(guide: Guide) -> None:
    """The worker of referrals-worker@ took the guide's sweeps and completed them, reaching
    Prefect at the env file's PREFECT_API_URL (the proxy's HTTPS); the task worker is
    subscribed to the province's task."""
    with prefect_api(guide) as api:
        runs = api.post(
            "/api/flow_runs/filter",
            json={"deployments": {"name": {"any_": [PROVINCE]}}, "flows": {"name": {"any_": ["sweep-deadlines"]}}},
        ).json()  # fmt: skip
        workers = api.post(f"/api/work_pools/referrals-{PROVINCE}/workers/filter", json={}).json()
        subscribed = api.post(
            "/api/task_workers/filter",
            json={"task_worker_filter": {"task_keys": [task_for(PROVINCE).task_key]}},
        ).json()
    assert [r["state_type"] for r in runs] == ["COMPLETED", "COMPLETED"], runs  # step 6, upgrade
    assert f"{socket.gethostname()}-{PROVINCE}" in {
        w["name"] for w in workers if w["status"] == "ONLINE"
    }
    assert subscribed, "no task worker subscribed to the province's deliver-now task"
    units = json.loads((guide.machine.state / "units.json").read_text())
    worker = units[f"referrals-worker@{PROVINCE}.service"]["pid"]
    environ = dict(
        line.split("=", 1)
        for line in Path(f"/proc/{worker}/environ").read_bytes().decode().split("\0")
        if "=" in line
    )
    assert environ["PREFECT_API_URL"] == f"{guide.stand.url('prefect.example.vn')}/api"
    assert environ["USER"] == "referrals" and environ["REFERRALS_PROVINCE"] == PROVINCE


def web_app_behind_the_proxy(guide: Guide) -> None:
    """Through nginx's HTTPS at the province's name: the admin logs in with the password the
    guide set, and the coordinator the guide added with hers; the session cookie is Secure
    (uvicorn believed the proxy's X-Forwarded-Proto); nginx logged no path."""
    for username in ("admin", "lan"):
        with proxied(guide, "kh.example.vn", follow_redirects=False) as web:
            page = web.get("/login")
            assert page.status_code == 200, page.text[:500]
            csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)
            assert csrf, page.text[:500]
            form = {
                "csrf": csrf[1],
                "username": username,
                "password": guide.stand.passwords[username],
                "next": "/",
            }
            answer = web.post("/login", data=form)
            assert answer.status_code == 303, (username, answer.status_code, answer.text[:500])
            assert "secure" in answer.headers["set-cookie"].lower()
            home = web.get(answer.headers["location"])
            assert home.status_code == 200, (username, home.status_code)
    with proxied(guide, "kh.example.vn") as web:
        wrong = {"csrf": "x", "username": "admin", "password": "not the password"}
        assert web.post("/login", data=wrong).status_code in (401, 403)
    plain = httpx.get(
        f"http://127.0.0.1:{guide.stand.ports[80]}/login", headers={"Host": "kh.example.vn"}
    )
    assert plain.status_code == 301 and plain.headers["location"] == "https://kh.example.vn/login"
    logs = guide.machine.run("cat /var/log/nginx/*.log 2>/dev/null || true").stdout
    assert "/login" not in logs, "nginx logged request paths"


def backups_taken(guide: Guide) -> None:
    """The nightly unit's backup (step 6), the one by hand and the upgrade's: data and keys
    apart, each with its manifest, owned by the service user."""
    for kind, prefix in (("data", "referrals-"), ("keys", "referrals-keys-")):
        folder = f"/srv/backup/{kind}/{PROVINCE}"
        listed = guide.machine.run(f"stat -c '%U %n' {folder}/{prefix}*/manifest.json").stdout
        owners = [line.split()[0] for line in listed.splitlines()]
        assert owners == ["referrals"] * 3, listed


def upgraded(guide: Guide) -> None:
    """The upgrade pulled the new release and installed it into the venv the units run."""
    site = "/opt/referrals/.venv/lib/python3.11/site-packages/referrals/__init__.py"
    assert UPGRADED in guide.machine.read(site)
    assert "a new release" in guide.machine.run("git -C /opt/referrals log -1 --format=%s").stdout


def doctor_said_ok(said: str) -> None:
    """`referrals doctor`, at the end of a block, said ✓ to every check (its exit 0 says only
    that none failed)."""
    checks = [line for line in said.splitlines() if line[:2] in ("✓ ", "! ", "✗ ")]
    assert len(checks) > 10 and all(line.startswith("✓ ") for line in checks), said


def units_running(guide: Guide) -> None:
    units = [
        "referrals-prefect",
        *(f"referrals-{u}@{PROVINCE}" for u in ("worker", "tasks", "web")),
    ]
    done = guide.machine.run("systemctl is-active " + " ".join(units), check=False)
    assert done.returncode == 0, "".join(guide.machine.log(f"{u}.service") for u in units)
