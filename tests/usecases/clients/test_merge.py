"""Merging two records of one person (issue 19): referrals and consents move to the client kept,
the other becomes a tombstone whose events and notes stay readable through it, both records are
audited, the period report counts the person once, and a bad merge writes nothing."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlmodel import Session

from referrals.infra.db import transaction
from referrals.infra.runtime import Runtime
from referrals.models.consents import ConsentMethod
from referrals.models.errors import Conflict, DomainError, NotFound
from referrals.models.lifecycle import Action
from referrals.models.people import Client, ClientKey, Consent
from referrals.models.workflow import Event, Referral
from referrals.queries.audit import verify
from referrals.queries.invariants import check
from referrals.queries.reading import Reader
from referrals.queries.report import Period, build_report
from referrals.queries.views import client_consents, client_events, list_clients
from referrals.usecases.audit import seal
from referrals.usecases.clients.clients import ClientIn, SamePerson, add_client, grant_consent
from referrals.usecases.clients.finding import find_clients
from referrals.usecases.clients.merging import (
    MergedClient,
    MergeIn,
    MergeRefused,
    merge_clients,
)
from referrals.usecases.clients.subject import erase_client, export_client
from referrals.usecases.referrals.advancing import advance
from referrals.usecases.referrals.importing import HEADER, import_referrals
from referrals.usecases.referrals.launching import LaunchRefused
from support.domain import consent, decline_with_note, launch, new_client, row_counts


def merge(
    rt: Runtime,
    now: dt.datetime,
    keep: str,
    other: str,
    user: str = "hoa",
    reason: str | None = None,
) -> Any:
    with transaction(rt.engine) as s:
        data = MergeIn(keep=keep, other=other, reason=reason)
        return merge_clients(s, data=data, by=rt.user(s, user), ctx=rt.ctx, now=now)


def reader(rt: Runtime) -> Reader:
    return Reader(rt.engine.raw_connection(), rt.engine.dialect.name)


def client_row(rt: Runtime, code: str) -> Client:
    with Session(rt.engine) as s:
        return s.scalars(select(Client).where(Client.code == code)).one()


def people_in_report(rt: Runtime, now: dt.datetime) -> dict[str, Any]:
    with reader(rt) as r:
        report = build_report(
            r,
            period=Period(dt.date(2026, 11, 1), dt.date(2026, 11, 30), rt.settings.tz),
            calendar=rt.ctx.calendar,
            now=now,
        )
    return {
        "clients": report["total"]["clients"],
        "launched": report["total"]["launched"],
        "per service": {s["pathway"]: s["clients"] for s in report["services"]},
    }


def two_records(rt: Runtime, now: dt.datetime) -> tuple[str, str, list[str]]:
    """One person registered twice: each record with a referral for legal aid's partner and the
    police, the other's declined by the police with a partner's note (sealed under its key)."""
    keep = new_client(rt, now, name="Lê Thị Hồng", phone="0905 600 001")
    other = new_client(rt, now, name="Lê Thị Hồng", phone="0905 600 002")
    consent(rt, keep, "legal-aid-centre", "legal_aid", now)
    consent(rt, other, "police-nha-trang", "id_papers", now)
    consent(rt, other, "social-work-centre", "psychosocial_support", now)
    mine = launch(rt, keep, "legal_aid", "legal-aid-centre", now)
    declined = launch(rt, other, "id_papers", "police-nha-trang", now)
    decline_with_note(rt, declined, "chị ấy đã có giấy tờ ở Ninh Hòa", now)
    still_open = launch(rt, other, "psychosocial_support", "social-work-centre", now)
    return keep, other, [mine, declined, still_open]


def test_a_merge_moves_referrals_and_consents_and_keeps_the_history(
    rt: Runtime, now: dt.datetime
) -> None:
    keep, other, (mine, declined, still_open) = two_records(rt, now)
    before = row_counts(rt)
    done = merge(rt, now, keep, other, reason="cùng người, đăng ký hai lần")
    assert (done.kept, done.merged) == (keep, other)
    assert sorted(done.referrals) == sorted([declined, still_open]) and done.consents == 2
    assert mine not in done.referrals  # the kept client's own stays where it was
    # Nothing deleted: two events (one per record), everything else as many rows as before.
    after = row_counts(rt)
    assert after == {**before, "event": before["event"] + 2}
    with Session(rt.engine) as s:
        tomb, kept = (
            s.scalars(select(Client).where(Client.code == c)).one() for c in (other, keep)
        )
        assert tomb.merged_into_id == kept.id and tomb.merged_at == now
        refs = s.scalars(select(Referral).where(Referral.code.in_([declined, still_open]))).all()
        assert {r.client_id for r in refs} == {kept.id} and all(r.version > 1 for r in refs)
        assert s.scalar(select(func.count()).where(Consent.client_id == tomb.id)) == 0
        assert s.get(ClientKey, tomb.id) is not None  # its notes stay readable
        merged = s.scalars(select(Event).where(Event.kind == "client.merged")).all()
    assert {e.client_id for e in merged} == {tomb.id, kept.id}
    on_kept = next(e for e in merged if e.client_id == kept.id)
    assert on_kept.data["merged"] == other and "cùng người" not in str(on_kept.data)  # sealed
    with reader(rt) as r:
        assert other not in {c["code"] for c in list_clients(r, district=None)}
        assert {c["purpose"] for c in client_consents(r, code=keep)} == {
            "legal_aid",
            "id_papers",
            "psychosocial_support",
        }
        history = client_events(r, code=keep)
    # The kept client's timeline holds both records' events, the merge once.
    assert [e["kind"] for e in history].count("client.merged") == 1
    assert [e["kind"] for e in history].count("client.added") == 2
    assert {e["client"] for e in history} == {keep, other}
    assert other in {e["data"].get("client") for e in history if e["kind"] == "client.added"}


def test_the_export_reads_the_person_with_every_key(rt: Runtime, now: dt.datetime) -> None:
    """The partner's note about the other record (its key) and the merge's reason (the kept
    client's key) both open; the other record's details are in the export."""
    keep, other, _ = two_records(rt, now)
    merge(rt, now, keep, other, reason="cùng người, đăng ký hai lần")
    with transaction(rt.engine) as s:
        out = export_client(s, code=keep, by=rt.user(s, "hoa"), ctx=rt.ctx, now=now)
    notes = [e["data"].get("note") for e in out["history"] if "note" in e["data"]]
    assert "chị ấy đã có giấy tờ ở Ninh Hòa" in notes and "cùng người, đăng ký hai lần" in notes
    assert [(m["code"], m["phone"]) for m in out["merged"]] == [(other, "+84905600002")]
    assert len(out["referrals"]) == 3
    assert {e["kind"] for e in out["history"]} >= {
        "client.added",
        "consent.granted",
        "link.answered",
    }


def test_the_report_counts_the_pair_as_one_person(rt: Runtime, now: dt.datetime) -> None:
    keep, other, _ = two_records(rt, now)
    before = people_in_report(rt, now)
    assert before["clients"] == 2 and before["launched"] == 3
    merge(rt, now, keep, other)
    after = people_in_report(rt, now)
    assert after == {**before, "clients": 1}  # the same referrals, one person


def test_the_audit_chain_still_verifies_after_a_merge(rt: Runtime, now: dt.datetime) -> None:
    keep, other, _ = two_records(rt, now)
    seal(rt.engine, vault=rt.ctx.vault)
    merge(rt, now, keep, other, reason="trùng hồ sơ")
    assert seal(rt.engine, vault=rt.ctx.vault) >= 2
    with reader(rt) as r:
        verdict = verify(r, vault=rt.ctx.vault)
        assert verdict.ok and verdict.unsealed == 0, verdict.as_dict()
        assert check(r, vault=rt.ctx.vault) == []  # every invariant of `referrals check`


def test_a_coordinator_merges_in_their_district(rt: Runtime, now: dt.datetime) -> None:
    keep, other = new_client(rt, now), new_client(rt, now)
    assert merge(rt, now, keep, other, user="mai").merged == other


@pytest.mark.parametrize(
    "case",
    [
        "same client",
        "erased keep",
        "erased other",
        "other district for a coordinator",
        "unknown code",
        "keep is a tombstone",
        "other already merged",
        "both open for one service",
    ],
)
def test_bad_merges_are_refused_and_write_nothing(rt: Runtime, now: dt.datetime, case: str) -> None:
    keep, other = new_client(rt, now), new_client(rt, now)
    user, refused = "hoa", MergeRefused
    if case == "same client":
        other, key = keep, "merge_same"
    elif case.startswith("erased"):
        with transaction(rt.engine) as s:
            gone = keep if case == "erased keep" else other
            erase_client(s, code=gone, by=rt.user(s, "hoa"), now=now)
        key = "merge_erased"
    elif case == "other district for a coordinator":
        other, user, refused, key = new_client(rt, now, district="ninh-hoa"), "mai", NotFound, None
    elif case == "unknown code":
        other, refused, key = "C-00000-00000", NotFound, "unknown_client"
    elif case in ("keep is a tombstone", "other already merged"):
        third = new_client(rt, now)
        merge(rt, now, third, keep if case == "keep is a tombstone" else other)
        refused, key = MergedClient, "merged"
    else:
        for code in (keep, other):
            consent(rt, code, "police-nha-trang", "id_papers", now)
            launch(rt, code, "id_papers", "police-nha-trang", now)
        key = "merge_both_open"
    before = row_counts(rt)
    with pytest.raises(refused) as error:
        merge(rt, now, keep, other, user=user)
    assert error.value.key == key, error.value
    assert row_counts(rt) == before
    if case == "keep is a tombstone":
        assert str(error.value) == f"client {keep} was merged into {third}: use {third}"
    if case == "other district for a coordinator":
        assert str(error.value) == f"unknown client {other!r}"  # as if absent
    for code in {keep, other} - {"C-00000-00000"}:
        if case not in ("keep is a tombstone", "other already merged"):
            assert client_row(rt, code).merged_into_id is None


def test_a_tombstone_is_not_launched_for_and_its_phone_names_the_client_kept(
    rt: Runtime, now: dt.datetime
) -> None:
    keep = new_client(rt, now, phone="0905 600 101")
    other = new_client(rt, now, phone="0905 600 102")
    consent(rt, other, "police-nha-trang", "id_papers", now)
    merge(rt, now, keep, other)
    with pytest.raises(LaunchRefused) as refused:
        launch(rt, other, "id_papers", "police-nha-trang", now)
    assert refused.value.key == "merged" and refused.value.params == {"client": other, "into": keep}
    assert f"merged into {keep}" in str(refused.value)
    # The consent moved with the person: the kept client launches.
    assert launch(rt, keep, "id_papers", "police-nha-trang", now).startswith("R-")
    # A new registration with the tombstone's phone is refused naming the client kept.
    data = ClientIn(name="Lê Thị Hồng", phone="0905600102", district="nha-trang")
    with pytest.raises(SamePerson) as same, transaction(rt.engine) as s:
        add_client(s, data=data, ctx=rt.ctx, created_by=rt.user(s, "mai"), now=now)
    assert same.value.params["clients"] == keep


def test_a_merged_client_merged_again_takes_its_tombstones_along(
    rt: Runtime, now: dt.datetime
) -> None:
    """A into B, then B into C: A points at C (one hop), and C's timeline holds all three."""
    a, b, c = (new_client(rt, now) for _ in range(3))
    merge(rt, now, b, a)
    assert merge(rt, now + dt.timedelta(hours=1), c, b).repointed == [a]
    assert client_row(rt, a).merged_into_id == client_row(rt, c).id
    with reader(rt) as r:
        history = client_events(r, code=c)
        assert [e["client"] for e in history if e["kind"] == "client.added"].count(a) == 1
        # Both merges are on C's page once each: B's record of taking A in, C's of taking B.
        merges = [
            (e["client"], e["data"]["merged"]) for e in history if e["kind"] == "client.merged"
        ]
        assert sorted(merges) == sorted([(b, a), (c, b)])


def test_erasing_the_client_kept_erases_the_tombstones(rt: Runtime, now: dt.datetime) -> None:
    keep, other = new_client(rt, now), new_client(rt, now)
    merge(rt, now, keep, other)
    with transaction(rt.engine) as s:
        erase_client(s, code=keep, by=rt.user(s, "hoa"), now=now)
    tomb = client_row(rt, other)
    assert tomb.erased_at == now and tomb.name_enc is None and tomb.phone_lookup is None
    with Session(rt.engine) as s:
        assert s.get(ClientKey, tomb.id) is None
    with reader(rt) as r:
        assert check(r) == []


def test_an_action_on_a_referral_racing_a_merge_loses_cleanly(
    rt: Runtime, now: dt.datetime
) -> None:
    """The merge bumps each moved referral's version: an action that read it before fails as
    a lost race (a Conflict), never a silent overwrite."""
    keep, other = new_client(rt, now), new_client(rt, now)
    consent(rt, other, "police-nha-trang", "id_papers", now)
    code = launch(rt, other, "id_papers", "police-nha-trang", now)
    with Session(rt.engine) as s:
        version = s.scalars(select(Referral.version).where(Referral.code == code)).one()
    merge(rt, now, keep, other)
    with Session(rt.engine) as s:
        assert s.scalars(select(Referral.version).where(Referral.code == code)).one() == version + 1
    with transaction(rt.engine) as s:  # after the merge, the referral goes on as the kept one's
        advance(s, code=code, action=Action.accept, by=rt.user(s, "mai"), ctx=rt.ctx, now=now)


def test_two_merges_at_once_one_wins_the_other_is_refused(rt: Runtime, now: dt.datetime) -> None:
    """Two managers merge the same record into two different clients at the same moment: one
    merge happens, the other is a Conflict or is told it was already merged; never both, never
    another error."""
    first, second, other = (new_client(rt, now) for _ in range(3))
    outcomes: list[object] = []
    go = threading.Barrier(2)

    def attempt(keep: str) -> None:
        go.wait()
        try:
            outcomes.append(merge(rt, now, keep, other).kept)
        except (Conflict, MergedClient) as exc:
            outcomes.append(exc)
        except Exception as exc:  # anything else fails the test below, by name
            outcomes.append(repr(exc))

    threads = [threading.Thread(target=attempt, args=(k,)) for k in (first, second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    won = [o for o in outcomes if isinstance(o, str) and o in (first, second)]
    lost = [o for o in outcomes if isinstance(o, DomainError)]
    assert len(won) == 1 and len(lost) == 1, outcomes
    assert client_row(rt, other).merged_into_id == client_row(rt, won[0]).id
    with Session(rt.engine) as s:
        assert s.scalar(select(func.count()).where(Event.kind == "client.merged")) == 2


def test_after_a_merge_search_import_and_consent_lead_to_the_client_kept(
    rt: Runtime, now: dt.datetime
) -> None:
    """The old record's name, code or phone finds the client kept, never the old record; an import
    row with its phone uses the client kept, and no consent is recorded on it."""
    keep = new_client(rt, now, name="Đinh Thị Quế", phone="0905 600 201")
    other = new_client(rt, now, name="Đinh Thị Quế", phone="0905 600 202")
    merge(rt, now, keep, other)
    with transaction(rt.engine) as s:
        mai = rt.user(s, "mai")
        by_name = find_clients(s, by=mai, text="dinh que", ctx=rt.ctx, now=now, via="test")
        by_code = find_clients(s, by=mai, text=other, ctx=rt.ctx, now=now, via="test")
        by_phone = find_clients(s, by=mai, text="0905600202", ctx=rt.ctx, now=now, via="test")
    assert [f.code for f in by_name] == [keep] and [f.code for f in by_code] == [keep]
    assert [f.code for f in by_phone] == [keep]  # the old record's phone: the same person
    row = "Đinh Thị Quế,0905 600 202,,nha-trang,id_papers,police-nha-trang,written,,\n"
    with transaction(rt.engine) as s:
        report = import_referrals(
            s,
            data=(",".join(HEADER) + "\n" + row).encode(),
            coordinator=rt.user(s, "mai"),
            ctx=rt.ctx,
            now=now,
        )
    assert (report.clients_found, report.clients_created) == (1, 0)
    with reader(rt) as r:
        assert r.rows("SELECT c.code FROM referral f JOIN client c ON c.id = f.client_id") == [
            {"code": keep}
        ]
    before = row_counts(rt)
    with pytest.raises(DomainError, match=f"merged into {keep}"), transaction(rt.engine) as s:
        grant_consent(
            s,
            client_code=other,
            partner="legal-aid-centre",
            purpose="legal_aid",
            method=ConsentMethod.written,
            by=rt.user(s, "mai"),
            now=now,
        )
    assert row_counts(rt) == before
