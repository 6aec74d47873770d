"""The Zalo ZNS Apprise plugin against a loopback fake of Zalo (notifiers/fakes/zns.py)."""

from __future__ import annotations

import datetime as dt
import json
import logging
import socket
import threading
from collections.abc import Iterator

import pytest
from apprise import Apprise
from apprise.manager_plugins import NotificationManager
from notifiers.fakes.zns import FakeZns

from referrals.notifiers.plugins.base import MemoryTokens, ReceiptRefused, tokens, use_tokens
from referrals.notifiers.plugins.zalo_zns import DEFAULT_RETRY_AFTER, NotifyZaloZNS

TEMPLATE = "250001"
PARAMS = {"partner_name": "Trung tâm Hy Vọng", "case_ref": "HN-0042", "link": "https://x.test/r/9f"}
BODY = json.dumps({"template_id": TEMPLATE, "template_data": PARAMS})
PHONE = "0912345678"


@pytest.fixture(autouse=True)
def fresh_tokens() -> Iterator[None]:
    """Each test starts with no stored token, as a new installation does."""
    previous = use_tokens(MemoryTokens())
    yield
    use_tokens(previous)


@pytest.fixture
def zns() -> Iterator[FakeZns]:
    with FakeZns(templates={TEMPLATE: list(PARAMS)}) as fake:
        yield fake


def plugin(url: str, tracking_id: str | None = "outbox-17") -> NotifyZaloZNS:
    results = NotifyZaloZNS.parse_url(url)
    assert results is not None
    p = NotifyZaloZNS(**results)
    p.tracking_id = tracking_id
    return p


def send(
    url: str, body: str = BODY, tracking_id: str | None = "outbox-17"
) -> tuple[bool, NotifyZaloZNS]:
    """notify()'s answer, and the instance (what the engine reads after it)."""
    p = plugin(url, tracking_id)
    return p.notify(body=body), p


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ------------------------------------------------------------------------------- sending


def test_send_reaches_zalo_with_84_phone_template_params_and_tracking_id(zns: FakeZns) -> None:
    ok, p = send(zns.url(PHONE))
    assert ok and not p.permanent and p.retry_after is None
    request = zns.sent[-1]
    assert request["phone"] == "84912345678"
    assert request["template_id"] == TEMPLATE
    assert request["template_data"] == PARAMS
    assert request["tracking_id"] == "outbox-17"
    assert "mode" not in request
    assert p.provider_id == request["msg_id"]


def test_development_mode_and_no_tracking_id(zns: FakeZns) -> None:
    ok, _ = send(zns.url("+84 912 345 678", mode="development"), tracking_id=None)
    assert ok
    assert zns.sent[-1]["mode"] == "development"
    assert "tracking_id" not in zns.sent[-1]


@pytest.mark.parametrize(
    "body",
    [
        "Xin chào",
        "[1, 2]",
        json.dumps({"template_id": TEMPLATE}),
        json.dumps({"template_data": {}}),
    ],
)
def test_a_body_that_is_not_a_template_message_is_permanent(zns: FakeZns, body: str) -> None:
    ok, p = send(zns.url(PHONE), body=body)
    assert not ok and p.permanent
    assert zns.sent == [] and zns.refreshes == []


def test_a_number_that_is_not_vietnamese_is_permanent(zns: FakeZns) -> None:
    ok, p = send(zns.url("12345"))
    assert not ok and p.permanent
    assert zns.sent == []


@pytest.mark.parametrize(
    ("code", "permanent"),
    [
        (-108, True),  # phone number invalid
        (-109, True),  # template id invalid
        (-112, True),  # template data invalid
        (-114, True),  # user inactive / rejects ZNS
        (-115, True),  # out of quota
        (-117, True),  # OA or app may not use this template
        (-118, True),  # no Zalo account
        (-100, False),  # unknown error: Zalo says try again later
        (-99999, False),  # unlisted: retried, the engine gives up after its attempts
    ],
)
def test_zalo_errors_are_permanent_or_retried(zns: FakeZns, code: int, permanent: bool) -> None:
    zns.fail_next(code)
    ok, p = send(zns.url(PHONE))
    assert not ok
    assert p.permanent is permanent
    assert p.provider_id is None and p.retry_after is None


def test_zalo_checks_match_the_documented_codes(zns: FakeZns) -> None:
    """The fake's own checks answer Zalo's codes, and the plugin maps them (no injection)."""
    wrong_template = json.dumps({"template_id": "999", "template_data": PARAMS})
    ok, p = send(zns.url(PHONE), body=wrong_template)
    assert not ok and p.permanent
    wrong_params = json.dumps({"template_id": TEMPLATE, "template_data": {"x": "1"}})
    ok, p = send(zns.url(PHONE), body=wrong_params)
    assert not ok and p.permanent


def test_server_error_is_retried(zns: FakeZns) -> None:
    zns.fail_next(status=502)
    ok, p = send(zns.url(PHONE))
    assert not ok and not p.permanent and p.retry_after is None


def test_unreachable_api_is_retried(zns: FakeZns) -> None:
    url = zns.url(PHONE).replace(f"api={zns.base_url.replace(':', '%3A').replace('/', '%2F')}", "")
    url += f"&api=http://127.0.0.1:{closed_port()}&cto=2&rto=2"
    ok, p = send(url)
    assert not ok and not p.permanent


def test_rate_limit_sets_retry_after_from_the_answer(zns: FakeZns) -> None:
    zns.rate_limit_next(42)
    ok, p = send(zns.url(PHONE))
    assert not ok and not p.permanent and p.retry_after == 42


def test_rate_limit_without_retry_after_waits_the_default(zns: FakeZns) -> None:
    zns.rate_limit_next(None)
    ok, p = send(zns.url(PHONE))
    assert not ok and not p.permanent and p.retry_after == DEFAULT_RETRY_AFTER


# -------------------------------------------------------------------------------- tokens


def test_first_refresh_spends_the_urls_token_and_later_sends_reuse_the_access_token(
    zns: FakeZns,
) -> None:
    first = zns.refresh_token
    url = zns.url(PHONE)
    assert send(url)[0] and send(url)[0]
    assert [r["refresh_token"] for r in zns.refreshes] == [first]
    assert zns.refreshes[0]["secret_ok"] == "True"
    assert zns.refreshes[0]["app_id"] == zns.app_id
    assert zns.refreshes[0]["grant_type"] == "refresh_token"
    stored = tokens().load(f"zns:{zns.app_id}")
    assert stored is not None
    assert stored["refresh_token"] == zns.refresh_token != first  # rotated
    assert {s["access_token"] for s in zns.sent} == {stored["access_token"]}


def test_an_expiring_token_is_refreshed_with_the_rotated_refresh_token(zns: FakeZns) -> None:
    zns.access_ttl = 30  # expires within the minute: refreshed before every send
    url = zns.url(PHONE)  # the URL keeps naming the first (spent) refresh token
    assert send(url)[0]
    rotated = zns.refresh_token
    assert send(url)[0]
    assert len(zns.refreshes) == 2
    assert zns.refreshes[1]["refresh_token"] == rotated


def test_invalid_token_answer_refreshes_and_sends_once_more(zns: FakeZns) -> None:
    url = zns.url(PHONE)
    assert send(url)[0]
    zns.expire_tokens()  # Zalo revokes the access token before its expiry
    ok, p = send(url)
    assert ok and p.provider_id == zns.sent[-1]["msg_id"]
    assert len(zns.refreshes) == 2
    assert zns.sent[-2].get("msg_id") is None  # refused with -124, then sent again


def test_a_second_invalid_token_answer_is_not_retried_again(zns: FakeZns) -> None:
    url = zns.url(PHONE)
    assert send(url)[0]
    zns.fail_next(-124, times=2)
    before = len(zns.sent)
    ok, p = send(url)
    assert not ok and not p.permanent
    assert len(zns.sent) - before == 2


def test_a_refused_refresh_token_is_permanent(zns: FakeZns) -> None:
    ok, p = send(zns.url(PHONE, refresh="rt-spent-long-ago"))
    assert not ok and p.permanent
    assert zns.sent == []


def test_a_new_refresh_token_from_the_operator_replaces_the_stored_one(zns: FakeZns) -> None:
    assert send(zns.url(PHONE))[0]
    zns.refresh_token = "rt-after-reauthorizing"  # the app was authorized again
    zns.expire_tokens()
    ok, _ = send(zns.url(PHONE, refresh="rt-after-reauthorizing"))
    assert ok
    assert zns.refreshes[-1]["refresh_token"] == "rt-after-reauthorizing"


def test_two_senders_at_once_refresh_once(zns: FakeZns) -> None:
    url = zns.url(PHONE)
    start = threading.Barrier(2)
    results: list[bool] = []

    def run() -> None:
        p = plugin(url)
        start.wait()
        results.append(p.notify(body=BODY))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=20)
    assert results == [True, True]
    assert len(zns.refreshes) == 1


def test_logs_carry_no_client_data_nor_secrets(
    zns: FakeZns, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    first = zns.refresh_token
    url = zns.url(PHONE)
    assert send(url)[0]
    zns.fail_next(-118)
    assert not send(url)[0]
    send(zns.url("12345"))
    text = caplog.text
    assert "outbox-17" in text and "-118" in text
    for secret in [
        "912345678",
        *PARAMS.values(),
        first,
        zns.refresh_token,
        zns.app_secret,
        zns.sent[0]["access_token"],
        "12345",
    ]:
        assert secret not in text


# ------------------------------------------------------------------------------ Apprise URL


def test_apprise_instantiates_our_class_after_register(zns: FakeZns) -> None:
    try:
        from referrals.notifiers.plugins import register

        register()
    except ImportError:  # esms.py (written by another helper) not there yet
        NotificationManager().add(NotifyZaloZNS, force=True)
    instance = Apprise.instantiate(zns.url(PHONE))
    assert isinstance(instance, NotifyZaloZNS)


def test_private_url_hides_every_secret_and_the_url_round_trips(zns: FakeZns) -> None:
    p = plugin(zns.url(PHONE, mode="development"))
    private = p.url(privacy=True)
    for secret in (zns.app_secret, zns.refresh_token, zns.oa_secret, "84912345678"):
        assert secret not in private
    again = plugin(p.url())
    assert again.url() == p.url()
    assert (again.secret, again.refresh, again.oa_secret, again.mode) == (
        zns.app_secret,
        zns.refresh_token,
        zns.oa_secret,
        "development",
    )
    assert (again.api, again.oauth, again.targets) == (zns.base_url, zns.base_url, ["84912345678"])
    assert again.url_identifier == p.url_identifier and len(again) == 1


def test_default_endpoints_are_zalos() -> None:
    p = plugin("zns://4318290150613462311/0912345678?secret=s&refresh=r")
    assert p.api == "https://business.openapi.zalo.me"
    assert p.oauth == "https://oauth.zaloapp.com"
    assert "api=" not in p.url() and "oauth=" not in p.url()


@pytest.mark.parametrize(
    "url",
    [
        "zns://notdigits/0912345678?secret=s&refresh=r",
        "zns://4318290150613462311/0912345678?refresh=r",
        "zns://4318290150613462311/0912345678?secret=s",
        "zns://4318290150613462311/0912345678?secret=s&refresh=r&mode=production",
    ],
)
def test_incomplete_urls_are_refused(url: str) -> None:
    assert Apprise.instantiate(url) is None or not isinstance(
        Apprise.instantiate(url), NotifyZaloZNS
    )
    results = NotifyZaloZNS.parse_url(url)
    assert results is not None
    with pytest.raises(TypeError):
        NotifyZaloZNS(**results)


# -------------------------------------------------------------------------------- receipts


def receipts(p: NotifyZaloZNS, headers: dict[str, str], body: bytes, **kw: object) -> list:
    args: dict = {"method": "POST", "query": {}, "headers": headers, "body": body}
    args["now"] = kw.get("now", dt.datetime.now(dt.UTC))
    if "method" in kw:
        args["method"] = kw["method"]
    return p.read_receipts(**args)


def test_a_genuine_delivery_event_gives_its_receipt(zns: FakeZns) -> None:
    ok, p = send(zns.url(PHONE))
    assert ok
    delivered = dt.datetime(2026, 3, 2, 8, 15, 30, 250000, tzinfo=dt.UTC)
    headers, body = zns.delivery_event(p.provider_id or "", delivered_at=delivered)
    [receipt] = receipts(plugin(zns.url(PHONE), None), headers, body)
    assert receipt.provider_id == p.provider_id
    assert receipt.delivered and receipt.reason is None
    assert receipt.at == delivered
    assert receipt.tracking_id == "outbox-17"


def test_other_events_give_no_receipt(zns: FakeZns) -> None:
    headers, body = zns.delivery_event("abc", event_name="user_seen_message")
    assert receipts(plugin(zns.url(PHONE)), headers, body) == []


def test_a_forged_signature_is_refused(zns: FakeZns) -> None:
    headers, body = zns.delivery_event("abc", oa_secret="not-the-oa-secret")
    with pytest.raises(ReceiptRefused) as refused:
        receipts(plugin(zns.url(PHONE)), headers, body)
    assert refused.value.status == 403


def test_a_changed_body_is_refused(zns: FakeZns) -> None:
    headers, body = zns.delivery_event("abc")
    with pytest.raises(ReceiptRefused) as refused:
        receipts(plugin(zns.url(PHONE)), headers, body.replace(b"abc", b"abd"))
    assert refused.value.status == 403


def test_an_unsigned_call_is_refused(zns: FakeZns) -> None:
    _, body = zns.delivery_event("abc")
    with pytest.raises(ReceiptRefused) as refused:
        receipts(plugin(zns.url(PHONE)), {"Content-Type": "application/json"}, body)
    assert refused.value.status == 403


def test_another_apps_event_is_refused(zns: FakeZns) -> None:
    headers, body = zns.delivery_event("abc")
    other = plugin(zns.url(PHONE).replace(zns.app_id, "1111111111", 1))
    with pytest.raises(ReceiptRefused) as refused:
        receipts(other, headers, body)
    assert refused.value.status == 403


@pytest.mark.parametrize("minutes", [-16, 16])
def test_a_stale_event_is_refused(zns: FakeZns, minutes: int) -> None:
    now = dt.datetime.now(dt.UTC)
    headers, body = zns.delivery_event("abc", timestamp=now + dt.timedelta(minutes=minutes))
    with pytest.raises(ReceiptRefused) as refused:
        receipts(plugin(zns.url(PHONE)), headers, body, now=now)
    assert refused.value.status == 403
    fresh_headers, fresh_body = zns.delivery_event("abc", timestamp=now - dt.timedelta(minutes=14))
    assert len(receipts(plugin(zns.url(PHONE)), fresh_headers, fresh_body, now=now)) == 1


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[1]", b'{"event_name": "user_received_message"}', b'{"app_id": "1"}'],
)
def test_a_malformed_body_is_refused_with_400(zns: FakeZns, body: bytes) -> None:
    with pytest.raises(ReceiptRefused) as refused:
        receipts(plugin(zns.url(PHONE)), zns.sign(body, "0"), body)
    assert refused.value.status == 400


def test_a_signed_delivery_event_without_msg_id_is_refused_with_400(zns: FakeZns) -> None:
    stamp = str(int(dt.datetime.now(dt.UTC).timestamp() * 1000))
    event = {"app_id": zns.app_id, "event_name": "user_received_message", "timestamp": stamp}
    body = json.dumps({**event, "message": {}}).encode()
    with pytest.raises(ReceiptRefused) as refused:
        receipts(plugin(zns.url(PHONE)), zns.sign(body, stamp), body)
    assert refused.value.status == 400


def test_receipts_need_the_oa_secret_and_a_post(zns: FakeZns) -> None:
    headers, body = zns.delivery_event("abc")
    no_secret = plugin(zns.url(PHONE).replace(f"oa_secret={zns.oa_secret}&", ""))
    with pytest.raises(ReceiptRefused):
        receipts(no_secret, headers, body)
    with pytest.raises(ReceiptRefused):
        receipts(plugin(zns.url(PHONE)), headers, body, method="GET")
