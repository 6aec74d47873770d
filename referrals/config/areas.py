"""Areas with time: which units were in force on a day, and which units succeeded which.

Vietnam's 2025 reform ended the district level (1 July 2025) and merged communes and wards, so a
province's areas are not one set for all time: an office in 2026 keeps the records of 2019-2025
under the districts of the day and records new ones under today's wards and communes. Each area
in province.yaml may say when it was in force (`valid_from`, `valid_to`, both days included) and,
when it ended, which areas took over its territory (`successors`). The succession is checked here
once, when the YAML loads; the rest of the engine asks this module, never the dates themselves.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any, Protocol


class Spanned(Protocol):
    """Anything in force for a span of days: an area of the YAML, or its row."""

    @property
    def valid_from(self) -> dt.date | None: ...
    @property
    def valid_to(self) -> dt.date | None: ...


class Dated(Spanned, Protocol):
    """What the succession needs of an area (config.province.Area)."""

    @property
    def key(self) -> str: ...
    @property
    def successors(self) -> Sequence[str]: ...


def in_force(area: Spanned, on: dt.date) -> bool:
    """True when AREA existed on ON (an open end is for ever)."""
    return (area.valid_from is None or area.valid_from <= on) and (
        area.valid_to is None or on <= area.valid_to
    )


def areas_on(areas: Iterable[Dated], on: dt.date) -> list[Any]:
    """The areas in force on ON, in the file's order."""
    return [a for a in areas if in_force(a, on)]


def descendants(areas: Sequence[Dated], key: str) -> list[str]:
    """Every area that took over KEY's territory, directly or through later reforms, oldest
    first (a coordinator of a former district sees the wards that replaced it)."""
    by_key = {a.key: a for a in areas}
    found: list[str] = []
    todo = list(by_key[key].successors) if key in by_key else []
    while todo:
        nxt = todo.pop(0)
        if nxt not in found:
            found.append(nxt)
            todo += by_key[nxt].successors
    return found


class Placed(Dated, Protocol):
    """An area with its place in the hierarchy (config.province.Area)."""

    @property
    def parent(self) -> str | None: ...


def covered(areas: Sequence[Placed], key: str) -> frozenset[str]:
    """KEY and every area whose records a user scoped to KEY works on: the areas within it (by
    `parent`) and the areas that took over its territory (by `successors`), through every later
    reform. A coordinator of Nha Trang city, which ended on 30/06/2025, keeps its referrals and
    works on those of the wards that replaced it; one of a ward works on that ward alone."""
    within: dict[str, list[str]] = {}
    for area in areas:
        if area.parent:
            within.setdefault(area.parent, []).append(area.key)
    by_key = {a.key: a for a in areas}
    found = {key}
    todo = [key]
    while todo:
        here = todo.pop()
        nxt = [*within.get(here, []), *(by_key[here].successors if here in by_key else [])]
        todo += [k for k in nxt if k not in found]
        found.update(nxt)
    return frozenset(found)


def predecessors(areas: Sequence[Dated], key: str) -> list[str]:
    """The areas KEY succeeded directly."""
    return [a.key for a in areas if key in a.successors]


def succession_problems(
    areas: Sequence[Dated], section: str = "areas", noun: str = "area"
) -> list[dict[str, Any]]:
    """What is wrong with the areas' dates and succession (or the partners': SECTION and NOUN
    name them), as pydantic-style errors ({loc, msg}) that config.province locates in the
    YAML: an unknown successor, an area that names successors without ending, a successor in
    force before its predecessor ended (overlapping validity), a cycle, an end before a
    start."""
    by_key = {a.key: a for a in areas}
    problems: list[dict[str, Any]] = []

    def problem(i: int, *loc: Any, msg: str) -> None:
        problems.append({"loc": (section, i, *loc), "msg": msg})

    for i, area in enumerate(areas):
        if area.valid_from and area.valid_to and area.valid_to < area.valid_from:
            problem(i, "valid_to", msg=f"ends ({area.valid_to}) before it starts")
        if area.successors and area.valid_to is None:
            article = "an" if noun[0] in "aeiou" else "a"
            problem(i, "successors", msg=f"{article} {noun} with successors must end: set valid_to")
        for k, key in enumerate(area.successors):
            successor = by_key.get(key)
            if successor is None:
                problem(i, "successors", k, msg=f"no {noun} {key!r}")
            elif key == area.key or area.key in descendants(areas, key):
                problem(i, "successors", k, msg=f"{area.key!r} → {key!r} makes a cycle")
            elif area.valid_to and (
                successor.valid_from is None or successor.valid_from <= area.valid_to
            ):
                start = successor.valid_from.isoformat() if successor.valid_from else "always"
                problem(
                    i,
                    "successors",
                    k,
                    msg=f"{key!r} is in force from {start}, before {area.key!r} ended "
                    f"({area.valid_to}): the validity of a successor starts after its "
                    "predecessor's ends",
                )
    return problems


def reporting_units(areas: Sequence[Placed], on: dt.date) -> list[str]:
    """The units a report groups by on ON: the areas in force that day directly below the
    province, or below an area no longer in force (the districts in 2020, the wards and
    communes in 2026), in the file's order."""
    by_key = {a.key: a for a in areas}

    def open_above(area: Placed) -> bool:
        parent = by_key.get(area.parent) if area.parent else None
        return parent is None or parent.parent is None or not in_force(parent, on)

    return [a.key for a in areas if in_force(a, on) and a.parent is not None and open_above(a)]


def regroup(areas: Sequence[Placed], on: dt.date) -> dict[str, tuple[str, ...]]:
    """Per area, the reporting units of ON (reporting_units) its records count under, so a
    report can put 2020 beside 2026: a ward of 2024 under the ward of 2026 that took it over,
    a ward of 2026 under the district of 2020 it was part of. Forward through `successors`,
    back through predecessors, up through `parent`. A record under an area that was split
    (a district into four wards) cannot be placed in one of them: it counts under all of them
    together, one group, so every record is counted once and the totals of both generations
    agree."""
    by_key = {a.key: a for a in areas}
    units = set(reporting_units(areas, on))
    before: dict[str, list[str]] = {}
    for area in areas:
        for successor in area.successors:
            before.setdefault(successor, []).append(area.key)

    def place(key: str, seen: frozenset[str]) -> set[str]:
        area = by_key.get(key)
        if area is None or key in units or key in seen:
            return {key}
        seen = seen | {key}
        if in_force(area, on):
            nxt = [area.parent] if area.parent else []
        elif area.valid_to is not None and area.valid_to < on:
            nxt = list(area.successors)
        else:  # not yet in force on ON: what it was made from, else what it lies within
            nxt = before.get(key) or ([area.parent] if area.parent else [])
        found = set().union(*(place(k, seen) for k in nxt)) if nxt else set()
        return found or {key}

    return {a.key: tuple(sorted(place(a.key, frozenset()))) for a in areas}
