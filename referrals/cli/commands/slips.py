"""`referrals slip CODE --out FILE.pdf`: the printable referral slip the client carries."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from referrals.cli.shared import NowOpt, runtime


def slip(
    code: str,
    out: Annotated[
        Path,
        typer.Option("--out", dir_okay=False, writable=True, help="Where to write the A5 PDF."),
    ],
    now: NowOpt = None,
) -> None:
    """Write referral CODE's slip (A5 PDF: office, partner, where and when, the code and a QR
    code the partner scans when the client arrives; nothing about the client)."""
    from referrals.cli.clock import parse_now
    from referrals.infra.db import transaction
    from referrals.usecases.referrals.slips import slip_pdf

    rt = runtime()
    with transaction(rt.engine) as s:  # the use case asks the policy (models/policy.py)
        pdf = slip_pdf(
            s,
            ctx=rt.ctx,
            code=code,
            by=rt.user(s),
            public_url=rt.settings.public_url,
            now=parse_now(now),
        )
        out.write_bytes(pdf)  # inside: a file that cannot be written leaves no `slip.printed`
    print(f"slip for {code} written to {out}")
