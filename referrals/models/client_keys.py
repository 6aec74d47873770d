"""Where a client's data key is found: the `client_key` row beside the client (models/crypto.py
says why each client has one)."""

from __future__ import annotations

from sqlmodel import Session

from referrals.models.crypto import ClientCipher, Vault
from referrals.models.people import Client, ClientKey


def cipher_of(session: Session, vault: Vault, client: Client) -> ClientCipher:
    """The client's cipher; a shredded one once they are erased."""
    row = session.get(ClientKey, client.id)
    return vault.client_cipher(client.code, row.wrapped if row else None)
