"""Moving every client's data key under the current secret (`referrals keys rotate`).

After REFERRALS_SECRET_KEY changes (the old one listed in REFERRALS_PREVIOUS_SECRET_KEYS), each
client whose data key is still wrapped under an older secret gets it re-wrapped and their lookup
hashes and the index of their name's words recomputed, a batch per transaction. The data sealed under the data key (details, notes
in the append-only events) does not move at all. Clients from before per-client keys get one
here, and their details are sealed again under it. Interrupted, it resumes where it stopped:
clients already moved no longer match.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import ColumnElement, Engine, Select, func, or_, select
from sqlmodel import Session, col

from referrals.infra.crypto import ClientCipher, Vault
from referrals.models.people import Client, ClientKey
from referrals.usecases.clients.finding import index_missing, index_name, name_key

COLUMNS = ("name", "phone", "id_number")
LOOKUPS = {"phone": "phone_lookup", "id_number": "id_number_lookup"}


def _stale(vault: Vault) -> ColumnElement[bool]:
    """A client still needing work: no data key, a key under an older secret, or details sealed
    the old way (directly under the secret). Not a client whose details are sealed under a data
    key that is missing (restored without the keys backup): nothing can read those any more,
    and `referrals check` reports them."""
    old_style = (
        getattr(Client, f"{c}_enc").is_not(None)
        & ~getattr(Client, f"{c}_enc").like(f"{ClientCipher.PREFIX}%")
        for c in COLUMNS
    )
    key_lost = col(ClientKey.client_id).is_(None) & col(Client.name_enc).like(
        f"{ClientCipher.PREFIX}%"
    )
    return (
        col(Client.erased_at).is_(None)
        & ~key_lost
        & or_(
            col(ClientKey.client_id).is_(None),
            ~col(ClientKey.wrapped).like(f"{vault.key_id}:%"),
            *old_style,
        )
    )


def _clients_with_keys() -> Select[tuple[int]]:
    return (
        select(func.count())
        .select_from(Client)
        .outerjoin(ClientKey, col(ClientKey.client_id) == col(Client.id))
    )


def key_status(session: Session, vault: Vault) -> dict[str, int | str]:
    """How many data keys are wrapped under each secret's key id, how many clients have none
    yet, and how many clients still need moving to the current secret."""
    wrapped_by = func.substr(ClientKey.wrapped, 1, 8)
    by_key: dict[str, int] = dict(
        session.execute(select(wrapped_by, func.count()).group_by(wrapped_by)).tuples().all()
    )
    keyless = session.scalar(
        _clients_with_keys().where(
            col(Client.erased_at).is_(None),
            col(ClientKey.client_id).is_(None),
            ~col(Client.name_enc).like(f"{ClientCipher.PREFIX}%"),
        )
    )
    stale = session.scalar(_clients_with_keys().where(_stale(vault)))
    return {
        "current": vault.key_id,
        "to_rotate": int(stale or 0),
        "without a data key": int(keyless or 0),
        **{f"key {k}": int(v) for k, v in by_key.items()},
    }


def rotate(
    engine: Engine,
    *,
    vault: Vault,
    batch: int = 500,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Bring every client under the current secret; returns how many moved."""
    moved = 0
    while True:
        with Session(engine, expire_on_commit=False) as s, s.begin():
            rows = list(
                s.execute(
                    select(Client, ClientKey)
                    .outerjoin(ClientKey, col(ClientKey.client_id) == col(Client.id))
                    .where(_stale(vault))
                    .order_by(col(Client.id))
                    .limit(batch)
                    .with_for_update(of=Client)
                ).tuples()
            )
            for client, key in rows:
                _move(s, vault, client, key)
        if not rows:
            _reseal_webhooks(engine, vault)
            _reseal_breaches(engine, vault)
            _reseal_channel_secrets(engine, vault)
            index_missing(engine, vault)
            return moved
        moved += len(rows)
        if progress:
            progress(moved)


def _move(session: Session, vault: Vault, client: Client, key: ClientKey | None) -> None:
    if key is None:
        assert client.id is not None  # a loaded row has its id
        cipher, wrapped = vault.new_client_key(client.code)
        session.add(ClientKey(client_id=client.id, wrapped=wrapped))
    else:
        cipher = vault.client_cipher(client.code, key.wrapped)
        key.wrapped = vault.rewrap(client.code, key.wrapped)
    for column in COLUMNS:
        attr = f"{column}_enc"
        value = cipher.decrypt(getattr(client, attr), f"client.{column}")
        if not (getattr(client, attr) or "").startswith(ClientCipher.PREFIX):
            setattr(client, attr, cipher.encrypt(value, f"client.{column}"))
        if column in LOOKUPS:
            setattr(client, LOOKUPS[column], vault.lookup(value, column))
        if column == "name":
            assert client.id is not None  # a loaded row
            index_name(session, vault, client.id, value)
            client.name_lookup = name_key(vault, value)


def _reseal_webhooks(engine: Engine, vault: Vault) -> None:
    """Webhook secrets are sealed under the secret itself: seal them again under the current."""
    from referrals.models.subscriptions import Webhook

    with Session(engine) as s, s.begin():
        stale = ~col(Webhook.secret_enc).like(f"{vault.key_id}:%")
        for hook in s.scalars(select(Webhook).where(stale)):
            hook.secret_enc = (
                vault.encrypt(vault.decrypt(hook.secret_enc, "webhook.secret"), "webhook.secret")
                or ""
            )


def _reseal_breaches(engine: Engine, vault: Vault) -> None:
    """A breach's texts are sealed under the secret itself (a breach spans clients: no client
    key fits, usecases/privacy/breaches.py): seal them again under the current secret."""
    from referrals.models.privacy import Breach
    from referrals.usecases.privacy.breaches import TEXTS

    with Session(engine) as s, s.begin():
        for breach in s.scalars(select(Breach)):
            for t in TEXTS:
                value = getattr(breach, f"{t}_enc")
                if value and not value.startswith(f"{vault.key_id}:"):
                    text = vault.decrypt(value, f"breach.{t}")
                    setattr(breach, f"{t}_enc", vault.encrypt(text, f"breach.{t}"))


def _reseal_channel_secrets(engine: Engine, vault: Vault) -> None:
    """A gateway's rotating tokens (notifiers/tokens.py) are sealed under the secret itself:
    seal them again under the current one, or they are lost with the old secret."""
    from referrals.models.channels import ChannelSecret
    from referrals.notifiers.tokens import COLUMN

    with Session(engine) as s, s.begin():
        stale = ~col(ChannelSecret.value_enc).like(f"{vault.key_id}:%")
        for row in s.scalars(select(ChannelSecret).where(stale)):
            row.value_enc = vault.encrypt(vault.decrypt(row.value_enc, COLUMN), COLUMN) or ""
