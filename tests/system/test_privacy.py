"""Privacy: a client's name, phone and ID number are nowhere in the database in clear."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import text
from sqlmodel import SQLModel

from referrals.infra.client_keys import cipher_of
from referrals.infra.crypto import Vault
from referrals.infra.db import transaction
from referrals.infra.runtime import Runtime
from referrals.models.people import Client
from support.domain import ready_referral, sqlite_files

NAME, PHONE, ID_NUMBER = "Hoàng Thị Bí Mật", "0905 999 888", "079190123456"
CLEAR = [NAME, NAME.encode("utf-8").hex(), "84905999888", "905999888", ID_NUMBER]


def _database_text(rt: Runtime) -> str:
    if rt.engine.dialect.name == "sqlite":
        return sqlite_files(rt).decode("utf-8", "replace")
    with rt.engine.connect() as c:
        return "\n".join(
            str(row[0])
            for t in SQLModel.metadata.sorted_tables
            for row in c.execute(text(f'SELECT t::text FROM "{t.name}" t'))
        )


def test_pii_is_not_stored_in_clear(rt: Runtime, now: dt.datetime) -> None:
    code = ready_referral(rt, now, name=NAME, phone=PHONE, id_number=ID_NUMBER)
    assert code
    dump = _database_text(rt)
    assert "police-nha-trang" in dump or "Công an" in dump  # the dump does hold the tables' text
    for value in CLEAR:
        assert value not in dump, f"{value!r} found in clear"


def test_pii_round_trips_and_is_bound_to_its_column(rt: Runtime, now: dt.datetime) -> None:
    ready_referral(rt, now, name=NAME, phone=PHONE, id_number=ID_NUMBER)
    vault = rt.ctx.vault
    with transaction(rt.engine) as s:
        client = s.query(Client).one()
        cipher = cipher_of(s, vault, client)
        assert cipher.decrypt(client.name_enc, "client.name") == NAME
        assert cipher.decrypt(client.phone_enc, "client.phone") == "+84905999888"
        assert client.id_number_lookup == vault.lookup(ID_NUMBER, "id_number")
        import pytest

        with pytest.raises(ValueError, match="cannot decrypt"):
            cipher.decrypt(client.name_enc, "client.phone")
        with pytest.raises(ValueError, match="wrong REFERRALS_SECRET_KEY"):
            cipher_of(s, Vault("another-secret-key-0123456789abcdef"), client)
        with pytest.raises(ValueError, match="client's data key"):
            vault.decrypt(client.name_enc, "client.name")
