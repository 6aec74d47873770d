"""Zalo Notification Service (ZNS): an approved template, with parameters, to a phone on Zalo.

    zns://{app_id}/{phone}?secret={app secret}&refresh={first refresh token}&oa_secret={OA secret}
        [&mode=development][&api=http://127.0.0.1:PORT][&oauth=http://127.0.0.1:PORT]

The body given to `notify()` is JSON, `{"template_id": "...", "template_data": {...}}`: ZNS sends
no free text, only a template Zalo approved, filled with its parameters (the link is one of them,
bound to the template's button). Anything else is refused at once (`permanent`).

What Zalo documents, and what this module does with it:

- Send: `POST https://business.openapi.zalo.me/message/template`, header `access_token`, JSON body
  `phone` (84..., the country code instead of the leading 0), `template_id`, `template_data`,
  `tracking_id` (ours, the outbox id), and `mode: "development"` to send only to the app's or
  the OA's admins while testing. The answer is `{"error": 0, "message": "Success", "data":
  {"msg_id", "sent_time", "quota": {"dailyQuota", "remainingQuota"}}}`; `msg_id` becomes
  `provider_id`. Any other `error` is looked up in `ERRORS` (Zalo's own table).
- Access token: `POST https://oauth.zaloapp.com/v4/oa/access_token`, header `secret_key: <app
  secret>`, form `refresh_token`, `app_id`, `grant_type=refresh_token`. The answer holds
  `access_token` (valid 25 hours), `refresh_token` (a new one: each is usable once, valid 3
  months) and `expires_in`. The pair lives in the TokenStore (`tokens()`) under `zns:{app_id}`,
  so every sender of a cluster uses the newest refresh token; the refresh runs inside
  `TokenStore.update`, so two senders never spend the same one.
- Delivery: Zalo POSTs `user_received_message` to the webhook registered for the app, with
  `app_id`, `timestamp` (ms), `message.msg_id`, `message.delivery_time` (ms) and
  `message.tracking_id`, signed in the header `X-ZEvent-Signature: mac=<hex>` where hex is
  sha256(app_id + raw body + timestamp + OA secret key). The OA secret key is not the app secret.

Sources (read 2026):
- Error table, Zalo Cloud's own guide: https://zalo.cloud/zns/guidelines/handle-error-code
  (codes -100 to -112 read there; the rest of the table is cut off in the copy available here,
  so the later wording is from the same table as reproduced by
  https://helpdesk.getfly.vn/web-version/interactive-blocks/questions-about-zns, in Zalo's order).
- Send fields and `mode: development` (a reseller documenting Zalo's fields one to one):
  https://docs.etelecom.vn/api-etelecom-english/api-integration/zalo-cloud/zalo-cloud-api/send-zns
- Token refresh (endpoint, `secret_key` header, form fields, 25 h / single use / 3 months):
  https://www.hexasync.vn/zalo-oa-api-huong-dan-cach-lay-access-token-tu-refresh-token/
- Webhook signature (the four parts, in order; OA secret key, not the app secret):
  https://hainh.me/zalo-api-php-webhook-callback-official-account.html , and Chatwoot's
  verifier (`"mac=" + sha256hex`): https://github.com/chatwoot/chatwoot
  (app/jobs/webhooks/zalo_events_job.rb).
- The official pages (https://developers.zalo.me/docs/zalo-notification-service/...) were not
  reachable from here; every shape above was checked against at least one of the sources named.

Not confirmed (see /work/notes/zns-readme.md): the numbers of codes after -112 (only their
wording and order, and -118 from integrations' code), a rate-limit error code (none found: only
HTTP 429 is honoured), the error code of a refused refresh (any error answer counts as refused),
and whether Zalo re-sends a webhook body with its original timestamp.

Nothing a client wrote is logged: log lines name error codes and our tracking id only.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from typing import Any

import requests
from apprise.common import NotifyType
from apprise.locale import gettext_lazy as _
from apprise.plugins.base import NotifyBase
from apprise.url import PrivacyMode
from apprise.utils.parse import parse_phone_no

from referrals.notifiers.plugins.base import (
    Outcome,
    Receipt,
    ReceiptRefused,
    national_mobile,
    tokens,
)

DEFAULT_API = "https://business.openapi.zalo.me"
DEFAULT_OAUTH = "https://oauth.zaloapp.com"

# Zalo's answer to a send with an access token it does not accept (expired, revoked): refresh
# the token and send once more.
INVALID_TOKEN = -124

# Error code -> (Zalo's wording, permanent?). Permanent: sending the same message again cannot
# succeed (the number, the template, the OA, the balance must change first), so the engine
# moves on to the contact's next channel. Not permanent: Zalo's side or a passing state.
ERRORS: dict[int, tuple[str, bool]] = {
    # Read on https://zalo.cloud/zns/guidelines/handle-error-code
    -100: ("Unknown error", False),  # "vui lòng thử lại sau" (please try again later)
    -101: ("Application invalid", True),
    -102: ("Application not existed", True),
    -103: ("Application not activated", True),
    -104: ("App secret key invalid", True),
    -105: ("Application not link to any OA", True),
    -106: ("Method unsupported", True),
    -107: ("Message ID invalid", True),
    -108: ("Phone number invalid", True),
    -109: ("Template ID invalid", True),
    -110: ("Zalo version unsupported", True),  # the user must update Zalo first
    -111: ("Template data empty", True),
    -112: ("Template data invalid", True),
    # Wording from the same table in Zalo's order (getfly's copy); the numbers -113..-117 are
    # counted back from -118, which integrations' code confirms. Not confirmed one by one.
    -113: ("Button invalid", True),
    -114: (
        "User is inactive, or reject the message, or using an outdated Zalo version, "
        "or other internal errors",
        True,
    ),
    -115: ("Out of quota", True),  # "Tài khoản ZNS không đủ số dư": no balance left
    -116: ("Text invalid", True),
    -117: ("OA or App does not have permission to access this template", True),
    -118: ("Zalo account not existed", True),  # the phone has no Zalo account
    -119: ("Account can not receive ZNS", True),
    INVALID_TOKEN: ("Access token invalid", False),  # refreshed and sent once more
}

# How long to wait after an HTTP 429 that names no Retry-After. Zalo documents no rate-limit
# answer for ZNS (only daily quotas, which are the `ERRORS` above); a minute lets a burst drain
# without holding a referral back noticeably.
DEFAULT_RETRY_AFTER = 60.0

# An access token that expires within this is refreshed before use rather than after a refusal.
EARLY_REFRESH = 60.0

# Zalo's access token lives 25 hours; used when an answer names no `expires_in`.
DEFAULT_EXPIRES_IN = 90000

# Callbacks whose signed timestamp is further than this from now are refused. The signature
# covers the timestamp, so a captured genuine callback can only be replayed within this window;
# 15 minutes leaves room for clock skew and for Zalo's first re-sends after a failed delivery.
MAX_CALLBACK_AGE = dt.timedelta(minutes=15)


class _RefreshRefused(Exception):
    """Zalo refused the refresh token (spent, expired or not this app's): an operator must
    authorize the app again and give a new one."""


class _RefreshFailed(Exception):
    """The refresh could not be done now (network, Zalo's server): try later."""


class _RateLimited(Exception):
    def __init__(self, seconds: float) -> None:
        super().__init__(seconds)
        self.seconds = seconds


def vn_phone(raw: str) -> str | None:
    """The number as ZNS wants it, 84 and the national number without its 0; None if it is not a
    Vietnamese mobile number."""
    national = national_mobile(raw)
    return "84" + national if national else None


def _ms_to_datetime(value: Any) -> dt.datetime | None:
    try:
        return dt.datetime.fromtimestamp(int(value) / 1000, dt.UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return None


class NotifyZaloZNS(Outcome, NotifyBase):
    """A wrapper for Zalo Notification Service (ZNS) template messages."""

    # (The type: ignore comments below: Apprise types these class attributes as None or ().)

    service_name = "Zalo ZNS"  # type: ignore[assignment]
    service_url = "https://zalo.cloud/zns"  # type: ignore[assignment]
    secure_protocol = "zns"  # type: ignore[assignment]
    setup_url = "https://zalo.cloud/zns/guidelines/handle-error-code"  # type: ignore[assignment]

    # ZNS carries no title; a title given is ignored (kept apart so it never joins the JSON).
    title_maxlen = 250
    body_maxlen = 32768

    # The engine makes one instance per message and paces the queue itself: no sleeping here
    # between the token refresh and the send.
    request_rate_per_sec = 0

    templates = ("{schema}://{app_id}/{targets}",)  # type: ignore[assignment]

    template_tokens = dict(  # noqa: RUF012 (Apprise's declarative style)
        NotifyBase.template_tokens,
        **{
            "app_id": {
                "name": _("App ID"),
                "type": "string",
                "regex": (r"^[0-9]+$", ""),
                "required": True,
            },
            "target_phone": {
                "name": _("Target Phone No"),
                "type": "string",
                "regex": (r"^[0-9\s)(+-]+$", "i"),
                "map_to": "targets",
            },
            "targets": {
                "name": _("Targets"),
                "type": "list:string",
                "required": True,
            },
        },
    )

    template_args = dict(  # noqa: RUF012
        NotifyBase.template_args,
        **{
            "secret": {
                "name": _("App Secret"),
                "type": "string",
                "private": True,
                "required": True,
            },
            "refresh": {
                "name": _("Refresh Token"),
                "type": "string",
                "private": True,
                "required": True,
            },
            "oa_secret": {
                "name": _("OA Secret Key"),
                "type": "string",
                "private": True,
            },
            "mode": {
                "name": _("Mode"),
                "type": "choice:string",
                "values": ("development",),
            },
            "api": {
                "name": _("API Endpoint"),
                "type": "string",
                "default": DEFAULT_API,
            },
            "oauth": {
                "name": _("OAuth Endpoint"),
                "type": "string",
                "default": DEFAULT_OAUTH,
            },
            "to": {
                "alias_of": "targets",
            },
        },
    )

    def __init__(
        self,
        app_id: str | None = None,
        targets: Any = None,
        secret: str | None = None,
        refresh: str | None = None,
        oa_secret: str | None = None,
        mode: str | None = None,
        api: str | None = None,
        oauth: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)

        self.zalo_app_id = (app_id or "").strip()
        if not self.zalo_app_id.isdigit():
            msg = "A Zalo app id (digits) must be given."
            self.logger.warning(msg)
            raise TypeError(msg)

        self.secret = (secret or "").strip()
        self.refresh = (refresh or "").strip()
        if not (self.secret and self.refresh):
            msg = "A Zalo ZNS URL needs the app secret (secret=) and a refresh token (refresh=)."
            self.logger.warning(msg)
            raise TypeError(msg)

        self.oa_secret = (oa_secret or "").strip() or None
        self.mode = (mode or "").strip().lower() or None
        if self.mode not in (None, "development"):
            msg = "The ZNS mode can only be 'development'."
            self.logger.warning(msg)
            raise TypeError(msg)

        self.api = (api or DEFAULT_API).rstrip("/")
        self.oauth = (oauth or DEFAULT_OAUTH).rstrip("/")

        self.targets: list[str] = []
        self.invalid_targets = 0
        for target in parse_phone_no(targets):
            phone = vn_phone(target)
            if phone is None:
                self.invalid_targets += 1  # counted, never logged: it is a client's number
                continue
            self.targets.append(phone)
        if self.invalid_targets:
            self.logger.warning(f"Dropped {self.invalid_targets} invalid ZNS phone number(s).")

    # ----------------------------------------------------------------------------------- send

    @property
    def token_key(self) -> str:
        """The TokenStore key of this app's access and refresh tokens."""
        return f"zns:{self.zalo_app_id}"

    def send(
        self,
        body: str,
        title: str = "",
        notify_type: NotifyType = NotifyType.INFO,
        **kwargs: Any,
    ) -> bool:
        """Send the template in `body` to every target; set provider_id/permanent/retry_after."""
        self.provider_id = None
        self.permanent = False
        self.retry_after = None

        message = self._message(body)
        if message is None:
            self.permanent = True
            self.logger.warning(
                f"ZNS body is not a template message (tracking={self.tracking_id})."
            )
            return False

        if not self.targets:
            self.permanent = True  # the only number given is not a Vietnamese number
            self.logger.warning(f"No valid ZNS phone number (tracking={self.tracking_id}).")
            return False

        results = [self._send_one(phone, *message) for phone in self.targets]
        return all(results)

    @staticmethod
    def _message(body: str) -> tuple[str, dict[str, Any]] | None:
        """(template_id, template_data) from the JSON body, or None if it is not that."""
        try:
            value = json.loads(body)
        except (TypeError, ValueError):
            return None
        if not isinstance(value, dict):
            return None
        template_id, data = value.get("template_id"), value.get("template_data")
        if isinstance(template_id, bool) or not isinstance(template_id, str | int):
            return None
        if not str(template_id).strip() or not isinstance(data, dict):
            return None
        if not all(isinstance(k, str) for k in data):
            return None
        return str(template_id).strip(), data

    def _send_one(self, phone: str, template_id: str, data: dict[str, Any]) -> bool:
        payload: dict[str, Any] = {
            "phone": phone,
            "template_id": template_id,
            "template_data": data,
        }
        if self.tracking_id:
            payload["tracking_id"] = self.tracking_id
        if self.mode:
            payload["mode"] = self.mode

        token = self._access_token()
        if token is None:
            return False
        answer = self._post_send(token, payload)
        if answer is not None and answer.get("error") == INVALID_TOKEN:
            # Revoked or expired early: refresh (unless another sender already did) and retry once.
            self.logger.info(f"ZNS access token refused; refreshing (tracking={self.tracking_id}).")
            token = self._access_token(stale=token)
            if token is None:
                return False
            answer = self._post_send(token, payload)
        if answer is None:
            return False
        return self._read_answer(answer)

    def _post_send(self, token: str, payload: dict[str, Any]) -> dict[str, Any] | None:
        """Zalo's JSON answer; None (with retry_after/permanent set) when there is none."""
        headers = {
            "User-Agent": self.app_id,
            "Content-Type": "application/json",
            "access_token": token,
        }
        self.throttle()
        try:
            r = requests.post(
                f"{self.api}/message/template",
                data=json.dumps(payload, ensure_ascii=False).encode("utf-8"),
                headers=headers,
                verify=self.verify_certificate,
                timeout=self.request_timeout,
                allow_redirects=False,
            )
        except requests.RequestException as e:
            self.logger.warning(
                f"ZNS send failed: {type(e).__name__} (tracking={self.tracking_id})."
            )
            return None

        if r.status_code == 429:
            self.retry_after = self._retry_after(r)
            self.logger.warning(
                f"ZNS rate limited: retry in {self.retry_after:.0f}s (tracking={self.tracking_id})."
            )
            return None
        if r.status_code == 401:
            return {"error": INVALID_TOKEN}
        try:
            answer = r.json()
        except ValueError:
            answer = None
        if r.status_code != 200 or not isinstance(answer, dict):
            self.logger.warning(
                f"ZNS send failed: HTTP {r.status_code} (tracking={self.tracking_id})."
            )
            return None
        return answer

    def _read_answer(self, answer: dict[str, Any]) -> bool:
        code = answer.get("error")
        if code == 0:
            data = answer.get("data") if isinstance(answer.get("data"), dict) else {}
            msg_id = data.get("msg_id") if data else None
            self.provider_id = str(msg_id) if msg_id else None
            self.logger.info(f"ZNS sent: msg_id={self.provider_id} (tracking={self.tracking_id}).")
            return True

        try:
            number = int(code)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            number = None
        if number is None:
            meaning, permanent = "no error code", False
        else:
            meaning, permanent = ERRORS.get(number, ("unlisted error", False))
        # An unlisted code is retried: Zalo's own advice for an unknown error is to try again,
        # and the engine gives up after its attempts anyway.
        self.permanent = self.permanent or permanent
        self.logger.warning(
            f"ZNS refused: error={code} ({meaning}), permanent={permanent} "
            f"(tracking={self.tracking_id})."
        )
        return False

    @staticmethod
    def _retry_after(r: requests.Response) -> float:
        try:
            seconds = float(r.headers.get("Retry-After", ""))
        except ValueError:
            return DEFAULT_RETRY_AFTER
        return seconds if seconds > 0 else DEFAULT_RETRY_AFTER

    # ----------------------------------------------------------------------------- tokens

    def _access_token(self, stale: str | None = None) -> str | None:
        """A usable access token, refreshed through the TokenStore when missing, expiring, or
        equal to `stale` (the one Zalo just refused). None: permanent/retry_after are set."""
        store = tokens()
        current = store.load(self.token_key)
        if stale is None and self._fresh(current):
            return str(current["access_token"])  # type: ignore[index]

        def change(value: dict[str, Any] | None) -> dict[str, Any] | None:
            if self._fresh(value) and value is not None and value.get("access_token") != stale:
                return None  # another sender refreshed while we waited for the lock
            return self._refresh(self._refresh_token(value))

        try:
            stored = store.update(self.token_key, change)
        except _RefreshRefused:
            self.permanent = True
            self.logger.warning(
                "ZNS refresh token refused: authorize the app again and give a new one "
                f"(tracking={self.tracking_id})."
            )
            return None
        except _RateLimited as e:
            self.retry_after = e.seconds
            self.logger.warning(f"ZNS token refresh rate limited (tracking={self.tracking_id}).")
            return None
        except _RefreshFailed as e:
            self.logger.warning(f"ZNS token refresh failed: {e} (tracking={self.tracking_id}).")
            return None
        if not stored or not stored.get("access_token"):
            return None
        return str(stored["access_token"])

    @staticmethod
    def _fresh(value: Mapping[str, Any] | None) -> bool:
        if not value or not value.get("access_token"):
            return False
        try:
            expires_at = float(value.get("expires_at", 0))
        except (TypeError, ValueError):
            return False
        return expires_at - EARLY_REFRESH > time.time()

    def _seed(self) -> str:
        """A fingerprint of the URL's refresh token: when the operator gives a new one (after
        authorizing the app again), it differs from the stored one's and the URL's is used."""
        return hashlib.sha256(self.refresh.encode("utf-8")).hexdigest()

    def _refresh_token(self, value: Mapping[str, Any] | None) -> str:
        if value and value.get("refresh_token") and value.get("seed") == self._seed():
            return str(value["refresh_token"])  # the rotated one: the URL's is spent
        return self.refresh

    def _refresh(self, refresh_token: str) -> dict[str, Any]:
        """Spend `refresh_token` for a new access token and refresh token (runs under the
        TokenStore's lock)."""
        self.throttle()
        try:
            r = requests.post(
                f"{self.oauth}/v4/oa/access_token",
                data={
                    "refresh_token": refresh_token,
                    "app_id": self.zalo_app_id,
                    "grant_type": "refresh_token",
                },
                headers={"User-Agent": self.app_id, "secret_key": self.secret},
                verify=self.verify_certificate,
                timeout=self.request_timeout,
                allow_redirects=False,
            )
        except requests.RequestException as e:
            raise _RefreshFailed(type(e).__name__) from None
        if r.status_code == 429:
            raise _RateLimited(self._retry_after(r))
        if r.status_code >= 500:
            raise _RefreshFailed(f"HTTP {r.status_code}")
        try:
            answer = r.json()
        except ValueError:
            raise _RefreshFailed(f"HTTP {r.status_code}, not JSON") from None
        if not isinstance(answer, dict):
            raise _RefreshFailed(f"HTTP {r.status_code}, not an object")
        if not answer.get("access_token") or not answer.get("refresh_token"):
            # Zalo answers `{"error": <negative>, "error_name", "error_description"}` here.
            self.logger.warning(f"ZNS token refresh refused: error={answer.get('error')}.")
            raise _RefreshRefused()
        try:
            expires_in = int(answer.get("expires_in") or DEFAULT_EXPIRES_IN)  # a string at Zalo
        except (TypeError, ValueError):
            expires_in = DEFAULT_EXPIRES_IN
        return {
            "access_token": str(answer["access_token"]),
            "refresh_token": str(answer["refresh_token"]),
            "expires_at": time.time() + expires_in,
            "seed": self._seed(),
        }

    # --------------------------------------------------------------------------- receipts

    def read_receipts(
        self,
        *,
        method: str,
        query: Mapping[str, str],
        headers: Mapping[str, str],
        body: bytes,
        now: dt.datetime,
    ) -> list[Receipt]:
        """The delivery receipt in one Zalo webhook call (`user_received_message`); other
        events give none. Refuses (ReceiptRefused) a call that is not signed with our OA secret
        for our app, is stale, or is not of Zalo's shape."""
        if method.upper() != "POST":
            raise ReceiptRefused("Zalo posts its events", status=405)
        if not self.oa_secret:
            raise ReceiptRefused("no oa_secret configured for this channel", status=403)
        try:
            event = json.loads(body)
        except (TypeError, ValueError):
            raise ReceiptRefused("body is not JSON", status=400) from None
        if not isinstance(event, dict):
            raise ReceiptRefused("body is not a JSON object", status=400)
        app_id, timestamp = event.get("app_id"), event.get("timestamp")
        if not isinstance(app_id, str | int) or not isinstance(timestamp, str | int):
            raise ReceiptRefused("app_id or timestamp missing", status=400)
        sent_at = _ms_to_datetime(timestamp)
        if sent_at is None:
            raise ReceiptRefused("timestamp is not milliseconds", status=400)

        signature = ""
        for name, value in headers.items():
            if name.lower() == "x-zevent-signature":
                signature = value.strip()
        if signature.lower().startswith("mac="):
            signature = signature[4:].strip()
        signed = str(app_id).encode() + body + str(timestamp).encode() + self.oa_secret.encode()
        expected = hashlib.sha256(signed).hexdigest()
        if not hmac.compare_digest(signature.lower().encode(), expected.encode()):
            raise ReceiptRefused("bad X-ZEvent-Signature", status=403)
        if str(app_id) != self.zalo_app_id:
            raise ReceiptRefused("event of another app", status=403)
        if abs(now - sent_at) > MAX_CALLBACK_AGE:
            raise ReceiptRefused("stale timestamp", status=403)

        if event.get("event_name") != "user_received_message":
            return []
        message = event.get("message")
        if not isinstance(message, dict) or not message.get("msg_id"):
            raise ReceiptRefused("message.msg_id missing", status=400)
        tracking = message.get("tracking_id")
        return [
            Receipt(
                provider_id=str(message["msg_id"]),
                delivered=True,
                at=_ms_to_datetime(message.get("delivery_time")) or sent_at,
                tracking_id=str(tracking) if tracking else None,
            )
        ]

    # -------------------------------------------------------------------------------- URL

    def url(self, privacy: bool = False, *args: Any, **kwargs: Any) -> str:
        """The URL of this instance; with privacy, secrets are masked and numbers shortened."""
        params: dict[str, Any] = {
            "secret": self.pprint(self.secret, privacy, mode=PrivacyMode.Secret, quote=False),
            "refresh": self.pprint(self.refresh, privacy, mode=PrivacyMode.Secret, quote=False),
        }
        if self.oa_secret:
            params["oa_secret"] = self.pprint(
                self.oa_secret, privacy, mode=PrivacyMode.Secret, quote=False
            )
        if self.mode:
            params["mode"] = self.mode
        if self.api != DEFAULT_API:
            params["api"] = self.api
        if self.oauth != DEFAULT_OAUTH:
            params["oauth"] = self.oauth
        params.update(self.url_parameters(*args, privacy=privacy, **kwargs))
        query = self.urlencode(params, safe="*")  # "*": the masks stay readable
        targets = "/".join(
            self.pprint(x, privacy, mode=PrivacyMode.Tail, safe="") for x in self.targets
        )
        return f"{self.secure_protocol}://{self.zalo_app_id}/{targets}?{query}"

    @property
    def url_identifier(self) -> tuple[str, ...]:  # type: ignore[override]
        """What makes this URL's account unique (targets excluded)."""
        return (self.secure_protocol, self.zalo_app_id, self.secret, self.api)

    def __len__(self) -> int:
        """One send per target."""
        return max(1, len(self.targets))

    @staticmethod
    def parse_url(url: str) -> dict[str, Any] | None:  # type: ignore[override]
        """The arguments to rebuild an instance from its URL."""
        results = NotifyBase.parse_url(url, verify_host=False)
        if not results:
            return results
        qsd = results["qsd"]
        results["app_id"] = NotifyZaloZNS.unquote(results["host"])
        results["targets"] = NotifyZaloZNS.split_path(results["fullpath"])
        if qsd.get("to"):
            results["targets"] += parse_phone_no(NotifyZaloZNS.unquote(qsd["to"]))
        for name in ("secret", "refresh", "oa_secret", "mode", "api", "oauth"):
            if qsd.get(name):
                results[name] = NotifyZaloZNS.unquote(qsd[name])
        return dict(results)
