"""`referrals directory import`'s side of the line: the file read and handed to the use case
(usecases/directory/importing.py), and what changed printed."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from referrals.infra.runtime import Runtime
from referrals.usecases.directory.importing import Change, import_directory


def import_file(
    rt: Runtime, path: Path, *, user: str, now: dt.datetime, dry_run: bool = False
) -> Change:
    """Import the HSDS file at PATH into RT's database and config folder (unless `dry_run`)."""
    return import_directory(
        rt.engine,
        data=path.read_bytes(),
        source=path.name,
        province=rt.province,
        config_dir=rt.settings.config_dir,
        tz=rt.settings.tz,
        user=user,
        now=now,
        dry_run=dry_run,
    )


def print_change(change: Change, *, dry_run: bool) -> None:
    verb = "would change" if dry_run else "imported"
    print(
        f"{verb}: {len(change.added)} new, {len(change.changed)} changed, "
        f"{len(change.removed)} made inactive; {change.capacities} capacities"
    )
    for label, slugs in (
        ("new", change.added),
        ("changed", change.changed),
        ("inactive", change.removed),
    ):
        for slug in slugs:
            print(f"  {label:<9}{slug}")
