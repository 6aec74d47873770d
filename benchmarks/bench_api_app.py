"""The engine's web app plus one raw endpoint, for bench_api.py: `POST /raw` inserts one row
through the same engine and returns, the floor for any write the API does on this server."""

from __future__ import annotations

from fastapi import FastAPI
from sqlalchemy import Column, Integer, MetaData, String, Table, insert

from referrals.infra.runtime import Runtime
from referrals.web.app import create_app

metadata = MetaData()
raw_table = Table(
    "bench_raw", metadata, Column("id", Integer, primary_key=True), Column("v", String(20))
)


def create() -> FastAPI:
    app = create_app()
    engine = Runtime().engine
    metadata.create_all(engine)

    @app.post("/raw", status_code=201)
    def raw() -> dict[str, int]:
        with engine.begin() as c:
            c.execute(insert(raw_table).values(v="x"))
        return {"ok": 1}

    return app
