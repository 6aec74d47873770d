"""Launching referrals: one set-based path for one referral (CLI, flow) and for thousands (import).

Everything is checked before anything is written; the referral, its steps, the first deadline,
the events and the outbox rows for the partner's contacts are then inserted in the caller's
transaction, so a launch is whole or absent (`launch_rows.py` writes them, set-based).

The staff pages' launch form (usecases/referrals/launch_form.py) also takes the client's
consent: `launch_one(consent=...)` records it in the launch's own transaction, so a refused
launch leaves none behind.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlmodel import Session, col

from referrals.infra.client_keys import refuse_if_erased
from referrals.infra.context import Context
from referrals.infra.db import chunks
from referrals.models.codes import new_code
from referrals.models.directory import (
    Area,
    AreaSuccessor,
    Organization,
    OrganizationSuccessor,
    Service,
    ServiceArea,
)
from referrals.models.errors import DomainError, NotFound
from referrals.models.lifecycle import OPEN
from referrals.models.people import Client, Consent, ConsentMethod, User
from referrals.models.policy import require_launch
from referrals.models.workflow import PathwayVersion, Referral
from referrals.notifiers.messages import People
from referrals.usecases.clients.clients import grant_consent, refuse_ended_area, successors_of
from referrals.usecases.clients.merging import kept_codes, refuse_if_merged
from referrals.usecases.referrals.launch_rows import Plan, write_launches

Progress = Callable[[str, int, int], None]  # (stage, rows done, rows in all), for progress bars
TICK = 500  # rows between progress reports


def no_progress(stage: str, done: int, total: int) -> None:
    pass


class Override(StrEnum):
    """Why a manager launched without the client's consent: fixed reasons, never free text (a
    note could carry the very details the consent protects)."""

    emergency_protection = "emergency_protection"  # violence, danger to life: shelter first
    client_unable_to_consent = "client_unable_to_consent"
    legal_obligation = "legal_obligation"


class LaunchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    client_code: str = Field(min_length=1, max_length=20)
    pathway: str = Field(min_length=1, max_length=60)
    partner: str = Field(min_length=1, max_length=60)
    urgent: bool = False
    launched_at: dt.datetime | None = None
    consent_override: Override | None = None


class LaunchRefused(DomainError):
    """One or more requests were refused; `problems` holds (request index, message)."""

    def __init__(
        self, problems: list[tuple[int, str]], first_error: DomainError | None = None
    ) -> None:
        self.problems = problems
        first = problems[0][1]
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        key, params = (first_error.key, first_error.params) if first_error else (None, {})
        super().__init__(first + more, key=key, **params)


@dataclass
class _Directory:
    pathways: dict[str, PathwayVersion]
    orgs: dict[str, Organization]
    services: dict[tuple[int, str], Service]
    service_areas: set[tuple[int, str]]
    people: People
    areas: dict[str, Area]
    succession: list[AreaSuccessor]
    partner_succession: dict[int, list[int]]

    @classmethod
    def load(cls, session: Session, on: dt.date | None = None) -> _Directory:
        pathways: dict[str, PathwayVersion] = {}
        for pv in session.scalars(select(PathwayVersion).order_by(col(PathwayVersion.version))):
            pathways[pv.key] = pv
        orgs = {o.slug: o for o in session.scalars(select(Organization))}
        services = {
            (s.organization_id, s.pathway_key): s
            for s in session.scalars(select(Service).where(col(Service.active)))
        }
        areas = {(sa.service_id, sa.area_key) for sa in session.scalars(select(ServiceArea))}
        return cls(
            pathways,
            orgs,
            services,
            areas,
            People.load(session, on),
            {a.key: a for a in session.scalars(select(Area))},
            list(session.scalars(select(AreaSuccessor))),
            _successors(session),
        )

    def refuse_ended_partner(self, org: Organization, on: dt.date) -> None:
        """A launch goes to a partner in force that day; an ended one is refused naming the
        partners in force that took over its work (through later changes too)."""
        if org.in_force(on):
            return
        by_id = {o.id: o for o in self.orgs.values()}
        found: list[Organization] = []
        todo = list(self.partner_succession.get(org.id or 0, []))
        while todo:
            nxt = by_id[todo.pop(0)]
            if nxt not in found:
                found.append(nxt)
                todo += self.partner_succession.get(nxt.id or 0, [])
        now_in_force = [o.slug for o in found if o.active and o.in_force(on)]
        ended = (
            f"ended on {org.valid_to:%d/%m/%Y}"
            if org.valid_to and org.valid_to < on
            else "is not in force yet"
        )
        hint = f": launch to {' or '.join(now_in_force)}" if now_in_force else ""
        raise DomainError(
            f"partner {org.slug} ({org.name}) {ended}{hint}",
            key="partner_not_in_force",
            partner=org.name,
            choices=", ".join(now_in_force),
        )

    def refuse_ended_area(self, client: Client, on: dt.date) -> None:
        area = self.areas[client.area_key]
        if not area.in_force(on):
            successors = successors_of(self.areas, self.succession, area.key, on)
            refuse_ended_area(client, area, successors, on)

    def partners_serving(self, pathway: str, area: str) -> list[str]:
        by_id = {o.id: o.slug for o in self.orgs.values() if o.active}
        return sorted(
            by_id[s.organization_id]
            for (org_id, key), s in self.services.items()
            if key == pathway and org_id in by_id and (s.id, area) in self.service_areas
        )


def launch_referrals(
    session: Session,
    *,
    requests: Sequence[LaunchRequest],
    coordinator: User,
    ctx: Context,
    now: dt.datetime,
    codes: Sequence[str] | None = None,
    progress: Progress = no_progress,
) -> list[str]:
    """Launch every request or none; return the new referral codes in request order."""
    directory = _Directory.load(session, now.astimezone(ctx.tz).date())
    client_codes = sorted({r.client_code for r in requests})
    clients: dict[str, Client] = {}
    for part in chunks(client_codes):
        clients.update(
            (c.code, c) for c in session.scalars(select(Client).where(col(Client.code).in_(part)))
        )
    client_ids = [c.id for c in clients.values()]
    kept = kept_codes(session, clients.values())  # for the tombstones: the client they went into
    consents: dict[tuple[int, int, str], Consent] = {}
    open_refs: dict[tuple[int, str], str] = {}
    for part in chunks(client_ids):
        for c in session.scalars(
            select(Consent)
            .where(col(Consent.client_id).in_(part))
            .order_by(col(Consent.granted_at))
        ):
            consents[(c.client_id, c.organization_id, c.purpose)] = c
        rows = session.execute(
            select(col(Referral.client_id), col(Referral.pathway_key), col(Referral.code)).where(
                col(Referral.client_id).in_(part), col(Referral.status).in_(sorted(OPEN))
            )
        )
        open_refs.update(((cid, key), code) for cid, key, code in rows)

    problems: list[tuple[int, str]] = []
    first_error: DomainError | None = None
    plans: list[Plan] = []
    for i, req in enumerate(requests):
        if i % TICK == 0:
            progress("launch", i, len(requests))
        try:
            _authorise(coordinator, req, clients.get(req.client_code))
            plan = _check(req, clients, kept, directory, consents, open_refs, ctx, now)
        except DomainError as exc:
            problems.append((i, str(exc)))
            first_error = first_error or exc
            continue
        client, org, service, pathway, at = plan
        assert client.id is not None  # a loaded row has its id
        open_refs[(client.id, pathway.key)] = "(earlier in this batch)"
        plans.append((req, client, org, service, pathway, at))
    if problems:
        raise LaunchRefused(problems, first_error)
    codes = list(codes) if codes else [new_code("R") for _ in plans]
    progress("write", 0, len(plans))
    write_launches(session, plans, codes, coordinator, directory.people, ctx)
    progress("write", len(plans), len(plans))
    return codes


def _successors(session: Session) -> dict[int, list[int]]:
    """Each ended partner's successors' ids (partners.yaml, usecases/directory/loading.py)."""
    found: dict[int, list[int]] = {}
    for link in session.scalars(select(OrganizationSuccessor)):
        found.setdefault(link.organization_id, []).append(link.successor_id)
    return found


def _authorise(by: User, req: LaunchRequest, client: Client | None) -> None:
    """The bulk step asks the policy about consent overrides only: its callers
    (`launch_one`, `import_referrals`) have checked the districts, each in its own terms."""
    if req.consent_override:
        area = client.area_key if client is not None else ""
        require_launch(by, client_code=req.client_code, area_key=area, override=True)


def _check(
    req: LaunchRequest,
    clients: dict[str, Client],
    kept: dict[int, str],
    directory: _Directory,
    consents: dict[tuple[int, int, str], Consent],
    open_refs: dict[tuple[int, str], str],
    ctx: Context,
    now: dt.datetime,
) -> tuple[Client, Organization, Service, PathwayVersion, dt.datetime]:
    """One request against the directory, the client's consents and open referrals; the first
    problem found is raised (in this order: pathway, partner, client, time, the client's area
    in force that day, service, consent,
    an open referral, the partner's contacts). A client merged into another (a tombstone,
    usecases/clients/merging.py) is refused naming the client `kept`."""
    pathway = _pathway(req, directory)
    org = _partner(req, directory)
    client = clients.get(req.client_code)
    if client is None:
        raise DomainError(f"unknown client {req.client_code!r}", key="unknown_client")
    refuse_if_erased(client)
    refuse_if_merged(client, kept)
    assert client.id is not None and org.id is not None  # loaded rows have their ids
    at = _launch_time(req, ctx, now)
    day = at.astimezone(ctx.tz).date()
    directory.refuse_ended_area(client, day)
    directory.refuse_ended_partner(org, day)
    offered = directory.services.get((org.id, pathway.key))
    service = _served(directory, offered, org, pathway, client, day)
    consent = consents.get((client.id, org.id, pathway.key))
    _require_consent(req, consent, client, org, pathway, at, ctx)
    if (existing := open_refs.get((client.id, pathway.key))) is not None:
        raise DomainError(
            f"client {client.code} already has an open {pathway.key} referral {existing}",
            key="already_open",
            client=client.code,
            pathway=pathway.name,
            referral=existing,
        )
    if not directory.people.partner(org.id)[0]:
        raise DomainError(
            f"partner {org.slug} has no active contact to ask", key="no_contact", partner=org.name
        )
    return client, org, service, pathway, at


def _pathway(req: LaunchRequest, directory: _Directory) -> PathwayVersion:
    pathway = directory.pathways.get(req.pathway)
    if pathway is None:
        raise DomainError(
            f"unknown pathway {req.pathway!r} (known: {', '.join(sorted(directory.pathways))})",
            key="unknown_pathway",
        )
    return pathway


def _partner(req: LaunchRequest, directory: _Directory) -> Organization:
    org = directory.orgs.get(req.partner)
    if org is None or not org.active:
        raise DomainError(
            f"unknown partner {req.partner!r} (see `referrals partners`)", key="unknown_partner"
        )
    return org


def _launch_time(req: LaunchRequest, ctx: Context, now: dt.datetime) -> dt.datetime:
    """When the referral was launched: the request's time (local if naive), or now."""
    at = req.launched_at or now
    if at.tzinfo is None:
        at = at.replace(tzinfo=ctx.tz)
    if at > now + dt.timedelta(minutes=5):
        raise DomainError(f"launch time {at.isoformat()} is in the future")
    return at


def _served(
    directory: _Directory,
    service: Service | None,
    org: Organization,
    pathway: PathwayVersion,
    client: Client,
    on: dt.date,
) -> Service:
    """The partner's `service` for the pathway, if it has one in force ON and it serves the
    client's area."""
    if service is not None and not service.in_force(on):
        since = f" since {service.valid_to:%d/%m/%Y}" if service.valid_to else " yet"
        raise DomainError(
            f"partner {org.slug} does not offer {pathway.key}{since}",
            key="not_offered",
            partner=org.name,
            pathway=pathway.name,
        )
    if service is None:
        raise DomainError(
            f"partner {org.slug} does not offer {pathway.key}",
            key="not_offered",
            partner=org.name,
            pathway=pathway.name,
        )
    if (service.id, client.area_key) not in directory.service_areas:
        others = directory.partners_serving(pathway.key, client.area_key)
        hint = f"; partners that do: {', '.join(others)}" if others else ""
        raise DomainError(
            f"partner {org.slug} does not serve {client.area_key} for {pathway.key}{hint}",
            key="not_served",
            partner=org.name,
            pathway=pathway.name,
        )
    return service


def _require_consent(
    req: LaunchRequest,
    consent: Consent | None,
    client: Client,
    org: Organization,
    pathway: PathwayVersion,
    at: dt.datetime,
    ctx: Context,
) -> None:
    """The client's `consent` to this partner for this pathway held at `at`, or a manager
    overrode it."""
    if req.consent_override:
        pass  # a manager's recorded decision (an event on the referral), see `_authorise`
    elif consent is None or consent.granted_at > at:
        raise DomainError(
            f"no consent from client {client.code} for {pathway.key} with {org.slug}; record it with "
            f"`referrals consent grant {client.code} --partner {org.slug} --purpose {pathway.key}`",
            key="no_consent",
            client=client.code,
            partner=org.name,
            pathway=pathway.name,
        )
    elif consent.withdrawn_at is not None and consent.withdrawn_at <= at:
        day = consent.withdrawn_at.astimezone(ctx.tz).strftime("%d/%m/%Y")
        raise DomainError(
            f"client {client.code} withdrew consent for {pathway.key} with {org.slug} on {day}",
            key="consent_withdrawn",
            client=client.code,
            partner=org.name,
            pathway=pathway.name,
            day=day,
        )


def launch_one(
    session: Session,
    *,
    code: str,
    request: LaunchRequest,
    coordinator: User,
    ctx: Context,
    now: dt.datetime,
    consent: ConsentMethod | None = None,
) -> str:
    """Launch one referral under a code chosen by the caller; re-running with that code is a no-op.
    Who may not see the client is told it does not exist; who may not act, that (404 and 403),
    rather than the batch's one refusal for every problem.

    `consent`: the client has just agreed, as the coordinator read them the launch form's text;
    it is recorded first, in the caller's transaction, so that the launch's own consent rule
    sees it, and a refused launch (which rolls that transaction back) records nothing."""
    found = session.scalars(select(col(Referral.id)).where(col(Referral.code) == code)).first()
    if found is not None:
        return code
    # Shared-locked (PostgreSQL): a merge of this client (which locks it FOR UPDATE) either
    # waits for this launch and then moves its referral, or goes first and this launch sees
    # the tombstone; without the lock, a launch checked just before a merge committed could
    # leave an open referral on the tombstone.
    client = session.scalars(
        select(Client).where(col(Client.code) == request.client_code).with_for_update(read=True)
    ).first()
    if client is None:
        raise NotFound(f"unknown client {request.client_code!r}")
    require_launch(
        coordinator,
        client_code=client.code,
        area_key=client.area_key,
        override=bool(request.consent_override),
    )
    if consent is not None:
        _grant_on_launch(session, request, consent, coordinator, now)
    return launch_referrals(
        session, requests=[request], coordinator=coordinator, ctx=ctx, now=now, codes=[code]
    )[0]


def _grant_on_launch(
    session: Session, req: LaunchRequest, method: ConsentMethod, by: User, now: dt.datetime
) -> None:
    """The consent given on the launch form. An unknown service or partner is the launch's own
    refusal (a form's error), not the consent's "not found" (a missing page)."""
    directory = _Directory.load(session)
    _pathway(req, directory)
    _partner(req, directory)
    grant_consent(
        session,
        client_code=req.client_code,
        partner=req.partner,
        purpose=req.pathway,
        method=method,
        by=by,
        now=now,
    )
