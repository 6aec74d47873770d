"""`referrals serve` for real: a local Prefect server, scheduled deliver and sweep runs, a clean stop.

Runs on the embedded default (SQLite) only: the flows themselves are tested on both databases.
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from receivers import SmtpSink, free_port

pytestmark = pytest.mark.prefect
SECRET = "serve-secret-0123456789abcdef0123456789abcdef"


def referrals(env: dict[str, str], *args: str) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "referrals.cli", *args], env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_serve_runs_the_schedules_and_stops_cleanly(tmp_path: Path, smtp: SmtpSink) -> None:
    db = tmp_path / "engine.db"
    env = {
        **os.environ,
        "REFERRALS_DATABASE_URL": f"sqlite:///{db}",
        "REFERRALS_DATA_DIR": str(tmp_path),
        "REFERRALS_SECRET_KEY": SECRET,
        "REFERRALS_EMAIL_URL": smtp.url(),
        "PREFECT_HOME": str(tmp_path / "client-prefect"),
        "TMPDIR": str(tmp_path),
    }
    env.pop("PREFECT_API_URL", None)
    env.pop("REFERRALS_SMS_URL", None)
    referrals(env, "init")
    client = referrals(env, "client", "add", "--name", "Serve Test", "--district", "nha-trang")
    referrals(
        env, "consent", "grant", client, "--partner", "police-nha-trang", "--purpose", "id_papers"
    )
    code = referrals(
        env, "launch", client, "--pathway", "id_papers", "--partner", "police-nha-trang"
    )

    port, web_port = free_port(), free_port()
    serve = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "referrals.cli",
            "serve",
            "--prefect-port",
            str(port),
            "--port",
            str(web_port),
            "--sweep-every",
            "2",
            "--deliver-every",
            "2",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 150
        swept = 0
        while time.monotonic() < deadline and not (smtp.mails and swept):
            time.sleep(1)
            with sqlite3.connect(db) as c:
                swept = c.execute(
                    "SELECT count(*) FROM sweeprun WHERE finished_at IS NOT NULL"
                ).fetchone()[0]
            assert serve.poll() is None, serve.stdout.read().decode() if serve.stdout else ""
        assert swept >= 1, "no scheduled sweep ran"
        assert [m.to for m in smtp.mails] == [["tiepnhan.police-nha-trang@example.vn"]]
        assert code in smtp.mails[0].subject
        # the partner's link in that e-mail opens the served web app's page
        link = next(w for w in smtp.mails[0].body.split() if "/l/" in w)
        token = link.rsplit("/l/", 1)[1]
        with urllib.request.urlopen(f"http://127.0.0.1:{web_port}/l/{token}", timeout=10) as page:
            assert page.status == 200 and code in page.read().decode()
    finally:
        serve.send_signal(signal.SIGTERM)
        try:
            serve.wait(60)
        except subprocess.TimeoutExpired:
            serve.kill()
            raise AssertionError("serve did not stop on SIGTERM") from None
    for gone in (port, web_port):  # the Prefect server and the web app stopped too
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", gone)) != 0
