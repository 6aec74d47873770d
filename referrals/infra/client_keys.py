"""Where a client's data key is found: the `client_key` row beside the client (infra/crypto.py
says why each client has one)."""

from __future__ import annotations

from sqlmodel import Session

from referrals.infra.crypto import ClientCipher, Vault
from referrals.models.errors import DomainError
from referrals.models.people import Client, ClientKey


def cipher_of(session: Session, vault: Vault, client: Client) -> ClientCipher:
    """The client's cipher; one that reads nothing once they are erased."""
    row = session.get(ClientKey, client.id)
    return vault.client_cipher(
        client.code, row.wrapped if row else None, erased=client.erased_at is not None
    )


def refuse_if_erased(client: Client) -> None:
    """An erased client is a code and a history: nothing new is done for or about them."""
    if client.erased_at is not None:
        raise DomainError(f"client {client.code}'s personal data was erased", key="erased")


def sealing_cipher(session: Session, vault: Vault, client: Client) -> ClientCipher:
    """The cipher to seal something new about the client with: a client from before per-client
    keys gets their key now (their details move to it at the next `keys rotate`)."""
    refuse_if_erased(client)
    if session.get(ClientKey, client.id) is None:
        assert client.id is not None  # a stored client has its id
        cipher, wrapped = vault.new_client_key(client.code)
        session.add(ClientKey(client_id=client.id, wrapped=wrapped))
        session.flush()
        return cipher
    return cipher_of(session, vault, client)
