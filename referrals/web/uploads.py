"""The import page: a spreadsheet of referrals uploaded from the browser, all or nothing, with
progress for large files (issue 19). The work is the CLI's: usecases/referrals/importing.py.

How the work runs, and why so:

- POST /import reads the upload (multipart, up to web/limits.MAX_UPLOAD: the one route with a
  larger body limit, for signed-in staff), checks its CSRF token as `Staff.form` does, starts
  the import in a thread of its own and answers at once: a 303 to the job's page, or for the
  page's script (upload.js, which asks for JSON) a 202 naming the job. Answering at once keeps
  no request open for the half-minute a large file may take, which a reverse proxy or a slow
  office line could cut.
- The job's state (stage, rows done, the outcome) is a small file under `<data dir>/imports/`,
  sealed with a key derived from REFERRALS_SECRET_KEY (a refused row's message may quote the
  phone typed in it). Not the process's memory: the web service runs several uvicorn workers
  (deploy/systemd/referrals-web@.service), and the next poll may reach another one. The job is
  its uploader's: another user, or a stranger guessing ids (22 random characters), gets 404.
- GET /import/jobs/{id} answers its state as JSON for the script's <progress> bar; GET
  /import/jobs/{id}/result is the page: the progress with a `Refresh` header while the work runs
  (so a browser without JavaScript follows it too), then the referrals and clients made, or
  every problem with its line, nothing having been written.
- All or nothing is the use case's one transaction: a server stopped mid-import rolls it back;
  its job, no longer updated, then reads as stopped after STALE. Imports in one process run one
  at a time (SQLite has one writer; two large imports at once would only slow each other).

No client's name, phone or ID number goes into a log line or an address: jobs are named by a
random id, referrals and clients by their codes.
"""

from __future__ import annotations

import datetime as dt
import hmac
import json
import logging
import os
import secrets
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from traceback import extract_tb
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Request
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse, RedirectResponse, Response
from python_multipart.exceptions import MultipartParseError
from sqlalchemy import Engine, select
from sqlmodel import Session, col
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException

from referrals.infra.context import Context
from referrals.infra.crypto import Vault
from referrals.infra.db import CHUNK, transaction
from referrals.locale import N_, ByLanguage, Msg
from referrals.models.errors import DomainError, NotFound
from referrals.models.people import Client, Role, User
from referrals.models.workflow import Referral
from referrals.usecases.referrals.importing import ImportRefused, import_referrals, import_template
from referrals.usecases.referrals.launching import Progress
from referrals.web.limits import MAX_UPLOAD
from referrals.web.staff import Me, Staff, require

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
TEMPLATE_FILE = "referrals-import-template.xlsx"
JobId = Annotated[str, PathParam(pattern=r"^[A-Za-z0-9_-]{22}$")]
KEEP = 24 * 3600  # seconds a finished job's page stays
STALE = 10 * 60  # seconds without news after which a running job is taken as stopped
REFRESH = 2  # seconds between the job page's reloads while the work runs

# What the job is doing, as the progress bar says it (the use case's stages, and ours around
# them: `upload` is the browser's, `queued` waits for another import of this process).
STAGES: dict[str, Msg] = {
    "upload": N_("Sending the file"),
    "queued": N_("Waiting for another import to finish"),
    "reading": N_("Reading the file"),
    "rows": N_("Checking the rows"),
    "clients": N_("Finding and registering clients"),
    "launch": N_("Checking the referrals"),
    "write": N_("Writing the referrals"),
    "saving": N_("Saving"),
}
WORDS: dict[str, Msg] = {
    "no_file": N_("Choose the file to import (.xlsx or .csv)."),
    "refused": N_("Nothing was imported: %(why)s"),
    "stopped": N_(
        "The import stopped before it said how it ended (the server restarted?). An import is "
        "all or nothing: if its referrals are not in My cases, upload the file again."
    ),
    "failed": N_("The import failed. Nothing was imported; the error is in the server's log."),
}
STAGE_WORDS, UPLOAD_WORDS = ByLanguage(STAGES), ByLanguage(WORDS)


@dataclass
class Job:
    """One upload's import: where it is, then what came of it (codes and counts, or problems)."""

    id: str
    owner: int
    stage: str = "queued"
    done: int = 0
    total: int = 0
    outcome: str | None = None  # imported | refused | failed | stopped
    beat: float = field(default_factory=time.time)  # the last time the job said something
    referrals: list[tuple[str, str]] = field(default_factory=list)  # (referral, its client)
    counts: dict[str, int] = field(default_factory=dict)
    problems: list[tuple[int, str]] = field(default_factory=list)  # (line, what is wrong)
    error: dict[str, Any] = field(default_factory=dict)  # a whole-file refusal: message, key

    @property
    def page(self) -> str:
        return f"/import/jobs/{self.id}/result"


class Jobs:
    """The jobs of this installation's web workers: one file each, written whole, sealed by
    the vault (a refused row's message may quote what was typed) with the job's id bound in."""

    def __init__(self, folder: Path, vault: Vault) -> None:
        self.folder, self.vault = folder, vault

    def new(self, owner: int) -> Job:
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.sweep()
        job = Job(id=secrets.token_urlsafe(16), owner=owner)
        self.save(job)
        return job

    def save(self, job: Job) -> None:
        job.beat = time.time()
        state = json.dumps(asdict(job), default=str)
        part = self.folder / f".{job.id}.{secrets.token_hex(4)}"
        part.write_text(self.vault.encrypt(state, f"import.job:{job.id}") or "")
        os.replace(part, self._path(job.id))  # a reader sees the old state or the new, whole

    def load(self, job_id: str, owner: int) -> Job | None:
        """The job if it exists and is `owner`'s (else None, as if it did not exist)."""
        try:
            sealed = self._path(job_id).read_text()
            job = Job(**json.loads(self.vault.decrypt(sealed, f"import.job:{job_id}") or ""))
        except (OSError, ValueError, TypeError):  # gone, or sealed by a secret no longer held
            return None
        job.referrals = [(r, c) for r, c in job.referrals]
        job.problems = [(line, text) for line, text in job.problems]
        if job.owner != owner:
            return None
        if job.outcome is None and time.time() - job.beat > STALE:
            job.outcome = "stopped"
        return job

    def sweep(self) -> None:
        """Forget jobs older than KEEP (and parts a stopped writer left)."""
        old = time.time() - KEEP
        for path in self.folder.iterdir():
            try:
                if path.stat().st_mtime < old:
                    path.unlink()
            except OSError:
                pass  # another worker swept it first

    def _path(self, job_id: str) -> Path:
        return self.folder / f"{job_id}.job"


def _jobs(me: Staff) -> Jobs:
    return Jobs(me.rt.settings.data_dir / "imports", me.rt.ctx.vault)


_ONE_AT_A_TIME = threading.Lock()


@dataclass(frozen=True)
class _Work:
    """What the import's thread needs of the request that started it."""

    jobs: Jobs
    job: Job
    data: bytes
    user: User
    ctx: Context
    engine: Engine
    now: dt.datetime


def _run(work: _Work) -> None:
    """The import, in its thread, once this process's previous one is done: its progress and
    outcome into the job's file."""
    job, jobs = work.job, work.jobs

    def progress(stage: str, done: int, total: int) -> None:
        job.stage, job.done, job.total = stage, done, total
        jobs.save(job)

    while not _ONE_AT_A_TIME.acquire(timeout=STALE / 4):
        jobs.save(job)  # still waiting its turn, not stopped
    try:
        _import(work, progress)
    except ImportRefused as exc:
        job.referrals, job.problems, job.outcome = [], exc.problems, "refused"
    except DomainError as exc:
        job.referrals, job.outcome = [], "refused"
        job.error = {"message": str(exc), "key": exc.key, "params": exc.params}
    except Exception as exc:  # the page must hear of it; the log gets no row's data
        job.referrals, job.outcome = [], "failed"
        log.error("import %s failed: %s at %s", job.id, type(exc).__name__, _where(exc))
    finally:
        _ONE_AT_A_TIME.release()
    jobs.save(job)


def _import(work: _Work, progress: Progress) -> None:
    """The CLI's use case, in one transaction; the job gets the codes and the counts."""
    job = work.job
    progress("reading", 0, 0)
    with transaction(work.engine) as s:
        report = import_referrals(
            s, data=work.data, coordinator=work.user, ctx=work.ctx, now=work.now, progress=progress
        )
        job.referrals = _with_clients(s, report.referrals)
        progress("saving", len(report.referrals), len(report.referrals))
    job.counts = {
        "referrals": len(report.referrals),
        "clients_created": report.clients_created,
        "clients_found": report.clients_found,
        "consents": report.consents_recorded,
    }
    job.outcome = "imported"
    log.info("import %s: %d referrals launched", job.id, len(report.referrals))


def _where(exc: Exception) -> str:
    """Where an exception came from (file:line, innermost first), without its message, which
    may quote a row."""
    frames = extract_tb(exc.__traceback__)[::-1][:6]
    return " < ".join(f"{Path(f.filename).name}:{f.lineno}" for f in frames)


def _with_clients(session: Session, codes: list[str]) -> list[tuple[str, str]]:
    """Each new referral's code with its client's, in the file's order."""
    client_of: dict[str, str] = {}
    for i in range(0, len(codes), CHUNK):
        query = (
            select(col(Referral.code), col(Client.code))
            .join(Client, col(Client.id) == col(Referral.client_id))
            .where(col(Referral.code).in_(codes[i : i + CHUNK]))
        )
        client_of.update((referral, client) for referral, client in session.execute(query))
    return [(code, client_of.get(code, "")) for code in codes]


# -- the upload: a multipart form, read whole within the route's limit


async def read_upload(request: Request, me: Staff) -> dict[str, bytes]:
    """The posted multipart form (parsed by python-multipart through Starlette; the body is
    capped by web/limits.py), once its CSRF token matches this session's (as `Staff.form`): a
    field's first value, a file's bytes as sent."""
    if not request.headers.get("content-type", "").lower().startswith("multipart/form-data"):
        raise HTTPException(400, "the file must be sent as multipart/form-data")
    try:
        form = await request.form(max_files=1, max_fields=4)
    except (MultiPartException, MultipartParseError, ValueError):
        raise HTTPException(
            400, "the upload is malformed or incomplete; send the file again"
        ) from None
    fields: dict[str, bytes] = {}
    for name, value in form.multi_items():
        if name not in fields:
            fields[name] = await value.read() if isinstance(value, UploadFile) else value.encode()
    await form.close()
    if not hmac.compare_digest(fields.pop("csrf", b"").strip(), me.session.csrf.encode()):
        raise HTTPException(403, "the form's security token is missing or wrong; reload")
    return fields


# -- the routes


def _staff_only(me: Staff) -> None:
    """Importing launches referrals: coordinators (their district's rows) and admins."""
    require(me, Role.coordinator, Role.admin)


def _form(me: Staff, status: int = 200, error: str | None = None) -> Response:
    return me.page(
        "import.html",
        status,
        stages=STAGE_WORDS[me.lang],
        max_bytes=MAX_UPLOAD,
        max_mb=MAX_UPLOAD // (1024 * 1024),
        error=error,
    )


@router.get("/import")
def import_page(me: Me) -> Response:
    _staff_only(me)
    return _form(me)


@router.get("/import/template.xlsx")
def import_template_file(me: Me) -> Response:
    """The workbook to fill in, with drop-downs of this installation's keys (as the CLI's)."""
    _staff_only(me)
    with Session(me.rt.engine) as s:
        data = import_template(s)
    return Response(
        data,
        media_type=XLSX,
        headers={
            "Content-Disposition": f'attachment; filename="{TEMPLATE_FILE}"',
            "Cache-Control": "no-store",
        },
    )


@router.post("/import")
async def import_upload(request: Request, me: Me) -> Response:
    _staff_only(me)
    fields = await read_upload(request, me)
    wants_json = "application/json" in request.headers.get("accept", "")
    data = fields.get("file", b"")
    if not data.strip():
        said = UPLOAD_WORDS[me.lang]["no_file"]
        return JSONResponse({"error": said}, 422) if wants_json else _form(me, 422, said)
    assert me.user.id is not None  # a logged-in user is a stored one
    jobs = _jobs(me)
    job = jobs.new(me.user.id)
    work = _Work(jobs, job, data, me.user, me.rt.ctx, me.rt.engine, me.now)
    threading.Thread(target=_run, args=(work,), name="import", daemon=True).start()
    if wants_json:
        poll = f"/import/jobs/{job.id}"
        return JSONResponse({"id": job.id, "poll": poll, "page": job.page}, 202)
    return RedirectResponse(job.page, 303)


def _job_or_404(me: Staff, job_id: str) -> Job:
    _staff_only(me)
    assert me.user.id is not None
    job = _jobs(me).load(job_id, me.user.id)
    if job is None:
        raise NotFound("no such import (or it was more than a day ago)")
    return job


@router.get("/import/jobs/{job_id}")
def import_job_state(job_id: JobId, me: Me) -> JSONResponse:
    """Where the job is, for the page's progress bar; its outcome once finished."""
    job = _job_or_404(me, job_id)
    state: dict[str, Any] = {
        "stage": job.stage,
        "done": job.done,
        "total": job.total,
        "finished": job.outcome is not None,
        "outcome": job.outcome,
        "page": job.page,
    }
    if job.outcome == "imported":
        state["result"] = job.counts
    if job.outcome == "refused":
        state["problems"] = [{"line": line, "message": text} for line, text in job.problems]
    return JSONResponse(state, headers={"Cache-Control": "no-store"})


OUTCOME_STATUS = {None: 200, "imported": 200, "refused": 422, "failed": 500, "stopped": 500}


@router.get("/import/jobs/{job_id}/result")
def import_job_page(job_id: JobId, me: Me) -> Response:
    """The job's page: its progress while it runs (reloading itself), then what came of it."""
    job = _job_or_404(me, job_id)
    words = UPLOAD_WORDS[me.lang]
    error = None
    if job.error:
        refusal = DomainError(job.error["message"], key=job.error["key"], **job.error["params"])
        error = words["refused"] % {"why": me.say(refusal)}
    elif job.outcome in ("failed", "stopped"):
        error = words[str(job.outcome)]
    page = me.page(
        "import_job.html",
        OUTCOME_STATUS[job.outcome],
        job=job,
        stages=STAGE_WORDS[me.lang],
        error=error,
    )
    page.headers["Cache-Control"] = "no-store"
    if job.outcome is None:
        page.headers["Refresh"] = str(REFRESH)
    return page
