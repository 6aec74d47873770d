"""`referrals client merge KEEP OTHER` as operators run it: each call a fresh process, on both
databases. A merge prints what moved; a refusal is one line on stderr and exit 1; the tombstone
is not launched for; the audit chain verifies afterwards."""

from __future__ import annotations

import datetime as dt
import json
import subprocess

from referrals.infra.runtime import Runtime
from support.commands import referrals, refused
from support.domain import consent, launch, new_client


def run(user: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Each command's first run in a fresh process, its repeats here (support/commands.py)."""
    return referrals(*args, REFERRALS_USER=user)


def test_merge_in_fresh_processes(rt: Runtime, now: dt.datetime) -> None:
    keep, other = new_client(rt, now), new_client(rt, now)
    elsewhere = new_client(rt, now, district="ninh-hoa")
    consent(rt, other, "police-nha-trang", "id_papers", now)
    moved = launch(rt, other, "id_papers", "police-nha-trang", now)

    # A coordinator, in her district; the reason is recorded sealed, never printed.
    done = run(
        "mai", "client", "merge", keep.lower(), other, "--reason", "cùng một người", "--json"
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert (out["kept"], out["merged"], out["referrals"], out["consents"]) == (
        keep,
        other,
        [moved],
        1,
    )
    assert out["merged_at"].endswith("+07:00") and "cùng" not in done.stdout

    # Refusals: already merged, merged with itself, another district for a coordinator.
    assert f"was merged into {keep}" in refused(run("mai", "client", "merge", keep, other))
    assert "itself" in refused(run("mai", "client", "merge", keep, keep))
    assert f"unknown client '{elsewhere}'" in refused(
        run("mai", "client", "merge", keep, elsewhere)
    )
    # The tombstone is not launched for: the refusal names the client kept.
    launch_other = ["launch", other, "--pathway", "id_papers", "--partner", "police-nha-trang"]
    assert f"merged into {keep}" in refused(run("mai", *launch_other, "--via", "direct"))

    # A manager merges across districts; the human output says what moved.
    done = run("hoa", "client", "merge", keep, elsewhere)
    assert done.returncode == 0, done.stderr
    assert (
        done.stdout.strip()
        == f"client {elsewhere} merged into {keep}: 0 referral(s) and 0 consent(s) moved"
    )

    # The audit chain holds the merges' events and still verifies.
    assert run("admin", "audit", "seal").returncode == 0
    verified = run("admin", "audit", "verify", "--json")
    assert verified.returncode == 0, verified.stderr
    assert json.loads(verified.stdout)["ok"] is True
