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
    def __init__(self, secret_key: str) -> None:
        key = derive_key(secret_key, b"pii-encryption-v1")
        self.key_id = hashlib.sha256(key).hexdigest()[:8]
        self._keys = {self.key_id: AESGCM(key)}
        self._lookup_key = derive_key(secret_key, b"pii-lookup-v1")
        self._link_key = derive_key(secret_key, b"action-link-v1")
        self._chain_key = derive_key(secret_key, b"audit-chain-v1")

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
        """Keyed hash for exact-match lookups of a normalised value."""
        if not value:
            return None
        normal = unicodedata.normalize("NFC", value).strip().upper()
        return hmac.new(self._lookup_key, f"{kind}:{normal}".encode(), hashlib.sha256).hexdigest()

    def link_mac(self, message: str) -> str:
        """80 bits of HMAC-SHA256, base32 lower case: short enough for an SMS link."""
        mac = hmac.new(self._link_key, message.encode(), hashlib.sha256).digest()[:10]
        return base64.b32encode(mac).decode().lower()

    def chain_mac(self, message: str) -> str:
        """HMAC-SHA256 for the audit chain (models/audit.py), hex."""
        return hmac.new(self._chain_key, message.encode(), hashlib.sha256).hexdigest()


@lru_cache(maxsize=4)
def vault_for(secret_key: str) -> Vault:
    return Vault(secret_key)
