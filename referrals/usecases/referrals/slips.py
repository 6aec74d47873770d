"""The printable referral slip (phiếu chuyển gửi) the client carries to the partner (issue 20).

Paper that others may see on the way: it names the office (with a phone to call), the partner,
the partner-facing service name, where and when to go, and the referral's code in large type,
never anything about the client or their situation. Its QR code opens the *arrival link*
(models/links.py `slip_url`, usecases/referrals/arrival.py), which records that the client came
and nothing else; the partner's action link is never printed. Vietnamese first, with an English
line under each when the partner's first-rank contact reads English. A5 portrait, in large type
that also reads on a phone's screen.

Printing is reading the referral (a coordinator of its district, a manager, an admin; never a
partner's contact) and is on the timeline (`slip.printed`). The PDF is drawn with fpdf2, the QR
code by segno as vector paths; the font is Adobe's Source Sans Pro (SIL OFL 1.1, from the
`font-source-sans-pro` package), which has every Vietnamese letter and ships with the install.
"""

from __future__ import annotations

import datetime as dt
import io
import unicodedata
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from importlib.resources import as_file, files
from pathlib import Path
from typing import Any

import segno
from fpdf import FPDF
from sqlalchemy import select
from sqlmodel import Session, col

from referrals import locale
from referrals.config.province import DAYS, Hours
from referrals.infra.context import Context
from referrals.locale import N_, Msg
from referrals.models.directory import Area, Location, Organization, Service, ServiceLocation
from referrals.models.errors import DomainError, IllegalTransition
from referrals.models.lifecycle import OPEN, ReferralStatus
from referrals.models.links import slip_url
from referrals.models.policy import Acting, actor_of, require_role
from referrals.models.roles import Role
from referrals.models.workflow import Event, PathwayVersion, Referral
from referrals.usecases.referrals.advancing import referral_for
from referrals.usecases.referrals.arrival import Office, office_of, partner_language
from referrals.usecases.referrals.no_show import PRINTED

PAGE = (148.0, 210.0)  # A5 portrait, mm
MARGIN = 12.0
QR_SIZE = 46.0  # mm: scans from a phone held at arm's length, fits A5 with the rest
QUIET = 7.0  # mm of white around it (4 modules and more), where nothing else is drawn
FONT = "sourcesans"
FONT_FILES = {"": "SourceSansPro-Regular.ttf", "B": "SourceSansPro-Bold.ttf"}
GREY = 85  # the English lines, under the Vietnamese ones

Said = tuple[str, str]  # (Vietnamese, English)

# The slip's words (gettext catalogs, referrals/locale/), printed in Vietnamese; on an English
# slip a label reads "Vietnamese / English" and a sentence has its English under it, in grey.
TITLE = N_("Referral slip")
PHONE = N_("Phone")
CODE = N_("Referral code")
WHERE = N_("Where to go")
SERVICE = N_("Service")
HOURS = N_("Opening hours")
NO_PLACE = N_("No address is on record for this service: please call the office.")
BRING = N_(
    "Bring this slip when you go, and hand it to the staff who receive you to scan the code."
)
FOR_PARTNER = N_(
    "For the partner: scanning the code records the arrival; it holds no personal details."
)
PRINTED_ON = N_("Printed on")


@dataclass(frozen=True)
class Place:
    """A location where the partner offers the referral's service."""

    name: str
    address: str
    area: Said
    hours: Said  # "T2–T6 07:00–11:30, 13:30–17:00; T7 07:30–11:00", and in English


@dataclass(frozen=True)
class Slip:
    """Everything the slip prints: codes, the office's and the partner's names, places."""

    code: str
    url: str  # the arrival link in the QR code
    english: bool
    office: Office
    partner: Said
    service: Said
    places: list[Place]
    printed_on: str  # dd/mm/yyyy, the office's day


def slip_pdf(
    session: Session,
    *,
    ctx: Context,
    code: str,
    by: Acting,
    public_url: str,
    now: dt.datetime,
) -> bytes:
    """Referral `code`'s slip as a PDF, for staff who may read the referral (others: refused as
    reading it is); an open referral only. The printing is recorded on its timeline."""
    slip, referral = slip_of(session, ctx=ctx, code=code, by=by, public_url=public_url, now=now)
    session.add(Event(referral_id=referral.id, kind=PRINTED, at=now, actor=actor_of(by), data={}))
    return render(slip)


def printable(session: Session, referral: Referral) -> bool:
    """May a slip be printed for the referral's pathway (`slip:` in pathways.yaml)?"""
    definition = session.scalars(
        select(col(PathwayVersion.definition)).where(
            col(PathwayVersion.key) == referral.pathway_key,
            col(PathwayVersion.version) == referral.pathway_version,
        )
    ).one()
    return bool(definition.get("slip", True))


def slip_of(
    session: Session,
    *,
    ctx: Context,
    code: str,
    by: Acting,
    public_url: str,
    now: dt.datetime,
) -> tuple[Slip, Referral]:
    """What referral `code`'s slip prints (authorised and checked open), and the referral."""
    require_role(by, Role.coordinator, Role.manager, Role.admin, doing="printing a referral slip")
    referral = referral_for(session, by, code)
    status = ReferralStatus(referral.status)
    if status not in OPEN or status == ReferralStatus.draft:
        raise IllegalTransition(
            f"referral {code} is {status.value}: a slip is printed for an open referral only",
            key="illegal_move",
            action="slip",
            status=status.value,
        )
    if not printable(session, referral):
        raise DomainError(
            "no slip is printed for this service: the person is taken there, and paper could "
            "put them at risk",
            key="no_slip",
        )
    assert referral.id is not None  # a loaded row has its id
    partner = session.get(Organization, referral.organization_id)
    service = session.get(Service, referral.service_id)
    assert partner is not None and service is not None  # foreign keys
    slip = Slip(
        code=referral.code,
        url=slip_url(public_url, ctx.vault, referral.id),
        english=partner_language(session, referral.organization_id) == "en",
        office=office_of(),
        partner=(partner.name, partner.name_en),
        service=(service.name, service.name_en),
        places=places_of(session, referral.service_id),
        printed_on=locale.day(now, "vi", ctx.tz),
    )
    return slip, referral


def places_of(session: Session, service_id: int) -> list[Place]:
    """The active locations where the service is offered, with their area and opening hours."""
    rows = session.execute(
        select(Location, Area)
        .join(ServiceLocation, col(ServiceLocation.location_id) == col(Location.id))
        .join(Area, col(Area.key) == col(Location.area_key))
        .where(col(ServiceLocation.service_id) == service_id, col(Location.active))
        .order_by(col(Location.id))
    ).all()
    return [
        Place(
            name=place.name,
            address=place.address,
            area=(area.name, area.name_en),
            hours=(hours_words(place.hours, "vi"), hours_words(place.hours, "en")),
        )
        for place, area in rows
    ]


def hours_words(hours: list[dict[str, object]], language: str) -> str:
    """Opening sessions in words, the sessions of the same days together:
    `T2–T6 07:00–11:30, 13:30–17:00; T7 07:30–11:00` (empty when none are known)."""
    by_days: dict[tuple[str, ...], list[Hours]] = {}
    for h in (Hours.model_validate(h) for h in hours):
        by_days.setdefault(tuple(sorted(h.days, key=DAYS.index)), []).append(h)
    said = []
    for first, *more in by_days.values():
        times = [f"{h.opens:%H:%M}–{h.closes:%H:%M}" for h in more]
        said.append(", ".join([first.describe(language), *times]))
    return "; ".join(said)


def render(slip: Slip) -> bytes:
    """The slip as a one-page A5 PDF (a second page only for a partner with many places)."""
    with _sheet(slip) as sheet:
        sheet.header(slip)
        sheet.code(slip)
        sheet.where(slip)
        sheet.footer(slip)
        return bytes(sheet.pdf.output())


@contextmanager
def _sheet(slip: Slip) -> Iterator[_Sheet]:
    """A blank A5 page with the font loaded from its package (as files, even from a zip)."""
    with ExitStack() as stack:
        fonts = {
            style: stack.enter_context(as_file(files("font_source_sans_pro") / "files" / name))
            for style, name in FONT_FILES.items()
        }
        yield _Sheet(slip.english, fonts)


def _nfc(text: str) -> str:
    """Vietnamese as one code point per letter: a font's precomposed glyphs, no stray marks."""
    return unicodedata.normalize("NFC", text)


class _Sheet:
    """The slip's page and how its lines are set: Vietnamese, and English in grey if asked."""

    def __init__(self, english: bool, fonts: dict[str, Path]) -> None:
        self.english = english
        pdf = FPDF(orientation="P", unit="mm", format=PAGE)
        pdf.set_margins(MARGIN, MARGIN, MARGIN)
        pdf.set_auto_page_break(True, MARGIN)
        for style, path in fonts.items():
            pdf.add_font(FONT, style, str(path))
        pdf.add_page()
        self.pdf = pdf

    def label(self, msg: Msg) -> str:
        """A short label: "Mã chuyển gửi", or "Mã chuyển gửi / Referral code" in English."""
        vi, en = msg.said_in("vi"), msg.said_in("en")
        return f"{vi} / {en}" if self.english and en != vi else vi

    def line(
        self,
        vi: str,
        en: str | None = None,
        *,
        size: float = 11,
        bold: bool = False,
        align: str = "L",
        width: float = 0,
    ) -> None:
        """A line (wrapped if long) in Vietnamese; `en` under it in grey on an English slip."""
        self._write(vi, size, bold, align, width)
        if self.english and en and en != vi:
            self.pdf.set_text_color(GREY)
            self._write(en, max(size - 2.5, 7.5), False, align, width)
            self.pdf.set_text_color(0)

    def sentence(self, msg: Msg, *, size: float = 11, **how: Any) -> None:
        self.line(msg.said_in("vi"), msg.said_in("en"), size=size, **how)

    def _write(self, text: str, size: float, bold: bool, align: str, width: float) -> None:
        self.pdf.set_font(FONT, "B" if bold else "", size)
        self.pdf.multi_cell(width, size * 0.45, _nfc(text), align=align, new_x="LEFT", new_y="NEXT")

    def rule(self) -> None:
        y = self.pdf.get_y() + 1.5
        self.pdf.line(MARGIN, y, PAGE[0] - MARGIN, y)
        self.pdf.set_xy(MARGIN, y + 2.5)

    def header(self, slip: Slip) -> None:
        self.line(slip.office.name, slip.office.name_en, size=12, bold=True, align="C")
        if slip.office.phone:
            self.line(f"{self.label(PHONE)}: {slip.office.phone}", size=12, align="C")
        self.rule()
        self.line(TITLE.said_in("vi").upper(), TITLE.said_in("en"), size=20, bold=True, align="C")

    def code(self, slip: Slip) -> None:
        """The code in large type, then the QR code of the arrival link beside how to use it."""
        self.pdf.ln(1.5)
        self.line(self.label(CODE), size=10, align="C")
        self.line(slip.code, size=28, bold=True, align="C")
        top = self.pdf.get_y() + 3
        self.qr(slip.url, MARGIN, top)
        self.pdf.set_xy(MARGIN + QR_SIZE + QUIET, top + 4)
        beside = PAGE[0] - MARGIN - self.pdf.get_x()
        self.sentence(BRING, size=12, bold=True, width=beside)
        self.pdf.set_xy(self.pdf.get_x(), self.pdf.get_y() + 2)  # not ln(): it goes to the margin
        self.line(slip.url, size=7.5, width=beside)
        self.pdf.set_xy(MARGIN, max(self.pdf.get_y(), top + QR_SIZE + QUIET - 1.5))

    def qr(self, url: str, x: float, y: float) -> None:
        """The arrival link as a QR code, drawn as vector paths (sharp in print and zoomed)."""
        svg = io.BytesIO()
        segno.make(url, error="m").save(svg, kind="svg", border=0, xmldecl=False, unit="mm")
        svg.seek(0)
        self.pdf.image(svg, x=x, y=y, w=QR_SIZE, h=QR_SIZE, alt_text=url)

    def where(self, slip: Slip) -> None:
        self.rule()
        self.line(self.label(WHERE), size=11, bold=True)
        self.line(*slip.partner, size=14, bold=True)
        self.line(f"{self.label(SERVICE)}: {slip.service[0]}", slip.service[1])
        if not slip.places:
            self.sentence(NO_PLACE)
        for place in slip.places:
            self.pdf.ln(1.5)
            self.line(place.name, bold=True)
            self.line(f"{place.address}, {place.area[0]}")
            if place.hours[0]:
                self.line(f"{self.label(HOURS)}: {place.hours[0]}", place.hours[1])

    def footer(self, slip: Slip) -> None:
        self.rule()
        self.sentence(FOR_PARTNER, size=9)
        self.line(f"{self.label(PRINTED_ON)}: {slip.printed_on}", size=9)
