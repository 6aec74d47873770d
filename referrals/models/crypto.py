"""PII at rest: AES-GCM per value with a key derived from REFERRALS_SECRET_KEY.

Tokens read `key_id:base64(nonce|ciphertext)`, so keys can rotate; the column name is bound as
associated data, so a value cannot be moved to another column. Exact lookups (phone, ID number)
use a keyed hash, never the clear value.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import unicodedata
from functools import lru_cache

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


def derive_key(secret: str, purpose: bytes) -> bytes:
    """A 32-byte key for one purpose, from REFERRALS_SECRET_KEY (HKDF-SHA256)."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"referrals", info=purpose).derive(
        secret.encode()
    )


class Vault:
    """The current secret encrypts, keys lookups and signs; previous secrets (during and after a
    rotation, `referrals keys rotate`) still decrypt, match lookups and verify links and the
    audit chain made with them."""

    def __init__(self, secret_key: str, previous: tuple[str, ...] = ()) -> None:
        secrets = (secret_key, *(p for p in previous if p and p != secret_key))
        keys = [derive_key(s, b"pii-encryption-v1") for s in secrets]
        self.key_id = hashlib.sha256(keys[0]).hexdigest()[:8]
        self._keys = {hashlib.sha256(k).hexdigest()[:8]: AESGCM(k) for k in keys}
        self._lookup_keys = [derive_key(s, b"pii-lookup-v1") for s in secrets]
        self._link_keys = [derive_key(s, b"action-link-v1") for s in secrets]
        self._chain_keys = [derive_key(s, b"audit-chain-v1") for s in secrets]

    @property
    def key_ids(self) -> list[str]:
        """Every key id this vault can decrypt, the current one first."""
        return list(self._keys)

    def encrypt(self, value: str | None, column: str) -> str | None:
        if value is None:
            return None
        nonce = os.urandom(12)
        sealed = self._keys[self.key_id].encrypt(nonce, value.encode(), column.encode())
        return f"{self.key_id}:{base64.b64encode(nonce + sealed).decode()}"

    def decrypt(self, token: str | None, column: str) -> str | None:
        if token is None:
            return None
        key_id, _, blob = token.partition(":")
        raw = base64.b64decode(blob)
        try:
            return self._keys[key_id].decrypt(raw[:12], raw[12:], column.encode()).decode()
        except (KeyError, InvalidTag):
            raise ValueError(f"cannot decrypt {column}: wrong REFERRALS_SECRET_KEY?") from None

    def lookup(self, value: str | None, kind: str) -> str | None:
        """Keyed hash for exact-match lookups of a normalised value (the current key)."""
        return self.lookups(value, kind)[0] if value else None

    def lookups(self, value: str | None, kind: str) -> list[str]:
        """The value's lookup hash under every key, the current first: what a search must try
        while a rotation has not yet reached every row."""
        if not value:
            return []
        normal = f"{kind}:{unicodedata.normalize('NFC', value).strip().upper()}".encode()
        return [hmac.new(k, normal, hashlib.sha256).hexdigest() for k in self._lookup_keys]

    def link_mac(self, message: str) -> str:
        """80 bits of HMAC-SHA256, base32 lower case: short enough for an SMS link."""
        return self.link_macs(message)[0]

    def link_macs(self, message: str) -> list[str]:
        """The link MAC under every key: links sent before a rotation keep working."""
        macs = (
            hmac.new(k, message.encode(), hashlib.sha256).digest()[:10] for k in self._link_keys
        )
        return [base64.b32encode(m).decode().lower() for m in macs]

    def chain_mac(self, message: str) -> str:
        """HMAC-SHA256 for the audit chain (models/audit.py), hex, with the current key."""
        return self.chain_macs(message)[0]

    def chain_macs(self, message: str) -> list[str]:
        """The chain MAC under every key: links sealed before a rotation still verify."""
        return [hmac.new(k, message.encode(), hashlib.sha256).hexdigest() for k in self._chain_keys]


@lru_cache(maxsize=4)
def vault_for(secret_key: str, previous: tuple[str, ...] = ()) -> Vault:
    return Vault(secret_key, previous)
