"""The import page in real headless Chromium (issue 19): a coordinator on a phone-sized screen
downloads the template, then uploads a workbook of 2,000 rows over a slow line; the progress
bar moves through the upload and the server's stages, and the result page lists every
referral. Without JavaScript the same upload ends on the same result, the job's page reloading
itself meanwhile. No page scrolls sideways at 390 px.
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

from openpyxl import Workbook
from playwright.sync_api import Browser, Page, Response, expect
from sqlalchemy import func, select
from sqlmodel import Session

from referrals.infra.runtime import Runtime
from referrals.models.workflow import Referral
from referrals.usecases.referrals.importing import HEADER
from referrals.web import uploads
from support.pages import PASSWORD, Clock

ROWS = 2000
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "locale": "vi-VN"}
ORDER = ["queued", "reading", "rows", "clients", "launch", "write", "saving"]
CASES = [
    ("id_papers", "police-nha-trang"),
    ("legal_aid", "legal-aid-centre"),
    ("health_check", "phuong-son-health"),
]
# Each change of the progress box, kept in sessionStorage so that it outlives the navigation
# to the result page. Run through DevTools, which the page's CSP does not govern.
WATCH = """() => {
  const box = document.getElementById("progress-box");
  const bar = document.getElementById("progress");
  const seen = [];
  new MutationObserver(() => {
    seen.push([box.dataset.stage || "", bar.getAttribute("value"), bar.getAttribute("max")]);
    sessionStorage.setItem("seen", JSON.stringify(seen));
  }).observe(box, {attributes: true, subtree: true, childList: true, characterData: true});
}"""


def workbook(path: Path, rows: int) -> Path:
    """A workbook of `rows` new clients of Nha Trang, each with one referral."""
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(list(HEADER))
    for i in range(rows):
        pathway, partner = CASES[i % len(CASES)]
        name = f"Nguyễn Thị Nhập {i}"
        sheet.append([name, f"0907 {i:06d}", "", "nha-trang", pathway, partner, "written", "", ""])
    out = io.BytesIO()
    book.save(out)
    path.write_bytes(out.getvalue())
    return path


def log_in(page: Page, base: str, username: str) -> None:
    page.goto(f"{base}/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("#login")
    expect(page).not_to_have_url(re.compile(r"/login"))


def fits(page: Page) -> bool:
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"))


def referrals(rt: Runtime) -> int:
    with Session(rt.engine) as s:
        return int(s.scalar(select(func.count()).select_from(Referral)) or 0)


def test_a_large_workbook_over_a_slow_line_shows_its_progress(
    rt: Runtime, server: tuple[str, Clock], browser: Browser, tmp_path: Path, shots: Path
) -> None:
    base, _ = server
    context = browser.new_context(**PHONE)  # type: ignore[arg-type]
    page = context.new_page()
    log_in(page, base, "mai")
    page.goto(f"{base}/import")
    assert fits(page)
    expect(page.locator("#columns")).to_contain_text("id_number")
    with page.expect_download() as download:
        page.click("#template")
    assert download.value.suggested_filename == "referrals-import-template.xlsx"
    page.screenshot(path=shots / "import.png", full_page=True)

    # The office's line: about 40 KB/s up, so the 2,000 rows' workbook takes a few seconds.
    devtools = context.new_cdp_session(page)
    devtools.send("Network.enable")
    devtools.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 40, "downloadThroughput": -1, "uploadThroughput": 40_000},
    )
    page.evaluate(WATCH)
    page.set_input_files("#file", workbook(tmp_path / "tap-2000.xlsx", ROWS))
    page.click("#import")
    expect(page.locator("#progress-box")).to_be_visible()
    expect(page).to_have_url(re.compile(r"/import/jobs/[A-Za-z0-9_-]{22}/result$"), timeout=180_000)
    expect(page.locator("#imported")).to_contain_text(f"{ROWS}")
    expect(page.locator("#launched tbody tr")).to_have_count(ROWS)
    first = page.locator("#launched tbody tr").first.locator("a").first
    expect(first).to_have_attribute("href", re.compile(r"^/referrals/R-"))
    assert referrals(rt) == ROWS
    assert fits(page)
    page.screenshot(path=shots / "import-result.png")

    seen = json.loads(page.evaluate("sessionStorage.getItem('seen')") or "[]")
    upload = [float(v) for stage, v, _ in seen if stage == "upload" and v is not None]
    assert len(set(upload)) >= 3, seen  # the bar moved while the file went up...
    assert upload == sorted(upload)
    work = [stage for stage, _, _ in seen if stage in ORDER]
    assert len(set(work)) >= 2, seen  # ...and through the server's work on it, in order
    assert work == sorted(work, key=ORDER.index), seen
    context.close()


def test_without_javascript_the_job_page_follows_the_work(
    rt: Runtime, server: tuple[str, Clock], browser: Browser, tmp_path: Path
) -> None:
    base, _ = server
    context = browser.new_context(java_script_enabled=False, **PHONE)  # type: ignore[arg-type]
    page = context.new_page()
    answers: list[Response] = []
    page.on("response", lambda answer: answers.append(answer))
    log_in(page, base, "mai")
    # A file with a wrong row: nothing is imported, and the page says which line and why.
    page.goto(f"{base}/import")
    bad = tmp_path / "sai.csv"
    row = "Lê Sai,0905 123 777,,nha-trang,id_papers,police-cam-ranh,written,,"
    bad.write_text(",".join(HEADER) + "\n" + row + "\n", encoding="utf-8")
    page.set_input_files("#file", bad)
    page.click("#import")
    expect(page.locator("#problems li")).to_have_count(1, timeout=60_000)
    expect(page.locator("#problems")).to_contain_text("unknown partner 'police-cam-ranh'")
    assert fits(page)
    assert referrals(rt) == 0
    page.click("#again")
    page.set_input_files("#file", workbook(tmp_path / "tap-2000.xlsx", ROWS))
    answers.clear()
    page.click("#import")
    expect(page.locator("#imported")).to_be_visible(timeout=180_000)
    expect(page.locator("#launched tbody tr")).to_have_count(ROWS)
    assert fits(page)
    job_pages = [a for a in answers if re.search(r"/import/jobs/[^/]+/result$", a.url)]
    assert job_pages[0].headers.get("refresh") == str(uploads.REFRESH)  # the work, then...
    assert "refresh" not in job_pages[-1].headers  # ...its result
    assert referrals(rt) == ROWS
    context.close()
