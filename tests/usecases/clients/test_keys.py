"""Key rotation: old data stays readable during it, moves in resumable batches, and after it the
new key alone reads everything; links and audit seals made before it still verify."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from conftest import SECRET
from sqlalchemy import func, select
from sqlmodel import Session

from referrals.config import get_settings
from referrals.infra.client_keys import cipher_of
from referrals.infra.crypto import Vault
from referrals.infra.db import transaction
from referrals.infra.runtime import Runtime
from referrals.models.links import link_token, message_of
from referrals.models.people import Client, ClientKey
from referrals.models.subscriptions import Webhook, WebhookIn
from referrals.models.workflow import Event, Notification
from referrals.queries.audit import verify
from referrals.queries.reading import Reader
from referrals.usecases.audit import seal
from referrals.usecases.clients.clients import reveal_client
from referrals.usecases.clients.keys import key_status, rotate
from referrals.usecases.referrals.importing import import_referrals
from referrals.usecases.staff.webhooks import add_webhook
from support.domain import cli, decline_with_note, ready_referral

NEW = "a-brand-new-secret-key-0123456789abcdef0123456789"
NOTE = "Người Thứ 0 đã chuyển nhà"
PEOPLE = [(f"Người Thứ {i}", f"0905 100 {i:03d}", f"0791900{i:05d}") for i in range(5)]


def _switch(monkeypatch: pytest.MonkeyPatch, secret: str, previous: str = "") -> Runtime:
    monkeypatch.setenv("REFERRALS_SECRET_KEY", secret)
    monkeypatch.setenv("REFERRALS_PREVIOUS_SECRET_KEYS", previous)
    get_settings.cache_clear()
    return Runtime(get_settings())


def test_a_rotation_from_start_to_finish(
    rt: Runtime,
    now: dt.datetime,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    refs = [ready_referral(rt, now, name=n, phone=p, id_number=i) for n, p, i in PEOPLE]
    decline_with_note(rt, refs[0], NOTE, now)
    _as_before_data_keys(rt, -1)  # the last client
    with Session(rt.engine) as s:
        message = s.scalars(select(Notification.id).order_by(Notification.id)).first()
    old_link = link_token(rt.ctx.vault, message)  # type: ignore[arg-type]
    seal(rt.engine, vault=rt.ctx.vault)
    with transaction(rt.engine) as s:  # a webhook's signing secret is sealed too
        data = WebhookIn(name="dhis2", url="http://127.0.0.1:9/e", events=["referral.*"])
        _, signing = add_webhook(s, data=data, vault=rt.ctx.vault, by=rt.user(s, "admin"))

    rotating = _switch(monkeypatch, NEW, previous=SECRET)
    vault = rotating.ctx.vault
    with Session(rotating.engine) as s:
        assert key_status(s, vault)["to_rotate"] == len(PEOPLE)
    # Mid-rotation everything still works: old details read, old hashes match, old links and
    # seals verify, and new events seal under the new key.
    assert message_of(vault, old_link) == message
    with transaction(rotating.engine) as s:
        admin = rotating.user(s)
        shown = reveal_client(
            s, code=_code(s, 0), user=admin, purpose="other", ctx=rotating.ctx, now=now
        )
        assert shown["name"] == PEOPLE[0][0]
        csv = "name,phone,id_number,district,pathway,partner,consent,launched_at,urgent\n"
        csv += f"{PEOPLE[1][0]},{PEOPLE[1][1]},,nha-trang,legal_aid,legal-aid-centre,written,,\n"
        report = import_referrals(
            s, data=csv.encode(), coordinator=admin, ctx=rotating.ctx, now=now
        )
    assert report.clients_found == 1 and report.clients_created == 0
    seal(rotating.engine, vault=vault)
    with Reader(rotating.engine.raw_connection(), rotating.engine.dialect.name) as reader:
        assert verify(reader, vault=vault).ok

    # Interrupted after the first batch, then resumed.
    def stop(done: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        rotate(rotating.engine, vault=vault, batch=2, progress=stop)
    with Session(rotating.engine) as s:
        assert key_status(s, vault)["to_rotate"] == len(PEOPLE) - 2
    code, out, err = cli(capsys, "keys", "rotate", "--batch", "2", "--json")
    assert code == 0 and json.loads(out)["rotated"] == len(PEOPLE) - 2, err
    code, out, _ = cli(capsys, "keys", "status", "--json")
    assert json.loads(out)["to_rotate"] == 0

    # The new key alone now reads every client, the note written before the rotation (which
    # never moved: the event is append-only), and finds them by phone.
    alone = Vault(NEW)
    with Session(rotating.engine) as s:
        for i, client in enumerate(s.scalars(select(Client).order_by(Client.id)).all()):
            cipher = cipher_of(s, alone, client)
            assert cipher.decrypt(client.name_enc, "client.name") == PEOPLE[i][0]
            assert client.phone_lookup == alone.lookup(
                cipher.decrypt(client.phone_enc, "client.phone"), "phone"
            )
            if i == 0:
                note = s.scalars(select(Event).where(Event.kind == "link.answered")).one()
                assert cipher.decrypt(note.data["note_enc"], "event.note") == NOTE
        assert s.scalar(select(func.count()).select_from(ClientKey)) == len(PEOPLE)
        hook = s.scalars(select(Webhook)).one()
        assert alone.decrypt(hook.secret_enc, "webhook.secret") == signing
    # Without the old secret, details sealed under it (none are left) would be refused clearly.
    with pytest.raises(ValueError, match="wrong REFERRALS_SECRET_KEY"):
        alone.decrypt(Vault(SECRET).encrypt("x", "client.name"), "client.name")
    assert refs


def _as_before_data_keys(rt: Runtime, index: int) -> str:
    """Client number INDEX as migration 0011 found it: details under the secret, no data key."""
    with transaction(rt.engine) as s:
        client = s.get(Client, _id(s, index))
        assert client is not None
        cipher = cipher_of(s, rt.ctx.vault, client)
        for column in ("name", "phone", "id_number"):
            value = cipher.decrypt(getattr(client, f"{column}_enc"), f"client.{column}")
            setattr(client, f"{column}_enc", rt.ctx.vault.encrypt(value, f"client.{column}"))
        s.delete(s.get(ClientKey, client.id))
        return client.code


def _id(s: Session, index: int) -> int:
    return s.scalars(select(Client.id).order_by(Client.id)).all()[index]


def _code(s: Session, index: int) -> str:
    return s.scalars(select(Client.code).order_by(Client.id)).all()[index]


def test_a_client_from_before_data_keys_gets_one_with_a_note_and_loses_it_on_erasure(
    rt: Runtime, now: dt.datetime, capsys: pytest.CaptureFixture[str]
) -> None:
    name, phone, id_number = PEOPLE[0]
    ref = ready_referral(rt, now, name=name, phone=phone, id_number=id_number)
    code = _as_before_data_keys(rt, 0)
    decline_with_note(rt, ref, NOTE, now)  # the partner's note needs a key: it gets one
    with Session(rt.engine) as s:
        client = s.get(Client, _id(s, 0))
        assert client is not None and s.get(ClientKey, client.id) is not None
        note = s.scalars(select(Event).where(Event.kind == "link.answered")).one()
        assert note.data["note_enc"].startswith("k:")
        cipher = cipher_of(s, rt.ctx.vault, client)
        assert cipher.decrypt(client.name_enc, "client.name") == name  # still under the secret
        assert key_status(s, rt.ctx.vault)["to_rotate"] == 1
    assert cli(capsys, "client", "erase", code, "--yes")[0] == 0
    exported = json.loads(cli(capsys, "client", "export", code)[1])
    answered = next(e for e in exported["history"] if e["kind"] == "link.answered")
    assert answered["data"]["note"] is None and NOTE not in json.dumps(exported)
    # An erased client is not launched again, nor consented for.
    for args in (
        ["consent", "grant", code, "--partner", "legal-aid-centre", "--purpose", "legal_aid"],
        ["launch", code, "--pathway", "id_papers", "--partner", "police-nha-trang"],
    ):
        status, _, err = cli(capsys, *args)
        assert status == 1 and "erased" in err, (args, err)
