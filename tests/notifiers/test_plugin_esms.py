"""The eSMS.vn Apprise plugin against a loopback fake of eSMS's documented API: what it sends,
how it reads every documented answer (permanent or not, rate limited, duplicate), its URL, and
its signed delivery receipts."""

from __future__ import annotations

import datetime as dt
import logging
import socket
from collections.abc import Iterator
from urllib.parse import parse_qsl, urlsplit

import pytest
from apprise import Apprise
from apprise.manager_plugins import NotificationManager
from notifiers.fakes.esms import FakeEsms

from referrals.notifiers.plugins.base import Receipt, ReceiptRefused
from referrals.notifiers.plugins.esms import ERRORS, NotifyESMS, sign, vn_phone

KEY, SECRET, BRAND = "API-KEY-123", "SECRET-KEY-456", "CTXH.NT"
PHONE = "+84901888484"
TEXT = "Chị Hồ Thị Kín: hẹn gặp tại Trung tâm Công tác xã hội lúc 9 giờ."
CALLBACK = "https://office.example/receipts/sms"


@pytest.fixture(scope="module", autouse=True)
def registered() -> None:
    """Our schemes in Apprise's registry (the zns plugin may not be importable yet)."""
    try:
        from referrals.notifiers.plugins import register

        register()
    except ImportError:
        pass
    manager = NotificationManager()
    if "esms" not in manager:
        manager.add(NotifyESMS)


@pytest.fixture
def esms() -> Iterator[FakeEsms]:
    with FakeEsms(api_key=KEY, secret_key=SECRET, brandnames={BRAND}) as fake:
        yield fake


def _url(esms: FakeEsms, *targets: str, **args: str) -> str:
    query = {"callback": CALLBACK, "api": esms.base_url, **args}
    tail = "&".join(f"{k}={v}" for k, v in query.items())
    return f"esms://{KEY}:{SECRET}@{BRAND}/{'/'.join(targets or (PHONE,))}?{tail}"


def _plugin(url: str, tracking_id: str | None = "outbox-42") -> NotifyESMS:
    plugin = Apprise.instantiate(url)
    assert isinstance(plugin, NotifyESMS)
    plugin.tracking_id = tracking_id
    return plugin


def _query(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _receipts(plugin: NotifyESMS, request: tuple[str, str, dict[str, str], bytes], **kw: object):
    method, url, headers, body = request
    args: dict[str, object] = {
        "method": method,
        "query": _query(url),
        "headers": headers,
        "body": body,
        "now": _now(),
    }
    args.update(kw)
    return plugin.read_receipts(**args)  # type: ignore[arg-type]


# -- sending ------------------------------------------------------------------------------


def test_sends_the_documented_request_and_keeps_the_smsid(esms: FakeEsms) -> None:
    plugin = _plugin(_url(esms))
    assert plugin.notify(body=TEXT) is True
    (sent,) = esms.sent
    assert {k: sent[k] for k in ("ApiKey", "SecretKey", "Brandname", "SmsType", "Phone")} == {
        "ApiKey": KEY,
        "SecretKey": SECRET,
        "Brandname": BRAND,
        "SmsType": "2",
        "Phone": "0901888484",  # the docs' national form, from the engine's E.164
    }
    assert sent["Content"] == TEXT and sent["IsUnicode"] == "1" and sent["Sandbox"] == "0"
    assert sent["RequestId"] == "outbox-42"
    assert plugin.provider_id == sent["answer"]["SMSID"] and plugin.permanent is False
    assert plugin.retry_after is None and plugin.reason is None


def test_the_callback_url_is_signed_with_the_secret_key(esms: FakeEsms) -> None:
    plugin = _plugin(_url(esms))
    fixed = dt.datetime(2026, 11, 23, 2, 0, tzinfo=dt.UTC)
    plugin.clock = lambda: fixed
    assert plugin.notify(body=TEXT)
    callback = esms.sent[0]["CallbackUrl"]
    assert callback.startswith(CALLBACK + "?")
    q = _query(callback)
    assert q["ref"] == "outbox-42" and q["t"] == str(int(fixed.timestamp()))
    assert q["sig"] == sign(SECRET, "outbox-42", int(fixed.timestamp()))


def test_unaccented_and_sandbox_flags(esms: FakeEsms) -> None:
    plugin = _plugin(_url(esms, unicode="no", sandbox="yes", campaign="nhac-hen"))
    assert plugin.notify(body=TEXT)
    sent = esms.sent[0]
    assert sent["IsUnicode"] == "0" and sent["Sandbox"] == "1"
    assert sent["Content"] == "Chi Ho Thi Kin: hen gap tai Trung tam Cong tac xa hoi luc 9 gio."
    assert sent["campaignid"] == "nhac-hen"


def test_no_tracking_id_still_gets_a_request_id(esms: FakeEsms) -> None:
    plugin = _plugin(_url(esms), tracking_id=None)
    assert plugin.notify(body=TEXT)
    assert (
        esms.sent[0]["RequestId"]
        and esms.sent[0]["RequestId"] == _query(esms.sent[0]["CallbackUrl"])["ref"]
    )


def test_one_request_per_phone_with_distinct_request_ids(esms: FakeEsms) -> None:
    plugin = _plugin(_url(esms, PHONE, "84912345678", "0987654321"))
    assert len(plugin) == 3 and plugin.notify(body=TEXT)
    assert [s["Phone"] for s in esms.sent] == ["0901888484", "0912345678", "0987654321"]
    assert [s["RequestId"] for s in esms.sent] == ["outbox-42.1", "outbox-42.2", "outbox-42.3"]
    assert plugin.provider_ids == [s["answer"]["SMSID"] for s in esms.sent]


def test_a_long_tracking_id_is_hashed_to_fifty_characters(esms: FakeEsms) -> None:
    plugin = _plugin(_url(esms), tracking_id="x" * 80)
    assert plugin.notify(body=TEXT)
    assert len(esms.sent[0]["RequestId"]) == 50


def test_a_number_that_is_not_vietnamese_is_permanent(esms: FakeEsms) -> None:
    plugin = _plugin(_url(esms, "+14155550100"))
    assert plugin.notify(body=TEXT) is False
    assert plugin.permanent is True and esms.sent == []
    assert vn_phone("+84 90 188-8484") == "0901888484" and vn_phone("0901888") is None


# -- answers ------------------------------------------------------------------------------


@pytest.mark.parametrize("code", sorted(c for c in ERRORS if c != "124"))
def test_each_documented_refusal_is_permanent(esms: FakeEsms, code: str) -> None:
    esms.fail_next(code)
    plugin = _plugin(_url(esms))
    assert plugin.notify(body=TEXT) is False
    assert plugin.permanent is True and plugin.provider_id is None
    assert plugin.reason == f"eSMS {code}: {ERRORS[code][0]}"


def test_the_fake_refuses_bad_keys_and_an_unregistered_brandname(esms: FakeEsms) -> None:
    wrong_key = _plugin(_url(esms).replace(SECRET, "WRONG"))
    assert wrong_key.notify(body=TEXT) is False and wrong_key.permanent
    assert wrong_key.reason is not None and wrong_key.reason.startswith("eSMS 101")
    other_brand = _plugin(_url(esms).replace(BRAND, "OTHER"))
    assert other_brand.notify(body=TEXT) is False and other_brand.permanent
    assert other_brand.reason is not None and other_brand.reason.startswith("eSMS 104")


def test_an_undocumented_code_and_a_server_error_are_retried(esms: FakeEsms) -> None:
    esms.fail_next("42")
    plugin = _plugin(_url(esms))
    assert plugin.notify(body=TEXT) is False and plugin.permanent is False
    assert plugin.reason is not None and "does not list" in plugin.reason
    esms.fail_next("99", status=503)
    plugin = _plugin(_url(esms))
    assert plugin.notify(body=TEXT) is False and plugin.permanent is False
    assert plugin.reason == "eSMS is unavailable (HTTP 503)"


def test_a_client_error_is_permanent(esms: FakeEsms) -> None:
    esms.fail_next("101", status=403)
    plugin = _plugin(_url(esms))
    assert plugin.notify(body=TEXT) is False and plugin.permanent is True


def test_no_answer_is_retried() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again when we try it
    plugin = _plugin(f"esms://{KEY}:{SECRET}@{BRAND}/{PHONE}?api=http://127.0.0.1:{port}")
    assert plugin.notify(body=TEXT) is False
    assert plugin.permanent is False and plugin.retry_after is None
    assert plugin.reason is not None and plugin.reason.startswith("eSMS: no answer")


def test_a_crash_repeat_is_refused_as_a_duplicate(esms: FakeEsms) -> None:
    first = _plugin(_url(esms))
    assert first.notify(body=TEXT)
    again = _plugin(_url(esms))  # the engine crashed before recording the first answer
    assert again.notify(body=TEXT) is False
    assert esms.sent[1]["answer"]["CodeResult"] == "124"
    assert again.duplicate is True and again.permanent is True and again.provider_id is None
    assert again.reason is not None and "Duplicate RequestId" in again.reason


@pytest.mark.parametrize(("given", "expected"), [(17, 17.0), (None, 60.0)])
def test_rate_limited_sets_retry_after(esms: FakeEsms, given: int | None, expected: float) -> None:
    esms.rate_limit_next(given)
    plugin = _plugin(_url(esms))
    assert plugin.notify(body=TEXT) is False
    assert plugin.retry_after == expected and plugin.permanent is False
    esms_next = _plugin(_url(esms), tracking_id="outbox-43")
    assert esms_next.notify(body=TEXT) is True  # only the next one was limited


def test_log_lines_carry_no_phone_and_no_text(
    esms: FakeEsms, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    assert _plugin(_url(esms)).notify(body=TEXT)
    esms.fail_next("108")
    assert not _plugin(_url(esms), tracking_id="outbox-44").notify(body=TEXT)
    ours = [r.getMessage() for r in caplog.records if "eSMS" in r.getMessage()]
    assert any(
        line == "eSMS 108: Phone number is not in correct format (tracking=outbox-44); permanent."
        for line in ours
    )
    for line in (r.getMessage() for r in caplog.records):
        assert "901888484" not in line and "Kín" not in line and "Hồ" not in line


# -- the URL ------------------------------------------------------------------------------


def test_apprise_knows_the_scheme_and_the_url_round_trips(esms: FakeEsms) -> None:
    plugin = _plugin(_url(esms, PHONE, "0912345678", unicode="no", campaign="c1"))
    url = plugin.url()
    again = Apprise.instantiate(url)
    assert isinstance(again, NotifyESMS) and again.url() == url
    assert (again.apikey, again.secretkey, again.brandname) == (KEY, SECRET, BRAND)
    assert again.targets == ["0901888484", "0912345678"]
    assert again.unicode is False and again.callback == CALLBACK and again.api == esms.base_url
    parsed = NotifyESMS.parse_url(url)
    assert parsed is not None and parsed["secretkey"] == SECRET
    assert plugin.url_identifier == again.url_identifier


def test_a_private_url_hides_the_keys(esms: FakeEsms) -> None:
    shown = _plugin(_url(esms)).url(privacy=True)
    assert SECRET not in shown and KEY not in shown and "901888484" not in shown
    assert shown.startswith("esms://") and BRAND in shown


def test_defaults_are_unicode_and_the_real_host() -> None:
    plugin = _plugin(f"esms://{KEY}:{SECRET}@{BRAND}/{PHONE}")
    assert plugin.unicode is True and plugin.sandbox is False and plugin.callback is None
    assert plugin.api == "https://rest.esms.vn" and "api=" not in plugin.url()


# -- receipts -----------------------------------------------------------------------------


def _sent(esms: FakeEsms) -> tuple[NotifyESMS, str]:
    plugin = _plugin(_url(esms))
    assert plugin.notify(body=TEXT)
    assert plugin.provider_id is not None
    return plugin, plugin.provider_id


def test_a_genuine_delivered_receipt(esms: FakeEsms) -> None:
    plugin, sms_id = _sent(esms)
    now = _now()
    (receipt,) = _receipts(plugin, esms.callback(sms_id, delivered=True), now=now)
    assert receipt == Receipt(
        provider_id=sms_id, delivered=True, reason=None, at=now, tracking_id="outbox-42"
    )


def test_a_genuine_undelivered_receipt_with_its_reason(esms: FakeEsms) -> None:
    plugin, sms_id = _sent(esms)
    (failed,) = _receipts(plugin, esms.callback(sms_id, delivered=False))
    assert failed.delivered is False and failed.provider_id == sms_id
    assert (
        failed.reason
        == "the carrier did not deliver it (SendStatus 5, SendFailed 1) (carrier Viettel)"
    )
    (rejected,) = _receipts(plugin, esms.callback(sms_id, delivered=False, reason_code=4))
    assert rejected.delivered is False and rejected.reason is not None
    assert rejected.reason.startswith("eSMS rejected the message (SendStatus 4)")


def test_a_report_that_is_not_final_changes_nothing(esms: FakeEsms) -> None:
    plugin, sms_id = _sent(esms)
    assert _receipts(plugin, esms.callback(sms_id, delivered=False, reason_code=7)) == []


def test_fields_appended_with_a_second_question_mark_still_read(esms: FakeEsms) -> None:
    plugin, sms_id = _sent(esms)
    method, url, headers, body = esms.callback(sms_id, delivered=True)
    ours, theirs = url.split("&SMSID=", 1)
    naive = f"{ours}?SMSID={theirs}"  # if eSMS appended its query with "?" regardless
    (receipt,) = _receipts(plugin, (method, naive, headers, body))
    assert receipt.provider_id == sms_id and receipt.delivered


def _refused(plugin: NotifyESMS, request: tuple[str, str, dict[str, str], bytes], **kw: object):
    with pytest.raises(ReceiptRefused) as refused:
        _receipts(plugin, request, **kw)
    return refused.value.status


def test_forged_tampered_unsigned_and_stale_callbacks_are_refused(esms: FakeEsms) -> None:
    plugin, sms_id = _sent(esms)
    method, url, headers, body = esms.callback(sms_id, delivered=True)
    q = _query(url)
    forged = url.replace(f"sig={q['sig']}", "sig=" + "0" * 64)
    assert _refused(plugin, (method, forged, headers, body)) == 403
    tampered = url.replace("ref=outbox-42", "ref=outbox-41")
    assert _refused(plugin, (method, tampered, headers, body)) == 403
    unsigned = url.replace(f"&sig={q['sig']}", "")
    assert _refused(plugin, (method, unsigned, headers, body)) == 403
    other_key = NotifyESMS(apikey=KEY, secretkey="another", brandname=BRAND, targets=[PHONE])
    assert _refused(other_key, (method, url, headers, body)) == 403
    late = _now() + dt.timedelta(hours=73)
    assert _refused(plugin, (method, url, headers, body), now=late) == 403
    early = _now() - dt.timedelta(hours=1)
    assert _refused(plugin, (method, url, headers, body), now=early) == 403
    assert _receipts(plugin, (method, url, headers, body), now=_now() + dt.timedelta(hours=71))


def test_a_malformed_but_signed_callback_is_a_400(esms: FakeEsms) -> None:
    plugin, sms_id = _sent(esms)
    method, url, headers, body = esms.callback(sms_id, delivered=True)
    assert _refused(plugin, ("POST", url, headers, body)) == 400
    assert (
        _refused(plugin, (method, url.replace(f"SMSID={sms_id}", "SMSID="), headers, body)) == 400
    )
    assert (
        _refused(plugin, (method, url.replace("SendStatus=5", "SendStatus=x"), headers, body))
        == 400
    )
    assert (
        _refused(plugin, (method, url.replace("SendStatus=5", "SendStatus=9"), headers, body))
        == 400
    )
