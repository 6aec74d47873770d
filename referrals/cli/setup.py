"""`referrals init`: migrate, load the province's YAML, make sure an admin exists, demo data."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlmodel import col

from referrals.infra.db import transaction
from referrals.infra.runtime import Runtime
from referrals.migrations import upgrade
from referrals.models.people import Role, User
from referrals.usecases.clients.finding import index_missing
from referrals.usecases.directory.loading import load_province_data


def initialise(rt: Runtime, *, demo: bool) -> None:
    rt.engine  # noqa: B018  (with rt.create, makes the data folder of a SQLite file)
    upgrade(rt.settings.database_url)
    with transaction(rt.engine) as s:
        counts = load_province_data(s, province=rt.province)
        if s.scalars(select(User).where(col(User.username) == rt.settings.user)).first() is None:
            s.add(
                User(
                    username=rt.settings.user, full_name="Quản trị hệ thống", role=Role.admin.value
                )
            )
    indexed = index_missing(rt.engine, rt.ctx.vault)  # clients from before the search index
    print(f"database ready: {_safe_url(rt.settings.database_url)}")
    if indexed:
        print(f"{indexed} clients' names indexed for search")
    print(
        f"province {rt.province.province.name}: {counts['areas']} areas, {counts['partners']} partners, "
        f"{counts['contacts']} contacts, {counts['pathway_versions']} new pathway versions"
    )
    if demo:
        from referrals.cli.demo import load_demo

        print(load_demo(rt, now=dt.datetime.now(dt.UTC)))


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
