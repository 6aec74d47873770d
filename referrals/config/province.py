"""The province's data (areas, partner directory, pathways) as YAML, validated by pydantic.

Errors name the file, the line of the offending entry and the field, so an office clerk can fix
the file without reading Python.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

# The schema lives in three modules; every name stays importable from here.
from referrals.config.areas import covered, succession_problems
from referrals.config.fields import (
    DEFAULT_ORDER,
    EMAIL,
    PHONE_TEXT,
    Channel,
    Email,
    Key,
    Phone,
    QuietHours,
    Slug,
    Strict,
    Text,
    e164,
    quiet_window,
)
from referrals.config.partners import (
    DAY_NAMES,
    DAYS,
    Contact,
    Day,
    Hours,
    Location,
    Partner,
    Service,
)
from referrals.config.pathways import DueRule, Ladder, Pathway, Rung, ServiceGroup, StepTemplate
from referrals.config.privacy import DataProtection

__all__ = [
    "DAYS",
    "DAY_NAMES",
    "EMAIL",
    "FILES",
    "LOADER",
    "PHONE_TEXT",
    "Area",
    "ConfigError",
    "Contact",
    "Day",
    "DayOff",
    "Delivery",
    "Digest",
    "DueRule",
    "Email",
    "Hours",
    "Key",
    "Ladder",
    "Location",
    "Office",
    "Partner",
    "PartnersFile",
    "Pathway",
    "PathwaysFile",
    "Phone",
    "Province",
    "ProvinceFile",
    "QuietHours",
    "Rung",
    "Service",
    "Slug",
    "StepTemplate",
    "Strict",
    "Text",
    "cross_check",
    "e164",
    "load_province",
    "quiet_window",
]

T = TypeVar("T", bound=BaseModel)


class ConfigError(Exception):
    """A province file is missing or wrong; the message says where."""


class Area(Strict):
    """A unit of the province at some level, in force from `valid_from` to `valid_to` (both days
    included; unset: open), and the units that took over its territory when it ended
    (config/areas.py checks the succession)."""

    key: Slug
    name: Text
    name_en: Text
    level: Literal["province", "district", "ward", "commune", "special_zone"]
    parent: Slug | None = None
    valid_from: dt.date | None = None
    valid_to: dt.date | None = None
    successors: list[Slug] = Field(default=[])
    source: str | None = Field(
        default=None, max_length=300, description="the legal text that made or ended it"
    )


class DayOff(Strict):
    date: dt.date
    name: Text


class ZaloTemplate(Strict):
    """A message type's pre-approved ZNS template: its id, and each of its parameters as a
    Jinja expression over the message's context (the same codes and names the SMS sees; `link`
    is the partner's link, bound to the template's button, never written in its text)."""

    template_id: str = Field(min_length=1, max_length=40)
    params: dict[str, str] = Field(min_length=1)


class Delivery(Strict):
    """How messages leave: Apprise URL templates per channel, retries, quiet hours, the order a
    contact's channels are tried in, and what a message costs.

    A channel URL names secrets as `${ENV_VAR}` (read from the environment, or from a Prefect
    Secret block as `${prefect:block-name}`), never literally, and the recipient as `{phone}`
    (E.164; Zalo and SMS) or `{email}`. A channel whose URL expands to nothing is off: its
    messages wait, or move on to the contact's next channel.
    """

    channels: dict[Channel, str] = Field(
        default={
            "zalo": "${REFERRALS_ZALO_URL}",
            "sms": "${REFERRALS_SMS_URL}",
            "email": "${REFERRALS_EMAIL_URL}",
        }
    )
    order: list[Channel] = Field(
        default=list(DEFAULT_ORDER),
        min_length=1,
        description="a contact's channels, tried one at a time in this order unless the contact "
        "has its own (partners.yaml)",
    )
    confirm_minutes: int = Field(
        default=60,
        ge=1,
        le=7 * 24 * 60,
        description="a message on a channel that reports delivery, with no receipt after this, "
        "is unconfirmed: the contact's next channel is tried",
    )
    prices: dict[Channel, int] = Field(
        default={},
        description="what one billed unit costs, in đồng (an SMS segment, a Zalo message), for "
        "the period report",
    )
    zalo_templates: dict[str, ZaloTemplate] = Field(
        default={}, description="message type -> its approved ZNS template"
    )
    sender: str | None = Field(
        default=None, max_length=20, description="who the SMS is from; default: the province name"
    )
    sender_en: str | None = Field(default=None, max_length=20)
    quiet_hours: QuietHours = "21:00-07:00"
    max_attempts: int = Field(default=6, ge=1, le=50)
    first_retry_seconds: int = Field(default=60, ge=1, le=86400)
    max_retry_seconds: int = Field(default=6 * 3600, ge=1, le=7 * 86400)
    concurrency: int = Field(default=8, ge=1, le=64, description="messages sent at once")
    lease_seconds: int = Field(
        default=60,
        ge=10,
        le=86400,
        description="how long a claimed message is held; a working sender renews it every third "
        "of this, so it bounds only how late a dead sender's messages go out",
    )

    @field_validator("channels")
    @classmethod
    def _templates(cls, channels: dict[str, str]) -> dict[str, str]:
        for kind, url in channels.items():
            if re.search(r"(?<!\$)\{(?!phone\}|email\})[^}]*\}", url):
                raise ValueError(f"{kind}: only {{phone}} and {{email}} may be substituted")
            if re.search(r"://[^/@?]*:[^/@$?]+@", url):
                raise ValueError(f"{kind}: put the password in ${{AN_ENV_VAR}}, not in the file")
        return channels

    @field_validator("order")
    @classmethod
    def _once_each(cls, order: list[str]) -> list[str]:
        if len(set(order)) < len(order):
            raise ValueError(f"a channel repeats: {', '.join(order)}")
        return order


class Office(Strict):
    """The office that runs the referrals, as partners and clients see it: on every partner page,
    on the printed slip. A phone is a person to call, so a partner who doubts a link can check."""

    name: Text
    name_en: Text
    phone: str = Field(max_length=20, description="as people dial it, e.g. 0258 000 0100")
    address: str | None = Field(default=None, max_length=200)

    @field_validator("phone")
    @classmethod
    def _dialable(cls, phone: str) -> str:
        e164(phone)  # refuses what is not a Vietnamese number; kept as written, for reading
        return phone.strip()


class Digest(Strict):
    """The managers' morning e-mail."""

    at: dt.time = Field(default=dt.time(7, 30), description="local time it is sent")
    when_empty: bool = Field(default=False, description="send it even with nothing to say")
    most_late: int = Field(default=10, ge=1, le=100, description="how many late referrals it lists")


class ProvinceFile(Strict):
    key: Slug
    name: Text
    name_en: Text
    country: Literal["VN"] = "VN"
    working_day_ends: dt.time = dt.time(17, 0)
    days_off: list[DayOff] = Field(default=[])
    days_worked: list[DayOff] = Field(default=[], description="weekend days declared working days")
    areas: list[Area] = Field(min_length=1)
    office: Office | None = None  # None: the province's name and no phone
    delivery: Delivery = Delivery()
    digest: Digest = Digest()
    data_protection: DataProtection = DataProtection()  # config/privacy.py

    @field_validator("areas")
    @classmethod
    def _unique_areas(cls, areas: list[Area]) -> list[Area]:
        return _unique(areas, "key")


class PartnersFile(Strict):
    partners: list[Partner] = Field(min_length=1)

    @field_validator("partners")
    @classmethod
    def _unique_partners(cls, partners: list[Partner]) -> list[Partner]:
        return _unique(partners, "slug")


class PathwaysFile(Strict):
    pathways: list[Pathway] = Field(min_length=1)
    service_groups: list[ServiceGroup] = Field(default=[])

    @field_validator("pathways")
    @classmethod
    def _unique_pathways(cls, pathways: list[Pathway]) -> list[Pathway]:
        return _unique(pathways, "key")

    @field_validator("service_groups")
    @classmethod
    def _unique_groups(cls, groups: list[ServiceGroup]) -> list[ServiceGroup]:
        return _unique(groups, "key")

    @model_validator(mode="after")
    def _grouped_pathways_exist(self) -> PathwaysFile:
        known = {p.key for p in self.pathways}
        for group in self.service_groups:
            if unknown := [k for k in group.pathways if k not in known]:
                raise ValueError(f"service group {group.key}: no pathway {', '.join(unknown)}")
        return self


def _unique(items: list[T], field: str) -> list[T]:
    seen = [getattr(i, field) for i in items]
    if dupes := sorted({k for k in seen if seen.count(k) > 1}):
        raise ValueError(f"{field} repeats: {', '.join(dupes)}")
    return items


@dataclass(frozen=True)
class Province:
    """Everything in one config folder, cross-checked."""

    province: ProvinceFile
    partners: list[Partner]
    pathways: list[Pathway]
    service_groups: list[ServiceGroup] = field(default_factory=list)

    @cached_property
    def area_scopes(self) -> dict[str, frozenset[str]]:
        """Per area, the areas a user scoped to it works on (config/areas.py `covered`),
        computed once: the policy asks on every check, and this object lives until a file
        changes (load_province)."""
        return {a.key: covered(self.province.areas, a.key) for a in self.province.areas}

    def pathway(self, key: str) -> Pathway:
        for p in self.pathways:
            if p.key == key:
                return p
        raise KeyError(key)


FILES: dict[str, type[Strict]] = {
    "province.yaml": ProvinceFile,
    "partners.yaml": PartnersFile,
    "pathways.yaml": PathwaysFile,
}


LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when PyYAML has it: ~10x faster


def load_province(config_dir: Path) -> Province:
    """Read and validate province.yaml, partners.yaml and pathways.yaml; raise ConfigError.

    Cached per process until a file changes (its modification time), so a worker running many
    flows parses the YAML once.
    """
    stamps = tuple(_stamp(config_dir / name) for name in FILES)
    return _load(config_dir.resolve(), stamps)


def _stamp(path: Path) -> int | None:
    try:
        return path.stat().st_mtime_ns
    except FileNotFoundError:
        return None


def _parse(text: str) -> tuple[yaml.Node | None, Any]:
    """The node tree (for line numbers) and the data, from one parse."""
    loader = LOADER(text)
    try:
        node = loader.get_single_node()
        return node, (loader.construct_document(node) if node is not None else None)
    finally:
        loader.dispose()


@lru_cache(maxsize=8)
def _load(config_dir: Path, stamps: tuple[int | None, ...]) -> Province:
    parsed: dict[str, Any] = {}
    nodes: dict[str, yaml.Node] = {}
    problems: list[str] = []
    for name, model in FILES.items():
        path = config_dir / name
        try:
            text = path.read_text(encoding="utf-8-sig")
            nodes[name], data = _parse(text)
            parsed[name] = model.model_validate(data or {})
        except FileNotFoundError:
            problems.append(f"{path}: file not found")
        except UnicodeDecodeError as exc:
            problems.append(f"{path}: not UTF-8 text (byte {exc.start}); save it as UTF-8")
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"{path}:{mark.line + 1}" if mark else str(path)
            problems.append(f"{where}: not valid YAML ({getattr(exc, 'problem', exc)})")
        except ValidationError as exc:
            problems += [_locate(path, nodes[name], err) for err in exc.errors()]
    if problems:
        raise ConfigError("; ".join(problems))
    province = Province(
        province=parsed["province.yaml"],
        partners=parsed["partners.yaml"].partners,
        pathways=parsed["pathways.yaml"].pathways,
        service_groups=parsed["pathways.yaml"].service_groups,
    )
    if succession := succession_problems(province.province.areas):
        areas_file = config_dir / "province.yaml"
        node = nodes["province.yaml"]
        raise ConfigError("; ".join(_locate(areas_file, node, e) for e in succession))
    if succession := succession_problems(province.partners, "partners", "partner"):
        partners_file = config_dir / "partners.yaml"
        node = nodes["partners.yaml"]
        raise ConfigError("; ".join(_locate(partners_file, node, e) for e in succession))
    cross_check(province, config_dir / "partners.yaml", nodes["partners.yaml"])
    return province


def cross_check(province: Province, path: Path, node: yaml.Node | None) -> None:
    areas = {a.key for a in province.province.areas}
    pathways = {p.key for p in province.pathways}
    problems = []
    for i, partner in enumerate(province.partners):
        places = {loc.key for loc in partner.locations}
        for j, place in enumerate(partner.locations):
            if place.area not in areas:
                err = {
                    "loc": ("partners", i, "locations", j, "area"),
                    "msg": f"no area {place.area!r} in province.yaml",
                }
                problems.append(_locate(path, node, err))
        for j, service in enumerate(partner.services):
            loc: tuple[Any, ...] = ("partners", i, "services", j)
            if service.pathway not in pathways:
                err = {"loc": (*loc, "pathway"), "msg": f"no pathway {service.pathway!r}"}
                problems.append(_locate(path, node, err))
            for k, area in enumerate(service.areas):
                if area not in areas:
                    err = {"loc": (*loc, "areas", k), "msg": f"no area {area!r} in province.yaml"}
                    problems.append(_locate(path, node, err))
            for k, key in enumerate(service.locations):
                if key not in places:
                    err = {"loc": (*loc, "locations", k), "msg": f"no location {key!r} here"}
                    problems.append(_locate(path, node, err))
    if problems:
        raise ConfigError("; ".join(problems))


def _locate(path: Path, root: yaml.Node | None, error: Any) -> str:
    """`file:line: entry field: message`, following pydantic's `loc` through the YAML nodes."""
    loc = [p for p in error["loc"] if not (isinstance(p, str) and "[" in p)]
    node, entry_line, label = root, None, ""
    for depth, part in enumerate(loc):
        child = _child(node, part)
        if child is None:
            break
        node = child
        if depth == 1 and isinstance(part, int):
            entry_line = node.start_mark.line + 1
            ident = _child(node, "slug") or _child(node, "key")
            label = f"{loc[0]}[{part}]" + (f" {ident.value!r}" if ident is not None else "")
    line = node.start_mark.line + 1 if node is not None else 1
    field = ".".join(str(p) for p in loc[2:]) if label else ".".join(str(p) for p in loc)
    where = f" (entry {label} at line {entry_line})" if label else ""
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{path}:{line}{where} {field or 'entry'}: {message}"


def _child(node: yaml.Node | None, part: Any) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        return next((v for k, v in node.value if k.value == part), None)
    if isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
        return node.value[part]
    return None
