"""Action links: `<public_url>/l/<token>`, one per message that carries a link.

The token is the message id in base32 followed by a 13-character MAC (65 bits): 18 characters
for the first 33 million messages, so that an SMS with the link still fits one segment.

The id names the outbox row, which binds the referral, the step, the contact and the template;
the MAC (HMAC-SHA256 under a key derived from REFERRALS_SECRET_KEY) makes the link unguessable
and untamperable. Expiry, revocation and which step it may answer now (one link serves every
step of the referral that is its contact's, issue 20) are decided from the database when the link
is opened, so none of them needs to be in the token and the SMS stays short.
"""

from __future__ import annotations

import hmac
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # a type only: models/ sits below infra/ (.importlinter)
    from referrals.infra.crypto import Vault


MAC = 13
TOKEN = re.compile(rf"^([a-z2-7]{{1,10}})([a-z2-7]{{{MAC}}})$")
ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"


def _b32(n: int) -> str:
    digits = ""
    while True:
        n, d = divmod(n, 32)
        digits = ALPHABET[d] + digits
        if n == 0:
            return digits


def link_token(vault: Vault, message_id: int) -> str:
    return _b32(message_id) + vault.link_mac(f"message:{message_id}")[:MAC]


def link_url(public_url: str, vault: Vault, message_id: int) -> str:
    return f"{public_url.rstrip('/')}/l/{link_token(vault, message_id)}"


def message_of(vault: Vault, token: str) -> int | None:
    """The message id a token was made for, or None if it is malformed or forged."""
    m = TOKEN.match(token)
    if not m:
        return None
    message_id = 0
    for ch in m[1]:
        message_id = message_id * 32 + ALPHABET.index(ch)
    macs = vault.link_macs(f"message:{message_id}")
    return message_id if any(hmac.compare_digest(mac[:MAC], m[2]) for mac in macs) else None
