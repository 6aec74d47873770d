"""`referrals directory import`: the partner directory from an Open Referral HSDS 3.1 file.

partners.yaml stays the directory's source of truth (every `init` loads it), so an import
rewrites that file as well as the tables. The file is checked whole first; then the tables are
loaded in one transaction, and the new file is renamed into place just before it commits (the
old one kept as partners.yaml.<time>.bak, and put back if the commit fails). A file with any
problem changes nothing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml
from sqlmodel import Session, select

from referrals.config.province import ConfigError, PartnersFile, Province, cross_check
from referrals.config.settings import BUNDLED_CONFIG
from referrals.infra.db import transaction
from referrals.infra.runtime import Runtime
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
    added: list[str]
    changed: list[str]
    removed: list[str]
    capacities: int


def import_file(
    rt: Runtime, path: Path, *, user: str, now: dt.datetime, dry_run: bool = False
) -> Change:
    """Read, check, then (unless `dry_run`) load the tables and rewrite partners.yaml."""
    raw = path.read_bytes()
    try:
        data = json.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DirectoryError(f"{path.name}: not a JSON file ({exc})") from None
    province = rt.province
    incoming = read_directory(
        data, province=province, tz=rt.settings.tz, keep=_inactive_contacts(rt, province)
    )
    target = rt.settings.config_dir / "partners.yaml"
    proposed = replace(province, partners=list(incoming.partners.partners))
    try:
        cross_check(proposed, target, None)
    except ConfigError as exc:  # it names partners.N...: the same problems, in HSDS terms
        raise DirectoryError(str(exc)) from None
    before = {p.slug: p for p in province.partners}
    after = {p.slug: p for p in proposed.partners}
    change = Change(
        added=sorted(after.keys() - before.keys()),
        changed=sorted(k for k in after.keys() & before.keys() if after[k] != before[k]),
        removed=sorted(before.keys() - after.keys()),
        capacities=len(incoming.capacities),
    )
    if dry_run:
        return change
    if rt.settings.config_dir.resolve() == BUNDLED_CONFIG.resolve():
        raise DirectoryError(
            "the bundled config folder is part of the installed package: copy it, set "
            "REFERRALS_CONFIG_DIR to the copy, and import again"
        )
    digest = hashlib.sha256(raw).hexdigest()
    text = HEADER.format(
        province=province.province.name,
        source="".join(ch for ch in path.name if ch.isprintable())[:80],
        digest=digest[:16],
        day=now.astimezone(rt.settings.tz).strftime("%d/%m/%Y"),
        user=user,
    ) + yaml.safe_dump(
        incoming.partners.model_dump(mode="json", exclude_defaults=True),
        allow_unicode=True,
        sort_keys=False,
        width=100,
    )
    if PartnersFile.model_validate(yaml.safe_load(text)) != incoming.partners:
        raise DirectoryError("the rewritten partners.yaml would not read back the same")
    backup = target.with_name(f"partners.yaml.{now.astimezone(rt.settings.tz):%Y%m%d-%H%M%S}.bak")
    staged = target.with_name(f".partners.yaml.{os.getpid()}")
    staged.write_text(text, encoding="utf-8")
    swapped = False
    try:
        with transaction(rt.engine) as s:
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
            # The file goes in last before the commit: one rename, the old file kept beside it.
            if target.exists():
                shutil.copy2(target, backup)
                shutil.copymode(target, staged)
            os.replace(staged, target)
            swapped = True
    except BaseException:
        if swapped and backup.exists():  # the commit failed after the swap: put the old file back
            shutil.copy2(backup, target)
        raise
    finally:
        staged.unlink(missing_ok=True)
    return change


def _inactive_contacts(rt: Runtime, province: Province) -> dict[str, list[dict[str, Any]]]:
    """partners.yaml's contacts that are off (there, or by an admin): an export leaves them out,
    so an import of it keeps them as they are written."""
    with Session(rt.engine) as s:
        off = {
            (slug, name)
            for slug, name in s.exec(
                select(Organization.slug, Contact.name)
                .join(Contact, Contact.organization_id == Organization.id)
                .where(Contact.active == False)  # noqa: E712
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
            .join(Organization, Organization.id == Service.organization_id)
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
