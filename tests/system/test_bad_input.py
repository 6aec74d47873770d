"""The bad-input corpus: over 200 malformed or hostile inputs across the CLI, the API, the
partners' links, the staff forms, CSV imports and the province's config files.

Each must get a clear refusal (the CLI: exit 1 and one line starting "error:", no traceback; HTTP:
a 4xx, never a 500) and leave the tables that matter exactly as they were: a digest of every row
of clients, consents, referrals, steps, messages and events is compared before and after. One
test per surface walks its cases and reports every one that misbehaves, so a run stays fast.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import shutil
from collections import Counter
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from referrals.cli.main import main
from referrals.config import ConfigError, load_province
from referrals.config.settings import BUNDLED_CONFIG
from referrals.infra.db import transaction
from referrals.infra.runtime import Runtime
from referrals.models.bounds import MAX_ROWS
from referrals.usecases.staff.tokens import issue_token
from referrals.web.app import create_app
from support.domain import ready_referral
from support.pages import Clock, csrf_of, logged_in, staff_users

TABLES = ("client", "consent", "referral", "step", "notification", "event")
HOSTILE = [
    "'; DROP TABLE referral; --",
    "<script>alert(1)</script>",
    "../../etc/passwd",
    "\x00",
    "x" * 1_000_000,
    "ＡＢＣ",
    "🙂",
    "%00",
    "${REFERRALS_SECRET_KEY}",
    "{{ 7*7 }}",
]


def digest(rt: Runtime) -> str:
    """Every row of the tables that matter, in order: equal digests, equal contents."""
    h = hashlib.sha256()
    with rt.engine.connect() as c:
        for table in TABLES:
            for row in c.execute(text(f"SELECT * FROM {table} ORDER BY id")):
                h.update(repr(tuple(row)).encode())
    return h.hexdigest()


# The corpus's size and its server errors (HTTP 5xx, the CLI's "internal error", an exception
# escaping), per database: conftest.py prints them in the run's summary.
TALLY: Counter[str] = Counter()
SERVER_ERROR = re.compile(r"^(5\d\d|raised |unclear error .*internal error)")


@pytest.fixture(autouse=True)
def _tally_in_the_report(request: pytest.FixtureRequest) -> Iterator[None]:
    """This test's share of the tally, on its report: conftest.py adds the shares up in the
    process that prints the summary (with pytest-xdist, not the worker that ran the test)."""
    before = TALLY.copy()
    yield
    request.node.user_properties += [
        (f"bad-input {key}", TALLY[key] - before[key]) for key in TALLY
    ]


def walk(rt: Runtime, cases: list[tuple[str, Callable[[], str | None]]], minimum: int) -> None:
    """Run each case; it returns None when refused properly, else what went wrong."""
    assert len(cases) >= minimum, len(cases)
    db = rt.engine.dialect.name
    TALLY[f"{db} cases"] += len(cases)
    before, wrong = digest(rt), []
    for name, case in cases:
        try:
            problem = case()
        except Exception as exc:  # an exception escaping is itself a failure
            problem = f"raised {type(exc).__name__}: {str(exc)[:200]}"
        if problem:
            wrong.append(f"{name}: {problem}")
            TALLY[f"{db} server errors"] += bool(SERVER_ERROR.match(problem))
        if digest(rt) != before:
            wrong.append(f"{name}: changed the database")
            before = digest(rt)
    assert not wrong, "\n".join(wrong)


@pytest.fixture
def world(rt: Runtime, now: dt.datetime) -> dict[str, str]:
    staff_users(rt)
    ref = ready_referral(rt, now)
    with transaction(rt.engine) as s:
        token = issue_token(s, username="mai", name="corpus", by=rt.user(s, "admin"), now=now)
        client = s.execute(text("SELECT code FROM client")).scalar_one()
    return {"ref": ref, "client": client, "token": token}


# --- the CLI ---------------------------------------------------------------------------------


def cli_refuses(capsys: pytest.CaptureFixture[str], *args: str) -> Callable[[], str | None]:
    def case() -> str | None:
        try:
            main(list(args))
        except SystemExit as exit_:
            code = int(exit_.code or 0)
        else:
            code = 0
        out, err = capsys.readouterr()
        lines = err.strip().splitlines()
        if code == 0:
            return f"accepted (stdout {out[:80]!r})"
        if "Traceback" in err or len(lines) != 1 or not lines[0].startswith("error:"):
            return f"unclear error {err[:200]!r}"
        return None

    return case


def test_the_cli_refuses_bad_input(
    rt: Runtime, world: dict[str, str], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    client, ref = world["client"], world["ref"]
    cases: list[tuple[str, Callable[[], str | None]]] = []
    add = ("client", "add", "--name", "Nguyễn Thị Kiểm Tra", "--district", "nha-trang")
    bad_phones = [
        "abc",
        "123",
        "+84 12",
        "0905-ABC-123",
        "+999 1234567",
        "0" * 30,
        "☎0905",
        "0905 111 222 333 444",
        "+",
        "++84905111222",
        "(0905)",
        "1-800-FLOWERS",
        "+84 905 111 222 999 888",
        "0x1F",
        "٠٩٠٥١١١٢٢٢",
    ]
    cases += [(f"phone {p!r}", cli_refuses(capsys, *add, "--phone", p)) for p in bad_phones]
    bad_ids = ["123", "12345678901", "abcdefghijkl", "0791 9000 0001 1", "0" * 13, "07919-000001"]
    cases += [(f"id {i!r}", cli_refuses(capsys, *add, "--id-number", i)) for i in bad_ids]
    for name in ("", "   ", "x" * 121, "x" * 1_000_000):
        cases.append(
            (
                f"name of {len(name)}",
                cli_refuses(capsys, "client", "add", "--name", name, "--district", "nha-trang"),
            )
        )
    for d in ["atlantis", "NHA-TRANG", *HOSTILE[:4]]:
        cases.append(
            (
                f"district {d[:20]!r}",
                cli_refuses(capsys, "client", "add", "--name", "A", "--district", d),
            )
        )
    launch = ("--pathway", "id_papers", "--partner", "police-nha-trang")
    for code in ["C-NOPE1-NOPE1", "", *HOSTILE[:5]]:
        cases.append((f"launch client {code[:20]!r}", cli_refuses(capsys, "launch", code, *launch)))
    for pathway in ["nope", "ID_PAPERS", *HOSTILE[:3]]:
        cases.append(
            (
                f"launch pathway {pathway[:20]!r}",
                cli_refuses(
                    capsys, "launch", client, "--pathway", pathway, "--partner", "police-nha-trang"
                ),
            )
        )
    for partner in ["nope", "legal-aid-centre", *HOSTILE[:3]]:  # the second does not do ID papers
        cases.append(
            (
                f"launch partner {partner[:20]!r}",
                cli_refuses(
                    capsys, "launch", client, "--pathway", "id_papers", "--partner", partner
                ),
            )
        )
    cases.append(
        ("launch again (one open per pathway)", cli_refuses(capsys, "launch", client, *launch))
    )
    for args in [
        ("advance", ref, "--action", "explode"),
        ("advance", ref, "--action", "decline"),  # no reason
        ("advance", ref, "--action", "decline", "--reason", "because"),
        ("advance", ref, "--action", "done", "--step", "card_issued"),
        ("advance", ref, "--action", "resume"),
        ("advance", "R-NOPE1-NOPE1", "--action", "accept"),
        ("advance", HOSTILE[0], "--action", "accept"),
        ("advance", ref, "--action", "accept", "--now", "yesterday"),
    ]:
        cases.append((" ".join(a[:20] for a in args), cli_refuses(capsys, *args)))
    for first in [
        "31/02/2026",
        "2026-13-01",
        "yesterday",
        "9999-99-99",
        "2026-1-1x",
        "",
        HOSTILE[0],
    ]:
        cases.append(
            (
                f"report from {first!r}",
                cli_refuses(capsys, "report", "--from", first, "--to", "2026-12-31"),
            )
        )
    cases.append(
        (
            "report reversed",
            cli_refuses(capsys, "report", "--from", "2026-12-31", "--to", "2026-01-01"),
        )
    )
    for args in [
        ("consent", "grant", client, "--partner", "nope", "--purpose", "id_papers"),
        ("consent", "grant", client, "--partner", "police-nha-trang", "--purpose", "nope"),
        (
            "consent",
            "grant",
            "C-NOPE1-NOPE1",
            "--partner",
            "police-nha-trang",
            "--purpose",
            "id_papers",
        ),
        (
            "consent",
            "grant",
            client,
            "--partner",
            "police-nha-trang",
            "--purpose",
            "id_papers",
            "--method",
            "telepathy",
        ),
        ("consent", "withdraw", client, "--partner", "legal-aid-centre"),
        ("outbox", "retry", "999999"),
        ("outbox", "retry", "abc"),
        ("outbox", "revoke", "-1"),
        ("list", "--now", "2026-02-30T10:00"),
        ("list", "--limit", "-5"),
        ("show", "R-NOPE1-NOPE1"),
        ("show", HOSTILE[1]),
        ("user", "add", "Bad Name", "--name", "X", "--role", "manager", "--password-stdin"),
        ("user", "add", "lan", "--name", "X", "--role", "emperor", "--password-stdin"),
        ("client", "erase", client, "--yes"),  # open referral
        ("client", "export", "C-NOPE1-NOPE1"),
        ("keys", "rotate", "--batch", "0"),
    ]:
        cases.append((" ".join(a[:20] for a in args), cli_refuses(capsys, *args)))
    # CSV imports: the file is read whole and refused whole.
    header = "name,phone,id_number,district,pathway,partner,consent,launched_at,urgent\n"
    good_row = "Trần Thị Nhập,0905 111 333,,nha-trang,id_papers,police-nha-trang,written,,\n"
    files = {
        "invalid UTF-8": header.encode()
        + b"Tr\xe1\xba n Th\xff,0905 111 333,,nha-trang,id_papers,police-nha-trang,written,,\n",
        "no header": good_row.encode(),
        "missing column": header.replace(",urgent", "").encode() + good_row.encode(),
        "unknown column": header.replace("urgent", "urgent,colour").encode() + good_row.encode(),
        "empty": b"",
        "bad phone": (header + good_row.replace("0905 111 333", "not a phone")).encode(),
        "bad district": (header + good_row.replace("nha-trang", "atlantis")).encode(),
        "bad date": (header + good_row.replace(",,\n", ",31/02/2026,\n")).encode(),
        "future date": (header + good_row.replace(",,\n", ",2099-01-01,\n")).encode(),
        "unknown partner": (header + good_row.replace("police-nha-trang", "nope")).encode(),
        "bad consent": (header + good_row.replace("written", "telepathy")).encode(),
        "1 MB name": (header + good_row.replace("Trần Thị Nhập", "x" * 1_000_000)).encode(),
        "a good row then a bad one": (
            header + good_row + good_row.replace("nha-trang", "atlantis")
        ).encode(),
        "NUL byte": (header + good_row.replace("Trần", "Tr\x00n")).encode(),
        "binary": bytes(range(256)) * 10,
    }
    for name, data in files.items():
        path = tmp_path / f"{len(cases)}.csv"
        path.write_bytes(data)
        cases.append((f"import {name}", cli_refuses(capsys, "import", str(path))))
    walk(rt, cases, minimum=90)


# --- HTTP: the API, the partners' links, the staff forms ---------------------------------------


def http_refuses(
    call: Callable[[], object], allowed: tuple[int, ...] = (), status: int | None = None
) -> Callable[[], str | None]:
    """A case that must be refused with a 4xx (with `status`: that one)."""

    def case() -> str | None:
        response = call()
        got = response.status_code  # type: ignore[attr-defined]
        if got >= 500:
            return f"{got}"
        if got < 400 and got not in allowed:
            return f"accepted with {got}"
        if status is not None and got != status:
            return f"refused with {got}, not {status}"
        return None

    return case


def test_the_api_refuses_bad_input(rt: Runtime, world: dict[str, str]) -> None:
    api = TestClient(create_app(), raise_server_exceptions=False)
    auth = {"Authorization": f"Bearer {world['token']}"}
    client, ref = world["client"], world["ref"]
    good = {"client": client, "pathway": "legal_aid", "partner": "legal-aid-centre"}
    bodies: list[object] = [
        {},
        {"client": client},
        {**good, "extra": 1},
        {**good, "urgent": "very"},
        {**good, "client": 42},
        {**good, "client": None},
        {**good, "client": ["C-1"]},
        {**good, "client": {"$ne": None}},
        {**good, "pathway": "nope"},
        {**good, "partner": "nope"},
        {**good, "client": "C-NOPE1-NOPE1"},
        {**good, "partner": "police-nha-trang"},  # does not offer legal aid
        *({**good, "client": h} for h in HOSTILE),
        *({**good, "pathway": h} for h in HOSTILE[:5]),
        [],
        "text",
        None,
    ]
    cases: list[tuple[str, Callable[[], str | None]]] = [
        (
            f"launch body {i}",
            http_refuses(lambda b=b: api.post("/api/v1/referrals", json=b, headers=auth)),
        )
        for i, b in enumerate(bodies)
    ]
    for raw in [b"{", b"\xff\xfe", b"null", b'{"client": "\\u0000"}', b"x" * 2_000_000]:
        cases.append(
            (
                f"launch raw {raw[:10]!r}",
                http_refuses(
                    lambda r=raw: api.post(
                        "/api/v1/referrals",
                        content=r,
                        headers={**auth, "content-type": "application/json"},
                    )
                ),
            )
        )
    actions: list[object] = [
        {"action": "explode", "version": 1},
        {"action": "accept"},
        {"action": "accept", "version": 0},
        {"action": "accept", "version": -1},
        {"action": "accept", "version": "one"},
        {"action": "accept", "version": 10**30},
        {"action": "accept", "version": 99},  # stale: 409
        {"action": "decline", "version": 1},  # no reason
        {"action": "decline", "version": 1, "reason": "because"},
        {"action": "done", "version": 1, "step": "card_issued"},
        {"action": "resume", "version": 1},
        {"action": "accept", "version": 1, "step": HOSTILE[0]},
        {"action": "accept", "version": 1, "surprise": True},
    ]
    cases += [
        (
            f"action {i}",
            http_refuses(
                lambda b=b: api.post(f"/api/v1/referrals/{ref}/actions", json=b, headers=auth)
            ),
        )
        for i, b in enumerate(actions)
    ]
    for code in ["R-NOPE1-NOPE1", "%00", "x" * 100, "..%2F..%2Fetc", "R-'--"]:
        cases.append(
            (
                f"action on {code[:20]!r}",
                http_refuses(
                    lambda c=code: api.post(
                        f"/api/v1/referrals/{c}/actions",
                        json={"action": "accept", "version": 1},
                        headers=auth,
                    )
                ),
            )
        )
        cases.append(
            (
                f"get {code[:20]!r}",
                http_refuses(lambda c=code: api.get(f"/api/v1/referrals/{c}", headers=auth)),
            )
        )
    for query in [
        "limit=-1",
        "limit=100000",
        "offset=-5",
        "status=%00",
        "district=ninh-hoa",
        "district=' OR 1=1 --",
        "overdue=maybe",
        "coordinator=<x>",
    ]:
        cases.append(
            (
                f"list ?{query}",
                http_refuses(lambda q=query: api.get(f"/api/v1/referrals?{q}", headers=auth)),
            )
        )
    bare = {"Authorization": world["token"]}  # a token without its scheme is no credential
    cases.append(
        (
            "auth without Bearer",
            http_refuses(lambda: api.get("/api/v1/referrals", headers=bare), status=401),
        )
    )
    for header in [
        {},
        {"Authorization": "Bearer rf_forged"},
        {"Authorization": "Basic YWRtaW46YWRtaW4="},
        {"Authorization": "Bearer " + "x" * 10_000},
    ]:
        cases.append(
            (
                f"auth {str(header)[:30]}",
                http_refuses(lambda h=header: api.post("/api/v1/referrals", json=good, headers=h)),
            )
        )
    walk(rt, cases, minimum=60)


def test_links_and_staff_forms_refuse_bad_input(
    rt: Runtime, world: dict[str, str], now: dt.datetime
) -> None:
    clock = Clock(now)
    web = TestClient(create_app(clock=clock), raise_server_exceptions=False)
    web.app.state.limits["link"].per_minute = 10_000  # the corpus is not an attack  # type: ignore[attr-defined]
    tokens = [
        "",
        "a",
        "aaaaaaaaaaaaaaaaaa",
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "..%2F..%2Fetc%2Fpasswd",
        "%00",
        "AAAAAAAAAAAAAAAAAA",
        "🙂🙂🙂",
        "x" * 5000,
        "' OR 1=1 --",
    ]
    cases: list[tuple[str, Callable[[], str | None]]] = []
    for t in tokens:
        cases.append((f"link GET {t[:20]!r}", http_refuses(lambda t=t: web.get(f"/l/{t}"))))
        cases.append(
            (
                f"link POST {t[:20]!r}",
                http_refuses(lambda t=t: web.post(f"/l/{t}", data={"action": "accept"})),
            )
        )
    # A real link with bad forms: refused without a change.
    with transaction(rt.engine) as s:
        message = s.execute(text("SELECT MIN(id) FROM notification")).scalar_one()
    from referrals.models.links import link_token

    real = f"/l/{link_token(rt.ctx.vault, message)}"
    forms: list[dict[str, str] | bytes] = [
        {},
        {"action": "explode"},
        {"action": "decline", "reason": "because"},
        {"action": "decline", "reason": "no_longer_needed"},  # not a partner's reason
        {"action": "done", "on": "31/02/2026"},
        {"action": "accept", "note": "x" * 600},
        {"action": "accept", "extra": "1"},
        {"action": "accept", "on": "yesterday"},
        b"action=accept&note=\xff\xfe",
        b"x" * 100_000,
    ]
    form_type = {"content-type": "application/x-www-form-urlencoded"}
    for i, form in enumerate(forms):
        if isinstance(form, bytes):
            post = partial(web.post, real, content=form, headers=form_type)
        else:
            post = partial(web.post, real, data=form)
        cases.append((f"link form {i}", http_refuses(post)))
    # Staff forms, with a valid session and CSRF token: bad fields change nothing.
    mai = logged_in(clock, "mai")
    token = csrf_of(mai.get("/cases").text)
    client, ref = world["client"], world["ref"]
    staff: list[tuple[str, dict[str, str]]] = [
        ("/launch", {"client": client, "pathway": "nope", "partner": "police-nha-trang"}),
        (
            "/launch",
            {"client": client, "pathway": "id_papers", "partner": "police-nha-trang"},
        ),  # open already
        ("/launch", {"client": HOSTILE[0], "pathway": "id_papers", "partner": "police-nha-trang"}),
        (
            "/launch",
            {
                "client": client,
                "pathway": "id_papers",
                "partner": "police-nha-trang",
                "urgent": "very",
            },
        ),
        ("/clients", {"name": "", "phone": "0905 111 222"}),
        ("/clients", {"name": "A", "phone": "not a phone"}),
        ("/clients", {"name": "A", "id_number": "123"}),
        ("/clients", {"name": "x" * 60_000}),
        (f"/clients/{client}/consents", {"partner": "nope", "purpose": "id_papers"}),
        (f"/clients/{client}/consents", {"partner": "police-nha-trang", "purpose": "nope"}),
        (
            f"/clients/{client}/consents",
            {"partner": "police-nha-trang", "purpose": "id_papers", "method": "telepathy"},
        ),
        (f"/clients/{client}/reveal", {"purpose": "curiosity"}),
        (f"/referrals/{ref}/actions", {"action": "explode", "version": "1"}),
        (f"/referrals/{ref}/actions", {"action": "accept", "version": "x"}),
        (f"/referrals/{ref}/actions", {"action": "accept", "version": "99"}),
        (f"/referrals/{ref}/actions", {"action": "decline", "version": "1", "reason": "because"}),
        (f"/referrals/{ref}/reroute", {"partner": "phuong-son-health"}),  # not declined
        (f"/referrals/{ref}/reroute", {"partner": HOSTILE[0]}),
        ("/admin/users", {"username": "x"}),
        ("/logout", {}),  # no CSRF below: refused
    ]
    for path, fields in staff:
        data = fields if path == "/logout" else {"csrf": token, **fields}
        cases.append(
            (
                f"POST {path} {str(fields)[:40]}",
                http_refuses(lambda p=path, d=data: mai.post(p, data=d, follow_redirects=False)),
            )
        )
    walk(rt, cases, minimum=45)


# --- generated: every field's wrong types, every number's and date's extremes, every body's size -


WRONG_TYPES: list[object] = [
    True,
    False,
    0,
    -1,
    1.5,
    2**31,
    2**63,
    -(2**63) - 1,
    10**30,
    "",
    "1",
    "true",
    "x" * 10_000,
    "\x00",
    [],
    [1],
    {},
    {"$gt": 0},
    None,
]
EXTREME_INTS = ["-1", "-9223372036854775809", "9223372036854775808", "2147483648", str(10**30)]
NOT_INTS = ["1e3", "1.5", "nan", "", "0x10", "１"]
EDGE_DAYS = [
    "0001-01-01",
    "1969-12-31",
    "1970-01-01",
    "1999-12-31",
    "2101-01-01",
    "9999-12-31",
    "31/12/9999",
    "01/01/0001",
    "2023-02-29",
    "29/02/2023",
    "2026-04-31",
    "0000-00-00",
]
EDGE_INSTANTS = [
    "0001-01-01T00:00",
    "1969-12-31T23:59:59+07:00",
    "1999-12-31T23:59:59",
    "2101-01-01T00:00",
    "9999-12-31T23:59:59",
    "9999-12-31T23:59:59-12:00",
]
JSON_TYPES = {"string": str, "integer": int, "boolean": bool, "array": list, "object": dict}


def fits(value: object, schema: dict[str, object]) -> bool:
    """Whether `value` is valid for a property's JSON schema (types, bounds, pattern, length):
    the generated cases keep only values that do not fit, so every one must be refused."""
    options = schema.get("anyOf") or [schema]
    for option in options:  # type: ignore[union-attr]
        kind = option.get("type")
        if kind == "null":
            if value is None:
                return True
            continue
        if "enum" in option or "const" in option:
            if value in option.get("enum", [option.get("const")]):
                return True
            continue
        expected = JSON_TYPES.get(kind)
        if expected is None or not isinstance(value, expected):
            continue
        if kind == "integer" and isinstance(value, bool):
            continue
        if kind == "integer" and not (
            option.get("minimum", -(2**63)) <= value <= option.get("maximum", 2**63)
        ):
            continue
        if kind == "string" and (
            not re.search(option.get("pattern", ""), value)
            or len(value) > option.get("maxLength", 10**9)
        ):
            continue
        return True
    return False


def routes(found: list[Any], prefix: str = "") -> Iterator[tuple[str, set[str]]]:
    """Every route's path and methods, into included routers (FastAPI 0.150 nests them)."""
    for route in found:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            yield from routes(inner.routes, prefix + getattr(inner, "prefix", ""))
        elif hasattr(route, "methods"):
            yield (
                route.path if route.path.startswith(prefix) else prefix + route.path,
                route.methods,
            )


def test_generated_wrong_types_extremes_and_oversize_bodies(
    rt: Runtime, world: dict[str, str], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """From the OpenAPI description: each JSON field given each value of the wrong type or out
    of bounds, each integer query parameter its extremes; every POST route an oversize body
    (declared, and chunked without a length); dates and `--now` at the edges of every type
    through the CLI, the report page and the import."""
    app = create_app()
    api = TestClient(app, raise_server_exceptions=False)
    auth = {"Authorization": f"Bearer {world['token']}"}
    client, ref = world["client"], world["ref"]
    spec = app.openapi()
    models = spec["components"]["schemas"]
    bases = {
        "/api/v1/referrals": {"client": client, "pathway": "id_papers", "partner": "nope"},
        "/api/v1/referrals/{code}/actions": {"action": "accept", "version": 1},
    }
    cases: list[tuple[str, Callable[[], str | None]]] = []
    for path, base in bases.items():
        body = spec["paths"][path]["post"]["requestBody"]["content"]["application/json"]
        model = models[body["schema"]["$ref"].rsplit("/", 1)[1]]
        url = path.replace("{code}", ref)
        for field, schema in model["properties"].items():
            for value in WRONG_TYPES:
                if fits(value, schema):
                    continue
                sent = {**base, field: value}
                cases.append(
                    (
                        f"POST {path} {field}={str(value)[:12]!r}",
                        http_refuses(lambda u=url, b=sent: api.post(u, json=b, headers=auth)),
                    )
                )
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            url = path.replace("{code}", ref)
            for param in operation.get("parameters", []):
                kind = param["schema"].get("type") or param["schema"].get("anyOf", [{}])[0].get(
                    "type"
                )
                if param["in"] != "query" or kind not in ("integer", "boolean"):
                    continue
                values = EXTREME_INTS + NOT_INTS if kind == "integer" else ["maybe", "2", "-1"]
                for value in values:
                    cases.append(
                        (
                            f"{method.upper()} {path}?{param['name']}={value[:12]}",
                            http_refuses(
                                lambda m=method, u=url, q={param["name"]: value}: api.request(
                                    m, u, params=q, headers=auth
                                )
                            ),
                        )
                    )
    huge = json.dumps({"client": "x" * 70_000}).encode()
    headers = {**auth, "content-type": "application/json"}
    posts = sorted({path for path, methods in routes(app.routes) if "POST" in methods})
    assert len(posts) >= 15, posts  # the API's, the links', the staff forms'
    for path in posts:
        url = re.sub(r"\{(\w+)\}", "x", path.replace("{code}", ref))
        cases.append(
            (
                f"POST {path}: 70 KiB",
                http_refuses(lambda u=url: api.post(u, content=huge, headers=headers), status=413),
            )
        )
        cases.append(
            (
                f"POST {path}: 70 KiB chunked",
                http_refuses(
                    lambda u=url: api.post(
                        u, content=iter([huge[:40_000], huge[40_000:]]), headers=headers
                    ),
                    status=413,
                ),
            )
        )
    mai = logged_in(Clock(dt.datetime(2026, 11, 23, 2, 0, tzinfo=dt.UTC)), "mai")
    for day in EDGE_DAYS:
        for first, last in ((day, "2026-12-31"), ("2026-01-01", day)):
            cases.append(
                (
                    f"report page {first}..{last}",
                    http_refuses(
                        lambda q={"from": first, "to": last}: mai.get("/report", params=q)
                    ),
                )
            )
            cases.append(
                (
                    f"report {first}..{last}",
                    cli_refuses(capsys, "report", "--from", first, "--to", last),
                )
            )
    timed = [
        ("sweep",),
        ("deliver",),
        ("digest",),
        ("list",),
        ("show", ref),
        ("advance", ref, "--action", "accept"),
        ("launch", client, "--pathway", "legal_aid", "--partner", "legal-aid-centre"),
    ]
    for args in timed:
        for at in EDGE_INSTANTS:
            cases.append((f"{args[0]} --now {at}", cli_refuses(capsys, *args, "--now", at)))
    counted = [
        ("list", "--offset"),
        ("list", "--limit"),
        ("outbox", "--limit"),
        ("sweeps", "--limit"),
        ("deliver", "--limit"),
        ("keys", "rotate", "--batch"),
    ]
    for *command, option in counted:
        for value in EXTREME_INTS + NOT_INTS[:3]:
            cases.append(
                (
                    f"{' '.join(command)} {option} {value[:12]}",
                    cli_refuses(capsys, *command, option, value),
                )
            )
    header = "name,phone,id_number,district,pathway,partner,consent,launched_at,urgent\n"
    row = "Trần Thị Nhập,0905 111 333,,nha-trang,id_papers,police-nha-trang,written,{},\n"
    for day in EDGE_DAYS + [t.split("+")[0] for t in EDGE_INSTANTS]:
        path = tmp_path / f"edge-{len(cases)}.csv"
        path.write_text(header + row.format(day), encoding="utf-8")
        cases.append((f"import launched_at={day}", cli_refuses(capsys, "import", str(path))))
    walk(rt, cases, minimum=250)


def test_the_bounds_themselves_are_accepted(
    rt: Runtime, world: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """The edges of what is accepted work: refusing them would be a bug of its own."""
    api = TestClient(create_app(), raise_server_exceptions=False)
    auth = {"Authorization": f"Bearer {world['token']}"}
    far = api.get("/api/v1/referrals", params={"offset": MAX_ROWS}, headers=auth)
    assert (far.status_code, far.json()) == (200, [])
    with pytest.raises(SystemExit) as done:
        main(["report", "--from", "01/01/2000", "--to", "31/12/2100", "--format", "json"])
    assert done.value.code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["period"]["from"] == "2000-01-01" and report["period"]["to"] == "2100-12-31"
    with pytest.raises(SystemExit) as done:
        main(["list", "--offset", str(MAX_ROWS), "--json"])
    assert done.value.code == 0 and json.loads(capsys.readouterr().out) == []


# --- the province's config files -----------------------------------------------------------------


def test_bad_config_files_are_refused_with_where(tmp_path: Path) -> None:
    edits: dict[str, tuple[str, Callable[[str], str] | bytes]] = {
        "yaml syntax": ("partners.yaml", lambda t: t + "\n  - slug: [unclosed\n"),
        "tab indentation": ("partners.yaml", lambda t: t.replace("  - slug", "\t- slug", 1)),
        "bad phone": ("partners.yaml", lambda t: t.replace('"0905 000 101"', '"0905-ABC-101"', 1)),
        "unknown key": ("pathways.yaml", lambda t: t.replace("steps:", "stepz:", 1)),
        "bad due rule": (
            "pathways.yaml",
            lambda t: t.replace("{working_days: 2}", "{working_days: -2}", 1),
        ),
        "unknown area": (
            "partners.yaml",
            lambda t: t.replace("[tp-nha-trang, tx-ninh-hoa]", "[atlantis]", 1),
        ),
        "invalid UTF-8": ("province.yaml", b"name: \xff\xfe\n"),
        "empty file": ("pathways.yaml", b""),
        "a list, not a mapping": ("province.yaml", b"- 1\n- 2\n"),
        "literal secret in a channel": (
            "province.yaml",
            lambda t: t.replace("${REFERRALS_EMAIL_URL}", "mailtos://u:hunter2@mail.example", 1),
        ),
    }
    refused = []
    for name, (file, edit) in edits.items():
        folder = tmp_path / name.replace(" ", "-")
        shutil.copytree(BUNDLED_CONFIG, folder)
        target = folder / file
        if isinstance(edit, bytes):
            target.write_bytes(edit)
        else:
            target.write_text(edit(target.read_text(encoding="utf-8")), encoding="utf-8")
        try:
            load_province(folder)
        except ConfigError as exc:
            if file not in str(exc):
                refused.append(f"{name}: the error does not say where: {exc}")
        except Exception as exc:
            refused.append(f"{name}: {type(exc).__name__}: {exc}")
        else:
            refused.append(f"{name}: accepted")
    assert not refused, "\n".join(refused)
