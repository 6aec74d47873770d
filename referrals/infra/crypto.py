"""PII at rest: AES-GCM per value, under a data key of the client's own.

Each client has a random 256-bit data key; their name, phone, ID number and the notes written
about them are sealed under it, as `k:base64(nonce|ciphertext)`. The data key itself is stored
wrapped (sealed) under the key derived from REFERRALS_SECRET_KEY, as `key_id:base64(...)`, so the
secret can rotate by re-wrapping a small key per client. Erasure deletes the data key: every copy
of the client's ciphertext (the append-only events, a dump of the data) becomes noise. Tokens
written before per-client keys (`key_id:...` under the secret's key) still decrypt. The column
name is bound as associated data, so a value cannot be moved to another column. Exact lookups
(phone, ID number) use a keyed hash, never the clear value.
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
        if token.startswith(ClientCipher.PREFIX):
            raise ValueError(f"{column} is sealed under a client's data key, not the secret's")
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
        """HMAC-SHA256 for the audit chain (usecases/audit.py), hex, with the current key."""
        return self.chain_macs(message)[0]

    def chain_macs(self, message: str) -> list[str]:
        """The chain MAC under every key: links sealed before a rotation still verify."""
        return [hmac.new(k, message.encode(), hashlib.sha256).hexdigest() for k in self._chain_keys]

    def new_client_key(self, code: str) -> tuple[ClientCipher, str]:
        """A fresh data key for client `code`: its cipher, and the key wrapped for storage."""
        dek = AESGCM.generate_key(bit_length=256)
        wrapped = self.encrypt(base64.b64encode(dek).decode(), f"client_key:{code}")
        assert wrapped is not None
        return ClientCipher(self, dek), wrapped

    def client_cipher(
        self, code: str, wrapped: str | None, *, erased: bool = False
    ) -> ClientCipher:
        """The cipher of client `code` from their stored key. Without one, a client from before
        per-client keys still reads tokens sealed under the secret itself; an erased client's
        cipher reads nothing at all, whatever sealed it."""
        if erased:
            return ClientCipher(self, None, erased=True)
        if wrapped is None:
            return ClientCipher(self, None)
        dek = self.decrypt(wrapped, f"client_key:{code}")
        assert dek is not None
        return ClientCipher(self, base64.b64decode(dek))

    def rewrap(self, code: str, wrapped: str) -> str:
        """Client `code`'s data key wrapped under the current secret (`keys rotate`)."""
        column = f"client_key:{code}"
        again = self.encrypt(self.decrypt(wrapped, column), column)
        assert again is not None
        return again


class ClientCipher:
    """Seals and opens one client's values under their data key."""

    PREFIX = "k:"

    def __init__(self, vault: Vault, dek: bytes | None, *, erased: bool = False) -> None:
        self._vault = vault
        self._aead = AESGCM(dek) if dek else None
        self.erased = erased

    @property
    def shredded(self) -> bool:
        """No data key: erased, or (after a restore without the keys) lost."""
        return self._aead is None

    def encrypt(self, value: str | None, column: str) -> str | None:
        if value is None:
            return None
        if self._aead is None:
            raise ValueError(f"no data key to seal {column}: the client was erased")
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, value.encode(), column.encode())
        return self.PREFIX + base64.b64encode(nonce + sealed).decode()

    def decrypt(self, token: str | None, column: str) -> str | None:
        """The clear value; None when the token is None or its data key was deleted."""
        if token is None or self.erased:
            return None
        if not token.startswith(self.PREFIX):
            return self._vault.decrypt(token, column)
        if self._aead is None:
            return None
        raw = base64.b64decode(token[len(self.PREFIX) :])
        try:
            return self._aead.decrypt(raw[:12], raw[12:], column.encode()).decode()
        except InvalidTag:
            raise ValueError(f"cannot decrypt {column}: not this client's key") from None


@lru_cache(maxsize=4)
def vault_for(secret_key: str, previous: tuple[str, ...] = ()) -> Vault:
    return Vault(secret_key, previous)
