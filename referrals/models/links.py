"""Action links: `<public_url>/l/<token>`, one per message that carries a link.

The token is the message id in base32 followed by a 13-character MAC (65 bits): 18 characters
for the first 33 million messages, so that an SMS with the link still fits one segment.

The id names the outbox row, which binds the referral, the step, the contact and the template;
the MAC (HMAC-SHA256 under a key derived from REFERRALS_SECRET_KEY) makes the link unguessable
and untamperable. Expiry, revocation and which step it may answer now (one link serves every
step of the referral that is its contact's, issue 20) are decided from the database when the link
is opened, so none of them needs to be in the token and the SMS stays short.

Arrival links, `<public_url>/s/<token>` (the QR code on the printed slip, issue 20): the same
shape for a referral id, under the MAC message `slip:<id>`, so that a message's token never opens
a slip and a slip's never a message. The slip is paper that others may see: its link only lets
the partner record that the client came, never act on the referral or see the client.
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


def _signed(vault: Vault, purpose: str, n: int) -> str:
    """`n` in base32 and the MAC of `purpose:n`: what a link's token is."""
    return _b32(n) + vault.link_mac(f"{purpose}:{n}")[:MAC]


def _signed_id(vault: Vault, token: str, purpose: str) -> int | None:
    """The id a token was made for under `purpose`, or None if it is malformed or forged."""
    m = TOKEN.match(token)
    if not m:
        return None
    n = 0
    for ch in m[1]:
        n = n * 32 + ALPHABET.index(ch)
    macs = vault.link_macs(f"{purpose}:{n}")
    return n if any(hmac.compare_digest(mac[:MAC], m[2]) for mac in macs) else None


def link_token(vault: Vault, message_id: int) -> str:
    return _signed(vault, "message", message_id)


def link_url(public_url: str, vault: Vault, message_id: int) -> str:
    return f"{public_url.rstrip('/')}/l/{link_token(vault, message_id)}"


def message_of(vault: Vault, token: str) -> int | None:
    """The message id a token was made for, or None if it is malformed or forged."""
    return _signed_id(vault, token, "message")


def slip_token(vault: Vault, referral_id: int) -> str:
    """The arrival link's token printed on referral `referral_id`'s slip."""
    return _signed(vault, "slip", referral_id)


def slip_url(public_url: str, vault: Vault, referral_id: int) -> str:
    return f"{public_url.rstrip('/')}/s/{slip_token(vault, referral_id)}"


def referral_of_slip(vault: Vault, token: str) -> int | None:
    """The referral id a slip's token was made for, or None if it is malformed or forged."""
    return _signed_id(vault, token, "slip")


# Peer groups' standing links (issue 20): `<public_url>/p/<token>`, the peer link's id in base32
# and a MAC under its own message ("peer:<id>"), so a message's token never opens a peer form.
def peer_token(vault: Vault, peer_link_id: int) -> str:
    return _signed(vault, "peer", peer_link_id)


def peer_url(public_url: str, vault: Vault, peer_link_id: int) -> str:
    return f"{public_url.rstrip('/')}/p/{peer_token(vault, peer_link_id)}"


def peer_link_of(vault: Vault, token: str) -> int | None:
    """The peer link id a token was made for, or None if it is malformed or forged."""
    return _signed_id(vault, token, "peer")
