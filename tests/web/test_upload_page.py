"""The import page (issue 19): the template to download, an upload that imports every row or
none, the job's progress as JSON for the page's script, its result page, and the refusals
(CSRF, malformed or oversize bodies, other users' jobs, roles that do not launch).

Through FastAPI's TestClient on SQLite and PostgreSQL; the same upload in Chromium, with the
progress bar, is in tests/system/test_upload_browser.py.
"""

from __future__ import annotations

import datetime as dt
import io
import re
import time

import httpx
import pytest
from fastapi.testclient import TestClient
from openpyxl import Workbook, load_workbook
from sqlalchemy import select
from sqlmodel import Session, col

from referrals.infra.runtime import Runtime
from referrals.models.people import Client
from referrals.models.workflow import Referral
from referrals.usecases.referrals.importing import HEADER
from referrals.web import uploads
from referrals.web.app import create_app
from referrals.web.limits import MAX_BODY, MAX_UPLOAD
from support.domain import row_counts
from support.pages import PASSWORD, Clock, csrf_of, staff_users

GOOD = [
    ["Phạm Thị Tải", "0905 123 401", "", "nha-trang", "id_papers", "police-nha-trang", "written"],
    ["Võ Văn Lên", "", "079190000401", "nha-trang", "legal_aid", "legal-aid-centre", "verbal"],
    [
        "Phạm Thị Tải",
        "0905 123 401",
        "",
        "nha-trang",
        "health_check",
        "phuong-son-health",
        "written",
    ],
]


def browser(clock: Clock, username: str | None = None, lang: str = "en") -> TestClient:
    """A browser on the app, logged in as `username`; English pages unless asked."""
    client = TestClient(create_app(clock=clock))
    client.cookies.set("lang", lang)
    if username:
        token = csrf_of(client.get("/login").text)
        answer = client.post(
            "/login",
            data={"csrf": token, "username": username, "password": PASSWORD, "next": "/"},
            follow_redirects=False,
        )
        assert answer.status_code == 303, answer.text
    return client


@pytest.fixture
def clock(rt: Runtime, now: dt.datetime) -> Clock:
    staff_users(rt)
    return Clock(now)


def workbook(rows: list[list[object]]) -> bytes:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(list(HEADER))
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def csv_file(rows: list[list[str]]) -> bytes:
    lines = [",".join(HEADER), *(",".join([*r, *[""] * (len(HEADER) - len(r))]) for r in rows)]
    return ("\n".join(lines) + "\n").encode("utf-8-sig")


def upload(
    web: TestClient, data: bytes, name: str = "batch.xlsx", *, script: bool = False, csrf: str = ""
) -> httpx.Response:
    """POST the import form as a browser sends it (as the page's script does with `script`)."""
    token = csrf or csrf_of(web.get("/import").text)
    headers = {"Accept": "application/json"} if script else {}
    return web.post(
        "/import",
        data={"csrf": token},
        files={"file": (name, data, "application/octet-stream")},
        headers=headers,
        follow_redirects=False,
    )


def finished(web: TestClient, job_id: str, timeout: float = 120) -> dict[str, object]:
    """The job's JSON state once it has finished (it runs in a thread of the app's)."""
    until = time.monotonic() + timeout
    while True:
        state = web.get(f"/import/jobs/{job_id}")
        assert state.status_code == 200, state.text
        assert state.headers["cache-control"] == "no-store"
        if state.json()["finished"]:
            return state.json()
        assert time.monotonic() < until, state.json()
        time.sleep(0.05)


def job_of(answer: httpx.Response) -> str:
    assert answer.status_code == 303, answer.text
    found = re.fullmatch(r"/import/jobs/([A-Za-z0-9_-]{22})/result", answer.headers["location"])
    assert found, answer.headers["location"]
    return found.group(1)


def test_the_page_explains_the_file_and_gives_the_template(clock: Clock) -> None:
    mai = browser(clock, "mai")
    page = mai.get("/import")
    assert page.status_code == 200
    for column in HEADER:
        assert f"<dt>{column}</dt>" in page.text
    assert 'href="/import/template.xlsx"' in page.text
    assert 'enctype="multipart/form-data"' in page.text
    assert 'accept=".xlsx,.csv' in page.text
    assert '<script src="/static/upload.js"></script>' in page.text
    assert f'data-max-bytes="{MAX_UPLOAD}"' in page.text
    assert 'data-stage-rows="Checking the rows"' in page.text
    desk = browser(clock, "admin").get("/import").text  # no district in its header
    assert "nha-trang" not in desk  # the keys are in the template's drop-downs, not the page
    template = mai.get("/import/template.xlsx")
    assert template.status_code == 200
    assert template.headers["content-type"] == uploads.XLSX
    disposition = template.headers["content-disposition"]
    assert disposition == 'attachment; filename="referrals-import-template.xlsx"'
    assert disposition.isascii()
    book = load_workbook(io.BytesIO(template.content))
    assert [c.value for c in book["rows"][1]] == list(HEADER)
    assert "nha-trang" in [c.value for c in book["choices"]["A"]]
    assert mai.get("/static/upload.js").status_code == 200


def test_an_upload_imports_every_row_and_links_the_codes(rt: Runtime, clock: Clock) -> None:
    mai = browser(clock, "mai")
    before = row_counts(rt)
    job = job_of(upload(mai, workbook([[*r, "20/11/2026", ""] for r in GOOD])))
    state = finished(mai, job)
    assert state["outcome"] == "imported"
    assert state["result"] == {
        "referrals": 3,
        "clients_created": 2,
        "clients_found": 0,  # rows 1 and 3 are one new person
        "consents": 3,
    }
    page = mai.get(str(state["page"]))
    assert page.status_code == 200 and "refresh" not in page.headers
    assert page.headers["cache-control"] == "no-store"
    assert (
        "Referrals launched: 3. New clients registered: 2; clients already known: 0." in page.text
    )
    with Session(rt.engine) as s:
        made = s.execute(
            select(col(Referral.code), col(Client.code)).join(
                Client, col(Client.id) == col(Referral.client_id)
            )
        ).all()
    assert len(made) == 3
    for referral, client in made:
        assert f'<a href="/referrals/{referral}">{referral}</a>' in page.text
        assert f'<a href="/clients/{client}">{client}</a>' in page.text
    after = row_counts(rt)
    assert (after["referral"] - before["referral"], after["client"] - before["client"]) == (3, 2)
    assert "Phạm Thị Tải" not in page.text and "0905" not in page.text


def test_one_bad_row_writes_nothing_and_each_problem_is_listed(rt: Runtime, clock: Clock) -> None:
    rows = [
        GOOD[0],
        ["Lê Sai", "0905 1", "", "nha-trang", "id_papers", "police-nha-trang", "written"],
        GOOD[1],
        ["Lê Xa", "", "", "cam-ranh", "id_papers", "police-nha-trang", "written"],
    ]
    mai = browser(clock, "mai")
    before = row_counts(rt)
    job = job_of(upload(mai, csv_file(rows), "batch.csv"))
    state = finished(mai, job)
    assert state["outcome"] == "refused"
    problems = state["problems"]
    assert isinstance(problems, list)
    assert [p["line"] for p in problems] == [3]  # the rows' own checks come first
    assert "is not a possible phone number" in problems[0]["message"]
    page = mai.get(f"/import/jobs/{job}/result")
    assert page.status_code == 422
    assert "Nothing was imported. Rows with a problem: 1." in page.text
    assert re.search(r"<li>Line 3: phone: .*not a possible phone number</li>", page.text)
    assert row_counts(rt) == before
    # Its phone mended, the next problem is the district, answered with the valid ones.
    rows[1] = [*rows[1][:1], "0905 123 499", *rows[1][2:]]
    job = job_of(upload(mai, csv_file(rows), "batch.csv"))
    assert finished(mai, job)["outcome"] == "refused"
    page = mai.get(f"/import/jobs/{job}/result")
    assert (
        "<li>Line 5: unknown district &#39;cam-ranh&#39; (in force today: dac-khu-truong-sa, "
        "khanh-hoa, nha-trang, ninh-hoa, phuong-ba-ngoi, " in page.text
    )
    assert 'href="/import"' in page.text
    assert row_counts(rt) == before


def test_a_file_refused_whole_says_why(rt: Runtime, clock: Clock) -> None:
    mai = browser(clock, "mai")
    before = row_counts(rt)
    row = ["Lê Hà", *GOOD[0][1:], "", ""]  # letters Windows-1258 has precomposed
    text = ",".join(HEADER) + "\n" + ",".join(row) + "\n"
    job = job_of(upload(mai, text.encode("cp1258"), "batch.csv"))
    assert finished(mai, job)["outcome"] == "refused"
    page = mai.get(f"/import/jobs/{job}/result")
    assert page.status_code == 422
    assert 'id="error">Nothing was imported: the file looks like Windows-1258' in page.text
    assert "CSV UTF-8" in page.text
    job = job_of(upload(mai, b"name,phone\nA,0905 123 456\n", "batch.csv"))
    assert finished(mai, job)["outcome"] == "refused"
    assert "the header must be" in mai.get(f"/import/jobs/{job}/result").text
    assert row_counts(rt) == before


def test_the_pages_script_gets_a_job_and_only_its_owner_sees_it(rt: Runtime, clock: Clock) -> None:
    mai = browser(clock, "mai")
    answer = upload(mai, csv_file(GOOD[:2]), "batch.csv", script=True)
    assert answer.status_code == 202
    job = answer.json()
    assert job["poll"] == f"/import/jobs/{job['id']}"
    assert job["page"] == f"/import/jobs/{job['id']}/result"
    state = finished(mai, job["id"])
    assert (state["stage"], state["done"], state["total"]) == ("saving", 2, 2)
    assert state["result"] == {
        "referrals": 2,
        "clients_created": 2,
        "clients_found": 0,
        "consents": 2,
    }
    for other in ("admin", "binh"):  # someone else's job is not there at all
        them = browser(clock, other)
        assert them.get(job["poll"]).status_code == 404
        assert them.get(job["page"]).status_code == 404
    assert mai.get("/import/jobs/AAAAAAAAAAAAAAAAAAAAAA").status_code == 404
    assert mai.get("/import/jobs/not-an-id").status_code == 404
    # An empty file is refused before any job, in the script's terms and the page's.
    empty = upload(mai, b"", script=True)
    assert empty.status_code == 422 and "Choose the file" in empty.json()["error"]
    page = upload(mai, b"  \n")
    assert page.status_code == 422 and "Choose the file to import" in page.text


def test_a_job_that_stops_reads_as_stopped(
    rt: Runtime, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A job whose worker went away (a restart mid-import: the transaction rolled back) says so
    instead of running forever."""
    mai = browser(clock, "mai")
    page = mai.get("/import")
    assert page.status_code == 200
    jobs = uploads.Jobs(rt.settings.data_dir / "imports", rt.ctx.vault)
    with Session(rt.engine) as s:
        mai_id = rt.user(s, "mai").id
    assert mai_id is not None
    job = jobs.new(mai_id)  # made, never run
    running = mai.get(job.page)
    assert running.status_code == 200 and running.headers["refresh"] == str(uploads.REFRESH)
    assert 'id="progress"' in running.text
    monkeypatch.setattr(uploads, "STALE", -1)
    stopped = mai.get(job.page)
    assert (
        stopped.status_code == 500
        and "The import stopped before it said how it ended" in stopped.text
    )
    assert mai.get(f"/import/jobs/{job.id}").json()["outcome"] == "stopped"
    sealed = next((rt.settings.data_dir / "imports").glob("*.job")).read_bytes()
    assert b"owner" not in sealed and b"queued" not in sealed


def test_only_coordinators_and_admins_import(rt: Runtime, clock: Clock) -> None:
    hoa = browser(clock, "hoa")
    assert hoa.get("/import").status_code == 403
    assert hoa.get("/import/template.xlsx").status_code == 403
    before = row_counts(rt)
    answer = upload(hoa, csv_file(GOOD), csrf=csrf_of(hoa.get("/cases").text))
    assert answer.status_code == 403
    stranger = browser(clock)
    gone = stranger.get("/import", follow_redirects=False)
    assert gone.status_code == 303 and gone.headers["location"] == "/login?next=/import"
    assert stranger.get("/import/template.xlsx", follow_redirects=False).status_code == 303
    # Without a session the body limit is every form's: a stranger cannot send megabytes.
    form = b"x" * (MAX_BODY + 1)
    assert stranger.post("/import", content=form).status_code == 413
    assert stranger.post("/import", content=iter([form[:40_000], form[40_000:]])).status_code == 413
    assert row_counts(rt) == before
    assert browser(clock, "admin").get("/import").status_code == 200


def test_bad_uploads_are_refused_and_change_nothing(rt: Runtime, clock: Clock) -> None:
    mai = browser(clock, "mai")
    token = csrf_of(mai.get("/import").text)
    data = csv_file(GOOD)
    before = row_counts(rt)
    assert upload(mai, data, csrf="0" * 32).status_code == 403
    no_token = mai.post("/import", files={"file": ("b.csv", data)}, follow_redirects=False)
    assert no_token.status_code == 403
    plain = mai.post("/import", data={"csrf": token, "file": "x"}, follow_redirects=False)
    assert plain.status_code == 400
    boundary = "b0undary"
    kind = {"content-type": f"multipart/form-data; boundary={boundary}"}
    cut = f'--{boundary}\r\nContent-Disposition: form-data; name="csrf"\r\n\r\n{token}\r\n'
    # Cut before its end: the token's field is never closed, so it is not there.
    assert mai.post("/import", content=cut.encode(), headers=kind).status_code == 403
    headless = f"--{boundary}\r\nno headers here\r\n--{boundary}--\r\n"
    assert mai.post("/import", content=headless.encode(), headers=kind).status_code == 400
    # Larger than a form (the limit of every other route), smaller than the upload's: taken.
    many = [[f"Khách {i}", f"0906 {i:06d}", "", *GOOD[0][3:]] for i in range(1500)]
    big = csv_file(many)
    assert MAX_BODY < len(big) < MAX_UPLOAD
    refused = finished(mai, job_of(upload(mai, big, "big.csv")))  # one pathway per client: fine
    assert refused["outcome"] == "imported", refused
    after_big = row_counts(rt)
    assert after_big["referral"] - before["referral"] == 1500
    # Beyond the upload's limit: refused before it is read, declared or chunked.
    huge = b"x" * (MAX_UPLOAD + 1)
    assert upload(mai, huge, "huge.csv", csrf=token).status_code == 413
    chunks = iter([huge[: MAX_UPLOAD // 2], huge[MAX_UPLOAD // 2 :]])
    assert mai.post("/import", content=chunks, headers=kind).status_code == 413
    assert row_counts(rt) == after_big
