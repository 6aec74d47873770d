"""The partner directory replaced by an Open Referral HSDS 3.1 file (`referrals directory import`).

partners.yaml stays the directory's source of truth (every `init` loads it), so an import
rewrites that file as well as the tables. The file is checked whole first (interop/hsds/ maps
it onto the province); then the tables are loaded in one transaction, and the new file is renamed
into place just before it commits (the old one kept as partners.yaml.<time>.bak, and put back if
the commit fails). A file with any problem changes nothing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from referrals.config.areas import in_force
from referrals.config.partners import Partner
from referrals.config.province import ConfigError, PartnersFile, Province, cross_check
from referrals.config.settings import BUNDLED_CONFIG
from referrals.infra.db import transaction
from referrals.interop.hsds import DirectoryError, Incoming, read_directory
from referrals.models.directory import Contact, Organization, Service
from referrals.models.workflow import Event
from referrals.usecases.directory.loading import load_province_data

HEADER = """\
# Partner directory for {province}, imported from an Open Referral HSDS file
# ({source}, SHA-256 {digest}) on {day} by {user}.
# See the comments of the bundled partners.yaml for what each field means.
"""


@dataclass(frozen=True)
class Change:
    """Partner keys new, changed and made inactive by the file; how many capacities it gives."""

    added: list[str]
    changed: list[str]
    removed: list[str]
    capacities: int


def import_directory(
    engine: Engine,
    *,
    data: bytes,
    source: str,
    province: Province,
    config_dir: Path,
    tz: dt.tzinfo,
    user: str,
    now: dt.datetime,
    dry_run: bool = False,
) -> Change:
    """Read and check DATA (the file named SOURCE), then (unless `dry_run`) load the tables and
    rewrite CONFIG_DIR's partners.yaml; USER is who imports, recorded on the timeline."""
    try:
        document = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DirectoryError(f"{source}: not a JSON file ({exc})") from None
    incoming = read_directory(
        document, province=province, tz=tz, keep=_inactive_contacts(engine, province)
    )
    target = config_dir / "partners.yaml"
    merged = PartnersFile(
        partners=with_history(province, incoming.partners.partners, now.astimezone(tz).date())
    )
    proposed = replace(province, partners=list(merged.partners))
    try:
        cross_check(proposed, target, None)
    except ConfigError as exc:  # it names partners.N...: the same problems, in HSDS terms
        raise DirectoryError(str(exc)) from None
    change = _compare(province, proposed, capacities=len(incoming.capacities))
    if dry_run:
        return change
    if config_dir.resolve() == BUNDLED_CONFIG.resolve():
        raise DirectoryError(
            "the bundled config folder is part of the installed package: copy it, set "
            "REFERRALS_CONFIG_DIR to the copy, and import again"
        )
    digest = hashlib.sha256(data).hexdigest()
    header = HEADER.format(
        province=province.province.name,
        source="".join(ch for ch in source if ch.isprintable())[:80],
        digest=digest[:16],
        day=now.astimezone(tz).strftime("%d/%m/%Y"),
        user=user,
    )
    text = _partners_yaml(merged, header=header)
    backup = target.with_name(f"partners.yaml.{now.astimezone(tz):%Y%m%d-%H%M%S}.bak")
    with _staged(text, target, backup) as swap, transaction(engine) as s:
        load_province_data(s, province=proposed)
        _set_capacities(s, incoming, user=user, now=now)
        s.add(
            Event(
                kind="directory.imported",
                at=now,
                actor=user,
                data={
                    "sha256": digest,
                    "added": change.added,
                    "changed": change.changed,
                    "removed": change.removed,
                },
            )
        )
        s.flush()
        swap()  # the file goes in last before the commit: one rename, the old file kept beside it
    return change


def with_history(province: Province, incoming: list[Partner], today: dt.date) -> list[Partner]:
    """An HSDS export carries the directory of its day only (interop/hsds/export.py); what it
    cannot say is kept from partners.yaml. A partner keeps its dates, successors and source; a
    service its dates, and the areas it lists when they serve the same areas in force today (a
    service listed for a district that ended is exported with the wards after it); a contact its
    dates. Partners, services and contacts not in force today, which the file leaves out, stay
    as written: history keeps pointing at them."""
    before = {p.slug: p for p in province.partners}
    current = {a.key for a in province.province.areas if in_force(a, today)}

    def served(keys: list[str]) -> set[str]:
        return set().union(*(province.area_scopes.get(k, {k}) for k in keys)) & current

    merged = []
    for partner in incoming:
        old = before.get(partner.slug)
        if old is None:
            merged.append(partner)
            continue
        was = {s.pathway: s for s in old.services}
        services = [
            s.model_copy(
                update={"areas": o.areas, "valid_from": o.valid_from, "valid_to": o.valid_to}
            )
            if (o := was.get(s.pathway)) is not None and served(o.areas) == served(s.areas)
            else s
            for s in partner.services
        ]
        given = {s.pathway for s in partner.services}
        services += [s for s in old.services if s.pathway not in given and not in_force(s, today)]
        dates = {c.name: {"valid_from": c.valid_from, "valid_to": c.valid_to} for c in old.contacts}
        contacts = [c.model_copy(update=dates.get(c.name, {})) for c in partner.contacts]
        named = {c.name for c in partner.contacts}
        contacts += [c for c in old.contacts if c.name not in named and not in_force(c, today)]
        kept = {k: getattr(old, k) for k in ("valid_from", "valid_to", "successors", "source")}
        merged.append(
            partner.model_copy(update={**kept, "services": services, "contacts": contacts})
        )
    given = {p.slug for p in incoming}
    merged += [p for p in province.partners if p.slug not in given and not in_force(p, today)]
    order = {p.slug: i for i, p in enumerate(province.partners)}  # as the file had them
    return sorted(merged, key=lambda p: order.get(p.slug, len(order)))


def _compare(province: Province, proposed: Province, *, capacities: int) -> Change:
    before = {p.slug: p for p in province.partners}
    after = {p.slug: p for p in proposed.partners}
    return Change(
        added=sorted(after.keys() - before.keys()),
        changed=sorted(k for k in after.keys() & before.keys() if after[k] != before[k]),
        removed=sorted(before.keys() - after.keys()),
        capacities=capacities,
    )


def _partners_yaml(partners: PartnersFile, *, header: str) -> str:
    """PARTNERS as partners.yaml, checked to read back the same."""
    text = header + yaml.safe_dump(
        partners.model_dump(mode="json", exclude_defaults=True),
        allow_unicode=True,
        sort_keys=False,
        width=100,
    )
    if PartnersFile.model_validate(yaml.safe_load(text)) != partners:
        raise DirectoryError("the rewritten partners.yaml would not read back the same")
    return text


@contextmanager
def _staged(text: str, target: Path, backup: Path) -> Iterator[Callable[[], None]]:
    """TEXT written beside TARGET; the function it gives renames it onto TARGET, the old file
    copied to BACKUP first. If the block fails after the rename, the old file is put back."""
    staged = target.with_name(f".partners.yaml.{os.getpid()}")
    staged.write_text(text, encoding="utf-8")
    swapped = False

    def swap() -> None:
        nonlocal swapped
        if target.exists():
            shutil.copy2(target, backup)
            shutil.copymode(target, staged)
        os.replace(staged, target)
        swapped = True

    try:
        yield swap
    except BaseException:
        if swapped and backup.exists():  # the commit failed after the swap: put the old file back
            shutil.copy2(backup, target)
        raise
    finally:
        staged.unlink(missing_ok=True)


def _inactive_contacts(engine: Engine, province: Province) -> dict[str, list[dict[str, Any]]]:
    """partners.yaml's contacts that are off (there, or by an admin): an export leaves them out,
    so an import of it keeps them as they are written."""
    with Session(engine) as s:
        off = {
            (slug, name)
            for slug, name in s.exec(
                select(Organization.slug, Contact.name)
                .join(Contact, col(Contact.organization_id) == Organization.id)
                .where(col(Contact.active) == False)  # noqa: E712
            )
        }
    return {
        p.slug: [
            c.model_dump(mode="json", exclude_defaults=True)
            for c in p.contacts
            if not c.active or (p.slug, c.name) in off
        ]
        for p in province.partners
    }


def _set_capacities(s: Session, incoming: Incoming, *, user: str, now: dt.datetime) -> None:
    """A capacity from the file wins only when it is newer than the one the partner last gave;
    each change is on the timeline, as a partner's own is."""
    for (slug, pathway), (state, at) in incoming.capacities.items():
        service = s.exec(
            select(Service)
            .join(Organization, col(Organization.id) == Service.organization_id)
            .where(Organization.slug == slug, Service.pathway_key == pathway)
        ).one()
        at = min(at, now)
        if service.capacity_at is not None and service.capacity_at >= at:
            continue
        if service.capacity != state:
            s.add(
                Event(
                    kind="service.capacity",
                    at=now,
                    actor=user,
                    data={
                        "pathway": pathway,
                        "partner": slug,
                        "capacity": state,
                        "was": service.capacity,
                    },
                )
            )
        service.capacity, service.capacity_at = state, at
