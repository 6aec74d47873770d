"""The province's data (areas, partner directory, pathways) as YAML, validated by pydantic.

Errors name the file, the line of the offending entry and the field, so an office clerk can fix
the file without reading Python.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_serializer,
    field_validator,
    model_validator,
)

Slug = Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]*$", max_length=60)]
Key = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=60)]
Text = Annotated[str, Field(min_length=1, max_length=200)]
T = TypeVar("T", bound=BaseModel)
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class ConfigError(Exception):
    """A province file is missing or wrong; the message says where."""


PHONE_TEXT = re.compile(r"^\+?[0-9][0-9 ().-]{2,30}$")  # ASCII digits and separators only


def e164(value: str, region: str = "VN") -> str:
    """Normalise a Vietnamese or international phone number to E.164, or raise ValueError.

    Letters (vanity numbers), other scripts' digits and doubled signs are refused before the
    parser sees them: it would read them, and a coordinator would not have meant them."""
    if not PHONE_TEXT.match(value.strip()):
        raise ValueError(f"{value[:40]!r} is not a phone number")
    import phonenumbers  # ~0.1 s: only paid when a number is checked

    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        raise ValueError(f"{value!r} is not a phone number") from None
    if not phonenumbers.is_possible_number(number):
        raise ValueError(f"{value!r} is not a possible phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _email(value: str) -> str:
    if not EMAIL.match(value):
        raise ValueError(f"{value!r} is not an e-mail address")
    return value.lower()


def _quiet_hours(value: str) -> str:
    """`HH:MM-HH:MM` (may cross midnight), or `none`."""
    if value == "none":
        return value
    m = re.fullmatch(r"([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)", value)
    if not m or m.group(1, 2) == m.group(3, 4):
        raise ValueError(f"{value!r}: give quiet hours as HH:MM-HH:MM (e.g. 21:00-07:00) or none")
    return value


def quiet_window(value: str | None) -> tuple[dt.time, dt.time] | None:
    """The (start, end) local times of a validated quiet-hours value; None for `none`."""
    if not value or value == "none":
        return None
    start, end = value.split("-")
    return dt.time.fromisoformat(start), dt.time.fromisoformat(end)


Phone = Annotated[str, AfterValidator(e164)]
Email = Annotated[str, AfterValidator(_email)]
QuietHours = Annotated[str, AfterValidator(_quiet_hours)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DueRule(Strict):
    """How long a step may take once active: working days, calendar days or hours."""

    working_days: int | None = Field(default=None, ge=1, le=365)
    days: int | None = Field(default=None, ge=1, le=365)
    hours: int | None = Field(default=None, ge=1, le=24 * 60)

    @model_validator(mode="after")
    def _exactly_one(self) -> DueRule:
        if sum(v is not None for v in (self.working_days, self.days, self.hours)) != 1:
            raise ValueError("give exactly one of working_days, days, hours")
        return self

    def describe(self) -> str:
        for unit in ("working_days", "days", "hours"):
            if (n := getattr(self, unit)) is not None:
                return f"{n} {unit.replace('_', ' ')}"
        raise AssertionError("unreachable")


class Rung(Strict):
    """One escalation level: how long after the deadline, and who is told."""

    after: DueRule
    to: Literal["partner_backup", "coordinator", "district_manager"]


class Ladder(Strict):
    """What happens around a step's deadline: a reminder before it, a notice at it, then
    escalation levels after it. The one doing the step (the partner's first contacts, or the
    coordinator for a coordinator's step) gets the reminder and the overdue notice."""

    remind_before: DueRule | None = DueRule(working_days=1)
    overdue: bool = True
    escalate: list[Rung] = [
        Rung(after=DueRule(working_days=1), to="partner_backup"),
        Rung(after=DueRule(working_days=3), to="coordinator"),
        Rung(after=DueRule(working_days=5), to="district_manager"),
    ]

    @field_validator("escalate")
    @classmethod
    def _increasing(cls, rungs: list[Rung]) -> list[Rung]:
        units = {next(k for k, v in r.after.model_dump().items() if v) for r in rungs}
        if len(units) > 1:
            raise ValueError("give every escalation delay in the same unit")
        delays = [next(v for v in r.after.model_dump().values() if v) for r in rungs]
        if delays != sorted(set(delays)):
            raise ValueError("escalation delays must grow from one level to the next")
        return rungs


class StepTemplate(Strict):
    key: Key
    actor: Literal["partner", "coordinator"]
    name: Text
    name_en: Text
    due: DueRule
    urgent_due: DueRule | None = None
    ladder: Ladder | None = Field(default=None, description="overrides the pathway's ladder")
    asks: Text | None = Field(
        default=None, description="a date the partner gives when the step is done, e.g. issued on"
    )
    asks_en: Text | None = None


class Pathway(Strict):
    """A versioned template: the steps a referral of this kind goes through."""

    key: Key
    name: Text
    name_en: Text
    steps: list[StepTemplate] = Field(min_length=1)
    ladder: Ladder = Ladder()
    shares: list[Literal["name", "phone", "id_number"]] = Field(
        default=[],
        description="what the partner sees of the client on its page, while consent covers it",
    )

    @field_validator("steps")
    @classmethod
    def _steps(cls, steps: list[StepTemplate]) -> list[StepTemplate]:
        if steps[0].key != "acknowledge" or steps[0].actor != "partner":
            raise ValueError("the first step must be `acknowledge` by the partner")
        keys = [s.key for s in steps]
        if dupes := sorted({k for k in keys if keys.count(k) > 1}):
            raise ValueError(f"step keys repeat: {', '.join(dupes)}")
        return steps

    @property
    def digest(self) -> str:
        """Content hash: a changed template becomes a new version, running referrals keep theirs."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]


class Contact(Strict):
    name: Text
    role: Text
    phone: Phone | None = None
    email: Email | None = None
    language: Literal["vi", "en"] = "vi"
    rank: int = Field(default=1, ge=1, le=9, description="escalation rank: 1 is asked first")
    sms_unaccented: bool = False
    quiet_hours: QuietHours | None = Field(
        default=None, description="no SMS in these local hours; default: the province's"
    )
    active: bool = True

    @model_validator(mode="after")
    def _reachable(self) -> Contact:
        if not (self.phone or self.email):
            raise ValueError("a contact needs a phone or an e-mail")
        return self


class Service(Strict):
    pathway: Key
    name: Text = Field(description="partner-facing name: must not reveal the client's situation")
    name_en: Text
    areas: list[Slug] = Field(min_length=1)
    locations: list[Slug] = Field(default=[], description="keys of the partner's locations")

    @field_validator("areas", "locations")
    @classmethod
    def _no_repeats(cls, keys: list[str]) -> list[str]:
        if dupes := sorted({k for k in keys if keys.count(k) > 1}):
            raise ValueError(f"repeats {', '.join(dupes)}")
        return keys


Day = Literal["MO", "TU", "WE", "TH", "FR", "SA", "SU"]
DAYS: tuple[Day, ...] = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
DAY_NAMES = {
    "vi": dict(zip(DAYS, ("T2", "T3", "T4", "T5", "T6", "T7", "CN"), strict=True)),
    "en": dict(zip(DAYS, ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"), strict=True)),
}


class Hours(Strict):
    """One opening session, local time: `days: [MO, TU]`, `opens: "07:30"`, `closes: "11:30"`."""

    days: list[Day] = Field(min_length=1)
    opens: dt.time
    closes: dt.time

    @field_serializer("opens", "closes")
    def _hh_mm(self, value: dt.time) -> str:
        return value.strftime("%H:%M")

    def describe(self, language: str = "vi") -> str:
        """`T2–T6 07:00–11:30`: runs of days joined by a dash, local time."""
        names, order = DAY_NAMES[language], sorted(self.days, key=DAYS.index)
        runs: list[list[Day]] = []
        for day in order:
            if runs and DAYS.index(day) == DAYS.index(runs[-1][-1]) + 1:
                runs[-1].append(day)
            else:
                runs.append([day])
        days = ", ".join(
            names[r[0]]
            if len(r) == 1
            else f"{names[r[0]]}{'–' if len(r) > 2 else ', '}{names[r[-1]]}"
            for r in runs
        )
        return f"{days} {self.opens:%H:%M}–{self.closes:%H:%M}"

    @model_validator(mode="after")
    def _in_order(self) -> Hours:
        if self.opens >= self.closes:
            raise ValueError(f"opens ({self.opens:%H:%M}) must be before closes")
        if len(set(self.days)) != len(self.days):
            raise ValueError("a day repeats")
        return self


class Location(Strict):
    """Where a partner receives clients (HSDS location, address and schedule)."""

    key: Slug
    name: Text
    address: Text = Field(description="street and number, as on an envelope")
    area: Slug = Field(description="the area key (province.yaml) the address is in")
    postal_code: str | None = Field(default=None, pattern=r"^[0-9]{5,6}$")
    hours: list[Hours] = []


class Partner(Strict):
    slug: Slug
    name: Text
    name_en: Text
    kind: Literal["legal", "health", "police", "education", "social_work", "peer_group"]
    locations: list[Location] = []
    services: list[Service] = []
    contacts: list[Contact] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_keys(self) -> Partner:
        """Loading matches rows by these (usecases/directory/loading.py): a repeat would merge two."""
        for what, keys in (
            ("locations keyed", [loc.key for loc in self.locations]),
            ("services for pathway", [svc.pathway for svc in self.services]),
            ("contacts named", [c.name for c in self.contacts]),
        ):
            if dupes := sorted({k for k in keys if keys.count(k) > 1}):
                raise ValueError(f"two {what} {', '.join(dupes)}")
        return self


class Area(Strict):
    key: Slug
    name: Text
    name_en: Text
    level: Literal["province", "district", "ward", "commune"]
    parent: Slug | None = None


class DayOff(Strict):
    date: dt.date
    name: Text


class Delivery(Strict):
    """How messages leave: Apprise URL templates per channel, retries, quiet hours.

    A channel URL names secrets as `${ENV_VAR}` (read from the environment, or from a Prefect
    Secret block as `${prefect:block-name}`), never literally, and the recipient as `{phone}`
    (E.164) or `{email}`. A channel whose URL expands to nothing is off: its messages wait.
    """

    channels: dict[Literal["sms", "email"], str] = {
        "sms": "${REFERRALS_SMS_URL}",
        "email": "${REFERRALS_EMAIL_URL}",
    }
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
    days_off: list[DayOff] = []
    days_worked: list[DayOff] = Field(default=[], description="weekend days declared working days")
    areas: list[Area] = Field(min_length=1)
    delivery: Delivery = Delivery()
    digest: Digest = Digest()

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

    @field_validator("pathways")
    @classmethod
    def _unique_pathways(cls, pathways: list[Pathway]) -> list[Pathway]:
        return _unique(pathways, "key")


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

    def pathway(self, key: str) -> Pathway:
        for p in self.pathways:
            if p.key == key:
                return p
        raise KeyError(key)


FILES = {
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
    )
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
