"""The `launch_referral` Prefect flow, on a real (temporary) Prefect server: tags, no PII, idempotent."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from referrals.config import get_settings
from referrals.infra.db import transaction
from referrals.infra.runtime import Runtime
from referrals.models.codes import new_code
from referrals.models.workflow import Referral
from referrals.usecases.referrals.launching import LaunchRequest
from support import ROOT
from support.domain import consent, new_client, ready_referral, sqlite_files
from support.receivers import HttpSink

pytestmark = pytest.mark.prefect
NAME = "Võ Thị Riêng Tư"
BUNDLED = ROOT / "referrals" / "config" / "khanh-hoa"


@pytest.fixture(scope="session")
def prefect_server() -> Iterator[None]:
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    with (
        prefect_test_harness(server_startup_timeout=60),
        temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}),
    ):
        yield


def test_launch_flow_is_tagged_carries_no_pii_and_is_idempotent(
    prefect_server: None, rt: Runtime, now: dt.datetime
) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterTags

    from referrals.flows.launch import run_launch

    client = new_client(rt, now, name=NAME, phone="0905 777 666", id_number="079190777666")
    consent(rt, client, "police-nha-trang", "id_papers", now)
    code = new_code("R")
    request = LaunchRequest(client_code=client, pathway="id_papers", partner="police-nha-trang")
    assert run_launch(code=code, request=request, now=now) == code
    assert run_launch(code=code, request=request, now=now) == code  # a re-run finds it written
    with transaction(rt.engine) as s:
        assert (
            s.scalar(select(func.count()).select_from(Referral).where(Referral.code == code)) == 1
        )

    with get_client(sync_client=True) as prefect:
        runs = prefect.read_flow_runs(
            flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=[f"referral:{code}"]))
        )
    assert len(runs) == 2 and all(r.state and r.state.is_completed() for r in runs)
    for run in runs:
        exposed = json.dumps([run.name, run.tags, run.parameters], default=str, ensure_ascii=False)
        assert run.name == f"launch {code}"
        for secret in (NAME, "905777666", "079190777666"):
            assert secret not in exposed


def test_deliver_flow_takes_its_gateway_secret_from_a_prefect_block_and_never_logs_it(
    prefect_server: None,
    rt: Runtime,
    now: dt.datetime,
    http: HttpSink,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from prefect.blocks.system import Secret
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        LogFilter,
        LogFilterFlowRunId,
    )

    from referrals.flows.deliver import deliver_notifications

    token = "gw-token-5f1e2d3c4b"
    Secret(value=f"{http.url()}&+X-Token={token}").save("sms-gateway", overwrite=True)
    config = tmp_path / "config"
    shutil.copytree(BUNDLED, config)
    province = config / "province.yaml"
    province.write_text(
        province.read_text(encoding="utf-8").replace(
            'sms: "${REFERRALS_SMS_URL}"', 'sms: "${prefect:sms-gateway}"'
        ),
        encoding="utf-8",
    )
    monkeypatch.setenv("REFERRALS_CONFIG_DIR", str(config))
    monkeypatch.delenv("REFERRALS_EMAIL_URL", raising=False)
    get_settings.cache_clear()
    code = ready_referral(rt, now, name=NAME, phone="0905 777 666")

    summary = deliver_notifications(now=now)
    assert summary["sent"] == 1 and summary["waiting"] == {}  # the e-mail is only a fallback
    (hit,) = http.hits
    assert hit.headers["X-Token"] == token and code in hit.payload["message"]

    from prefect.logging.handlers import APILogHandler

    APILogHandler().flush()  # logs reach the server in the background
    with get_client(sync_client=True) as prefect:
        (run,) = prefect.read_flow_runs(
            flow_run_filter=FlowRunFilter(name={"any_": ["deliver"]}),
            limit=1,
            sort="START_TIME_DESC",
        )
        logs = prefect.read_logs(
            log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run.id]))
        )
    exposed = json.dumps(
        [run.name, run.tags, run.parameters, [entry.message for entry in logs]],
        default=str,
        ensure_ascii=False,
    )
    assert "sent 1" in exposed
    for secret in (token, NAME, "905777666"):
        assert secret not in exposed


def test_the_gateway_limit_holds_back_a_pass_and_a_missing_one_is_an_error(
    prefect_server: None,
    rt: Runtime,
    now: dt.datetime,
    http: HttpSink,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
    from prefect.concurrency.sync import concurrency

    from referrals.flows import deliver
    from referrals.notifiers import background

    monkeypatch.setenv("REFERRALS_SMS_URL", http.url())
    monkeypatch.delenv("REFERRALS_EMAIL_URL", raising=False)
    monkeypatch.setattr(background, "GATEWAY_WAIT", 2)
    get_settings.cache_clear()
    ready_referral(rt, now, name=NAME, phone="0905 777 555")
    monkeypatch.setenv("REFERRALS_GATEWAY_LIMIT", "no-such-limit")
    with pytest.raises(Exception, match="must be created"):  # strict: never a silent no-op
        deliver.deliver_notifications(now=now)
    gateway = f"one-gateway-{rt.engine.dialect.name}"  # one server for the whole session
    with get_client(sync_client=True) as prefect:
        prefect.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=gateway, limit=1))
    monkeypatch.setenv("REFERRALS_GATEWAY_LIMIT", gateway)
    with concurrency(gateway, occupy=1):  # another province's pass holds the gateway
        assert deliver.deliver_notifications(now=now) == {"skipped": "gateway busy"}
    assert http.hits == []
    assert deliver.deliver_notifications(now=now)["sent"] == 1
    assert len(http.hits) == 1


def test_period_report_flow_writes_the_report_and_its_run_holds_no_pii(
    prefect_server: None, rt: Runtime, now: dt.datetime
) -> None:
    from prefect.client.orchestration import get_client

    from referrals.flows.report import period_report

    ready_referral(rt, now, name=NAME, phone="0905 777 666")
    state = period_report("2026-11-01", "2026-11-30", fmt="html", return_state=True)
    path = Path(state.result())
    assert path == get_settings().data_dir / "reports" / "report-2026-11-01-2026-11-30.html"
    html = path.read_text(encoding="utf-8")
    assert "Làm giấy tờ tùy thân" in html and 'id="chart-services"' in html
    assert NAME not in html and "777 666" not in html
    with get_client(sync_client=True) as prefect:
        run = prefect.read_flow_run(state.state_details.flow_run_id)
    assert run.name == "report 2026-11-01..2026-11-30"
    assert run.state and run.state.is_completed()
    assert NAME not in json.dumps([run.name, run.tags, run.parameters], ensure_ascii=False)


def test_no_client_detail_is_readable_anywhere_after_a_demo_run(
    prefect_server: None, rt: Runtime, now: dt.datetime, tmp_path: Path
) -> None:
    """The engine's database (the SQLite file and its WAL, or a pg_dump) and Prefect's own
    database, after the demo data, a launch, a sweep and a delivery through Prefect, hold no
    client's name, phone or ID number in clear."""
    import subprocess

    from prefect.settings import get_current_settings

    from referrals.cli.demo import CASES, load_demo
    from referrals.flows.deliver import deliver_notifications
    from referrals.flows.launch import run_launch
    from referrals.flows.sweep import sweep_deadlines

    load_demo(rt, now=now - dt.timedelta(days=30))
    client = new_client(rt, now, name=NAME, phone="0905 777 555", id_number="079190777555")
    consent(rt, client, "police-nha-trang", "id_papers", now)
    request = LaunchRequest(client_code=client, pathway="id_papers", partner="police-nha-trang")
    run_launch(code=new_code("R"), request=request, now=now)
    sweep_deadlines(now=now + dt.timedelta(days=5))
    deliver_notifications(now=now + dt.timedelta(days=5))

    secrets = {NAME, "777 555", "777555", "079190777555"}
    for name, phone, id_number, *_ in CASES:
        digits = phone.replace(" ", "")
        secrets |= {name, id_number} | ({phone, digits, "+84" + digits[1:]} if phone else set())
    secrets.discard("")
    url = rt.settings.database_url
    if url.startswith("sqlite:///"):
        engine_bytes = sqlite_files(rt)
    else:
        dump = subprocess.run(
            ["pg_dump", "--no-owner", url.replace("postgresql+psycopg://", "postgresql://")],
            capture_output=True,
            check=True,
        )
        engine_bytes = dump.stdout
        assert b"CREATE TABLE public.client" in engine_bytes  # a real dump, not an empty one
    prefect_url = get_current_settings().server.database.connection_url.get_secret_value()  # type: ignore[union-attr]
    prefect_path = Path(prefect_url.split("///", 1)[1])
    prefect_bytes = b"".join(
        p.read_bytes() for p in prefect_path.parent.glob(prefect_path.name + "*") if p.is_file()
    )
    assert b"launch-referral" in prefect_bytes  # the runs are in there
    for secret in sorted(secrets):
        assert secret.encode() not in engine_bytes, secret
        assert secret.encode() not in prefect_bytes, secret
