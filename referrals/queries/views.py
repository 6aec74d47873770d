"""Read models for the staff pages: clients, consents, and who serves a district, in plain SQL.

Same `Reader` as queries/reading.py; every function takes the district scope the caller may see
(None: all districts) so the pages cannot forget it.
"""

from __future__ import annotations

from typing import Any

from referrals.queries.areas import district_params, in_district
from referrals.queries.lateness import escalation_rungs
from referrals.queries.reading import OPEN_SQL, Reader, definitions


def list_clients(reader: Reader, *, district: str | None, limit: int = 500) -> list[dict[str, Any]]:
    """Clients, newest first, with how many referrals each has open. Not a tombstone (a client
    merged into another, usecases/clients/merging.py): the person is listed once, as the client
    kept."""
    sql = f"""
        SELECT c.code, c.area_key AS district, a.name AS district_name, c.created_at,
               (SELECT COUNT(*) FROM referral r
                 WHERE r.client_id = c.id AND r.status IN ({OPEN_SQL})) AS open_referrals
        FROM client c JOIN area a ON a.key = c.area_key
        WHERE c.merged_into_id IS NULL {"AND " + in_district("c.area_key", district) if district else ""}
        ORDER BY c.created_at DESC, c.id DESC LIMIT :limit"""
    params: dict[str, Any] = {"limit": limit}
    if district:
        params.update(district_params(district))
    return reader.rows(sql, **params)


def client_consents(reader: Reader, *, code: str) -> list[dict[str, Any]]:
    return reader.rows(
        """
        SELECT o.slug AS partner, o.name AS partner_name, k.purpose, k.method,
               k.granted_at, k.withdrawn_at, p.name AS purpose_name
        FROM consent k
        JOIN client c ON c.id = k.client_id
        JOIN organization o ON o.id = k.organization_id
        LEFT JOIN (SELECT key, MIN(name) AS name FROM pathwayversion GROUP BY key) p
               ON p.key = k.purpose
        WHERE c.code = :code
        ORDER BY k.granted_at DESC, k.id DESC""",
        code=code,
    )


def client_events(reader: Reader, *, code: str, limit: int = 50) -> list[dict[str, Any]]:
    """The client's own timeline (added, consents, views of their details), newest first, with
    the timelines of the clients merged into them; `client` says on whose record each is.

    A merge moves no event (usecases/clients/merging.py): events are append-only and sealed
    into a hash chain that covers their `client_id`, so the person's history is read through
    the tombstones' link (`merged_into_id`, one hop). Both records of a merge carry a
    `client.merged` event; the tombstone's, the twin of the kept client's, is left out here."""
    people = reader.rows(
        """
        SELECT c.id, c.code FROM client c WHERE c.code = :code
        UNION ALL
        SELECT t.id, t.code FROM client t JOIN client k ON k.id = t.merged_into_id
        WHERE k.code = :code""",
        code=code,
    )
    if not people:
        return []
    binds = {f"p{i}": p["id"] for i, p in enumerate(people)}
    rows = reader.rows(
        f"""
        SELECT e.kind, e.at, e.actor, e.data, c.code AS client
        FROM event e JOIN client c ON c.id = e.client_id
        WHERE e.client_id IN ({", ".join(":" + b for b in binds)})
        ORDER BY e.at DESC, e.id DESC LIMIT :limit""",
        limit=limit + len(people) - 1,  # each tombstone's twin, left out below
        **binds,
    )
    return [r for r in rows if not _twin(r, code)][:limit]


def _twin(event: dict[str, Any], code: str) -> bool:
    """A tombstone's own `client.merged` event, which says what the kept client's says."""
    merged = event["kind"] == "client.merged" and event["client"] != code
    return merged and (event["data"] or {}).get("merged") == event["client"]


def pathways(reader: Reader) -> list[dict[str, Any]]:
    """Each pathway's latest version: key and names."""
    return reader.rows(
        """
        SELECT p.key, p.name, p.name_en FROM pathwayversion p
        WHERE p.version = (SELECT MAX(q.version) FROM pathwayversion q WHERE q.key = p.key)
        ORDER BY p.name"""
    )


def partners_serving(reader: Reader, *, district: str) -> list[dict[str, Any]]:
    """Active partners with an active service in `district`: one row per (partner, pathway)."""
    return reader.rows(
        """
        SELECT o.slug, o.name, s.pathway_key AS pathway, s.name AS service, s.capacity
        FROM organization o
        JOIN service s ON s.organization_id = o.id AND s.active
        JOIN servicearea sa ON sa.service_id = s.id AND sa.area_key = :district
        WHERE o.active ORDER BY o.name, s.pathway_key""",
        district=district,
    )


def places_of(reader: Reader, *, partner: str, pathway: str) -> list[dict[str, Any]]:
    """Where the partner offers the pathway's service: name, address, area, opening hours."""
    return reader.rows(
        """
        SELECT l.name, l.address, a.name AS area, l.postal_code, l.hours
        FROM location l
        JOIN organization o ON o.id = l.organization_id AND o.slug = :partner
        JOIN servicelocation sl ON sl.location_id = l.id
        JOIN service s ON s.id = sl.service_id AND s.pathway_key = :pathway
        JOIN area a ON a.key = l.area_key
        WHERE l.active ORDER BY l.id""",
        partner=partner,
        pathway=pathway,
    )


def areas(reader: Reader) -> list[dict[str, Any]]:
    return reader.rows("SELECT key, name, name_en FROM area ORDER BY name")


def partner_names(reader: Reader) -> dict[str, str]:
    """Each partner's key -> its name, for events that name a partner by its key."""
    return {r["slug"]: r["name"] for r in reader.rows("SELECT slug, name FROM organization")}


def actor_names(reader: Reader, actors: set[str]) -> dict[str, str]:
    """How the timeline's actors (`user:mai`, `contact:13`) read on a page: a person's name,
    and a contact's organisation. Staff and partner contacts only, never a client."""
    users = sorted(a.removeprefix("user:") for a in actors if a.startswith("user:"))
    contacts = sorted(
        int(a.removeprefix("contact:"))
        for a in actors
        if a.startswith("contact:") and a.removeprefix("contact:").isdigit()
    )
    names: dict[str, str] = {}
    binds: dict[str, object]
    if users:
        binds = {f"u{i}": u for i, u in enumerate(users)}
        sql = f'SELECT username, full_name FROM "user" WHERE username IN ({", ".join(":" + b for b in binds)})'
        names |= {f"user:{r['username']}": r["full_name"] for r in reader.rows(sql, **binds)}
    if contacts:
        binds = {f"c{i}": c for i, c in enumerate(contacts)}
        sql = (
            "SELECT c.id, c.name, o.name AS partner FROM contact c"
            " JOIN organization o ON o.id = c.organization_id"
            f" WHERE c.id IN ({', '.join(':' + b for b in binds)})"
        )
        names |= {
            f"contact:{r['id']}": f"{r['name']} ({r['partner']})" for r in reader.rows(sql, **binds)
        }
    return names


def escalation_ladders(reader: Reader, *, pathway: str, version: int) -> dict[str, list[str]]:
    """For one pathway version: each step's escalation levels, as whom each tells (level 1
    first), so a timeline can say what "escalated, level 2" meant (queries/lateness.py)."""
    definition = definitions(reader, [(pathway, version)]).get((pathway, version))
    steps = (definition or {}).get("steps") or []
    return {st["key"]: escalation_rungs(definition, st["key"]) for st in steps}
