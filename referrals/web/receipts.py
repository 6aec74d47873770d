"""The gateways' delivery receipts arrive here: `/receipts/zalo` (Zalo's ZNS delivery events)
and `/receipts/sms` (the brandname gateway's callbacks), each registered with the provider.

The channel's own plugin, built from the same URL the delivery worker sends with, checks the
callback (Zalo's signature, or ours on the callback URL we gave eSMS) and reads it: a forged or
stale one is refused with its 4xx and changes nothing. What it read is recorded in one
transaction (notifiers/receipts.py). The answer says how many receipts moved a message, how
many named no message of ours, and how many were already recorded; a callback whose receipts
were all recorded before (a replay) is refused with 409. Nothing personal is in a receipt or in
the answer: gateway ids and counts.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from referrals.infra.db import transaction
from referrals.infra.runtime import Runtime
from referrals.notifiers import receipts
from referrals.notifiers.channels import ChannelError, Channels
from referrals.notifiers.plugins.base import Receipt, ReceiptRefused
from referrals.web.staff import now_of

router = APIRouter(prefix="/receipts", include_in_schema=False)


@router.api_route("/{channel}", methods=["GET", "POST"])
async def receive(channel: Literal["zalo", "sms"], request: Request) -> JSONResponse:
    body = await request.body()
    now = now_of(request)
    rt = Runtime.current()
    try:
        plugin = Channels(rt.province.province.delivery).plugin(channel)
    except ChannelError as exc:  # a secret missing in this process: the gateway will retry
        return JSONResponse({"error": str(exc)}, status_code=503)
    read = getattr(plugin, "read_receipts", None)
    if read is None:
        return JSONResponse({"error": f"the {channel} channel takes no receipts"}, 404)
    try:
        found: list[Receipt] = read(
            method=request.method,
            query=dict(request.query_params),
            headers=request.headers,
            body=body,
            now=now,
        )
    except ReceiptRefused as exc:
        return JSONResponse({"error": str(exc)}, status_code=exc.status)

    def write() -> receipts.Recorded:
        with transaction(rt.engine) as s:
            return receipts.record(s, channel=channel, receipts=found, now=now)

    done = await run_in_threadpool(write)
    status = 409 if done.already and not done.applied and not done.unknown else 200
    return JSONResponse(asdict(done), status_code=status)
