"""Issue 9 for real: a Prefect server on PostgreSQL, the deployments of deploy/prefect.yaml, two
process workers. 1,000 referrals go through launch, delivery and the sweep; one worker is lost
mid-way (SIGKILL to its whole process group, flow runs included); the other finishes; every
message arrives, at most the lost worker's in-flight ones twice; the invariants hold. Then the
Prefect server goes down: coordinators keep launching, and the workers catch up once it is back.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import SECRET
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlmodel import Session

from referrals.config import get_settings
from referrals.infra.crypto import Vault
from referrals.infra.runtime import Runtime
from referrals.models.links import link_token, message_of
from referrals.models.workflow import Notification, Referral
from referrals.web.app import create_app
from support.cluster import (
    PG_ADMIN,
    Cluster,
    drop_database,
    fast_config,
    fresh_database,
    import_csv,
    referrals,
    wait_for,
)
from support.receivers import HttpSink

pytestmark = pytest.mark.prefect
REFERRALS = 1000
BATCH = 250  # messages per delivery run: many runs, shared by the workers


@pytest.fixture
def cluster(tmp_path: Path, http: HttpSink) -> Iterator[Cluster]:
    engine_db = fresh_database("referrals_cluster")
    url = PG_ADMIN.rsplit("/", 1)[0] + f"/{engine_db}"
    env = {
        "REFERRALS_DATABASE_URL": url,
        "REFERRALS_SECRET_KEY": SECRET,
        "REFERRALS_DATA_DIR": str(tmp_path / "data"),
        "REFERRALS_CONFIG_DIR": str(fast_config(tmp_path, lease_seconds=10)),
        "REFERRALS_SMS_URL": http.url(),
        "REFERRALS_EMAIL_URL": "",
    }
    made = Cluster(tmp_path, env)
    try:
        yield made
    finally:
        made.stop()
        drop_database(engine_db)


def _message(payload: dict[str, str]) -> object:
    """Which message an SMS was: its link names it; one without a link, its text."""
    text = payload["message"]
    if "/l/" not in text:
        return (payload["to"], text)
    return message_of(Vault(SECRET), text.rsplit("/l/", 1)[1].split()[0])


def test_two_workers_one_lost_every_message_once(
    cluster: Cluster, http: HttpSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    env, folder = cluster.env, cluster.folder
    t0 = time.monotonic()

    def mark(what: str) -> None:
        print(f"{time.monotonic() - t0:6.1f} s  {what}", flush=True)

    referrals(env, "init")
    cluster.start_server()
    cluster.deploy()
    cluster.start_worker("worker-a", limit=1)
    cluster.start_worker("worker-b", limit=1)
    mark("server, deployments, workers")

    # Launch: one coordinator's launch through the launch deployment's flow (PREFECT_API_URL is
    # set and answers), and the bulk through an import.
    client = referrals(env, "client", "add", "--name", "Người Đầu Tiên", "--district", "nha-trang")
    referrals(
        env,
        "consent",
        "grant",
        client.strip(),
        "--partner",
        "police-nha-trang",
        "--purpose",
        "id_papers",
    )
    first = json.loads(
        referrals(
            env,
            "launch",
            client.strip(),
            "--pathway",
            "id_papers",
            "--partner",
            "police-nha-trang",
            "--json",
        )
    )
    assert first["via"] == "prefect"
    imported = json.loads(
        referrals(env, "import", str(import_csv(folder, REFERRALS - 1)), "--json")
    )
    assert imported["launched"] == REFERRALS - 1
    mark("launched")

    lost: list[str] = []
    cluster.deliver_until_done(300, batch=BATCH, kill="worker-a", lost=lost)
    assert "worker-a" not in cluster.workers  # it was lost mid-way
    mark("delivered, one worker lost")
    # The sweep, a fortnight on: every referral is overdue; its notices go out too.
    later = (dt.datetime.now(dt.UTC) + dt.timedelta(days=14)).isoformat()
    swept = cluster.run("sweep-deadlines", now=later)
    wait_for(lambda: cluster.state(swept) == "COMPLETED", 120, "the sweep")
    mark("swept")
    cluster.deliver_until_done(300, now=later, batch=4 * BATCH)
    mark("delivered again")

    sms = cluster.sms()
    assert set(sms) == {"sent"} and sms["sent"] >= 2 * REFERRALS
    arrived = Counter(_message(hit.payload) for hit in http.hits)
    assert len(arrived) == sms["sent"]  # every message sent arrived...
    twice = {m: n for m, n in arrived.items() if n > 1}
    assert len(twice) <= 2 * BATCH and max(twice.values(), default=1) <= 2  # ...once, but in flight
    ran = cluster.ran_by()
    assert ran["worker-a"] >= 1 and ran["worker-b"] >= 1, ran
    assert "rules hold" in referrals(env, "check")
    mark(f"{sms['sent']} SMS, {len(twice)} twice; flow runs by worker {ran}")

    # The run lost with worker A stopped sending heartbeats: Prefect marks it crashed (the
    # automation deployed beside the flows), which frees its deployment's concurrency slot.
    wait_for(lambda: not cluster.runs_in("RUNNING"), 150, "the lost run to be marked crashed")
    assert lost and set(lost) <= set(cluster.runs_in("CRASHED"))
    mark("the lost run marked crashed")
    doctor = json.loads(referrals(env, "doctor", "--json", ok=(0, 1)))
    checks = {c["check"]: c for c in doctor["checks"]}
    assert checks["prefect"]["level"] == "ok" and checks["consistency"]["level"] == "ok"
    assert checks["workers"]["level"] == "ok" and "worker-b" in checks["workers"]["detail"]
    assert "worker-a" not in checks["workers"]["detail"]  # its heartbeats stopped

    # Prefect goes down (no run in flight): coordinators go on launching; the outbox waits;
    # it catches up after.
    cluster.stop_server()
    client = referrals(env, "client", "add", "--name", "Người Sau Cùng", "--district", "nha-trang")
    grant = ["--partner", "police-nha-trang", "--purpose", "id_papers"]
    referrals(env, "consent", "grant", client.strip(), *grant)
    down = referrals(env, "launch", client.strip(), "--pathway", "id_papers", *grant[:2], "--json")
    assert json.loads(down)["via"] == "direct"
    code = json.loads(down)["code"]
    assert code in referrals(env, "list")
    for key in ("REFERRALS_DATABASE_URL", "REFERRALS_SECRET_KEY", "REFERRALS_CONFIG_DIR"):
        monkeypatch.setenv(key, env[key])
    get_settings.cache_clear()
    web = TestClient(create_app())
    with Session(Runtime.current().engine) as s:
        message = s.scalars(
            select(Notification.id)
            .join(Referral)
            .where(Referral.code == code, Notification.channel == "sms")
        ).one()
    assert web.get("/login").status_code == 200  # staff log in
    assert code in web.get(f"/l/{link_token(Vault(SECRET), message)}").text  # partners answer
    Runtime.current().engine.dispose()
    cluster.start_server()
    mark("Prefect down, a launch, Prefect back")
    cluster.deliver_until_done(120, batch=BATCH)
    assert cluster.sms() == {"sent": sms["sent"] + 1}
    assert sum(code in hit.payload["message"] for hit in http.hits) == 1
    wait_for(lambda: not cluster.runs_in("RUNNING"), 60, "the last runs to end")
    mark("caught up")
