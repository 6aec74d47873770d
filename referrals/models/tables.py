"""Every table, imported in one place so the metadata is complete (Alembic, tests)."""

from referrals.models.channels import ChannelSecret
from referrals.models.directory import (
    Area,
    AreaSuccessor,
    Contact,
    Location,
    Organization,
    OrganizationSuccessor,
    Service,
    ServiceArea,
    ServiceLocation,
)
from referrals.models.intake import Intake, PeerLink
from referrals.models.people import Client, ClientKey, Consent, User
from referrals.models.privacy import Breach, BreachNotice, PrivacyRequest
from referrals.models.search import ClientTerm
from referrals.models.subscriptions import Webhook
from referrals.models.tokens import ApiToken
from referrals.models.workflow import (
    Event,
    Extension,
    Notification,
    PathwayVersion,
    Referral,
    Step,
    SweepRun,
)

__all__ = [
    "ApiToken",
    "Area",
    "AreaSuccessor",
    "Breach",
    "BreachNotice",
    "ChannelSecret",
    "Client",
    "ClientKey",
    "ClientTerm",
    "Consent",
    "Contact",
    "Event",
    "Extension",
    "Intake",
    "Location",
    "Notification",
    "Organization",
    "OrganizationSuccessor",
    "PathwayVersion",
    "PeerLink",
    "PrivacyRequest",
    "Referral",
    "Service",
    "ServiceArea",
    "ServiceLocation",
    "Step",
    "SweepRun",
    "User",
    "Webhook",
]
