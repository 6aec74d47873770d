"""The web pages' words that a code picks at run time, for the staff and the partners' pages.

Most words are written where they show, in the templates (`{{ _("Open cases") }}`); these are
the ones looked up by a key: a status, an event or a refusal named by the data, a form field
named by a validation error. Each is a message for the gettext catalogs (referrals/locale/
says how and why): English source text, with a context where the same English reads
differently (a referral's "failed" is not a step's). `UI[lang]` (staff pages) and
`WORDS[lang]` (the partners' link pages) read them in a language, by their keys:
`UI["vi"]["status_" + status]`; templates get them as `w`.
"""

from __future__ import annotations

from referrals.locale import C_, N_, ByLanguage, Msg
from referrals.reports.words import REASON_WORDS

# The staff pages (coordinators, managers, admins).
STAFF: dict[str, Msg] = {
    # Roles, statuses and events as the data names them.
    "role_coordinator": C_("role", "coordinator"),
    "role_manager": C_("role", "manager"),
    "role_admin": C_("role", "admin"),
    # Why a login was refused (usecases/staff/accounts.py `LoginRefused.why`).
    "login_csrf": N_("The login form expired; please try again."),
    "login_credentials": N_("Wrong username or password."),
    "capacity_waitlist": C_("capacity", "waiting list"),
    "capacity_full": C_("capacity", "full"),
    # A form's fields, named in the pages' validation errors.
    "field_name": C_("form field", "Full name"),
    "field_phone": C_("form field", "Phone"),
    "field_id_number": C_("form field", "ID number (CMND/CCCD)"),
    "field_district": C_("form field", "District"),
    "field_username": C_("form field", "Username"),
    "field_full_name": C_("form field", "Full name"),
    "field_email": C_("form field", "E-mail"),
    "field_role": C_("form field", "Role"),
    "field_partner": C_("form field", "Partner"),
    "field_purpose": C_("form field", "Purpose"),
    "field_action": C_("form field", "Action"),
    "field_reason": C_("form field", "Reason"),
    "field_version": C_("form field", "Version"),
    "field_pathway": C_("form field", "Service"),
    "field_client": C_("form field", "Client"),
    "field_other": C_("form field", "Code of the other record"),
    "field_q": C_("form field", "Search"),
    # Why a coordinator views a client's personal details.
    "purpose_contact_client": C_("purpose", "To contact the client"),
    "purpose_partner_asked": C_("purpose", "The partner asked"),
    "purpose_verify_identity": C_("purpose", "To verify identity"),
    "purpose_other": C_("purpose", "Another reason"),
    "method_written": C_("consent method", "written"),
    "method_verbal": C_("consent method", "verbal"),
    "outcome_successful": C_("outcome", "successful"),
    "outcome_not-successful": C_("outcome", "not successful"),
    "actor_partner": C_("actor", "partner"),
    "actor_coordinator": C_("actor", "coordinator"),
    # Who did it, on a timeline, when no person did: the engine (a sweep, an undelivered message).
    "actor_system": C_("actor", "the system"),
    # How a message went (the outbox's channel names), in a messages list.
    "channel_zalo": C_("channel", "Zalo"),
    "channel_sms": C_("channel", "SMS"),
    "channel_email": C_("channel", "E-mail"),
    "channel_webhook": C_("channel", "Webhook (another system)"),
    # Whom an escalation level told (pathways.yaml `escalate: ... to:`), after "reminder N —".
    "escalated_partner_backup": C_("escalation", "partner's backup contact told"),
    "escalated_coordinator": C_("escalation", "coordinator told"),
    "escalated_district_manager": C_("escalation", "district managers told"),
    # Headings of the error page.
    "http_400": N_("The request could not be read: go back, reload the page and try again."),
    "http_403": N_("You may not do this."),
    "http_404": N_("Not found."),
    "http_409": N_("Someone changed this at the same moment: reload the page and try again."),
    "http_413": N_("This is too large to send. A file to import can be at most 4 MB."),
    "http_422": N_("This could not be done."),
    "http_429": N_("Too many attempts; please wait a minute and try again."),
    "status_draft": C_("referral status", "draft"),
    "status_requested": C_("referral status", "awaiting partner"),
    "status_accepted": C_("referral status", "accepted"),
    "status_in-progress": C_("referral status", "in progress"),
    "status_on-hold": C_("referral status", "on hold"),
    "status_completed": C_("referral status", "completed"),
    "status_rejected": C_("referral status", "declined"),
    "status_failed": C_("referral status", "failed"),
    "status_cancelled": C_("referral status", "cancelled"),
    "step_status_pending": C_("step status", "pending"),
    "step_status_active": C_("step status", "waiting"),
    "step_status_done": C_("step status", "done"),
    "step_status_skipped": C_("step status", "skipped"),
    "step_status_failed": C_("step status", "failed"),
    "msg_queued": C_("message status", "queued"),
    "msg_failed": C_("message status", "failed, will retry"),
    "msg_sent": C_("message status", "sent"),
    "msg_delivered": C_("message status", "delivered"),
    "msg_undelivered": C_("message status", "not delivered"),
    "msg_dead": C_("message status", "undeliverable"),
    "msg_cancelled": C_("message status", "cancelled"),
    # The kinds of message (notifiers/templates/), as the staff pages list them.
    "template_referral.new": C_("message", "New referral"),
    "template_step.reminder": C_("message", "Reminder"),
    "template_step.overdue": C_("message", "Overdue notice"),
    "template_step.escalation": C_("message", "Escalation"),
    "template_referral.closed": C_("message", "Closed notice"),
    "template_referral.answered": C_("message", "Partner answered"),
    "template_message.dead": C_("message", "Dead-message alert"),
    "template_digest.daily": C_("message", "Daily digest"),
    "template_extension.requested": C_("message", "More time asked for"),
    "template_extension.decided": C_("message", "More time decided"),
    "template_step.yours": C_("message", "Step is the partner's again"),
    "template_referral.no_show": C_("message", "Client did not come"),
    "template_client.remind": C_("message", "Reminder through a peer educator"),
    "template_webhook": C_("message", "Webhook"),
    "template_privacy.alert": C_("message", "Data-protection alert"),
    # A referral's and a client's timeline.
    "event_client.added": C_("event", "client registered"),
    "event_consent.granted": C_("event", "consent recorded"),
    "event_consent.withdrawn": C_("event", "consent withdrawn"),
    "event_pii.viewed": C_("event", "personal details viewed"),
    "event_pii.listed": C_("event", "name shown in a search"),
    "event_client.merged": C_("event", "records merged"),
    "event_referral.requested": C_("event", "referral sent"),
    "event_referral.accepted": C_("event", "partner accepted"),
    "event_referral.in-progress": C_("event", "in progress"),
    "event_referral.completed": C_("event", "completed"),
    "event_referral.rejected": C_("event", "partner declined"),
    "event_referral.failed": C_("event", "failed"),
    "event_referral.cancelled": C_("event", "cancelled"),
    "event_referral.on-hold": C_("event", "put on hold"),
    "event_referral.rerouted": C_("event", "sent to another partner"),
    "event_referral.rerouted_from": C_("event", "re-routed from"),
    "event_step.active": C_("event", "step started"),
    "event_step.done": C_("event", "step done"),
    "event_step.skipped": C_("event", "step skipped"),
    "event_step.failed": C_("event", "step failed"),
    "event_step.reminder": C_("event", "reminder"),
    "event_step.overdue": C_("event", "overdue"),
    "event_step.escalated": C_("event", "escalated"),
    "event_step.due_reset": C_("event", "deadline reset"),
    "event_referral.no_show": C_("event", "the client did not come"),
    "event_referral.arrived": C_("event", "client arrived (slip scanned)"),
    "event_slip.printed": C_("event", "referral slip printed"),
    "actor_slip": C_("actor", "the partner (slip scanned)"),
    "event_referral.rebooked": C_("event", "booked again"),
    "event_referral.resumed": C_("event", "resumed"),
    "event_referral.peer_reminded": C_("event", "peer educator asked to remind the client"),
    "event_link.answered": C_("event", "partner answered by link"),
    "event_link.revoked": C_("event", "link withdrawn"),
    "event_message.dead": C_("event", "message undeliverable"),
    "event_message.retry": C_("event", "message retried"),
    "event_message.delivered": C_("event", "message delivered"),
    "event_message.undelivered": C_("event", "message not delivered"),
    "event_message.fallback": C_("event", "message sent on the next channel"),
    # Why a message moved on to the contact's next channel (notifiers/fallback.py).
    "why_failed": C_("fallback", "could not be sent"),
    "why_undelivered": C_("fallback", "not delivered"),
    "why_unconfirmed": C_("fallback", "no delivery receipt in time"),
    "why_off": C_("fallback", "channel not set up"),
    "event_service.capacity": C_("event", "partner updated its capacity"),
    # More time on a step (usecases/referrals/extending.py), with the new date after them.
    "event_extension.requested": C_("event", "partner asked for more time"),
    "event_extension.granted": C_("event", "more time granted"),
    "event_extension.refused": C_("event", "more time not granted"),
    "event_client.erased": C_("event", "personal data erased"),
    "event_client.exported": C_("event", "personal data exported"),
    "event_client.not_same_person": C_("event", "registered as a different person"),
    "event_client.source": C_("event", "brought in by a peer group"),
    "event_client.moved": C_("event", "recorded under another area"),
    "event_privacy.request.received": C_("event", "data request received"),
    "event_privacy.request.acknowledged": C_("event", "data request answered"),
    "event_privacy.request.extended": C_("event", "data request extended"),
    "event_privacy.request.closed": C_("event", "data request closed"),
    "event_privacy.request.escalated": C_("event", "data request late, managers told"),
    "event_privacy.retention.notice": C_("event", "retention: erasure announced"),
    "event_privacy.retention.erased": C_("event", "erased at the end of retention"),
    "event_privacy.breach.recorded": C_("event", "breach recorded"),
    "event_privacy.breach.notified": C_("event", "breach notified"),
    "event_privacy.breach.notice": C_("event", "breach notice written"),
    "event_privacy.breach.warned": C_("event", "breach: 72 hours nearly over"),
    "event_privacy.breach.overdue": C_("event", "breach: 72 hours over, not notified"),
    # The domain's refusals (models/errors.py `DomainError.key`, its params by name).
    "err_unknown_pathway": N_("No such service."),
    "err_date_not_after_today": N_("The new date must be after today."),
    "err_date_too_far": N_("The new date is more than 90 days away."),
    "err_no_slip": N_(
        "This slip is not printed for this service: the person is taken there, and paper could put them at risk."
    ),
    "err_not_no_show": N_("This referral is not waiting after a no-show; reload the page."),
    "err_unknown_partner": N_("No such partner, or it is inactive."),
    "err_unknown_client": N_("No such client."),
    "err_not_offered": N_("%(partner)s does not offer “%(pathway)s”."),
    "err_not_served": N_("%(partner)s does not serve the client's district for “%(pathway)s”."),
    "err_no_consent": N_(
        "Client %(client)s has not consented to “%(pathway)s” with %(partner)s. "
        "Record the consent on the client's page first."
    ),
    "err_consent_withdrawn": N_(
        "Client %(client)s withdrew consent to “%(pathway)s” with %(partner)s on %(day)s."
    ),
    "err_already_open": N_(
        "Client %(client)s already has an open “%(pathway)s” referral (%(referral)s)."
    ),
    "err_no_contact": N_("%(partner)s has no active contact left."),
    "err_same_person": N_(
        "%(clients)s already has this phone or ID number: open their page, or say below why this "
        "is a different person."
    ),
    "err_likely_same": N_(
        "%(clients)s in this district has a name like this one: open their page to check, or say "
        "below why this is a different person."
    ),
    "err_search_empty": N_(
        "Type a whole word of the name, a phone or ID number, or a client's or referral's code."
    ),
    "err_same_person_elsewhere": N_(
        "A client in another district already has this phone or ID number: ask a manager, or say "
        "below why this is a different person."
    ),
    "err_conflict": N_(
        "Someone else just changed this referral; the page is reloaded, please check and try again."
    ),
    "err_reason_needed": N_("Please choose a reason."),
    "err_on_hold": N_("The referral is on hold; resume it first."),
    "err_no_step": N_("No step is waiting."),
    "err_not_active": N_("That step is not the one waiting."),
    "err_illegal_move": N_("This cannot be done in the referral's current state."),
    "err_not_reroutable": N_("Only a declined referral can be sent to another partner."),
    "err_password_short": N_("A password needs at least 10 characters."),
    "err_password_long": N_("A password has at most 200 characters."),
    "err_user_exists": N_("Username %(user)s is taken."),
    # An area the 2025 reform ended (usecases/clients/clients.py, require_area).
    "err_area_not_in_force": N_(
        "%(area)s is not in force today: choose one of today's units (%(choices)s)."
    ),
    "err_client_area_ended": N_(
        "Client %(client)s is recorded under %(area)s, which is no longer in force: move them "
        "to one of today's units (%(choices)s) first."
    ),
    "err_same_area": N_("The client is already recorded under this unit."),
    "err_self": N_("You cannot deactivate your own account."),
    "err_erased": N_("This client's personal data was erased at their request."),
    # Merging two records of one person (usecases/clients/merging.py).
    "err_merged": N_("Client %(client)s was merged into %(into)s; use %(into)s."),
    "err_merge_same": N_("A client cannot be merged with itself."),
    "err_merge_erased": N_(
        "The personal data of client %(client)s was erased; an erased client cannot be merged."
    ),
    "err_merge_both_open": N_(
        "Both clients have an open “%(pathway)s” referral (%(referrals)s); close or cancel one "
        "of them first."
    ),
    "err_merge_conflict": N_(
        "Someone else changed one of these clients at the same moment; nothing was saved. "
        "Please look again."
    ),
    "err_merge_unconfirmed": N_("Tick the box to confirm that both records are the same person."),
    # A typed date (referrals/locale/dates.py), and a period of days (the period report).
    "err_bad_phone": N_(
        "“%(text)s” is not a phone number: write it as 0905 123 456 or +84 905 123 456."
    ),
    "err_bad_id_number": N_("An ID number has 9 (CMND) or 12 (CCCD) digits."),
    "err_bad_name": N_("A name cannot hold control characters."),
    "err_too_long": N_("At most %(max)s characters."),
    "err_required": N_("Please fill this in."),
    "err_bad_day": N_("“%(text)s” is not a date: write it as dd/mm/yyyy, e.g. 31/12/2026."),
    "err_day_range": N_("Choose days from %(first)s to %(last)s."),
    "err_period_order": N_("The period ends before it starts: the first day comes first."),
    # A decision on a request for more time (usecases/referrals/extending.py).
    "err_extension_decided": N_("This request for more time was already decided."),
    "err_extension_stale": N_(
        "This request can no longer be granted: its step is over, or the date asked for has "
        "passed. You may refuse it; the partner can ask again."
    ),
    "err_extension_waiting": N_("A request for more time already waits for this step."),
    **{f"reason_{reason}": name for reason, name in REASON_WORDS.items()},
}

# The partners' pages (the contact's language).
LINK: dict[str, Msg] = {
    # What went wrong with an answer, or why the link cannot answer.
    "error_form": N_("What was sent is not valid; please try again."),
    "error_state": N_("This referral just changed; please look again."),
    "refused_invalid": N_("This link is not valid."),
    "refused_revoked": N_("This link was withdrawn."),
    "refused_expired": N_("This link has expired."),
    "refused_used": N_("An answer through this link is already recorded."),
    "refused_closed": N_("This referral is closed; nothing more to do."),
    "refused_answered": N_("This step is already answered, or not yet due."),
    "error_appointment_day": N_("An appointment is a day from today to 90 days ahead."),
    "error_day": N_("The date is not valid: write it as dd/mm/yyyy, e.g. 31/12/2026."),
    # The reasons a partner may give when it declines.
    "partner_lacks_capacity": N_("We have no capacity"),
    "not_our_service": N_("Not a service we offer"),
    "client_not_eligible": N_("The client is not eligible"),
    "other": N_("Another reason"),
    # Translators: the client's details a partner is shown, after "Client:", in lower case.
    "name": N_("name"),
    "phone": N_("phone"),
    "id_number": N_("ID number"),
    # How full the partner is for the service.
    "capacity_open": C_("capacity", "Taking clients"),
    "capacity_waitlist": C_("capacity", "Waiting list"),
    "capacity_full": C_("capacity", "Full"),
}

UI = ByLanguage(STAFF)
WORDS = ByLanguage(LINK)
