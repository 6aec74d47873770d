"""eSMS.vn brandname SMS (customer-care type) as an Apprise plugin, with signed delivery receipts.

URL::

    esms://{apikey}:{secretkey}@{brandname}/{phone}[/{phone}...]
        ?unicode=yes&sandbox=no&callback=https://office.example/receipts/sms
        [&campaign=...][&api=http://127.0.0.1:PORT]

Everything below is taken from eSMS's published documentation (developers.esms.vn, read through
stored copies; the pages named are the English ones, the Vietnamese ones say the same):

- Send: ``POST https://rest.esms.vn/MainService.svc/json/SendMultipleMessage_V4_post_json/``,
  JSON body ``ApiKey, SecretKey, Phone, Content, Brandname, SmsType ("2" = customer care),
  IsUnicode ("1"/"0", default 0), Sandbox ("1" = validate only, not sent nor charged),
  RequestId, CallbackUrl, campaignid``; one request per SMS. Answer: JSON ``CodeResult``
  ("100" = accepted), ``SMSID``, ``ErrorMessage``.
  https://developers.esms.vn/en/esms-api/send-sms-api/send-otp-customer-care-message
- RequestId "to block duplicates ... Maximum length 50 characters. Each RequestId passed is
  valid for blocking for 24 hours" (said on the POST TEXT variant of the same send):
  https://developers.esms.vn/en/esms-api/other-apis/send-customer-care-message-using-post-text
- Error codes (``ERRORS`` below): https://developers.esms.vn/en/esms-api/table-of-error-codes
  ("100 only confirms that the request has been successfully sent to the ESMS system; it does
  not indicate whether the message has been delivered ... provide the CallbackUrl").
- Delivery callback: "eSMS will callback the status to the customer's hook via HTTP GET",
  retried at most 5 times when our URL times out; query fields ``SMSID, SendFailed, SendStatus,
  SendSuccess, TotalPrice, TotalReceiver, TotalSent, RequestId, TypeId, telcoid, phonenumber,
  switchsmsid``; ``SendStatus`` 1 pending approval, 2 waiting to send, 4 reject, 5 sent
  (processed; the counts say how many reached the phone), 7 sent to the telco, waiting for its
  report. The documented sample for a customer-care SMS is ``SendStatus=5&SendSuccess=0&
  SendFailed=2``: status 5 is "done", the counts carry the outcome.
  https://developers.esms.vn/en/esms-api/callback-url
- Status by SMSID (last 7 days): https://developers.esms.vn/en/esms-api/retrive-and-register-functions/get-sms-by-smsid
- Phone numbers appear in the docs' samples in the national form ``0901888484``; we send that.

eSMS does not sign its callbacks (the callback page names no signature, header or secret), so
we sign the CallbackUrl we hand it: ``?ref=<tracking id>&t=<unix time>&sig=<hex HMAC-SHA256 of
"ref.t" under the SecretKey>``; ``read_receipts`` recomputes it. The signature proves the URL
is ours, not that the status fields came from eSMS: the engine should accept a receipt only for
the message whose tracking id is ``ref`` (and, when it has one, whose SMSID is ``provider_id``).

Not confirmed by the docs (see /work/notes/esms-readme.md): the answer to a duplicate RequestId
(code 124) beyond its code, whether it carries the first SMSID; any rate limit or "busy" code
(none is documented: HTTP 429 and 5xx are handled defensively); how eSMS appends its fields to a
CallbackUrl that already has a query (we accept "&" and also a naive second "?"); the longest
delay before a report (none documented: we accept 72 h); error codes past 301 (the stored copy
of the table ends there).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import uuid
from collections.abc import Callable, Mapping
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import requests
from apprise.common import NotifyType
from apprise.locale import gettext_lazy as _
from apprise.plugins.base import NotifyBase
from apprise.url import PrivacyMode
from apprise.utils.parse import parse_bool, parse_phone_no, validate_regex

from referrals.notifiers.plugins.base import Outcome, Receipt, ReceiptRefused, national_mobile
from referrals.notifiers.sms import encoding, unaccent

DEFAULT_API = "https://rest.esms.vn"
SEND_PATH = "/MainService.svc/json/SendMultipleMessage_V4_post_json/"
SMS_TYPE_CUSTOMER_CARE = "2"
ACCEPTED = "100"
DUPLICATE = "124"

# CodeResult -> (the documentation's meaning, permanent?). "Permanent": sending the same message
# again cannot succeed until someone changes the account, the brandname, the template or the
# number, so the engine moves on to the contact's next channel. Only the codes the table says
# apply to "All types" or to "Customer Care Message" are here; a code not in the table is
# treated as temporary (we cannot tell, and a retry costs nothing when eSMS refused).
# https://developers.esms.vn/en/esms-api/table-of-error-codes
ERRORS: dict[str, tuple[str, bool]] = {
    "99": ("The phone number is blocked in the system", True),
    "101": ("Incorrect ApiKey or SecretKey", True),
    "102": ("No price list available", True),
    "103": ("Not enough balance to send message", True),
    "104": ("Brandname does not exist", True),
    "108": ("Phone number is not in correct format", True),
    "118": ("Unsupported message type", True),
    DUPLICATE: ("Duplicate RequestId", True),  # see _duplicate(): blocked for 24 h
    "140": ("IP is not whitelisted for sending messages", True),
    "146": ("Wrong customer care template", True),
    "177": ("The network is not registered", True),  # brandname not declared with that carrier
    "300": ("Missing message type", True),
    "301": ("Code of unsupported service", True),
}

# Callback SendStatus values (callback page). 5 is final; 4 is final (refused); 1, 2, 7 are not.
SEND_STATUS = {
    1: "pending approval",
    2: "waiting to send",
    4: "rejected by eSMS",
    5: "sent",
    7: "sent to the telco, waiting for its report",
}
PENDING_STATUSES = {1, 2, 7}
TELCOS = {
    "1": "Viettel",
    "2": "MobiFone",
    "3": "VinaPhone",
    "4": "Vietnamobile",
    "5": "Gtel",
    "6": "Itel",
    "7": "Reddi",
}

# eSMS documents no report deadline (nor a rate limit). Carriers keep retrying an SMS to a phone
# that is off for up to a few days; a signed URL older than this is refused, so a leaked URL
# stops working after it. 72 h also outlasts eSMS's 24 h RequestId window.
RECEIPT_MAX_AGE = dt.timedelta(hours=72)
CLOCK_SKEW = dt.timedelta(minutes=5)  # a `t` this far ahead of our clock is still accepted
# eSMS documents no rate limit and no "busy" answer; if a proxy in front of it answers 429
# without Retry-After, wait a minute (one engine tick) before trying again.
DEFAULT_RETRY_AFTER = 60.0
REQUEST_ID_MAX = 50  # RequestId maximum length (POST TEXT page)


def vn_phone(value: str) -> str | None:
    """``+84 90 188 8484`` / ``84901888484`` / ``0901888484`` -> ``0901888484`` (the form eSMS's
    docs use); None if not a Vietnamese mobile number."""
    national = national_mobile(value)
    return "0" + national if national else None


def sign(secret: str, ref: str, t: int) -> str:
    """Hex HMAC-SHA256 of ``"ref.t"`` under ``secret``: the ``sig`` of our callback URLs."""
    return hmac.new(secret.encode(), f"{ref}.{t}".encode(), hashlib.sha256).hexdigest()


def signed_callback(base: str, secret: str, ref: str, t: int) -> str:
    """``base`` with ``ref``, ``t`` and ``sig`` added to its query (keeping its own)."""
    parts = urlsplit(base)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)]
    query = [(k, v) for k, v in query if k not in ("ref", "t", "sig")]
    query += [("ref", ref), ("t", str(t)), ("sig", sign(secret, ref, t))]
    return urlunsplit(parts._replace(query=urlencode(query)))


def _masked(text: str) -> str:
    """An answer's free text with digit runs (a phone number, perhaps) hidden."""
    return re.sub(r"\d{6,}", "…", text)[:200]


def _retry_after(value: str | None) -> float | None:
    """Retry-After as seconds (delta-seconds or an HTTP date), None if absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, (when - dt.datetime.now(dt.UTC)).total_seconds())


def _aware(now: dt.datetime) -> dt.datetime:
    return now if now.tzinfo is not None else now.replace(tzinfo=dt.UTC)


class NotifyESMS(Outcome, NotifyBase):
    """eSMS.vn brandname SMS, customer-care type (SmsType 2)."""

    # (The type: ignore comments below: Apprise types these class attributes as None or ().)

    service_name = "eSMS.vn"  # type: ignore[assignment]
    service_url = "https://esms.vn/"  # type: ignore[assignment]
    # Always HTTPS to eSMS; `api=` (tests) decides the transport, not the scheme.
    secure_protocol = "esms"  # type: ignore[assignment]
    setup_url = "https://developers.esms.vn/en/esms-api/send-sms-api/send-otp-customer-care-message"  # type: ignore[assignment]

    # eSMS documents no rate limit; one request per phone, a fifth of a second apart.
    request_rate_per_sec = 0.2
    # An SMS has no title: Apprise puts any title into the body.
    title_maxlen = 0

    receipts: ClassVar[bool] = True

    templates = ("{schema}://{apikey}:{secretkey}@{brandname}/{targets}",)  # type: ignore[assignment]

    template_tokens = dict(  # noqa: RUF012 (Apprise's declarative style)
        NotifyBase.template_tokens,
        **{
            # Half of the credential pair, sent in every request: kept out of shown URLs too.
            "apikey": {"name": _("API Key"), "type": "string", "required": True, "private": True},
            "secretkey": {
                "name": _("Secret Key"),
                "type": "string",
                "required": True,
                "private": True,
            },
            "brandname": {"name": _("Brandname"), "type": "string", "required": True},
            "target_phone": {
                "name": _("Target Phone No"),
                "type": "string",
                "prefix": "+",
                "regex": (r"^[0-9\s)(+-]+$", "i"),
                "map_to": "targets",
            },
            "targets": {"name": _("Targets"), "type": "list:string", "required": True},
        },
    )

    template_args = dict(  # noqa: RUF012
        NotifyBase.template_args,
        **{
            # Vietnamese needs Unicode: its letters (ă â đ ê ô ơ ư and the tone marks) are not in
            # the GSM 7-bit alphabet, and eSMS's default is IsUnicode=0. The engine sends
            # unaccented text (unicode=no; in GSM terms 160 characters a segment instead of 70,
            # so fewer segments) only when a contact asks for it. With unicode=yes a text that
            # needs no Unicode (an unaccented one) still goes as IsUnicode=0: it is billed by
            # the segments the engine counts (notifiers/sms.py), not at 70 characters a segment.
            "unicode": {"name": _("Unicode Characters"), "type": "bool", "default": True},
            "sandbox": {"name": _("Sandbox"), "type": "bool", "default": False},
            "callback": {"name": _("Callback URL"), "type": "string"},
            "campaign": {"name": _("Campaign"), "type": "string"},
            "api": {"name": _("API Base URL"), "type": "string"},
            "to": {"alias_of": "targets"},
        },
    )

    def __init__(
        self,
        apikey: str | None = None,
        secretkey: str | None = None,
        brandname: str | None = None,
        targets: Any = None,
        unicode: bool | None = None,
        sandbox: bool | None = None,
        callback: str | None = None,
        campaign: str | None = None,
        api: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.apikey = validate_regex(apikey)
        if not self.apikey:
            msg = "An eSMS API key is required."
            self.logger.warning(msg)
            raise TypeError(msg)
        self.secretkey = validate_regex(secretkey)
        if not self.secretkey:
            msg = "An eSMS secret key is required."
            self.logger.warning(msg)
            raise TypeError(msg)
        self.brandname = validate_regex(brandname)
        if not self.brandname:
            msg = "An eSMS brandname (registered with eSMS) is required."
            self.logger.warning(msg)
            raise TypeError(msg)

        self.unicode = (
            self.template_args["unicode"]["default"] if unicode is None else bool(unicode)
        )
        self.sandbox = bool(sandbox) if sandbox is not None else False
        self.callback = callback.strip() if isinstance(callback, str) and callback.strip() else None
        self.campaign = campaign.strip() if isinstance(campaign, str) and campaign.strip() else None
        api = api.strip().rstrip("/") if isinstance(api, str) else ""
        self.api = api or DEFAULT_API  # another base URL: the tests' loopback fake

        self.targets: list[str] = []
        self.invalid_targets: list[str] = []
        for target in parse_phone_no(targets or []):
            phone = vn_phone(target)
            if phone is None:
                # Never the number itself in a log line (the engine's privacy rule).
                self.logger.warning(
                    "eSMS: dropped a target that is not a Vietnamese mobile number."
                )
                self.invalid_targets.append(target)
            else:
                self.targets.append(phone)

        # Set by the engine before notify(), read by it afterwards (Outcome).
        self.tracking_id: str | None = None
        self.provider_id: str | None = None
        self.permanent = False
        self.retry_after: float | None = None
        # Beyond Outcome: why the last send failed (codes and the docs' meanings, nothing
        # personal), whether eSMS refused it as a duplicate RequestId, and every SMSID accepted.
        self.reason: str | None = None
        self.duplicate = False
        self.provider_ids: list[str] = []
        # The clock that stamps `t` on callback URLs; the engine's tests set their own.
        self.clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)

    # -- sending ---------------------------------------------------------------------------

    def request_id(self, ref: str, index: int) -> str:
        """RequestId for the index-th target: our tracking id (a crash-repeat is then refused
        by eSMS), suffixed when one message goes to several phones; hashed if over 50 chars."""
        value = ref if len(self.targets) <= 1 else f"{ref}.{index}"
        if len(value) > REQUEST_ID_MAX:
            value = "h" + hashlib.sha256(value.encode()).hexdigest()[: REQUEST_ID_MAX - 1]
        return value

    def payload(self, phone: str, body: str, ref: str, index: int) -> dict[str, str]:
        """The JSON body of one send, as the docs show it."""
        payload = {
            "ApiKey": self.apikey,
            "SecretKey": self.secretkey,
            "Phone": phone,
            "Content": body if self.unicode else unaccent(body),
            "Brandname": self.brandname,
            "SmsType": SMS_TYPE_CUSTOMER_CARE,
            "IsUnicode": "1" if self.unicode and encoding(body).name == "UCS-2" else "0",
            "Sandbox": "1" if self.sandbox else "0",
            "RequestId": self.request_id(ref, index),
        }
        if self.callback:
            t = int(_aware(self.clock()).timestamp())
            payload["CallbackUrl"] = signed_callback(self.callback, self.secretkey, ref, t)
        if self.campaign:
            payload["campaignid"] = self.campaign
        return payload

    def send(
        self, body: str, title: str = "", notify_type: NotifyType = NotifyType.INFO, **kwargs: Any
    ) -> bool:
        """One request per phone; sets provider_id / permanent / retry_after / reason."""
        self.provider_id, self.permanent, self.retry_after = None, False, None
        self.reason, self.duplicate, self.provider_ids = None, False, []
        ref = self.tracking_id or uuid.uuid4().hex
        if not self.targets:
            self.permanent = True
            self.reason = "eSMS: no Vietnamese mobile number to send to"
            self.logger.warning("%s (tracking=%s); permanent.", self.reason, ref)
            return False

        failures: list[bool] = []  # permanent? per failed target
        for index, phone in enumerate(self.targets, start=1):
            outcome = self._send_one(self.payload(phone, body, ref, index), ref)
            if outcome is not None:
                failures.append(outcome)
        if not failures:
            return True
        self.permanent = all(failures)
        return False

    def _send_one(self, payload: dict[str, str], ref: str) -> bool | None:
        """None when accepted; else whether the failure is permanent."""
        url = self.api + SEND_PATH
        headers = {
            "User-Agent": self.app_id,
            "Content-Type": "application/json",
            "Accept": "application/json",
        }
        self.throttle()
        try:
            r = requests.post(
                url,
                json=payload,
                headers=headers,
                verify=self.verify_certificate,
                timeout=self.request_timeout,
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            self.reason = f"eSMS: no answer ({type(exc).__name__})"
            self.logger.warning("%s (tracking=%s); will retry.", self.reason, ref)
            return False

        if r.status_code == 429:
            wait = _retry_after(r.headers.get("Retry-After"))
            wait = DEFAULT_RETRY_AFTER if wait is None else wait
            self.retry_after = max(self.retry_after or 0.0, wait)
            self.reason = f"eSMS asked us to slow down (HTTP 429); retry in {wait:.0f} s"
            self.logger.warning("%s (tracking=%s).", self.reason, ref)
            return False
        if r.status_code >= 500 or r.status_code in (408, 425):
            self.reason = f"eSMS is unavailable (HTTP {r.status_code})"
            self.logger.warning("%s (tracking=%s); will retry.", self.reason, ref)
            return False
        if r.status_code != 200:
            # A 4xx other than the above: the endpoint, the credentials or the IP are refused;
            # the same request will not fare better.
            self.reason = f"eSMS refused the request (HTTP {r.status_code})"
            self.logger.warning("%s (tracking=%s); permanent.", self.reason, ref)
            return True

        try:
            answer = r.json()
            code = str(answer.get("CodeResult", "")).strip()
        except (ValueError, AttributeError):
            self.reason = "eSMS: an answer that is not its JSON"
            self.logger.warning("%s (tracking=%s); will retry.", self.reason, ref)
            return False

        sms_id = str(answer.get("SMSID") or "").strip()
        if code == ACCEPTED and sms_id:
            self._accepted(sms_id)
            self.logger.info("eSMS: accepted (tracking=%s, SMSID=%s).", ref, sms_id)
            return None
        if code == DUPLICATE:
            return self._duplicate(sms_id, ref)

        meaning, permanent = ERRORS.get(code, (None, False))
        if meaning is None:
            extra = _masked(str(answer.get("ErrorMessage") or ""))
            meaning = "an answer the documentation does not list" + (f": {extra}" if extra else "")
        self.reason = f"eSMS {code or '(no code)'}: {meaning}"
        # The engine keeps the last log line as the message's error: say it all, nothing personal.
        self.logger.warning(
            "%s (tracking=%s); %s.", self.reason, ref, "permanent" if permanent else "will retry"
        )
        return permanent

    def _accepted(self, sms_id: str) -> None:
        self.provider_ids.append(sms_id)
        if self.provider_id is None:
            self.provider_id = sms_id

    def _duplicate(self, sms_id: str, ref: str) -> bool | None:
        """Code 124: eSMS has this RequestId from the last 24 h, i.e. an earlier attempt of this
        very message (a crash or a lost answer) reached it. The docs show no SMSID with 124: if
        eSMS gives one anyway, that is the first attempt's and this is a success; otherwise
        retrying cannot help (every repeat within 24 h gets 124), so it is permanent, with
        `duplicate` set. The first attempt's receipt still arrives, signed with the same ref."""
        self.duplicate = True
        if sms_id:
            self._accepted(sms_id)
            self.logger.info(
                "eSMS: duplicate RequestId, first SMSID=%s (tracking=%s).", sms_id, ref
            )
            return None
        self.reason = (
            "eSMS 124: Duplicate RequestId: an earlier attempt of this message already reached "
            "eSMS (its SMSID is unknown here; its delivery receipt carries our tracking id)"
        )
        self.logger.warning("%s (tracking=%s); permanent.", self.reason, ref)
        return True

    # -- receipts --------------------------------------------------------------------------

    def read_receipts(
        self,
        *,
        method: str,
        query: Mapping[str, str],
        headers: Mapping[str, str],
        body: bytes,
        now: dt.datetime,
    ) -> list[Receipt]:
        """eSMS's GET on our signed CallbackUrl -> one Receipt, or none while not final.

        403: no or wrong signature, or a URL older than RECEIPT_MAX_AGE (or from the future);
        400: not eSMS's shape (not a GET, no SMSID, a SendStatus that is not documented)."""
        fields = _repair_query(query)
        ref, t_text, sig = fields.get("ref", ""), fields.get("t", ""), fields.get("sig", "")
        if not ref or not t_text or not sig:
            raise ReceiptRefused("unsigned eSMS callback", status=403)
        if not t_text.isdigit() or not hmac.compare_digest(
            sign(self.secretkey, ref, int(t_text)), sig.lower()
        ):
            raise ReceiptRefused("eSMS callback with a wrong signature", status=403)
        signed_at = dt.datetime.fromtimestamp(int(t_text), dt.UTC)
        now = _aware(now)
        if now - signed_at > RECEIPT_MAX_AGE:
            raise ReceiptRefused("eSMS callback on a stale URL", status=403)
        if signed_at - now > CLOCK_SKEW:
            raise ReceiptRefused("eSMS callback on a URL from the future", status=403)

        if method.upper() != "GET":
            raise ReceiptRefused("eSMS sends its callbacks with GET", status=400)
        sms_id = fields.get("SMSID", "").strip()
        if not sms_id:
            raise ReceiptRefused("eSMS callback without SMSID", status=400)
        try:
            status = int(fields.get("SendStatus", ""))
            success = int(fields.get("SendSuccess") or 0)
            failed = int(fields.get("SendFailed") or 0)
        except ValueError:
            raise ReceiptRefused("eSMS callback with a non-numeric status", status=400) from None
        if status not in SEND_STATUS:
            raise ReceiptRefused(f"eSMS callback with an undocumented SendStatus {status}", 400)
        if status in PENDING_STATUSES:
            return []  # genuine, not final: the final callback follows

        telco = TELCOS.get(fields.get("telcoid", "").strip())
        via = f" (carrier {telco})" if telco else ""
        if status == 4:
            delivered, reason = False, f"eSMS rejected the message (SendStatus 4){via}"
        elif success > 0:
            delivered, reason = True, None
        elif failed > 0:
            delivered = False
            reason = f"the carrier did not deliver it (SendStatus 5, SendFailed {failed}){via}"
        else:
            raise ReceiptRefused("eSMS callback with status 5 and no counts", status=400)
        # The callback carries no time of its own: it is sent when the status is known.
        return [
            Receipt(provider_id=sms_id, delivered=delivered, reason=reason, at=now, tracking_id=ref)
        ]

    # -- Apprise URL plumbing --------------------------------------------------------------

    def url(self, privacy: bool = False, *args: Any, **kwargs: Any) -> str:
        params: dict[str, str] = {
            "unicode": "yes" if self.unicode else "no",
            "sandbox": "yes" if self.sandbox else "no",
        }
        if self.callback:
            params["callback"] = self.callback
        if self.campaign:
            params["campaign"] = self.campaign
        if self.api != DEFAULT_API:
            params["api"] = self.api
        params.update(self.url_parameters(*args, privacy=privacy, **kwargs))
        return "{schema}://{apikey}:{secretkey}@{brandname}/{targets}?{params}".format(
            schema=self.secure_protocol,
            apikey=self.pprint(self.apikey, privacy, safe=""),
            secretkey=self.pprint(self.secretkey, privacy, mode=PrivacyMode.Secret, safe=""),
            brandname=NotifyESMS.quote(self.brandname, safe=""),
            # Apprise logs the private form of a URL: no phone number in it either.
            targets="/".join(
                self.pprint(x, privacy, safe="") for x in [*self.targets, *self.invalid_targets]
            ),
            params=NotifyESMS.urlencode(params),
        )

    @property
    def url_identifier(self) -> tuple[str, ...]:  # type: ignore[override]
        return (self.secure_protocol, self.apikey, self.brandname, self.api)

    def __len__(self) -> int:
        return max(1, len(self.targets))

    @staticmethod
    def parse_url(url: str) -> dict[str, Any] | None:  # type: ignore[override]
        results: dict[str, Any] | None = NotifyBase.parse_url(url, verify_host=False)
        if not results:
            return results
        qsd = results["qsd"]
        results["apikey"] = NotifyESMS.unquote(results["user"]) if results["user"] else None
        results["secretkey"] = (
            NotifyESMS.unquote(results["password"]) if results["password"] else None
        )
        results["brandname"] = NotifyESMS.unquote(results["host"])
        results["targets"] = NotifyESMS.split_path(results["fullpath"])
        if qsd.get("to"):
            results["targets"] += NotifyESMS.parse_phone_no(qsd["to"])
        if "unicode" in qsd:
            results["unicode"] = parse_bool(qsd["unicode"], True)
        if "sandbox" in qsd:
            results["sandbox"] = parse_bool(qsd["sandbox"], False)
        for arg in ("callback", "campaign", "api"):
            if qsd.get(arg):
                results[arg] = NotifyESMS.unquote(qsd[arg])
        return results


def _repair_query(query: Mapping[str, str]) -> dict[str, str]:
    """The callback's fields. If eSMS appends its fields with a second "?" to our URL (which
    already has a query), the first of them lands inside `sig`: split it back out."""
    fields = dict(query)
    sig = fields.get("sig", "")
    if "?" in sig:
        fields["sig"], rest = sig.split("?", 1)
        for key, value in parse_qsl(rest, keep_blank_values=True):
            fields.setdefault(key, value)
    return fields
