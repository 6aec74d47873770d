"""The lifecycle: statuses and every legal move, as data in one place.

Referral statuses follow FHIR Task as profiled by the Gravity SDOH Clinical Care guide
(draft -> requested -> accepted -> in-progress -> completed, or rejected, on-hold, failed,
cancelled). A move not in the table raises IllegalTransition; nothing is written.
"""

from __future__ import annotations

from enum import StrEnum

from referrals.models.errors import IllegalTransition


class ReferralStatus(StrEnum):
    draft = "draft"
    requested = "requested"
    accepted = "accepted"
    in_progress = "in-progress"
    on_hold = "on-hold"
    completed = "completed"
    rejected = "rejected"
    failed = "failed"
    cancelled = "cancelled"


class StepStatus(StrEnum):
    pending = "pending"
    active = "active"
    done = "done"
    skipped = "skipped"
    failed = "failed"


class Outcome(StrEnum):
    successful = "successful"
    not_successful = "not-successful"


class Reason(StrEnum):
    """Why a referral closed without success, or why a partner declined."""

    client_refused = "client_refused"
    client_unreachable = "client_unreachable"
    client_not_eligible = "client_not_eligible"
    partner_lacks_capacity = "partner_lacks_capacity"
    partner_unreachable = "partner_unreachable"
    not_our_service = "not_our_service"
    no_longer_needed = "no_longer_needed"
    consent_withdrawn = "consent_withdrawn"
    no_show = "no_show"  # the client did not come: the referral waits on the coordinator's choice
    other = "other"


class Action(StrEnum):
    """What a person can do to a referral (CLI `advance --action`, action links, API)."""

    accept = "accept"
    decline = "decline"
    done = "done"
    fail = "fail"
    hold = "hold"
    resume = "resume"
    cancel = "cancel"


S = ReferralStatus
PREVIOUS = "previous"  # `resume` returns to the status the referral was held from
OPEN = frozenset({S.draft, S.requested, S.accepted, S.in_progress, S.on_hold})
CLOSED = frozenset(set(S) - OPEN)
WORKING = frozenset({S.requested, S.accepted, S.in_progress})

# trigger -> (allowed sources, destination). `submit`, `start` and `complete` are moved by the
# engine (launch, a step done); the rest are the Actions above.
REFERRAL_MOVES: dict[str, tuple[frozenset[S], S | str]] = {
    "submit": (frozenset({S.draft}), S.requested),
    "accept": (frozenset({S.requested}), S.accepted),
    "decline": (frozenset({S.requested}), S.rejected),
    "start": (frozenset({S.accepted}), S.in_progress),
    "complete": (frozenset({S.accepted, S.in_progress}), S.completed),
    "fail": (WORKING | {S.on_hold}, S.failed),
    "hold": (WORKING, S.on_hold),
    "resume": (frozenset({S.on_hold}), PREVIOUS),
    # The client did not come (the partner says so, or the sweep after the wait): the referral
    # waits on the coordinator, who books again (back where it was, with a new deadline), has
    # the client reminded, or closes it (`fail`, client_unreachable).
    "no_show": (frozenset({S.accepted, S.in_progress}), S.on_hold),
    "rebook": (frozenset({S.on_hold}), PREVIOUS),
    "cancel": (OPEN, S.cancelled),
}

T = StepStatus
STEP_MOVES: dict[str, tuple[frozenset[T], T]] = {
    "activate": (frozenset({T.pending}), T.active),
    "done": (frozenset({T.active}), T.done),
    "fail": (frozenset({T.active}), T.failed),
    "skip": (frozenset({T.pending, T.active}), T.skipped),
}

# A referral the partner declined can be sent on to another partner (a new referral, linked).
REROUTABLE = frozenset({S.rejected})

# Actions that close a referral without success need a reason; `cancel` defaults to this one.
REASON_REQUIRED = frozenset({Action.decline, Action.fail})
DEFAULT_CANCEL_REASON = Reason.no_longer_needed


def referral_move(trigger: str, current: S, held_from: S | None = None) -> S:
    """The status after `trigger`, or IllegalTransition."""
    sources, dest = REFERRAL_MOVES[trigger]
    if current not in sources:
        allowed = ", ".join(sorted(a for a, (src, _) in REFERRAL_MOVES.items() if current in src))
        raise IllegalTransition(
            f"cannot {trigger} a referral that is {current}"
            + (f" (possible: {allowed})" if allowed else ""),
            key="illegal_move",
            action=trigger,
            status=current.value,
        )
    if dest == PREVIOUS:
        if held_from is None or held_from not in WORKING:
            raise IllegalTransition("the referral has no status to resume to")
        return held_from
    return S(dest)


def step_move(trigger: str, current: T) -> T:
    sources, dest = STEP_MOVES[trigger]
    if current not in sources:
        raise IllegalTransition(f"cannot {trigger} a step that is {current}")
    return dest


class MessageStatus(StrEnum):
    """An outbox row: queued, then sent; failed (will retry) until dead; cancelled if pointless.

    On a channel whose gateway reports delivery (Zalo, brandname SMS), a sent message becomes
    delivered or undelivered when its receipt comes (issue 24)."""

    queued = "queued"
    failed = "failed"
    sent = "sent"
    delivered = "delivered"
    undelivered = "undelivered"
    dead = "dead"
    cancelled = "cancelled"


M = MessageStatus
DUE = frozenset({M.queued, M.failed})  # what a delivery pass may claim
# trigger -> (allowed sources, destination); applied as set-based UPDATEs guarded by the sources.
MESSAGE_MOVES: dict[str, tuple[frozenset[M], M]] = {
    "send": (DUE, M.sent),
    "fail": (DUE, M.failed),
    "die": (DUE, M.dead),
    "cancel": (DUE, M.cancelled),
    "retry": (frozenset({M.failed, M.dead}), M.queued),
    # A gateway's receipt: only a sent message takes one, once (a replay changes nothing).
    "deliver": (frozenset({M.sent}), M.delivered),
    "undeliver": (frozenset({M.sent}), M.undelivered),
}
# What left us: the gateway took it (and bills it), whatever its receipt said.
LEFT = frozenset({M.sent, M.delivered, M.undelivered})
# What reached or may have reached the recipient: a referral's partners "were told" when their
# prompt is one of these (an undelivered one reached the gateway, not the phone).
OUT = frozenset({M.sent, M.delivered})


def message_sources(trigger: str) -> list[str]:
    """The statuses a message may have for `trigger`, as values for a SQL `IN`."""
    return sorted(s.value for s in MESSAGE_MOVES[trigger][0])


def message_move(trigger: str, current: M) -> M:
    sources, dest = MESSAGE_MOVES[trigger]
    if current not in sources:
        raise IllegalTransition(f"cannot {trigger} a message that is {current}")
    return dest
