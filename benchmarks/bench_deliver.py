"""Delivery throughput: the outbox pipeline (claim, render, send, record) against bare Apprise and
against smtplib over one connection, to real receivers on loopback.

    .venv/bin/python benchmarks/bench_deliver.py                 # 5,000 e-mails + 5,000 SMS, SQLite
    .venv/bin/python benchmarks/bench_deliver.py --n 500 --db postgresql

Every phase runs in its own process (so its peak RSS is its own) against receivers in another
process (an aiosmtpd SMTP sink and an HTTP JSON sink that count what arrives):

- pipeline: `referrals.notifiers.delivery.deliver` over N queued e-mails, then N queued SMS
  (`json://` webhook), at the configured concurrency;
- apprise: the very messages the pipeline sent (subject, body, recipient read back from the
  outbox), sent by bare Apprise at the same concurrency, a fresh plugin per message as the
  pipeline does (a reused one throttles itself, STACK-NOTES.md);
- smtplib: the same e-mails over one persistent SMTP connection: the wire's ceiling.

ratio = pipeline rate / bare Apprise rate (target >= 0.8).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_launch import csv_rows, drop_database, fresh_database, prepared_runtime
from harness import write_results

ROOT = Path(__file__).resolve().parent.parent
NOW = dt.datetime(2026, 11, 23, 2, 0, tzinfo=dt.UTC)  # Monday 09:00 in Nha Trang: no quiet hours


def sinks(port_file: Path) -> None:
    """Run the receivers until killed; GET /count on the HTTP port answers what arrived."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from aiosmtpd.controller import Controller

    counts = {"mail": 0, "sms": 0}
    lock = threading.Lock()

    class Smtp:
        async def handle_DATA(self, server, session, envelope):
            with lock:
                counts["mail"] += 1
            return "250 OK"

    class Http(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            with lock:
                counts["sms"] += 1
            self._answer(b"ok")

        def do_GET(self) -> None:
            with lock:
                self._answer(json.dumps(counts).encode())

        def _answer(self, body: bytes) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        smtp_port = probe.getsockname()[1]
    smtp = Controller(Smtp(), hostname="127.0.0.1", port=smtp_port)
    smtp.start()
    http = ThreadingHTTPServer(("127.0.0.1", 0), Http)
    port_file.write_text(json.dumps({"smtp": smtp_port, "http": http.server_address[1]}))
    http.serve_forever()


def count(http_port: int) -> dict[str, int]:
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/count") as r:
        return json.loads(r.read())


def urls(ports: dict[str, int]) -> dict[str, str]:
    return {
        "email": f"mailto://127.0.0.1:{ports['smtp']}?from=chicuc@example.vn&to={{email}}",
        "sms": f"json://127.0.0.1:{ports['http']}/sms?:to={{phone}}",
    }


class RssSampler:
    """Resident memory sampled every 20 ms: ru_maxrss would report the parent's high-water mark,
    which a forked child inherits on Linux."""

    def __init__(self) -> None:
        self.peak = self.now()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def now() -> float:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * resource.getpagesize() / 2**20

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, self.now())

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def phase(
    name: str, channel: str, url: str, db: str, ports: dict[str, int], concurrency: int
) -> dict:
    """One measured phase, in this (fresh) process."""
    from sqlalchemy import select

    from referrals.config import Settings
    from referrals.infra.db import transaction
    from referrals.infra.runtime import Runtime
    from referrals.models.directory import Contact
    from referrals.models.workflow import Notification
    from referrals.notifiers.channels import Channels, instantiate
    from referrals.notifiers.delivery import deliver

    rt = Runtime(Settings(database_url=db, secret_key=os.environ["REFERRALS_SECRET_KEY"]))
    delivery = rt.province.province.delivery.model_copy(
        update={"channels": {channel: "${URL}"}, "concurrency": concurrency}
    )
    channels = Channels(delivery, secrets={"URL": url}.get)
    before = count(ports["http"])
    key = "mail" if channel == "email" else "sms"
    rss_before = RssSampler.now()
    if name == "pipeline":
        import dataclasses

        from sqlalchemy import update

        with transaction(rt.engine) as s:  # a later round sends the same messages again
            s.execute(
                update(Notification)
                .where(Notification.channel == channel)
                .values(status="queued", attempts=0, sent_at=None, next_attempt_at=NOW)
            )
        p = rt.province
        rt.province = dataclasses.replace(
            p, province=p.province.model_copy(update={"delivery": delivery})
        )

        def work() -> int:
            return deliver(rt, now=NOW, channels=channels).sent

    else:
        with transaction(rt.engine) as s:
            rows = s.execute(
                select(Notification.subject, Notification.body, Contact.phone, Contact.email)
                .join(Contact, Contact.id == Notification.contact_id)
                .where(Notification.channel == channel, Notification.status == "sent")
            ).all()
        if name == "apprise":
            jobs = [
                (channels.url(channel, phone=p, email=e), sub, body) for sub, body, p, e in rows
            ]

            def one(job: tuple[str, str | None, str]) -> bool:
                plugin = instantiate(job[0])  # fresh, as the pipeline does: a reused one throttles
                return bool(plugin.notify(body=job[2], title=job[1] or ""))  # type: ignore[attr-defined]

            def work() -> int:
                with ThreadPoolExecutor(concurrency) as pool:
                    return sum(pool.map(one, jobs))

        else:  # smtplib, one connection

            def work() -> int:
                import smtplib
                from email.message import EmailMessage

                with smtplib.SMTP("127.0.0.1", ports["smtp"]) as smtp:
                    for sub, body, _p, e in rows:
                        msg = EmailMessage()
                        msg["From"], msg["To"], msg["Subject"] = "chicuc@example.vn", e, sub
                        msg.set_content(body)
                        smtp.send_message(msg)
                return len(rows)

    with RssSampler() as rss:
        start = time.perf_counter()
        sent = work()
        elapsed = time.perf_counter() - start
    time.sleep(0.5)
    arrived = count(ports["http"])[key] - before[key]
    return {
        "phase": name,
        "channel": channel,
        "sent": sent,
        "arrived": arrived,
        "seconds": round(elapsed, 2),
        "per_second": round(sent / elapsed, 1),
        "rss_before_mib": round(rss_before, 1),
        "peak_rss_mib": round(rss.peak, 1),
    }


def run_phase(args: list[str]) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, *args], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--db", default="sqlite", choices=["sqlite", "postgresql"])
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--only", choices=["email", "sms"], help="measure one channel")
    parser.add_argument(
        "--rounds", type=int, default=3, help="SMS rounds (pipeline and Apprise alternate); medians"
    )
    parser.add_argument("--phase", help=argparse.SUPPRESS)
    parser.add_argument("--channel", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--database", help=argparse.SUPPRESS)
    parser.add_argument("--ports", help=argparse.SUPPRESS)
    parser.add_argument("--sinks", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sinks:
        return sinks(Path(args.sinks))
    if args.phase:
        result = phase(
            args.phase,
            args.channel,
            args.url,
            args.database,
            json.loads(args.ports),
            args.concurrency,
        )
        print(json.dumps(result))
        return None

    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        port_file = workdir / "ports.json"
        receivers = subprocess.Popen([sys.executable, __file__, "--sinks", str(port_file)])
        try:
            while not port_file.exists() or not port_file.read_text():
                if receivers.poll() is not None:
                    raise SystemExit("the receivers did not start")
                time.sleep(0.1)
            ports = json.loads(port_file.read_text())
            url = fresh_database(args.db, workdir)
            rt = prepared_runtime(url, workdir)
            from referrals.infra.db import transaction
            from referrals.usecases.referrals.importing import import_referrals

            with transaction(rt.engine) as s:
                import_referrals(
                    s, data=csv_rows(args.n), coordinator=rt.user(s), ctx=rt.ctx, now=NOW
                )
            rt.engine.dispose()
            results = {
                "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                "machine": f"{platform.node()} {platform.machine()}, {os.cpu_count()} cores, "
                f"Python {platform.python_version()}",
                "db": args.db,
                "n": args.n,
                "concurrency": args.concurrency,
                "phases": [],
            }
            common = [
                "--database",
                url,
                "--ports",
                json.dumps(ports),
                "--concurrency",
                str(args.concurrency),
            ]
            plan = [("pipeline", "email"), ("apprise", "email"), ("smtplib", "email")]
            plan += [("pipeline", "sms"), ("apprise", "sms")] * args.rounds
            for name, channel in plan:
                if args.only and channel != args.only:
                    continue
                r = run_phase(
                    ["--phase", name, "--channel", channel, "--url", urls(ports)[channel], *common]
                )
                print(json.dumps(r), flush=True)
                results["phases"].append(r)
            rates: dict[tuple[str, str], list[float]] = {}
            for r in results["phases"]:
                rates.setdefault((r["phase"], r["channel"]), []).append(r["per_second"])
            rate = {k: statistics.median(v) for k, v in rates.items()}
            results["median_per_second"] = {f"{p} {c}": v for (p, c), v in rate.items()}
            if ("pipeline", "email") in rate:
                results["ratio_email"] = round(
                    rate["pipeline", "email"] / rate["apprise", "email"], 2
                )
                results["smtplib_over_apprise"] = round(
                    rate["smtplib", "email"] / rate["apprise", "email"], 1
                )
            if ("pipeline", "sms") in rate:
                results["ratio_sms"] = round(rate["pipeline", "sms"] / rate["apprise", "sms"], 2)
            print(
                json.dumps({k: v for k, v in results.items() if k.startswith(("ratio", "smtplib"))})
            )
            drop_database(url)
        finally:
            receivers.kill()
    write_results("deliver", results)


if __name__ == "__main__":
    main()
