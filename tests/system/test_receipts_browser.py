"""What a coordinator and a manager see of delivery receipts, on a phone in real headless
Chromium (issue 24): eSMS's report that a prompt did not reach the partner's phone arrives over
HTTP at the running app; the prompt moves on to the partner's e-mail; the coordinator's referral
page says so in words; the manager's dashboard counts a message the gateway took that nothing
confirmed, and the period report counts what the SMS cost."""

from __future__ import annotations

import datetime as dt
import urllib.request
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from notifiers.fakes.esms import FakeEsms
from playwright.sync_api import Browser, expect
from test_launch_browser import fits, log_in, no_keys

from referrals.infra.runtime import Runtime
from referrals.notifiers.channels import Channels
from referrals.notifiers.delivery import deliver
from support.domain import ready_referral, use_channels
from support.pages import Clock
from support.receivers import SmtpSink

PHONE = {"width": 390, "height": 844}
# The coordinator: login lands on their cases → the referral's page.
MOST_SCREENS = 2


@pytest.fixture
def esms() -> Iterator[FakeEsms]:
    with FakeEsms(brandnames=("TNXH-KH",)) as fake:
        yield fake


def test_an_undelivered_sms_is_seen_moved_on_counted_and_priced(
    rt: Runtime,
    server: tuple[str, Clock],
    browser: Browser,
    esms: FakeEsms,
    smtp: SmtpSink,
    now: dt.datetime,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    base, clock = server
    urls = {
        "REFERRALS_SMS_URL": f"esms://{esms.api_key}:{esms.secret_key}@TNXH-KH/{{phone}}"
        f"?api={esms.base_url}&callback={base}/receipts/sms",
        "REFERRALS_EMAIL_URL": smtp.url(),
    }
    for name, url in urls.items():  # the web app checks receipts with the same channels
        monkeypatch.setenv(name, url)
    channels = Channels(rt.province.province.delivery, secrets=urls.get)
    code = ready_referral(rt, now, name="Đặng Thị Thư")  # police: SMS, then e-mail
    use_channels(rt, "saphira-legal", ["sms"])
    quiet = ready_referral(rt, now, "legal_aid", "saphira-legal", name="Hồ Thị Im", phone=None)
    assert deliver(rt, now=now, channels=channels).sent == 2

    police = next(s for s in esms.sent if code in s["Content"])
    method, url, headers, _ = esms.callback(police["answer"]["SMSID"], False, reason_code=4)
    parts = urlsplit(url)
    request = urllib.request.Request(f"{base}{parts.path}?{parts.query}", headers=headers)
    with urllib.request.urlopen(request) as answer:  # eSMS's GET, over real HTTP
        assert method == "GET" and answer.status == 200
    assert deliver(rt, now=now + dt.timedelta(minutes=1), channels=channels).sent == 1
    assert [m.to for m in smtp.mails] == [["tiepnhan.police-nha-trang@example.vn"]]

    clock.now = now + dt.timedelta(hours=2)  # no word from eSMS on Saphira's SMS
    phone = browser.new_context(viewport=PHONE, is_mobile=True)
    page = phone.new_page()
    screens = log_in(page, base)
    page.goto(f"{base}/referrals/{code}")
    messages = page.locator("#messages")
    expect(messages).to_contain_text("không đến được")
    expect(messages).to_contain_text("E-mail")
    timeline = page.locator("#timeline")
    expect(timeline).to_contain_text("tin không đến được người nhận")
    expect(timeline).to_contain_text("tin được gửi qua kênh tiếp theo")
    expect(timeline).to_contain_text("Tin nhắn SMS → E-mail (không đến được)")
    seen = 1 + screens.seen()  # the page login landed on, and the ones after it
    assert fits(page) and seen <= MOST_SCREENS, seen
    no_keys(page)
    phone.close()

    manager = browser.new_context(viewport=PHONE, is_mobile=True).new_page()
    log_in(manager, base, "hoa")
    manager.goto(f"{base}/dashboard")
    expect(manager.locator("#unconfirmed-count")).to_have_text("1")
    expect(manager.locator("main")).to_contain_text("Đã gửi, chưa có báo nhận")
    assert fits(manager)
    manager.goto(f"{base}/report?from=01/11/2026&to=30/11/2026&format=html")
    expect(manager.locator("body")).to_contain_text("Tin nhắn và chi phí, theo tháng và kênh")
    expect(manager.locator("body")).to_contain_text("11/2026")
    assert quiet and fits(manager)
