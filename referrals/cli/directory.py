"""`referrals directory import`: the partner directory from an Open Referral HSDS 3.1 file.

partners.yaml stays the directory's source of truth (every `init` loads it), so an import
rewrites that file as well as the tables: checked whole first, then the tables in one
transaction, then the file swapped in (the old one kept as partners.yaml.bak). A file with any
problem changes nothing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from dataclasses import dataclass, replace
from pathlib import Path

import yaml
from sqlmodel import Session, select

from referrals.config.province import ConfigError, cross_check
from referrals.config.settings import BUNDLED_CONFIG
from referrals.interop.hsds import DirectoryError, Incoming, read_directory
from referrals.models.db import transaction
from referrals.models.directory import Organization, Service
from referrals.models.loading import load_province_data
from referrals.models.runtime import Runtime
from referrals.models.workflow import Event

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
        raise DirectoryError(f"{path}: not a JSON file ({exc})") from None
    province = rt.province
    incoming = read_directory(data, province=province)
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
        source=path.name,
        digest=digest[:16],
        day=now.astimezone(rt.settings.tz).strftime("%d/%m/%Y"),
        user=user,
    ) + yaml.safe_dump(
        incoming.partners.model_dump(mode="json", exclude_defaults=True),
        allow_unicode=True,
        sort_keys=False,
        width=100,
    )
    staged = target.with_name(f".partners.yaml.{os.getpid()}")
    staged.write_text(text, encoding="utf-8")
    try:
        with transaction(rt.engine) as s:
            load_province_data(s, province=proposed)
            _set_capacities(s, incoming, now=now)
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
        if target.exists():
            os.replace(target, target.with_name("partners.yaml.bak"))
        os.replace(staged, target)
    finally:
        staged.unlink(missing_ok=True)
    return change


def _set_capacities(s: Session, incoming: Incoming, *, now: dt.datetime) -> None:
    """A capacity from the file wins only when it is newer than the one the partner last gave."""
    for (slug, pathway), (state, at) in incoming.capacities.items():
        service = s.exec(
            select(Service)
            .join(Organization, Organization.id == Service.organization_id)
            .where(Organization.slug == slug, Service.pathway_key == pathway)
        ).one()
        if service.capacity_at is None or service.capacity_at < min(at, now):
            service.capacity, service.capacity_at = state, min(at, now)
