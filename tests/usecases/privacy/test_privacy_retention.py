"""Retention (Law 91/2025 Art. 3 k3, Art. 14 k1): the sweep notices managers a week before, then
erases exactly the clients with no open referral and no activity for `retention_days`, with
the existing crypto-shredding erasure; the period report does not move. SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml
from sqlalchemy import select, update

from referrals.config import get_settings
from referrals.config.privacy import DataProtection
from referrals.config.settings import BUNDLED_CONFIG
from referrals.infra.db import transaction
from referrals.infra.runtime import Runtime
from referrals.models.lifecycle import Action
from referrals.models.people import Client, User
from referrals.models.workflow import Event, Notification
from referrals.reports.period import period_report
from referrals.usecases.deadlines.sweeping import sweep
from referrals.usecases.privacy.retention import preview, ready, sweep_retention
from referrals.usecases.referrals.advancing import advance
from support.domain import consent, launch, new_client

TZ = ZoneInfo("Asia/Ho_Chi_Minh")


def local(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=TZ)


@pytest.fixture
def retained(rt: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Runtime:
    """The bundled config with a year's retention, and a manager with an e-mail."""
    folder = tmp_path / "config"
    shutil.copytree(BUNDLED_CONFIG, folder)
    path = folder / "province.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["data_protection"]["retention_days"] = 365
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    monkeypatch.setenv("REFERRALS_CONFIG_DIR", str(folder))
    get_settings.cache_clear()
    with transaction(rt.engine) as s:
        s.execute(update(User).where(User.username == "hoa").values(email="hoa@chicuc.example.vn"))
    return rt


def cancelled(rt: Runtime, client: str, pathway: str, partner: str, at: dt.datetime) -> None:
    consent(rt, client, partner, pathway, at)
    code = launch(rt, client, pathway, partner, at)
    with transaction(rt.engine) as s:
        advance(
            s,
            code=code,
            action=Action.cancel,
            reason="no_longer_needed",
            by=rt.user(s, "mai"),
            ctx=rt.ctx,
            now=at + dt.timedelta(days=1),
        )


def report(now: dt.datetime) -> dict[str, object]:
    text = period_report(first="2025-07-01", last="2025-12-31", fmt="json", now=now)
    data: dict[str, object] = json.loads(text)
    return data


def erased(rt: Runtime) -> set[str]:
    with transaction(rt.engine) as s:
        return set(s.scalars(select(Client.code).where(Client.erased_at.is_not(None))))  # type: ignore[union-attr]


def test_retention_erases_exactly_the_eligible_client_and_the_report_stays(
    retained: Runtime,
) -> None:
    rt = retained
    start = local("2025-07-07 09:00")
    busy = new_client(rt, start, name="Nguyễn Thị Bận Rộn")  # an open referral, never erased
    consent(rt, busy, "police-nha-trang", "id_papers", start)
    launch(rt, busy, "id_papers", "police-nha-trang", start)
    recent = new_client(rt, start, name="Nguyễn Thị Gần Đây")  # active again in June 2026
    cancelled(rt, recent, "id_papers", "police-nha-trang", start)
    consent(rt, recent, "legal-aid-centre", "legal_aid", local("2026-06-20 10:00"))
    gone = new_client(rt, start, name="Nguyễn Thị Hết Hạn")  # last active 08/07/2025
    cancelled(rt, gone, "id_papers", "police-nha-trang", start)
    before = report(local("2026-08-01 09:00"))
    assert before["total"]["clients"] == 3 and before["total"]["launched"] == 3  # type: ignore[index]

    # 08/07/2026 09:00 is a year after its last activity: the notice comes 7 days before.
    sweep(rt.engine, ctx=rt.ctx, now=local("2026-06-30 08:59"))
    assert erased(rt) == set()
    with transaction(rt.engine) as s:
        assert s.scalars(select(Event).where(Event.kind == "privacy.retention.notice")).all() == []
    summary = sweep(rt.engine, ctx=rt.ctx, now=local("2026-07-02 09:00"))
    assert (summary.counts["retention_noticed"], summary.counts["retention_erased"]) == (1, 0)
    with transaction(rt.engine) as s:
        notices = s.scalars(select(Event).where(Event.kind == "privacy.retention.notice")).all()
        message = s.scalars(
            select(Notification).where(Notification.context["what"].as_string() == "retention")
        ).one()
        ids = {c.id: c.code for c in s.scalars(select(Client))}
    assert [ids[e.client_id] for e in notices] == [gone]  # type: ignore[index]
    assert message.template == "privacy.alert" and message.context["clients"] == [gone]
    assert "Hết Hạn" not in json.dumps(message.context, ensure_ascii=False)

    # Noticed on 02/07: erased a week after the notice, not at the year's end (08/07).
    again = sweep(rt.engine, ctx=rt.ctx, now=local("2026-07-08 09:00"))
    assert again.counts["retention_noticed"] == again.counts["retention_erased"] == 0
    assert erased(rt) == set()
    with transaction(rt.engine) as s:
        dry = {
            d.code: ready(d, DataProtection(retention_days=365), local("2026-07-09 09:00"))
            for d in preview(
                s, cfg=DataProtection(retention_days=365), now=local("2026-07-09 09:00")
            )
        }
    assert dry == {gone: True}
    done = sweep(rt.engine, ctx=rt.ctx, now=local("2026-07-09 09:00"))
    assert done.counts["retention_erased"] == 1
    assert erased(rt) == {gone}
    with transaction(rt.engine) as s:
        kinds = [
            e.kind
            for e in s.scalars(
                select(Event)
                .join(Client, Client.id == Event.client_id)
                .where(Client.code == gone)
                .order_by(Event.id)  # type: ignore[arg-type]
            )
        ]
        person = s.scalars(select(Client).where(Client.code == gone)).one()
    assert kinds[-2:] == ["client.erased", "privacy.retention.erased"]
    assert person.name_enc is None and person.phone_enc is None
    assert (
        sweep(rt.engine, ctx=rt.ctx, now=local("2026-07-10 09:00")).counts["retention_erased"] == 0
    )
    assert report(local("2026-08-01 09:00")) == before


def test_activity_after_the_notice_voids_it(retained: Runtime) -> None:
    rt = retained
    start = local("2025-07-07 09:00")
    client = new_client(rt, start)
    cfg = DataProtection(retention_days=365)
    assert (
        sweep_retention(rt.engine, cfg=cfg, now=local("2026-07-02 09:00"))["retention_noticed"] == 1
    )
    consent(rt, client, "legal-aid-centre", "legal_aid", local("2026-07-05 09:00"))  # back again
    out = sweep_retention(rt.engine, cfg=cfg, now=local("2026-07-20 09:00"))
    assert out == {"retention_noticed": 0, "retention_erased": 0, "retention_messages": 0}
    assert erased(rt) == set()


def test_retention_is_off_without_the_setting(rt: Runtime) -> None:
    new_client(rt, local("2025-08-04 09:00"))
    out = sweep(rt.engine, ctx=rt.ctx, now=local("2026-11-23 09:00"))
    assert out.counts["retention_noticed"] == out.counts["retention_erased"] == 0
    assert erased(rt) == set()
