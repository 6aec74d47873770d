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
    # Headings of the error page.
    "http_403": N_("You may not do this."),
    "http_404": N_("Not found."),
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
    # A referral's and a client's timeline.
    "event_client.added": C_("event", "client registered"),
    "event_consent.granted": C_("event", "consent recorded"),
    "event_consent.withdrawn": C_("event", "consent withdrawn"),
    "event_pii.viewed": C_("event", "personal details viewed"),
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
    "event_link.answered": C_("event", "partner answered by link"),
    "event_link.revoked": C_("event", "link withdrawn"),
    "event_message.dead": C_("event", "message undeliverable"),
    "event_message.retry": C_("event", "message retried"),
    # The domain's refusals (models/errors.py `DomainError.key`, its params by name).
    "err_unknown_pathway": N_("No such service."),
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
    "err_self": N_("You cannot deactivate your own account."),
    "err_erased": N_("This client's personal data was erased at their request."),
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
