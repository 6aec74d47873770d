"""Managers' merge of two records of one person, on the client's page (issue 19).

The form is templates/client_merge.html, which client.html includes: on the page of the client
to keep, a manager types the other record's code, why (optional) and ticks the confirmation.
The use case (usecases/clients/merging.py) decides and asks the policy; this module only reads
the form and shows the answer. A refusal shows the client's page again with the words and the
form as typed (422; a lost race, 409); the page's own client, out of sight, is a 404 as
everywhere. A coordinator merges on the command line, in their district: the page is the
managers', who see every district and so can tell two records of one person apart.

A tombstone's page (the record merged away) links to `/clients/CODE/merged`, which answers with
the page of the client kept: the client page's context is built in web/clients.py, which knows
nothing of merges, so the link resolves here.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from referrals.infra.db import transaction
from referrals.models.errors import Conflict, DomainError
from referrals.models.policy import Forbidden
from referrals.models.roles import Role
from referrals.usecases.clients.clients import client_for
from referrals.usecases.clients.merging import (
    CODE,
    MergeIn,
    MergeRefused,
    kept_codes,
    merge_clients,
)
from referrals.web.clients import _client_page
from referrals.web.staff import Code, Me, require

router = APIRouter(include_in_schema=False)


class MergeForm(BaseModel):
    """The form's fields; the codes and the reason are checked again by `MergeIn`."""

    model_config = ConfigDict(extra="forbid")

    other: str = Field(pattern=CODE)
    reason: str | None = None
    confirm: bool = False


@router.post("/clients/{code}/merge")
async def client_merge(code: Code, request: Request, me: Me) -> Response:
    """Merge the typed record into client `code`; then that client's page."""
    require(me, Role.manager, Role.admin)
    form = await me.form(request)
    with transaction(me.rt.engine) as s:
        client_for(s, me.user, code, act=False)  # this page's client: absent, a 404
    try:
        fields = MergeForm.model_validate(form)
        if not fields.confirm:
            raise MergeRefused(
                "confirm that both records are the same person", key="merge_unconfirmed"
            )
        data = MergeIn(keep=code, other=fields.other, reason=fields.reason)
        with transaction(me.rt.engine) as s:
            merge_clients(s, data=data, by=me.user, ctx=me.rt.ctx, now=me.now)
    except Forbidden:
        raise
    except (ValidationError, DomainError) as exc:  # a NotFound here is the code typed
        status = 409 if isinstance(exc, Conflict) else 422
        return _client_page(me, code, status, error=me.why(exc), merge_form=form)
    return RedirectResponse(f"/clients/{code}", 303)


@router.get("/clients/{code}/merged")
def merged_into(code: Code, me: Me) -> Response:
    """The page of the client that `code` was merged into (if the viewer may see it: else
    404, as for any client out of sight); `code`'s own page if it was not merged."""
    with transaction(me.rt.engine) as s:
        client = client_for(s, me.user, code, act=False)
        kept = kept_codes(s, [client]).get(client.merged_into_id or 0)
        if kept is not None:
            client_for(s, me.user, kept, act=False)
    return RedirectResponse(f"/clients/{kept or code}", 303)
