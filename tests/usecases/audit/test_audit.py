"""The audit trail: the database refuses to change events, and the hash chain shows tampering."""

from __future__ import annotations

import datetime as dt
import json
import threading

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from referrals.infra.db import transaction
from referrals.infra.runtime import Runtime
from referrals.models.lifecycle import Action
from referrals.queries.audit import verify
from referrals.queries.reading import Reader
from referrals.usecases.audit import seal
from referrals.usecases.deadlines.sweeping import sweep_and_seal
from referrals.usecases.referrals.advancing import advance
from support.domain import cli, ready_referral


def _verdict(rt: Runtime):  # type: ignore[no-untyped-def]
    with Reader(rt.engine.raw_connection(), rt.engine.dialect.name) as reader:
        return verify(reader, vault=rt.ctx.vault)


def _some_history(rt: Runtime, now: dt.datetime) -> str:
    code = ready_referral(rt, now)
    with transaction(rt.engine) as s:
        advance(s, code=code, action=Action.accept, by=rt.user(s, "mai"), ctx=rt.ctx, now=now)
    return code


def _untriggered(rt: Runtime, sql: str) -> None:
    """What someone with the database's keys could do: change events with the triggers off."""
    with rt.engine.begin() as c:
        if rt.engine.dialect.name == "postgresql":
            c.execute(text("SET LOCAL session_replication_role = replica"))
            c.execute(text(sql))
            return
        triggers = c.execute(
            text("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'")
        ).all()
        for name, _ in triggers:
            c.execute(text(f'DROP TRIGGER "{name}"'))
        c.execute(text(sql))
        for _, create in triggers:
            c.execute(text(create))


def test_the_database_refuses_to_change_or_delete_events(rt: Runtime, now: dt.datetime) -> None:
    _some_history(rt, now)
    assert seal(rt.engine, vault=rt.ctx.vault) > 0
    with rt.engine.connect() as c:
        first = c.execute(text("SELECT MIN(id) FROM event")).scalar_one()
    refused = [
        f"UPDATE event SET kind = 'x' WHERE id = {first}",
        f"UPDATE event SET actor = 'user:someone' WHERE id = {first}",
        f"UPDATE event SET chain_hash = NULL, chain_seq = NULL WHERE id = {first}",
        f"UPDATE event SET chain_hash = '{'0' * 64}' WHERE id = {first}",
        f"DELETE FROM event WHERE id = {first}",
        "DELETE FROM event",
    ]
    if rt.engine.dialect.name == "postgresql":
        refused.append("TRUNCATE event CASCADE")
    for sql in refused:
        with pytest.raises(DBAPIError, match="append-only"), rt.engine.begin() as c:
            c.execute(text(sql))
    # A new, unsealed event may be sealed once; the sealer's own update is the only one allowed.
    with transaction(rt.engine) as s:
        advance(
            s,
            code=_some_history(rt, now),
            action=Action.hold,
            reason="other",
            by=rt.user(s, "mai"),
            ctx=rt.ctx,
            now=now,
        )
    with rt.engine.connect() as c:
        unsealed = c.execute(
            text("SELECT MIN(id) FROM event WHERE chain_hash IS NULL")
        ).scalar_one()
    with pytest.raises(DBAPIError, match="append-only"), rt.engine.begin() as c:
        c.execute(
            text(
                f"UPDATE event SET kind = 'x', chain_seq = 999, chain_hash = 'h' WHERE id = {unsealed}"
            )
        )
    assert seal(rt.engine, vault=rt.ctx.vault) > 0 and _verdict(rt).ok


def test_verify_names_the_first_broken_link(
    rt: Runtime, now: dt.datetime, capsys: pytest.CaptureFixture[str]
) -> None:
    _some_history(rt, now)
    _some_history(rt, now)
    code, out, _ = cli(capsys, "audit", "seal")
    assert code == 0 and "events sealed" in out
    code, out, _ = cli(capsys, "audit", "verify", "--json")
    clean = json.loads(out)
    assert code == 0 and clean["ok"] and clean["sealed"] >= 10 and clean["unsealed"] == 0
    with rt.engine.connect() as c:
        ids = c.execute(text("SELECT id FROM event ORDER BY chain_seq")).scalars().all()
    changed, removed = ids[3], ids[6]
    _untriggered(rt, f"UPDATE event SET actor = 'user:nobody' WHERE id = {changed}")
    code, _, err = cli(capsys, "audit", "verify")
    assert code == 1 and f"breaks at event {changed}" in err and "3 events before it" in err
    _untriggered(rt, f"UPDATE event SET actor = 'user:mai' WHERE id = {changed}")  # put back
    assert _verdict(rt).ok
    _untriggered(rt, f"DELETE FROM event WHERE id = {removed}")
    broken = _verdict(rt)
    assert not broken.ok and broken.first_broken == ids[7] and "missing" in broken.why
    # A forger without the secret key cannot mend the chain: hashes recomputed with another key
    # fail too.
    from referrals.infra.crypto import Vault

    forged = Vault("another-secret-key-0123456789abcdef0123456789")
    with Reader(rt.engine.raw_connection(), rt.engine.dialect.name) as reader:
        assert not verify(reader, vault=forged).ok


def test_events_written_later_join_the_chain_and_the_sweep_seals(
    rt: Runtime, now: dt.datetime
) -> None:
    _some_history(rt, now)
    assert _verdict(rt).unsealed > 0 and _verdict(rt).sealed == 0
    summary = sweep_and_seal(rt.engine, ctx=rt.ctx, now=now + dt.timedelta(days=10))
    assert summary["sealed"] > 0  # the events written so far, and the overdue notice it fired
    verdict = _verdict(rt)
    assert verdict.ok and verdict.unsealed == 0 and verdict.sealed == verdict.checked


def test_two_sealers_at_once_leave_one_chain(rt: Runtime, now: dt.datetime) -> None:
    for _ in range(5):
        _some_history(rt, now)
    errors: list[BaseException] = []

    def sealer() -> None:
        try:
            seal(rt.engine, vault=rt.ctx.vault)
        except Exception as exc:  # the loser of the race: unique chain_seq or a locked database
            errors.append(exc)

    threads = [threading.Thread(target=sealer) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seal(rt.engine, vault=rt.ctx.vault)  # whatever the loser left, the next pass seals
    verdict = _verdict(rt)
    assert verdict.ok and verdict.unsealed == 0, (verdict, errors)
