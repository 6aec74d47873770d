"""`period-report`: the office's period report, written to a file under the data folder.

Parameters are dates, a format and a district key: nothing about a client. The report itself
holds counts only.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from prefect import flow, get_run_logger, task

from referrals.config.settings import get_settings
from referrals.infra.retrying import transient
from referrals.reports import period


@task(retries=2, retry_delay_seconds=[5, 30], retry_condition_fn=transient)
def write_report(first: str, last: str, fmt: str, district: str | None, lang: str) -> str:
    text = period.period_report(
        first=first,
        last=last,
        fmt=fmt,
        now=dt.datetime.now(dt.UTC),
        district=district,
        lang=lang,
    )
    folder = get_settings().data_dir / "reports"
    folder.mkdir(parents=True, exist_ok=True)
    name = f"report-{period.parse_day(first)}-{period.parse_day(last)}{f'-{district}' if district else ''}.{fmt}"
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return str(path)


@flow(name="period-report", flow_run_name="report {first}..{last}", log_prints=False)
def period_report(
    first: str,
    last: str,
    fmt: str = "html",
    district: str | None = None,
    lang: str = "vi",
) -> str:
    path = write_report(first, last, fmt, district, lang)
    get_run_logger().info("report written to %s", Path(path).name)
    return path
