"""Message templates, SMS encoding, action-link tokens, quiet hours, channel URLs: no database."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from referrals.config import ConfigError, load_province
from referrals.config.province import Delivery
from referrals.infra.crypto import Vault
from referrals.models.links import link_token, link_url, message_of
from referrals.notifiers.channels import ChannelError, Channels
from referrals.notifiers.delivery import quiet_until
from referrals.notifiers.rendering import RenderError, declared_segments, messages, render
from referrals.notifiers.sms import encoding, unaccent
from support import ROOT

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
BUNDLED = ROOT / "referrals" / "config" / "khanh-hoa"
PUBLIC_URL = "https://tnxh.khanhhoa.gov.vn"  # 28 characters; templates promise up to 30
VAULT = Vault("test-secret-0123456789abcdef0123456789abcdef")


def worst_case(language: str) -> dict[str, object]:
    """The longest values the bundled config can put in a message, for the SMS budgets."""
    province = load_province(BUNDLED)
    services = [
        s.name if language == "vi" else s.name_en for p in province.partners for s in p.services
    ]
    steps = [t.name if language == "vi" else t.name_en for p in province.pathways for t in p.steps]
    delivery = province.province.delivery
    return {
        "sender": delivery.sender if language == "vi" else delivery.sender_en,
        "code": "R-7K2QX-9MB4T",
        "service": max(services, key=len),
        "step": "acknowledge",
        "step_name": max(steps, key=len),
        "due_at": "2026-12-24T10:00:00+00:00",
        "urgent": True,
        "link": link_url(PUBLIC_URL, VAULT, 33_000_000 - 1),
        "days_late": 99,
        "level": 4,
        "closed_at": "2026-12-24T10:00:00+00:00",
        "partner": "Công an thành phố Nha Trang",
        "template": "referral.new",
        "channel": "sms",
        "attempts": 6,
        "error": "connection refused",
        "message_id": 123,
        "date": "2026-12-24",
        "overdue": [{"code": "R-1", "partner": "p", "step": "s", "days_late": 3}],
        "became_overdue": 2,
        "completed": 1,
        "dead": 0,
        "overdue_total": 7,
        "answer": "decline",
        "reason": "other",
        "on": "2026-12-24",
        "status": "rejected",
        "alternatives": ["Công ty Dịch vụ pháp lý Saphira Nha Trang"],
        # step.yours: the longer of its wordings in each language
        "why": "rebooked" if language == "vi" else "resumed",
        "via": "sweep",
        "office_phone": str(province.province.office.phone if province.province.office else ""),
        "referral": "R-7K2QX-9MB4T",
        # extension.requested/decided: a refusal is the longer SMS in both languages
        "granted": False,
        "was_due_at": "2026-12-20T10:00:00+00:00",
        "new_due_at": "2026-12-24T10:00:00+00:00",
        # privacy.alert: a late request names its code, its work and the command that shows it
        "what": "request",
        "about": "Yêu cầu R-7K2QX-9MB4T của chủ thể dữ liệu (rút lại sự đồng ý)",
        "work": "Thực hiện yêu cầu (Nghị định 356, Điều 5)",
        "state": "late",
        "late": "99 ngày",
        "count": 100,
        "clients": ["C-8QP9B-9NYE8"] * 100,
        "command": "referrals privacy requests show R-7K2QX-9MB4T",
    }


@pytest.mark.parametrize("language", ["vi", "en"])
@pytest.mark.parametrize("message", messages())
def test_every_message_renders_and_its_sms_keeps_its_declared_budget(
    message: str, language: str
) -> None:
    ctx = worst_case(language)
    mail = render(message, channel="email", language=language, context=ctx, tz=TZ)
    assert mail.subject and "\n" not in mail.subject and mail.body.endswith("\n")
    assert "R-7K2QX-9MB4T" in mail.body or message == "digest.daily"
    budget = declared_segments(message, language)
    if budget is None:  # e-mail only
        with pytest.raises(RenderError, match="no sms block"):
            render(message, channel="sms", language=language, context=ctx, tz=TZ)
        return
    sms = render(message, channel="sms", language=language, context=ctx, tz=TZ, unaccented=True)
    assert sms.subject is None and "\n" not in sms.body
    assert "R-7K2QX-9MB4T" in sms.body
    if "no-link:" not in _header(message, language):  # a peer reminder gives a phone, not a link
        assert ctx["link"] in sms.body and unaccent(str(ctx["service"])) in sms.body
    else:
        assert ctx["office_phone"] in sms.body and "/l/" not in sms.body
    enc = encoding(sms.body)
    assert enc.name == "GSM-7" and enc.segments <= budget, (sms.body, enc)


def _header(message: str, language: str) -> str:
    path = ROOT / "referrals" / "notifiers" / "templates" / language / f"{message}.j2"
    return path.read_text(encoding="utf-8").split("#}")[0]


def test_messages_exist_for_every_prompt_the_engine_sends() -> None:
    assert set(messages()) >= {
        "referral.new",
        "step.reminder",
        "step.overdue",
        "step.escalation",
        "referral.closed",
        "digest.daily",
        "message.dead",
        "step.yours",
        "referral.no_show",
        "client.remind",
        "extension.requested",
        "extension.decided",
    }


def test_deadlines_read_in_local_time_and_a_missing_value_is_an_error() -> None:
    ctx = worst_case("vi")
    sms = render("referral.new", channel="sms", language="vi", context=ctx, tz=TZ)
    assert "17:00 24/12/2026" in sms.body  # 10:00 UTC is 17:00 in Nha Trang
    assert "KHẨN" in sms.body and encoding(sms.body).name == "UCS-2"
    del ctx["code"]
    with pytest.raises(RenderError, match="code"):
        render("referral.new", channel="sms", language="vi", context=ctx, tz=TZ)


def test_gsm7_counts_septets_and_ucs2_counts_code_units() -> None:
    assert encoding("a" * 160).segments == 1
    assert encoding("a" * 161).segments == 2 and encoding("a" * 307).segments == 3
    assert encoding("€" * 80).units == 160 and encoding("€" * 81).segments == 2
    assert encoding("ạ" * 70).segments == 1 and encoding("ạ" * 71).segments == 2
    assert encoding("😀" * 35).units == 70  # a surrogate pair is two units


def test_unaccent_strips_every_vietnamese_diacritic() -> None:
    assert unaccent("Đăng ký mã số thuế, Khánh Hòa, người được hỗ trợ") == (
        "Dang ky ma so thue, Khanh Hoa, nguoi duoc ho tro"
    )
    assert encoding(unaccent("Ưu tiên ở Ninh Hòa: Ngọc, Tuấn, Đức")).name == "GSM-7"


def test_link_tokens_are_short_and_refuse_forgery() -> None:
    token = link_token(VAULT, 1234)
    assert message_of(VAULT, token) == 1234 and len(token) <= 18
    assert len(link_token(VAULT, 33_000_000 - 1)) == 18
    forged = token[:-1] + ("a" if token[-1] != "a" else "b")
    assert message_of(VAULT, forged) is None
    other = Vault("another-secret-0123456789abcdef0123456789abcdef")
    assert message_of(other, token) is None
    moved = link_token(VAULT, 1235)[:-13] + token[-13:]  # another id with this MAC
    assert message_of(VAULT, moved) is None
    for junk in ("", "1234", "ABC", token + "x", "../../etc"):
        assert message_of(VAULT, junk) is None


@pytest.mark.parametrize(
    ("local", "window", "until"),
    [
        ("2026-11-23 22:30", "21:00-07:00", "2026-11-24 07:00"),
        ("2026-11-24 06:59", "21:00-07:00", "2026-11-24 07:00"),
        ("2026-11-24 07:00", "21:00-07:00", None),
        ("2026-11-23 20:59", "21:00-07:00", None),
        ("2026-11-23 12:30", "12:00-13:30", "2026-11-23 13:30"),
        ("2026-11-23 23:30", "none", None),
    ],
)
def test_quiet_hours_end_at_the_next_local_morning(
    local: str, window: str, until: str | None
) -> None:
    now = dt.datetime.fromisoformat(local).replace(tzinfo=TZ)
    got = quiet_until(now, window, TZ)
    expected = dt.datetime.fromisoformat(until).replace(tzinfo=TZ) if until else None
    assert got == expected


def test_channel_urls_take_secrets_from_outside_and_hide_them() -> None:
    delivery = Delivery(
        channels={
            "email": "mailtos://noreply:${SMTP_PASSWORD}@smtp.example.vn?from=noreply@example.vn",
            "sms": "json://${GATEWAY_HOST}/send?:to={phone}&+X-Token=${GATEWAY_TOKEN}",
        }
    )
    env = {"SMTP_PASSWORD": "s3cret-pw", "GATEWAY_HOST": "10.0.0.5", "GATEWAY_TOKEN": "tok-123456"}
    ch = Channels(delivery, secrets=env.get)
    assert ch.kinds == ["email", "sms"]
    url = ch.url("email", email="a.b+c@example.vn")
    assert url.endswith("&to=a.b%2Bc%40example.vn&format=text") and "s3cret-pw" in url
    assert ch.url("sms", phone="+84905000113").startswith("json://10.0.0.5/send?:to=%2B84905000113")
    ch.check()
    assert ch.scrub(f"failed {url}") == f"failed {url.replace('s3cret-pw', '****')}"
    with pytest.raises(ChannelError, match="no phone"):
        ch.url("sms", phone=None)
    with pytest.raises(ChannelError, match=r"\$\{GATEWAY_TOKEN\} is not set"):
        Channels(delivery, secrets={"SMTP_PASSWORD": "x", "GATEWAY_HOST": "h"}.get)
    off = Channels(Delivery(), secrets={}.get)  # the default: ${REFERRALS_*_URL}, both unset
    assert off.kinds == []
    with pytest.raises(ChannelError, match="must contain"):
        Channels(Delivery(channels={"sms": "json://gw/send"}), secrets={}.get)
    with pytest.raises(ChannelError, match="Apprise does not accept"):
        Channels(Delivery(channels={"sms": "nosuchservice://{phone}"}), secrets={}.get).check()


@pytest.mark.parametrize(
    ("delivery", "message"),
    [
        ({"channels": {"email": "mailtos://me:hunter2@smtp.example.vn"}}, "not in the file"),
        ({"channels": {"sms": "json://gw/{client_name}"}}, "only {phone} and {email}"),
        ({"quiet_hours": "9pm-7am"}, "HH:MM-HH:MM"),
        ({"max_attempts": 0}, "greater than or equal to 1"),
    ],
)
def test_bad_delivery_config_is_refused_with_its_line(
    tmp_path: Path, delivery: dict[str, object], message: str
) -> None:
    import yaml

    for name in ("partners.yaml", "pathways.yaml"):
        (tmp_path / name).write_text((BUNDLED / name).read_text(encoding="utf-8"), encoding="utf-8")
    data = yaml.safe_load((BUNDLED / "province.yaml").read_text(encoding="utf-8"))
    data["delivery"] = delivery
    (tmp_path / "province.yaml").write_text(yaml.safe_dump(data, allow_unicode=True), "utf-8")
    with pytest.raises(ConfigError, match=r"province\.yaml:") as err:
        load_province(tmp_path)
    assert message in str(err.value)
