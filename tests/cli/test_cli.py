"""The stable CLI, in-process: JSON shapes, and every error as one line on stderr with no traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from referrals.infra.runtime import Runtime
from support.domain import cli, use_channels
from support.receivers import SmtpSink, free_port


def ok_json(capsys: pytest.CaptureFixture[str], *args: str):
    code, out, err = cli(capsys, *args, "--json")
    assert code == 0, err
    return json.loads(out)


def test_the_coordinator_path(rt: Runtime, capsys: pytest.CaptureFixture[str]) -> None:
    client = ok_json(
        capsys,
        "client",
        "add",
        "--name",
        "Khách Hàng",
        "--phone",
        "0905 000 999",
        "--district",
        "nha-trang",
    )["code"]
    assert client.startswith("C-")
    assert (
        cli(
            capsys,
            "consent",
            "grant",
            client,
            "--partner",
            "police-nha-trang",
            "--purpose",
            "id_papers",
            "--now",
            "2026-11-23T08:00",  # the clock is injected everywhere: the test must not depend on today
        )[0]
        == 0
    )
    launched = ok_json(
        capsys,
        "launch",
        client,
        "--pathway",
        "id_papers",
        "--partner",
        "police-nha-trang",
        "--now",
        "2026-11-23T09:00",
    )
    assert launched["via"] == "direct"
    code = launched["code"]
    shown = ok_json(capsys, "show", code)
    assert {"code", "status", "partner", "pathway", "steps", "events", "messages"} <= set(shown)
    assert shown["steps"][0]["due_at"] == "2026-11-26T17:00:00+07:00"
    assert all({"kind", "at", "actor"} <= set(e) for e in shown["events"])
    assert code in [r["code"] for r in ok_json(capsys, "list")]
    assert ok_json(capsys, "list", "--overdue", "--now", "2026-11-26T16:59") == []
    assert [
        r["code"] for r in ok_json(capsys, "list", "--overdue", "--now", "2026-11-26T17:01")
    ] == [code]
    rc, out, _ = cli(capsys, "advance", code, "--action", "accept", "--now", "2026-11-24T10:00")
    assert rc == 0 and "accepted" in out
    human = cli(capsys, "show", code)[1]
    assert "26/11/2026 17:00" in human and "Khách Hàng" not in human


def test_partners_and_pathways(rt: Runtime, capsys: pytest.CaptureFixture[str]) -> None:
    partners = {p["slug"]: p for p in ok_json(capsys, "partners")}
    # Today's: the twelve units' police of 2025, not the city and town police of the reports.
    assert len(partners) == 22 and "sao-bien-ninh-hoa" in partners
    assert "police-nha-trang" in partners and "police-tp-nha-trang" not in partners
    everyone = {p["slug"]: p for p in ok_json(capsys, "partners", "--all")}
    assert len(everyone) == 24 and everyone["police-tp-nha-trang"]["valid_to"] == "2025-02-28"
    assert everyone["police-tp-nha-trang"]["successors"] == [  # as partners.yaml lists them
        "police-nha-trang",
        "police-bac-nha-trang",
        "police-tay-nha-trang",
        "police-nam-nha-trang",
    ]
    pathways = {p["key"]: p for p in ok_json(capsys, "pathways")}
    assert pathways["emergency_shelter"]["steps"][0]["due"] == "2 hours"


@pytest.mark.parametrize(
    ("args", "message", "status"),
    [
        (
            ("launch", "C-NOPE0-00000", "--pathway", "id_papers", "--partner", "police-nha-trang"),
            "unknown client",
            1,
        ),
        (("show", "R-NOPE0-00000"), "unknown referral", 1),
        (("client", "add", "--name", "X", "--district", "hanoi"), "unknown district 'hanoi'", 1),
        (("client", "add", "--name", "X", "--district", "nha-trang", "--phone", "12"), "phone", 1),
        (("list", "--now", "yesterday"), "not ISO 8601", 1),
        (("advance", "R-NOPE0-00000", "--action", "fly"), "fly", 2),
        (("launch",), "Missing argument", 2),
    ],
)
def test_errors_are_one_line(
    rt: Runtime,
    capsys: pytest.CaptureFixture[str],
    args: tuple[str, ...],
    message: str,
    status: int,
) -> None:
    code, out, err = cli(capsys, *args)
    assert code == status
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("error: ") and message in err
    assert "Traceback" not in err


def test_init_demo_is_idempotent(rt: Runtime, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(capsys, "init", "--demo")[0] == 0
    rows = ok_json(capsys, "list")
    assert len(rows) == 12 and {r["district"] for r in rows} == {"nha-trang", "ninh-hoa"}
    assert {r["status"] for r in rows} >= {
        "requested",
        "accepted",
        "in-progress",
        "completed",
        "rejected",
    }
    rc, out, _ = cli(capsys, "init", "--demo")
    assert rc == 0 and "already loaded" in out and len(ok_json(capsys, "list")) == 12


def test_import_command(rt: Runtime, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "batch.csv"
    path.write_text(
        "name,phone,id_number,district,pathway,partner,consent,launched_at,urgent\n"
        "A,,,nha-trang,id_papers,police-nha-trang,written,,\n"
        "B,,,nha-trang,id_papers,police-ninh-hoa,written,,\n",
        encoding="utf-8-sig",
    )
    code, out, err = cli(capsys, "import", str(path), "--json")
    assert code == 1 and out == "" and err.startswith("error: line 3:")
    path.write_text(
        path.read_text(encoding="utf-8-sig").replace("police-ninh-hoa", "police-nha-trang"),
        encoding="utf-8-sig",
    )
    assert ok_json(capsys, "import", str(path))["launched"] == 2


def test_list_pages_newest_first(
    rt: Runtime, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "five.csv"
    rows = [
        f"P{i},,,nha-trang,id_papers,police-nha-trang,written,{10 + i}/11/2026 09:00,"
        for i in range(5)
    ]
    path.write_text(
        "name,phone,id_number,district,pathway,partner,consent,launched_at,urgent\n"
        + "\n".join(rows)
        + "\n",
        encoding="utf-8",
    )
    codes = ok_json(capsys, "import", str(path))["referrals"]
    assert [r["code"] for r in ok_json(capsys, "list")] == codes[::-1]
    assert [r["code"] for r in ok_json(capsys, "list", "--limit", "2", "--offset", "1")] == codes[
        ::-1
    ][1:3]
    assert len(ok_json(capsys, "list", "--limit", "0")) == 5
    late = ok_json(capsys, "list", "--overdue", "--limit", "2", "--now", "2026-12-31T09:00")
    assert [r["code"] for r in late] == codes[:2]  # the most late (oldest deadline) first
    assert all(r["overdue"] for r in late)


def test_reading_a_missing_database_creates_nothing(
    rt: Runtime, capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from referrals.config import get_settings

    missing = tmp_path / "nowhere.db"
    monkeypatch.setenv("REFERRALS_DATABASE_URL", f"sqlite:///{missing}")
    get_settings.cache_clear()
    code, out, err = cli(capsys, "list")
    assert (
        code == 1
        and out == ""
        and err.startswith(f"error: no database at {missing}:")
        and "referrals init" in err
    )
    assert not missing.exists()


def test_deliver_and_the_outbox_from_the_command_line(
    rt: Runtime,
    capsys: pytest.CaptureFixture[str],
    smtp: SmtpSink,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REFERRALS_EMAIL_URL", smtp.url())
    monkeypatch.delenv("REFERRALS_SMS_URL", raising=False)
    client = ok_json(capsys, "client", "add", "--name", "Khách", "--district", "nha-trang")["code"]
    now = "2026-11-23T09:00:00+07:00"
    granted = cli(
        capsys,
        "consent",
        "grant",
        client,
        "--partner",
        "police-nha-trang",
        "--purpose",
        "id_papers",
        "--now",
        now,
    )
    assert granted[0] == 0, granted[2]
    code = ok_json(
        capsys,
        "launch",
        client,
        "--pathway",
        "id_papers",
        "--partner",
        "police-nha-trang",
        "--now",
        now,
    )["code"]

    # SMS is off here: the prompt moves on to the contact's e-mail
    summary = ok_json(capsys, "deliver", "--now", now)
    assert (summary["sent"], summary["waiting"], summary["handed_on"]) == (1, {}, 1)
    assert [m.to for m in smtp.mails] == [["tiepnhan.police-nha-trang@example.vn"]]

    rows = ok_json(capsys, "outbox")
    assert {(m["channel"], m["status"], m["referral"]) for m in rows} == {
        ("email", "sent", code),
        ("sms", "cancelled", code),
    }
    (sent,) = ok_json(capsys, "outbox", "--status", "sent")
    assert sent["sent_at"].startswith("2026-11-23T09:00:00+07:00") and sent["attempts"] == 1
    shown = ok_json(capsys, "show", code)
    assert sorted(m["status"] for m in shown["messages"]) == ["cancelled", "sent"]
    # a contact with SMS only: its prompt waits, and the pass says why
    use_channels(rt, "saphira-legal", ["sms"])
    other = ok_json(capsys, "client", "add", "--name", "Khách Hai", "--district", "nha-trang")
    cli(
        capsys,
        "consent",
        "grant",
        other["code"],
        "--partner",
        "saphira-legal",
        "--purpose",
        "legal_aid",
        "--now",
        now,
    )
    ok_json(
        capsys,
        "launch",
        other["code"],
        "--pathway",
        "legal_aid",
        "--partner",
        "saphira-legal",
        "--now",
        now,
    )
    exit_code, out, _ = cli(capsys, "deliver", "--now", now)
    assert (
        exit_code == 0
        and "1 sms messages wait: the sms channel is off (set REFERRALS_SMS_URL)" in out
    )

    exit_code, _, err = cli(capsys, "outbox", "retry", str(sent["id"]))
    assert exit_code == 1 and err.strip() == "error: cannot retry a message that is sent"
    exit_code, _, err = cli(capsys, "outbox", "retry", "999999")
    assert exit_code == 1 and "no message 999999" in err and "Traceback" not in err
    exit_code, _, err = cli(capsys, "outbox", "--status", "lost")
    assert exit_code == 2 and "lost" in err
    exit_code, out, _ = cli(capsys, "outbox", "revoke", str(sent["id"]))
    assert exit_code == 0 and f"the link in message {sent['id']} is withdrawn" in out
    kinds = [e["kind"] for e in ok_json(capsys, "show", code)["events"]]
    assert kinds[-1] == "link.revoked"
    exit_code, _, err = cli(capsys, "outbox", "revoke", "999999")
    assert exit_code == 1 and "no message 999999" in err


def test_sweep_and_the_overdue_view_from_the_command_line(
    rt: Runtime, capsys: pytest.CaptureFixture[str]
) -> None:
    client = ok_json(capsys, "client", "add", "--name", "Khách", "--district", "nha-trang")["code"]
    cli(
        capsys,
        "consent",
        "grant",
        client,
        "--partner",
        "police-nha-trang",
        "--purpose",
        "id_papers",
        "--now",
        "2026-11-23T08:00",
    )
    code = ok_json(
        capsys,
        "launch",
        client,
        "--pathway",
        "id_papers",
        "--partner",
        "police-nha-trang",
        "--now",
        "2026-11-23T09:00",
    )["code"]
    first = ok_json(capsys, "sweep", "--now", "2026-11-23T09:00")
    assert (first["steps"], first["reminder"], first["messages"]) == (1, 0, 0)
    late = ok_json(capsys, "sweep", "--now", "2026-11-27T17:00")  # overdue, then level 1
    # one message each (the contacts' first channel) to the partner and its backup
    assert (late["overdue"], late["escalation"], late["messages"]) == (1, 1, 2)
    history = ok_json(capsys, "sweeps")
    assert [h["counts"]["escalation"] for h in history] == [1, 0]
    assert history[0]["now"].startswith("2026-11-27T17:00:00+07:00")

    (row,) = ok_json(capsys, "list", "--overdue", "--now", "2026-12-02T09:00")
    assert (row["code"], row["partner"], row["active_step"]) == (
        code,
        "police-nha-trang",
        "acknowledge",
    )
    assert row["days_late"] == 4 and row["escalation_level"] == 1  # 27, 30/11, 1 and 2/12
    exit_code, out, _ = cli(capsys, "list", "--overdue", "--now", "2026-12-02T09:00")
    assert exit_code == 0 and "4 working days" in out and code in out
    # level 2 is the coordinator (here `admin`, who has no e-mail): the pass says so
    exit_code, out, _ = cli(capsys, "sweep", "--now", "2026-12-02T09:00")
    assert exit_code == 0 and "1 escalations; 0 messages queued; 1 recipients skipped" in out


def test_token_create_prints_a_token_once(rt: Runtime, capsys: pytest.CaptureFixture[str]) -> None:
    exit_code, out, _ = cli(capsys, "token", "create", "mai", "--name", "spreadsheet")
    assert exit_code == 0 and out.strip().startswith("rf_") and len(out.strip()) > 40
    exit_code, _, err = cli(capsys, "token", "create", "nobody")
    assert exit_code == 1 and err.strip() == "error: no active user 'nobody'"


def test_user_accounts_for_the_web_pages(
    rt: Runtime, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import io

    from sqlalchemy import select
    from sqlmodel import Session

    from referrals.models.people import User
    from referrals.usecases.staff.accounts import verify_password

    def with_stdin(text: str, *args: str) -> tuple[int, str, str]:
        monkeypatch.setattr("sys.stdin", io.StringIO(text))
        return cli(capsys, *args)

    add = ("user", "add", "lan", "--name", "Nguyễn Thị Lan", "--role", "coordinator")
    code, _, err = with_stdin("long enough pw\n", *add, "--password-stdin")
    assert code == 1 and "district" in err  # a coordinator works in one district
    code, _, err = with_stdin("short\n", *add, "--district", "nha-trang", "--password-stdin")
    assert code == 1 and "at least 10 characters" in err
    code, out, err = with_stdin(
        "long enough pw\n", *add, "--district", "nha-trang", "--password-stdin"
    )
    assert code == 0 and "lan" in out, err
    code, _, err = with_stdin(
        "long enough pw\n", *add, "--district", "atlantis", "--password-stdin"
    )
    assert code == 1 and "exists" in err
    code, _, _ = with_stdin("another password\n", "user", "password", "lan", "--password-stdin")
    assert code == 0
    with Session(rt.engine) as s:
        lan = s.scalars(select(User).where(User.username == "lan")).one()
        assert lan.area_key == "nha-trang" and lan.session_epoch == 1
        assert lan.password_hash and lan.password_hash.startswith("scrypt$")
        assert verify_password("another password", lan.password_hash)
        assert not verify_password("long enough pw", lan.password_hash)
    code, _, err = with_stdin(
        "another password\n", "user", "password", "nobody", "--password-stdin"
    )
    assert code == 1 and "unknown user" in err


def test_a_database_server_that_is_down_is_named_as_such(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A refused connection asks whether the server runs; `referrals init` would not help."""
    from referrals.config import get_settings

    url = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/referrals"
    monkeypatch.setenv("REFERRALS_DATABASE_URL", url)
    monkeypatch.setenv("REFERRALS_SECRET_KEY", "test-secret-0123456789abcdef0123456789abcdef")
    get_settings.cache_clear()
    try:
        for args in (["list"], ["client", "add", "--name", "A", "--district", "nha-trang"]):
            code, _, err = cli(capsys, *args)
            assert code == 1 and err.count("\n") == 1, err
            assert "is the database server running?" in err and "referrals init" not in err, err
    finally:
        get_settings.cache_clear()
