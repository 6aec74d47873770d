"""A gateway's rotating tokens kept in the database, sealed, shared by every sender (issue 24)."""

from __future__ import annotations

import threading

from sqlalchemy import delete, select, update

from referrals.infra.crypto import Vault
from referrals.infra.db import transaction
from referrals.infra.runtime import Runtime
from referrals.models.channels import ChannelSecret
from referrals.notifiers.tokens import DatabaseTokens
from referrals.usecases.clients.keys import rotate


def test_tokens_are_sealed_updated_once_at_a_time_and_survive_a_key_rotation(
    rt: Runtime,
) -> None:
    store = DatabaseTokens(rt.engine, rt.ctx.vault)
    assert store.load("zns:1") is None
    refreshes: list[str] = []
    gate = threading.Barrier(2)

    def refresh(current: dict[str, str] | None) -> dict[str, str] | None:
        if current is not None:  # the other sender refreshed first: use its token
            return None
        refreshes.append("spent")
        return {"access_token": "AT-1", "refresh_token": "RT-2"}

    def sender() -> None:
        gate.wait()
        store.update("zns:1", refresh)

    senders = [threading.Thread(target=sender) for _ in range(2)]
    for t in senders:
        t.start()
    for t in senders:
        t.join()
    assert refreshes == ["spent"]  # two senders, one refresh: the single-use token spent once
    assert store.load("zns:1") == {"access_token": "AT-1", "refresh_token": "RT-2"}
    with transaction(rt.engine) as s:
        sealed = s.scalars(select(ChannelSecret.value_enc)).one()
    assert "RT-2" not in sealed and "AT-1" not in sealed

    # `referrals keys rotate`: the new secret opens it, and the old one can be dropped
    new = Vault("a-new-secret-key-for-the-office-0123456789", previous=(rt.settings.secret_key,))
    rotate(rt.engine, vault=new)
    alone = Vault("a-new-secret-key-for-the-office-0123456789")
    assert DatabaseTokens(rt.engine, alone).load("zns:1") == {
        "access_token": "AT-1",
        "refresh_token": "RT-2",
    }


def test_a_pass_reads_the_table_once_and_a_refusal_finds_another_workers_newer_token(
    rt: Runtime,
) -> None:
    mine, theirs = (DatabaseTokens(rt.engine, rt.ctx.vault) for _ in range(2))
    mine.update("zns:1", lambda _: {"access_token": "AT-1"})
    with transaction(rt.engine) as s:  # from now on, reading the table would fail
        s.execute(update(ChannelSecret).values(value_enc="not-sealed"))
    assert mine.load("zns:1") == {"access_token": "AT-1"}  # from memory: no round trip
    with transaction(rt.engine) as s:
        s.execute(delete(ChannelSecret))
    theirs.update("zns:1", lambda _: {"access_token": "AT-2"})  # another worker refreshed
    assert mine.load("zns:1") == {"access_token": "AT-1"}  # until Zalo refuses AT-1:
    assert mine.update("zns:1", lambda current: None) == {"access_token": "AT-2"}
    assert mine.load("zns:1") == {"access_token": "AT-2"}
