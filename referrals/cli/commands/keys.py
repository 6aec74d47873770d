"""`referrals keys` and `referrals audit`: the clients' encryption keys and the audit chain."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from referrals.cli.output import emit_json
from referrals.cli.shared import JsonOpt, operator, runtime

keys_app = typer.Typer(help="Encryption keys: status and rotation.", no_args_is_help=True)
audit_app = typer.Typer(
    help="The append-only audit trail and its hash chain.", no_args_is_help=True
)


@keys_app.command("status")
def keys_status(as_json: JsonOpt = False) -> None:
    """Which secret wraps the clients' data keys, and how many clients wait for `keys rotate`."""
    operator("keys status")
    from sqlmodel import Session

    from referrals.usecases.clients.keys import key_status

    rt = runtime()
    with Session(rt.engine) as s:
        status = key_status(s, rt.ctx.vault)
    if as_json:
        return emit_json(status)
    print(
        f"current key {status['current']}: {status['to_rotate']} clients still under an older "
        "key or without a data key of their own"
    )


@keys_app.command("rotate")
def keys_rotate(
    batch: Annotated[int, typer.Option("--batch", min=1, max=10_000)] = 500,
    as_json: JsonOpt = False,
) -> None:
    """Re-wrap every client's data key under the current REFERRALS_SECRET_KEY (the old one in
    REFERRALS_PREVIOUS_SECRET_KEYS); a batch per transaction, resumable after an interruption."""
    operator("keys rotate")
    from sqlmodel import Session

    from referrals.cli.progress import progress_bar
    from referrals.usecases.clients.keys import key_status, rotate

    rt = runtime()
    with Session(rt.engine) as s:
        total = int(key_status(s, rt.ctx.vault)["to_rotate"])
    with progress_bar() as update:
        moved = rotate(
            rt.engine,
            vault=rt.ctx.vault,
            batch=batch,
            progress=lambda done: update("rotate", done, total),
        )
    if as_json:
        return emit_json({"rotated": moved, "current": rt.ctx.vault.key_id})
    print(f"{moved} clients moved under key {rt.ctx.vault.key_id}")


@audit_app.command("seal")
def audit_seal(as_json: JsonOpt = False) -> None:
    """Seal the events written since the last pass into the chain (the sweep does this too)."""
    operator("audit seal")
    from referrals.usecases.audit import seal

    rt = runtime()
    sealed = seal(rt.engine, vault=rt.ctx.vault)
    if as_json:
        return emit_json({"sealed": sealed})
    print(f"{sealed} events sealed")


@audit_app.command("verify")
def audit_verify(as_json: JsonOpt = False) -> None:
    """Check the chain from its start: the first broken link, if any, is named (exit 1)."""
    from referrals.config.settings import get_settings
    from referrals.infra.crypto import vault_for
    from referrals.queries.audit import verify
    from referrals.queries.reading import Reader

    settings = get_settings()
    with Reader.open(settings.database_url) as reader:
        verdict = verify(reader, vault=vault_for(settings.secret_key, settings.previous_keys))
    if as_json:
        emit_json(verdict.as_dict())
    elif verdict.ok:
        print(
            f"chain intact: {verdict.sealed} events sealed, {verdict.unsealed} waiting for the "
            f"next seal; head {verdict.head_seq} {verdict.head_hash[:16]}"
        )
    else:
        sys.stderr.write(
            f"error: the audit chain breaks at event {verdict.first_broken}: {verdict.why} "
            f"({verdict.sealed} events before it are intact)\n"
        )
    if not verdict.ok:
        raise typer.Exit(1)
