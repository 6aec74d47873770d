"""Bulk launch from CSV: every row finds or creates its client, records consent and launches.

All or nothing per file: every row is checked first, problems are reported with their CSV line
numbers, and one bad row writes nothing at all.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from pydantic import AfterValidator, ConfigDict, ValidationError, field_validator
from sqlalchemy import func, insert, select, text
from sqlalchemy.orm import aliased
from sqlmodel import Session, col

from referrals.infra.context import Context
from referrals.infra.db import CHUNK, insert_many, is_postgres
from referrals.interop.spreadsheet import read_rows, template
from referrals.models.bounds import check_instant
from referrals.models.directory import Area, Organization
from referrals.models.errors import DomainError
from referrals.models.people import Client, ClientKey, Consent, ConsentMethod, User, actor_name
from referrals.models.policy import acts_in_area
from referrals.models.search import ClientTerm
from referrals.models.workflow import Event, PathwayVersion
from referrals.usecases.clients.clients import ClientIn, SealedClient, seal_client
from referrals.usecases.clients.finding import name_keys
from referrals.usecases.referrals.launching import (
    TICK,
    LaunchRefused,
    LaunchRequest,
    Progress,
    launch_referrals,
    no_progress,
)

HEADER = (
    "name",
    "phone",
    "id_number",
    "district",
    "pathway",
    "partner",
    "consent",
    "launched_at",
    "urgent",
    "different_person",
)
ANALYZE_AFTER = 1000  # rows
REQUIRED = frozenset({"name", "district", "pathway", "partner", "consent"})
TRUE = {"1", "true", "yes", "y", "x", "có", "co"}
FALSE = {"", "0", "false", "no", "n", "không", "khong"}


class ImportRow(ClientIn):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    pathway: str
    partner: str
    consent: ConsentMethod
    launched_at: Annotated[dt.datetime, AfterValidator(check_instant)] | None = None
    urgent: bool = False

    @field_validator("launched_at", mode="before")
    @classmethod
    def _when(cls, value: Any) -> Any:
        if value in (None, ""):
            return None
        text = str(value).strip()
        for fmt in ("%d/%m/%Y", "%d/%m/%Y %H:%M"):
            try:
                return dt.datetime.strptime(text, fmt)
            except ValueError:
                pass
        try:
            return dt.datetime.fromisoformat(text)
        except ValueError:
            raise ValueError("launched_at is ISO 8601 (2026-11-23T09:00) or dd/mm/yyyy") from None

    @field_validator("urgent", mode="before")
    @classmethod
    def _flag(cls, value: Any) -> bool:
        text = str(value or "").strip().lower()
        if text in TRUE | FALSE:
            return text in TRUE
        raise ValueError("urgent is yes/no (or 1/0, có/không)")

    @field_validator("consent", mode="before")
    @classmethod
    def _method(cls, value: Any) -> Any:
        return str(value or "").strip().lower()


class ImportRefused(DomainError):
    def __init__(self, problems: list[tuple[int, str]]) -> None:
        self.problems = problems
        line, message = problems[0]
        more = f" (and {len(problems) - 1} more rows)" if len(problems) > 1 else ""
        super().__init__(f"line {line}: {message}{more}; nothing was imported")


@dataclass
class ImportReport:
    referrals: list[str] = field(default_factory=list)
    clients_created: int = 0
    clients_found: int = 0
    consents_recorded: int = 0


def import_template(session: Session) -> bytes:
    """The workbook to fill in for an import: the header, and drop-downs of the districts,
    pathways and active partners of this installation, consent methods and yes/no."""
    areas = [(a.key, a.name) for a in session.scalars(select(Area).order_by(col(Area.key)))]
    latest = select(PathwayVersion).order_by(col(PathwayVersion.version))
    pathways = sorted({p.key: p.name for p in session.scalars(latest)}.items())
    partners = [
        (o.slug, o.name)
        for o in session.scalars(
            select(Organization).where(col(Organization.active)).order_by(col(Organization.slug))
        )
    ]
    choices = {
        "district": areas,
        "pathway": pathways,
        "partner": partners,
        "consent": [(m.value, m.value) for m in ConsentMethod],
        "urgent": [("có", "có"), ("không", "không")],
    }
    return template(HEADER, choices)


def parse_csv(data: bytes) -> list[tuple[int, dict[str, str]]]:
    """(line number, row) pairs from a CSV or an Excel workbook, as offices save them
    (interop/spreadsheet.py): the header on line 1, empty rows skipped."""
    table = read_rows(data)
    if not table:
        raise DomainError("the file has no rows to import")
    header = [h.strip() for h in table[0][1]]
    missing, unknown = REQUIRED - set(header), set(header) - set(HEADER)
    if missing or unknown:
        raise DomainError(
            f"line 1: the header must be {','.join(HEADER)}"
            + (f"; missing {', '.join(sorted(missing))}" if missing else "")
            + (f"; unknown {', '.join(sorted(unknown))}" if unknown else "")
        )
    rows = []
    for line, cells in table[1:]:
        if len(cells) > len(header):
            raise DomainError(f"line {line}: more cells than header columns")
        if any(c.strip() for c in cells):
            padded = [*cells, *[""] * (len(header) - len(cells))]
            rows.append((line, dict(zip(header, padded, strict=True))))
    if not rows:
        raise DomainError("the file has no rows to import")
    return rows


def validate_rows(
    rows: list[tuple[int, dict[str, str]]], tz: ZoneInfo, progress: Progress = no_progress
) -> tuple[list[ImportRow], list[tuple[int, str]]]:
    valid, problems = [], []
    for i, (line, raw) in enumerate(rows):
        if i % TICK == 0:
            progress("rows", i, len(rows))
        try:
            row = ImportRow.model_validate(
                {k: v for k, v in raw.items() if v.strip() or k in REQUIRED}
            )
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"]) or "row"
            problems.append((line, f"{where}: {str(err['msg']).removeprefix('Value error, ')}"))
            continue
        if row.launched_at and row.launched_at.tzinfo is None:
            row.launched_at = row.launched_at.replace(tzinfo=tz)
        valid.append(row)
    return valid, problems


def import_referrals(
    session: Session,
    *,
    data: bytes,
    coordinator: User,
    ctx: Context,
    now: dt.datetime,
    progress: Progress = no_progress,
) -> ImportReport:
    parsed = parse_csv(data)
    lines = [line for line, _ in parsed]
    rows, problems = validate_rows(parsed, ctx.tz, progress)
    if problems:
        raise ImportRefused(problems)
    rows_of_areas = list(session.scalars(select(Area)))
    areas = {a.key for a in rows_of_areas}
    today = now.astimezone(ctx.tz).date()
    current = ", ".join(sorted(a.key for a in rows_of_areas if a.in_force(today)))
    orgs: dict[str, int] = {}
    for o in session.scalars(select(Organization)):
        assert o.id is not None  # a loaded row has its id
        orgs[o.slug] = o.id
    problems = [
        (
            line,
            f"unknown district {row.district!r} (in force today: {current})"
            if row.district not in areas
            else f"unknown partner {row.partner!r} (known: {', '.join(sorted(orgs))})",
        )
        for line, row in zip(lines, rows, strict=True)
        if row.district not in areas or row.partner not in orgs
    ]
    problems += [
        (line, f"{coordinator.username} may not launch in {row.district}")
        for line, row in zip(lines, rows, strict=True)
        if row.district in areas and not acts_in_area(coordinator, row.district)
    ]
    if problems:
        raise ImportRefused(sorted(problems))

    report = ImportReport()
    progress("clients", 0, len(rows))
    clients = _find_or_create_clients(session, rows, lines, coordinator, ctx, now, report)
    report.consents_recorded = _record_consents(session, rows, clients, orgs, coordinator, now)
    requests = [
        LaunchRequest(
            client_code=clients[i].code,
            pathway=r.pathway,
            partner=r.partner,
            urgent=r.urgent,
            launched_at=r.launched_at,
        )
        for i, r in enumerate(rows)
    ]
    try:
        report.referrals = launch_referrals(
            session, requests=requests, coordinator=coordinator, ctx=ctx, now=now, progress=progress
        )
    except LaunchRefused as exc:
        raise ImportRefused([(lines[i], message) for i, message in exc.problems]) from None
    if len(rows) >= ANALYZE_AFTER and is_postgres(session):
        # Fresh statistics, or PostgreSQL plans the next queries for tables it believes empty.
        session.execute(text("ANALYZE client, consent, referral, step, event, notification"))
    return report


@dataclass
class _ClientRef:
    id: int
    code: str


def _find_or_create_clients(
    session: Session,
    rows: list[ImportRow],
    lines: list[int],
    by: User,
    ctx: Context,
    now: dt.datetime,
    report: ImportReport,
) -> list[_ClientRef]:
    """Match by ID number, then phone (keyed hashes); rows of one new person share one client.
    A new person whose name is a client's of the same district, or another new row's, is a
    likely second record: refused, unless the row says why it is someone else."""
    v = ctx.vault
    ids = [v.lookup(r.id_number, "id_number") for r in rows]
    phones = [v.lookup(r.phone, "phone") for r in rows]
    # Every key's hash is searched (a rotation may not have reached every client yet); each
    # older hash is mapped back to the current one, which the rows below use.
    current: dict[str, str] = {}
    for r in rows:
        for kind, value in (("id_number", r.id_number), ("phone", r.phone)):
            hashes = v.lookups(value, kind)
            current.update((h, hashes[0]) for h in hashes)
    known: dict[str, _ClientRef] = {}
    kept = aliased(Client)
    lookups = ((col(Client.id_number_lookup), ids), (col(Client.phone_lookup), phones))
    for column, values in lookups:
        targets = set(values)
        wanted = sorted(h for h, latest in current.items() if latest in targets)
        for i in range(0, len(wanted), CHUNK):
            # A merged record's phone or ID number stands for the client it was merged into.
            query = (
                select(col(kept.id), col(kept.code), column)
                .join(kept, col(kept.id) == func.coalesce(col(Client.merged_into_id), Client.id))
                .where(column.in_(wanted[i : i + CHUNK]))
            )
            for cid, code, key in session.execute(query):
                known.setdefault(current[key], _ClientRef(cid, code))
    result: list[_ClientRef | None] = []
    new_rows: list[SealedClient] = []
    new_index: dict[int, int] = {}  # row -> position in new_rows
    pending: dict[str, int] = {}  # lookup hash -> position in new_rows
    for i, row in enumerate(rows):
        found = next((known[k] for k in (ids[i], phones[i]) if k and k in known), None)
        if found is not None:
            result.append(found)
            report.clients_found += 1
            continue
        shared = next((pending[k] for k in (ids[i], phones[i]) if k and k in pending), None)
        if shared is None:
            shared = len(new_rows)
            new_rows.append(seal_client(row, ctx=ctx, created_by=by, now=row.launched_at or now))
            pending.update({k: shared for k in (ids[i], phones[i]) if k})
        new_index[i] = shared
        result.append(None)
    firsts = {pos: i for i, pos in sorted(new_index.items(), reverse=True)}  # a person's 1st row
    _refuse_namesakes(session, ctx, rows, lines, sorted(firsts.values()))
    if new_rows:
        new_ids = insert_many(session, Client, [n.row for n in new_rows], key="code")
        created = [(i, str(n.row["code"])) for i, n in zip(new_ids, new_rows, strict=True)]
        report.clients_created = len(created)
        insert_many(
            session,
            ClientKey,
            [
                {"client_id": cid, "wrapped": n.wrapped_key, "created_at": n.row["created_at"]}
                for cid, n in zip(new_ids, new_rows, strict=True)
            ],
        )
        terms = [
            {"term": t, "client_id": cid}
            for cid, n in zip(new_ids, new_rows, strict=True)
            for t in n.terms
        ]
        if terms:
            session.execute(insert(ClientTerm), terms)
        insert_many(
            session,
            Event,
            [
                {
                    "client_id": cid,
                    "referral_id": None,
                    "step_id": None,
                    "kind": "client.added",
                    "at": n.row["created_at"],
                    "actor": actor_name(by),
                    "data": {"client": code, "via": "import"},
                }
                for (cid, code), n in zip(created, new_rows, strict=True)
            ]
            + [  # a row that said why it is someone else than a namesake: kept, sealed
                {
                    "client_id": cid,
                    "referral_id": None,
                    "step_id": None,
                    "kind": "client.not_same_person",
                    "at": n.row["created_at"],
                    "actor": actor_name(by),
                    "data": {"client": code, "via": "import", "why_enc": n.why_enc},
                }
                for (cid, code), n in zip(created, new_rows, strict=True)
                if n.why_enc
            ],
        )
        for i, pos in new_index.items():
            result[i] = _ClientRef(*created[pos])
    return [r for r in result if r is not None]


def _refuse_namesakes(
    session: Session, ctx: Context, rows: list[ImportRow], lines: list[int], new: list[int]
) -> None:
    """The import's likely-namesake rule (the same words of a name in one district, as the
    clients page and the CLI warn, usecases/clients/finding.py): checked with one indexed
    lookup per chunk of names, so a file of thousands of rows stays fast. Rows of one new
    person (same phone or ID number) were already joined; a row saying `different_person`
    passes."""
    asked = [i for i in new if not rows[i].different_person]
    keys = {i: name_keys(ctx.vault, rows[i].name) for i in asked}
    wanted = sorted({k for ks in keys.values() for k in ks})
    existing: dict[tuple[str, str], list[str]] = {}
    for c in range(0, len(wanted), CHUNK):
        query = select(col(Client.name_lookup), col(Client.area_key), col(Client.code)).where(
            col(Client.name_lookup).in_(wanted[c : c + CHUNK]),
            col(Client.merged_into_id).is_(None),
        )
        for key, area, code in session.execute(query):
            existing.setdefault((key, area), []).append(code)
    problems: list[tuple[int, str]] = []
    first: dict[tuple[str, str], int] = {}  # (current key, district) -> line of its first row
    why = "give their phone or ID number, or fill different_person with why this is someone else"
    for i in asked:
        known = [code for k in keys[i] for code in existing.get((k, rows[i].district), [])]
        if known:
            problems.append((lines[i], f"{', '.join(known)} in this district has this name: {why}"))
        seen = first.setdefault((keys[i][0], rows[i].district), lines[i])
        if seen != lines[i]:
            problems.append((lines[i], f"line {seen} has this name in this district: {why}"))
    if problems:
        raise ImportRefused(sorted(problems))


def _record_consents(
    session: Session,
    rows: list[ImportRow],
    clients: list[_ClientRef],
    orgs: dict[str, int],
    by: User,
    now: dt.datetime,
) -> int:
    client_ids = sorted({c.id for c in clients})
    active: set[tuple[int, int, str]] = set()
    for i in range(0, len(client_ids), CHUNK):
        query = select(
            col(Consent.client_id), col(Consent.organization_id), col(Consent.purpose)
        ).where(
            col(Consent.client_id).in_(client_ids[i : i + CHUNK]),
            col(Consent.withdrawn_at).is_(None),
        )
        active.update((cid, org, purpose) for cid, org, purpose in session.execute(query).tuples())
    consents, events = [], []
    for row, client in zip(rows, clients, strict=True):
        key = (client.id, orgs[row.partner], row.pathway)
        if key in active:
            continue
        active.add(key)
        at = row.launched_at or now
        consents.append(
            {
                "client_id": client.id,
                "organization_id": key[1],
                "purpose": row.pathway,
                "method": row.consent.value,
                "granted_at": at,
                "granted_by": by.id,
                "withdrawn_at": None,
                "withdrawn_by": None,
            }
        )
        events.append(
            {
                "client_id": client.id,
                "referral_id": None,
                "step_id": None,
                "kind": "consent.granted",
                "at": at,
                "actor": actor_name(by),
                "data": {
                    "partner": row.partner,
                    "purpose": row.pathway,
                    "method": row.consent.value,
                    "via": "import",
                },
            }
        )
    if consents:
        insert_many(session, Consent, consents)
        insert_many(session, Event, events)
    return len(consents)
