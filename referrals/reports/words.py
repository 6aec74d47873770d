"""The period report's words, in the office's languages (Vietnamese: the office's report).

Messages for the gettext catalogs (referrals/locale/, how and why there): English source text,
all under the context "report" (the formal words of a printed report, which a translator may
word apart from the same English on the pages). `WORDS[lang]["as_of"]` reads a heading in a
language; `%(at)s` is filled by the caller. The reasons' names are shared with the staff pages.
"""

from __future__ import annotations

from referrals.locale import C_, ByLanguage, Msg

REPORT: dict[str, Msg] = {
    "title": C_("report", "Referral report"),
    "period": C_("report", "Period"),
    "as_of": C_(
        "report",
        "Figures as of %(at)s: the people referred in the period, and how they stood then.",
    ),
    "district_only": C_("report", "District"),
    "areas_as_of": C_("report", "areas as in force on %(day)s"),
    "by_service_district": C_("report", "By service and district"),
    "by_service": C_("report", "By service (all districts)"),
    "by_group": C_("report", "By group of services (each person counted once in a group)"),
    "group": C_("report", "Group of services"),
    "service": C_("report", "Service"),
    "district": C_("report", "District"),
    "clients": C_("report", "Clients"),
    "launched": C_("report", "Referrals"),
    "successful": C_("report", "Successful"),
    "not_successful": C_("report", "Not successful"),
    "still_open": C_("report", "Open"),
    "overdue": C_("report", "Overdue"),
    "reasons": C_("report", "Why not successful"),
    "total": C_("report", "Total"),
    "partners": C_("report", "By partner"),
    "partner": C_("report", "Partner"),
    "ack_median": C_("report", "Acknowledged after (median, working days)"),
    "ack_p90": C_("report", "Acknowledged: 90% within (working days)"),
    "complete_median": C_("report", "Completed after (median, working days)"),
    "complete_p90": C_("report", "Completed: 90% within (working days)"),
    "on_time": C_("report", "Steps on time"),
    "extended": C_("report", "Steps given more time"),
    "arrived": C_("report", "Clients arrived (slip)"),
    "no_show": C_("report", "Clients who did not come"),
    "declines": C_("report", "Declines (reason)"),
    "messages": C_("report", "Messages"),
    "sent": C_("report", "Sent"),
    "dead": C_("report", "Undeliverable"),
    # What each channel billed per month (Zalo and brandname SMS are paid per message).
    "costs": C_("report", "Messages and their cost, by month and channel"),
    "month": C_("report", "Month"),
    "channel": C_("report", "Channel"),
    "units": C_("report", "Billed units (SMS segments, Zalo messages)"),
    "price": C_("report", "Price per unit (đồng)"),
    "cost": C_("report", "Cost (đồng)"),
    # How messages went (the outbox's channel names), as the messages table's headings.
    "channel_zalo": C_("report", "Zalo"),
    "channel_sms": C_("report", "SMS"),
    "channel_email": C_("report", "E-mail"),
    "channel_webhook": C_("report", "Webhook (another system)"),
    "chart_services": C_("report", "Clients by service and district"),
    "chart_partners": C_("report", "Time to acknowledge by partner (working days): median and 90%"),
    "median": C_("report", "median"),
    "p90": C_("report", "90%"),
    "none": C_("report", "No referral was launched in the period."),
    "made": C_("report", "Made at %(at)s"),
}

# How a reason (models/lifecycle.py `Reason`) reads to people: the report and the staff pages.
REASON_WORDS: dict[str, Msg] = {
    "client_refused": C_("reason", "client refused"),
    "client_unreachable": C_("reason", "client unreachable"),
    "client_not_eligible": C_("reason", "client not eligible"),
    "partner_lacks_capacity": C_("reason", "partner lacks capacity"),
    "partner_unreachable": C_("reason", "partner unreachable"),
    "not_our_service": C_("reason", "not the partner's service"),
    "no_longer_needed": C_("reason", "no longer needed"),
    "consent_withdrawn": C_("reason", "consent withdrawn"),
    "no_show": C_("reason", "the client did not come"),
    "other": C_("reason", "other"),
}

WORDS = ByLanguage(REPORT)
REASONS = ByLanguage(REASON_WORDS)

# The section of the people peer groups brought in (issue 20), apart from the report's other
# words: `PEER[lang]["title"]`.
PEER_WORDS: dict[str, Msg] = {
    "title": C_("report", "People introduced by peer groups"),
    "group": C_("report", "Peer group"),
    "received": C_("report", "Introduced in the period"),
    "clients": C_("report", "Became clients"),
}
PEER = ByLanguage(PEER_WORDS)
