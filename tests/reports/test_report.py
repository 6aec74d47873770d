"""The period report: figures known by construction, as-of semantics, the formats, the flow.

The scenario goes through the public paths (launch, the partner's link, the coordinator's
advance, a delivery pass to a real SMTP server) at chosen instants, on SQLite and PostgreSQL.
October 2026 has no public holiday, so working days are Monday to Friday.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from referrals.cli.main import main
from referrals.infra.db import transaction
from referrals.infra.runtime import Runtime
from referrals.models.lifecycle import Action
from referrals.models.links import link_token
from referrals.models.workflow import Notification, Referral
from referrals.notifiers.channels import Channels
from referrals.notifiers.delivery import deliver
from referrals.queries.reading import Reader
from referrals.queries.report import Period, build_report, counts
from referrals.reports.render import render
from referrals.usecases.referrals.advancing import advance
from referrals.usecases.referrals.answering import Answer, answer_link
from support.domain import consent, launch, new_client
from support.receivers import SmtpSink

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
OCTOBER = Period(dt.date(2026, 10, 1), dt.date(2026, 10, 31), TZ)


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=TZ)


def by_link(rt: Runtime, code: str, when: str, **answer: str) -> None:
    """The partner answers through the link in the message it received for `code` (the e-mail
    when the SMS channel is off: the prompt moved on to it)."""
    with transaction(rt.engine) as s:
        message = s.scalars(
            select(Notification.id)
            .join(Referral, Referral.id == Notification.referral_id)
            .where(
                Referral.code == code,
                Notification.template == "referral.new",
                Notification.status != "cancelled",
            )
        ).first()
        assert message is not None
        token = link_token(rt.ctx.vault, message)
        answer_link(s, ctx=rt.ctx, token=token, answer=Answer(**answer), now=at(when))  # type: ignore[arg-type]


def done(rt: Runtime, code: str, *whens: str) -> None:
    """The coordinator records the active step done at each instant in turn."""
    for when in whens:
        with transaction(rt.engine) as s:
            advance(s, code=code, action=Action.done, by=rt.user(s), ctx=rt.ctx, now=at(when))


def referral(rt: Runtime, client: str, pathway: str, partner: str, when: str) -> str:
    consent(rt, client, partner, pathway, at(when) - dt.timedelta(hours=1))
    return launch(rt, client, pathway, partner, at(when))


@pytest.fixture
def october(rt: Runtime, smtp: SmtpSink) -> dict[str, object]:
    """Four referrals launched in October 2026, one before it and one after."""
    c1 = new_client(rt, at("2026-09-01 08:00"), name="Khách Một")
    c2 = new_client(rt, at("2026-09-01 08:00"), name="Khách Hai")
    c3 = new_client(rt, at("2026-09-01 08:00"), name="Khách Ba", district="ninh-hoa")
    before = referral(rt, c3, "health_check", "ninh-hiep-health", "2026-09-30 09:00")
    # C1, health check: acknowledged by link the next day (1 working day), completed 09/10
    # (6 working days after launch: 2, 5, 6, 7, 8, 9 October); every partner step on time.
    health = referral(rt, c1, "health_check", "phuong-son-health", "2026-10-01 09:00")
    channels = Channels(
        rt.province.province.delivery, secrets={"REFERRALS_EMAIL_URL": smtp.url()}.get
    )
    sent = deliver(rt, now=at("2026-10-01 09:05"), channels=channels).sent
    by_link(rt, health, "2026-10-02 10:00", action="accept")
    done(rt, health, "2026-10-05 10:00", "2026-10-08 10:00", "2026-10-09 11:00")
    # C2, ID papers: the police decline by link, no capacity.
    papers = referral(rt, c2, "id_papers", "police-nha-trang", "2026-10-05 09:00")
    by_link(
        rt,
        papers,
        "2026-10-06 10:00",
        action="decline",
        reason="partner_lacks_capacity",
        confirm="true",
    )
    # C1 again, legal aid with Saphira: never acknowledged, overdue from 14/10 17:00.
    saphira = referral(rt, c1, "legal_aid", "saphira-legal", "2026-10-12 09:00")
    # C3, legal aid in Ninh Hòa: acknowledged after 2 working days; completed in November.
    aid = referral(rt, c3, "legal_aid", "legal-aid-centre", "2026-10-20 09:00")
    by_link(rt, aid, "2026-10-22 15:00", action="accept")
    after = referral(rt, c2, "vocational_training", "van-ninh-vocational", "2026-11-02 09:00")
    return {
        "sent": sent,
        "codes": {"health": health, "papers": papers, "saphira": saphira, "aid": aid},
        "outside": (before, after),
        "finish_aid": lambda: done(
            rt, aid, "2026-11-03 10:00", "2026-11-04 10:00", "2026-11-05 10:00"
        ),
    }


def report(rt: Runtime, period: Period = OCTOBER, now: str = "2026-11-01 00:00", **kw: str):  # type: ignore[no-untyped-def]
    with Reader(rt.engine.raw_connection(), rt.engine.dialect.name) as reader:
        return build_report(reader, period=period, calendar=rt.ctx.calendar, now=at(now), **kw)


def figures(
    rows: list[dict[str, object]], *keys: str
) -> dict[tuple[object, ...], tuple[object, ...]]:
    columns = ("clients", "launched", "successful", "not_successful", "still_open", "overdue")
    return {tuple(r[k] for k in keys): tuple(r[c] for c in columns) for r in rows}


def test_the_october_report_has_the_figures_the_scenario_built(
    rt: Runtime, october: dict[str, object]
) -> None:
    r = report(rt)
    assert figures(r["rows"], "pathway", "district") == {
        ("health_check", "nha-trang"): (1, 1, 1, 0, 0, 0),
        ("id_papers", "nha-trang"): (1, 1, 0, 1, 0, 0),
        ("legal_aid", "nha-trang"): (1, 1, 0, 0, 1, 1),
        ("legal_aid", "ninh-hoa"): (1, 1, 0, 0, 1, 0),
    }
    assert figures(r["services"], "pathway")[("legal_aid",)] == (2, 2, 0, 0, 2, 1)
    # People, not rows: client 1 had two referrals.
    assert figures([r["total"]]) == {(): (3, 4, 1, 1, 2, 1)}
    (papers,) = [x for x in r["rows"] if x["pathway"] == "id_papers"]
    assert papers["not_successful_by"] == {"partner_lacks_capacity": 1}
    partners = {p["partner"]: p for p in r["partners"]}
    assert set(partners) == {
        "phuong-son-health",
        "police-nha-trang",
        "saphira-legal",
        "legal-aid-centre",
    }
    health = partners["phuong-son-health"]
    assert health["acknowledge"] == {"n": 1, "median": 1, "p90": 1}
    assert health["complete"] == {"n": 1, "median": 6, "p90": 6}
    assert (health["steps_on_time"], health["steps_counted"], health["on_time_pct"]) == (3, 3, 100)
    assert partners["saphira-legal"]["on_time_pct"] == 0  # its acknowledgement is late
    assert partners["saphira-legal"]["acknowledge"]["n"] == 0
    assert partners["police-nha-trang"]["declines"] == {"partner_lacks_capacity": 1}
    assert partners["legal-aid-centre"]["acknowledge"] == {"n": 1, "median": 2, "p90": 2}
    assert r["messages"] == {
        "sent": {"email": october["sent"]},
        "sent_total": october["sent"],
        "dead": 0,
    }
    assert october["sent"] >= 1
    # One district only.
    nh = report(rt, district="ninh-hoa")
    assert figures([nh["total"]]) == {(): (1, 1, 0, 0, 1, 0)}
    assert [p["partner"] for p in nh["partners"]] == ["legal-aid-centre"]


def test_a_past_period_does_not_move_when_later_events_arrive(
    rt: Runtime, october: dict[str, object]
) -> None:
    first = report(rt)
    october["finish_aid"]()  # type: ignore[operator]
    again = report(rt, now="2026-11-20 09:00")  # later, after the November completion
    assert again == first
    # November's cohort is the November referral only; unanswered since 02/11, it is late.
    november = report(
        rt, Period(dt.date(2026, 11, 1), dt.date(2026, 11, 30), TZ), now="2026-11-20 09:00"
    )
    assert figures([november["total"]]) == {(): (1, 1, 0, 0, 1, 1)}
    # Across the boundary: the whole autumn, as of now, has the Ninh Hòa case completed.
    autumn = report(
        rt, Period(dt.date(2026, 9, 1), dt.date(2026, 11, 30), TZ), now="2026-11-20 09:00"
    )
    assert figures(autumn["rows"], "pathway", "district")[("legal_aid", "ninh-hoa")] == (
        1,
        1,
        1,
        0,
        0,
        0,
    )
    assert figures([autumn["total"]])[()][:2] == (3, 6)


def test_a_period_not_over_is_read_as_of_now(rt: Runtime, october: dict[str, object]) -> None:
    mid = report(rt, now="2026-10-13 09:00")  # Saphira's acknowledgement is not yet late
    assert figures(mid["rows"], "pathway", "district")[("legal_aid", "nha-trang")] == (
        1,
        1,
        0,
        0,
        1,
        0,
    )
    assert mid["period"]["as_of"] == "2026-10-13T09:00+07:00"
    later = report(rt, now="2026-10-15 09:00")
    assert figures(later["rows"], "pathway", "district")[("legal_aid", "nha-trang")][-1] == 1


def test_the_dashboard_counts_are_the_reports(rt: Runtime, october: dict[str, object]) -> None:
    year = Period(dt.date(2026, 1, 1), dt.date(2026, 12, 31), TZ)
    now = at("2026-11-20 09:00")  # after everything the scenario did
    full = report(rt, year, now="2026-11-20 09:00")
    with Reader(rt.engine.raw_connection(), rt.engine.dialect.name) as reader:
        board = counts(reader, since=year.since, until=now)
    assert board == [
        {k: v for k, v in row.items() if k != "not_successful_by"} for row in full["rows"]
    ]


def test_formats_keep_vietnamese_intact(rt: Runtime, october: dict[str, object]) -> None:
    r = report(rt)
    text = render(r, "csv")
    assert text.startswith("\ufeff")  # Excel reads UTF-8 only with the BOM
    rows = list(csv.reader(io.StringIO(text.removeprefix("\ufeff"))))
    assert rows[0][0] == "Báo cáo kết quả chuyển gửi"
    header = rows.index(["Theo dịch vụ và địa bàn"]) + 1
    assert rows[header][:3] == ["Dịch vụ", "Địa bàn", "Số người"]
    assert ["Khám sức khỏe", "Phường Nha Trang", "1", "1", "1", "0", "0", "0", ""] in rows
    html = render(r, "html")
    assert "Khám sức khỏe" in html and "Phường Ninh Hòa" in html
    assert '<svg xmlns="http://www.w3.org/2000/svg" role="img" id="chart-services"' in html
    assert 'id="chart-partners"' in html and "http" not in html.split("<svg", 1)[0]
    markdown = render(r, "md", lang="en")
    assert (
        "| Health check | Nha Trang Ward | 1 | 1 | 1 | 0 | 0 | 0 |" in markdown.replace("  ", " ")
        or "Health" in markdown
    )
    data = json.loads(render(r, "json"))
    assert data["total"]["clients"] == 3
    for fmt in ("csv", "html", "md", "json"):
        body = render(r, fmt)
        assert "Khách" not in body  # counts only: no client's name


def test_the_cli_report(
    rt: Runtime, october: dict[str, object], capsys: pytest.CaptureFixture[str], tmp_path
) -> None:  # type: ignore[no-untyped-def]
    def cli(*args: str) -> tuple[int, str, str]:
        with pytest.raises(SystemExit) as exit_:
            main(list(args))
        out, err = capsys.readouterr()
        return int(exit_.value.code or 0), out, err

    code, out, err = cli(
        "report",
        "--from",
        "01/10/2026",
        "--to",
        "2026-10-31",
        "--json",
        "--now",
        "2026-11-01T00:00",
    )
    assert code == 0, err
    assert json.loads(out)["total"]["launched"] == 4
    target = tmp_path / "october.csv"
    code, out, _ = cli(
        "report",
        "--from",
        "2026-10-01",
        "--to",
        "2026-10-31",
        "--format",
        "csv",
        "--out",
        str(target),
    )
    assert code == 0 and target.read_bytes().startswith(b"\xef\xbb\xbf")
    for bad, says in (
        (("--from", "31/02/2026", "--to", "2026-10-31"), "is not a date"),
        (("--from", "2026-10-31", "--to", "2026-10-01"), "before it starts"),
        (
            ("--from", "2026-10-01", "--to", "2026-10-31", "--district", "atlantis"),
            "unknown district",
        ),
        (("--from", "2026-10-01", "--to", "2026-10-31", "--lang", "fr"), "unknown language"),
        (("--from", "2026-10-01", "--to", "2026-10-31", "--format", "pdf"), "pdf"),
    ):
        code, _, err = cli("report", *bad)
        assert code != 0 and says in err and "Traceback" not in err, bad
