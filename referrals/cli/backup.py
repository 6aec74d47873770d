"""`referrals backup` and `referrals restore`: the data and the clients' data keys, kept apart.

The data (every table but `client_key`) goes to one file: the SQLite file copied through
SQLite's backup API, or `pg_dump --format=custom`. The clients' data keys go to another, which
belongs on another medium with a shorter life. An erasure deletes a data key (crypto-shredding,
infra/crypto.py), so it reaches the backups once the last keys file from before it has expired,
while the data backups can be kept for years. Each file's SHA-256 is in a manifest beside it.

A restore goes into an empty database, checks the checksums first, loads the data in one
transaction, adds back the keys of clients who are not erased in the restored data, and
migrates to the code's schema.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from psycopg.conninfo import make_conninfo
from sqlalchemy import Engine, insert, inspect, select
from sqlalchemy.engine import make_url
from sqlmodel import col

from referrals.migrations import current_revision, known_revision, upgrade
from referrals.models.people import Client, ClientKey

MANIFEST = "manifest.json"


class BackupError(ValueError):
    """A backup or restore that cannot go on; nothing was changed."""


@dataclass
class Written:
    data: Path
    keys: Path
    keys_count: int


def backup(engine: Engine, url: str, *, out: Path, keys_out: Path, now: dt.datetime) -> Written:
    stamp = now.strftime("%Y%m%d-%H%M%S")
    data_dir, keys_dir = out / f"referrals-{stamp}", keys_out / f"referrals-keys-{stamp}"
    for folder in {data_dir, keys_dir}:
        if folder.exists():
            raise BackupError(f"{folder} already exists")
        folder.mkdir(parents=True)
    sqlite = engine.dialect.name == "sqlite"
    data = data_dir / ("data.sqlite" if sqlite else "data.pgdump")
    if sqlite:
        _copy_sqlite(Path(make_url(url).database or ""), data)
    else:
        _run(
            ["pg_dump", "--format=custom", "--exclude-table-data=client_key", "-f", str(data)], url
        )
    keys = keys_dir / "keys.jsonl"
    with engine.connect() as c, keys.open("w") as f:
        rows = c.execute(
            select(col(ClientKey.client_id), col(ClientKey.wrapped), col(ClientKey.created_at))
        )
        count = 0
        for client_id, wrapped, created in rows:
            f.write(json.dumps({"client_id": client_id, "wrapped": wrapped, "at": str(created)}))
            f.write("\n")
            count += 1
    with engine.connect() as c:
        revision = current_revision(c)
    common = {"created_at": now.isoformat(), "dialect": engine.dialect.name, "revision": revision}
    _manifest(data_dir, data, {**common, "kind": "data"})
    _manifest(keys_dir, keys, {**common, "kind": "keys", "count": count})
    return Written(data, keys, count)


def restore(engine: Engine, url: str, *, data_dir: Path, keys_dir: Path | None) -> dict[str, int]:
    """Load a backup into an empty database; returns how many keys came back, how many were
    left out (their clients are erased) and how many living clients still have none."""
    data_meta = _checked(data_dir, "data")
    keys = _read_keys(keys_dir) if keys_dir else []
    if data_meta["dialect"] != engine.dialect.name:
        raise BackupError(f"this backup is of {data_meta['dialect']}, the database is not")
    if not known_revision(str(data_meta.get("revision"))):
        raise BackupError(
            f"this backup is at migration {data_meta.get('revision')}, which this code does not "
            "know: restore it with the version of the engine that made it"
        )
    if inspect(engine).get_table_names():
        raise BackupError(
            "the database is not empty: restore into a new, empty database (or drop this one first)"
        )
    data = data_dir / data_meta["file"]
    if engine.dialect.name == "sqlite":
        engine.dispose()
        target = Path(make_url(url).database or "")
        partial = target.with_suffix(".restoring")
        shutil.copyfile(data, partial)
        partial.replace(target)
    else:
        _run(
            ["pg_restore", "--no-owner", "--no-privileges", "--single-transaction",
             "--exit-on-error", "-d"],
            url,
            str(data),
        )  # fmt: skip
    upgrade(url)
    with engine.begin() as c:
        living = set(c.scalars(select(col(Client.id)).where(col(Client.erased_at).is_(None))))
        keep = [k for k in keys if k["client_id"] in living]
        if keep:
            c.execute(insert(ClientKey), keep)
    return {
        "keys": len(keep),
        "keys_of_erased_clients": len(keys) - len(keep),
        "clients_without_keys": len(living - {k["client_id"] for k in keep}),
    }


def _read_keys(folder: Path) -> list[dict[str, Any]]:
    """The keys backup, checked and parsed before anything is written."""
    meta = _checked(folder, "keys")
    try:
        return [
            {
                "client_id": int(row["client_id"]),
                "wrapped": str(row["wrapped"]),
                "created_at": dt.datetime.fromisoformat(row["at"]),
            }
            for row in map(json.loads, (folder / meta["file"]).read_text().splitlines())
        ]
    except (ValueError, KeyError, TypeError) as e:
        raise BackupError(f"{folder}: the keys file is malformed ({e})") from None


def _copy_sqlite(source: Path, target: Path) -> None:
    """A consistent copy while the engine runs, then the keys table emptied and the file
    rebuilt (VACUUM), so no page of the copy still holds a data key."""
    if not source.is_file():
        raise BackupError(f"no database file at {source}")
    src = sqlite3.connect(f"file:{quote(str(source))}?mode=ro", uri=True)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)
        dst.execute("DELETE FROM client_key")
        dst.commit()
        dst.execute("VACUUM")
    finally:
        src.close()
        dst.close()


def _run(command: list[str], url: str, *rest: str) -> None:
    """pg_dump / pg_restore against the engine's database. libpq gets the URL without its
    driver and without the password, which goes in PGPASSWORD: a command line is public."""
    parsed = make_url(url)
    libpq = make_conninfo(
        host=parsed.host,
        port=str(parsed.port) if parsed.port else None,
        dbname=parsed.database,
        user=parsed.username,
        **{k: str(v) for k, v in parsed.query.items()},
    )
    env = {**os.environ, **({"PGPASSWORD": parsed.password} if parsed.password else {})}
    if shutil.which(command[0]) is None:
        raise BackupError(f"{command[0]} is not installed (Debian: postgresql-client)")
    done = subprocess.run(
        [*command, libpq, *rest], capture_output=True, text=True, check=False, env=env
    )
    if done.returncode != 0:
        raise BackupError(f"{command[0]} failed: {done.stderr.strip()[-500:]}")


def _manifest(folder: Path, file: Path, meta: dict[str, Any]) -> None:
    meta = {**meta, "file": file.name, "sha256": _sha256(file)}
    (folder / MANIFEST).write_text(json.dumps(meta, indent=2) + "\n")


def _checked(folder: Path, kind: str) -> dict[str, Any]:
    try:
        meta = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError) as e:
        raise BackupError(f"{folder} holds no readable {MANIFEST}: {e}") from None
    if meta.get("kind") != kind:
        raise BackupError(f"{folder} is not a {kind} backup (it says {meta.get('kind')!r})")
    file = folder / str(meta.get("file"))
    if not file.is_file() or _sha256(file) != meta.get("sha256"):
        raise BackupError(f"{file} is missing or damaged (its SHA-256 does not match)")
    return meta


def _sha256(file: Path) -> str:
    digest = hashlib.sha256()
    with file.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
