"""Delivery throughput: the outbox pipeline (claim, render, send, record) against bare Apprise and
against smtplib over one connection, to real receivers on loopback.

    .venv/bin/python benchmarks/bench_deliver.py                 # 5,000 of each channel, SQLite
    .venv/bin/python benchmarks/bench_deliver.py --n 500 --db postgresql --only zalo

Every phase runs in its own process (so its peak RSS is its own) against receivers in another
process, which count what arrives: an aiosmtpd SMTP sink, an HTTP JSON sink (a local SMS gateway,
`json://`), and the loopback fakes of Zalo's ZNS API and of eSMS's (tests/notifiers/fakes/),
driven through our own plugins (`zns://`, `esms://`).

- pipeline: `referrals.notifiers.delivery.deliver` over the N queued `referral.new` prompts,
  re-pointed to the phase's channel first (a prompt is queued on one channel per contact, so the
  import leaves only SMS rows), at the configured concurrency;
- apprise: the very messages the pipeline sent (subject, body, recipient read back from the
  outbox), sent by bare Apprise at the same concurrency, a fresh plugin per message as the
  pipeline does (a reused one throttles itself, STACK-NOTES.md);
- smtplib: the same e-mails over one persistent SMTP connection: the wire's ceiling.

Channels: email (`mailto://`), sms (`json://`), zalo (`zns://`, FakeZns) and esms (`esms://`,
FakeEsms; the engine's channel kind is "sms"). ratio = pipeline rate / bare Apprise rate
(target >= 0.8).
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
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_launch import csv_rows, drop_database, fresh_database, prepared_runtime
from harness import write_results

ROOT = Path(__file__).resolve().parent.parent
NOW = dt.datetime(2026, 11, 23, 2, 0, tzinfo=dt.UTC)  # Monday 09:00 in Nha Trang: no quiet hours
PROMPT = "referral.new"  # what the import queues, one per referral

# The benchmark's channels -> the engine's channel kind (eSMS is how the office sends its SMS).
KINDS = {"email": "email", "sms": "sms", "zalo": "zalo", "esms": "sms"}
ROUNDS = ("sms", "zalo", "esms")  # alternate pipeline/apprise `--rounds` times; medians

# The office's approved ZNS template for new referrals (as in tests/notifiers/test_channels_24.py).
ZNS_TEMPLATE = "250001"
ZNS_PARAMS = {
    "ma_chuyen_gui": "{{ code }}",
    "dich_vu": "{{ service }}",
    "han": "{{ due_at | local_time }}",
    "link": "{{ link }}",
}
ZNS_REFRESH = "REFRESH-TOKEN-OF-THE-PHASE"  # in the zns:// URL, replaced when a phase begins
BRANDNAME = "TNXH-KH"

Work = Callable[[], int]


# ------------------------------------------------------------------------------ receivers


def sinks(port_file: Path) -> None:
    """Run the receivers until killed. On the HTTP port, GET /count answers what arrived on each
    channel (and how many ZNS token refreshes there were), GET /zns/refresh the refresh token
    FakeZns accepts now (single-use: each phase starts from the current one)."""
    import socket
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from aiosmtpd.controller import Controller

    sys.path.insert(0, str(ROOT / "tests"))
    from notifiers.fakes.esms import FakeEsms  # type: ignore[import-not-found]
    from notifiers.fakes.zns import FakeZns  # type: ignore[import-not-found]

    counts = {"mail": 0, "sms": 0, "zalo": 0, "esms": 0}
    lock = threading.Lock()
    zns = FakeZns(templates={ZNS_TEMPLATE: list(ZNS_PARAMS)})
    esms = FakeEsms(brandnames=(BRANDNAME,), refuse_repeats=False)  # rounds re-send the same ids
    zns.start()
    esms.start()

    def tally() -> dict[str, int]:
        with lock:
            counts["zalo"] += drain(zns.sent, lambda r: bool(r.get("msg_id")))
            counts["esms"] += drain(esms.sent, lambda r: r["answer"].get("CodeResult") == "100")
            return {**counts, "zns_refreshes": len(zns.refreshes)}

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
            if self.path == "/zns/refresh":
                self._answer(json.dumps({"refresh_token": zns.refresh_token}).encode())
            else:
                self._answer(json.dumps(tally()).encode())

        def _answer(self, body: bytes) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        smtp_port = probe.getsockname()[1]
    smtp = Controller(Smtp(), hostname="127.0.0.1", port=smtp_port)
    smtp.start()
    http = ThreadingHTTPServer(("127.0.0.1", 0), Http)
    receivers = {
        "smtp": smtp_port,
        "http": http.server_address[1],
        "zns": zns.url("PHONE", refresh=ZNS_REFRESH).replace("PHONE", "{phone}"),
        "esms": f"esms://{esms.api_key}:{esms.secret_key}@{BRANDNAME}/{{phone}}"
        f"?api={esms.base_url}&callback=http://127.0.0.1:{http.server_address[1]}/receipts/sms",
    }
    port_file.write_text(json.dumps(receivers))
    http.serve_forever()


def drain(records: list[dict[str, Any]], accepted: Callable[[dict[str, Any]], bool]) -> int:
    """How many of a fake's recorded requests it accepted; they are then dropped. FakeZns sums
    its whole `sent` list on every send (for its quota answer): left to grow over the rounds,
    later phases would pay more than earlier ones. Called only between phases (nothing in
    flight)."""
    taken = records[: len(records)]
    del records[: len(taken)]
    return sum(1 for r in taken if accepted(r))


def get(receivers: dict[str, Any], path: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{receivers['http']}{path}") as r:
        return json.loads(r.read())


def channel_url(channel: str, receivers: dict[str, Any]) -> str:
    """The channel's Apprise URL, `{phone}`/`{email}` left for the recipient. The zns:// URL
    carries the refresh token FakeZns accepts now: the previous phase spent the one before
    (the pipeline kept its successor in the database, bare Apprise in its process's memory),
    and the plugin uses a refresh token it has not seen in place of its stored one."""
    if channel == "email":
        return f"mailto://127.0.0.1:{receivers['smtp']}?from=chicuc@example.vn&to={{email}}"
    if channel == "sms":
        return f"json://127.0.0.1:{receivers['http']}/sms?:to={{phone}}"
    if channel == "zalo":
        token = get(receivers, "/zns/refresh")["refresh_token"]
        return receivers["zns"].replace(ZNS_REFRESH, token)
    return receivers["esms"]


def arrived_key(channel: str) -> str:
    """The receivers' counter for a channel."""
    return {"email": "mail", "sms": "sms", "zalo": "zalo", "esms": "esms"}[channel]


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


# --------------------------------------------------------------------------------- phases


def requeue(rt: Any, kind: str) -> None:
    """Every prompt back to queued on `kind`, as if it had been queued there with no channel to
    fall back to: the import queues each on the contact's first channel (SMS), and a later round
    sends the same prompts again."""
    from sqlalchemy import update
    from sqlmodel import col

    from referrals.infra.db import transaction
    from referrals.models.workflow import Notification

    with transaction(rt.engine) as s:
        s.execute(
            update(Notification)
            .where(col(Notification.template) == PROMPT)
            .values(
                channel=kind,
                status="queued",
                attempts=0,
                sent_at=None,
                next_attempt_at=NOW,
                fallback=[],
                provider_id=None,
                confirm_by=None,
                units=None,
                fell_back_at=None,
                lease_until=None,
                lease_token=None,
            )
        )


def expire_tokens(rt: Any, channels: Any) -> None:
    """The stored ZNS tokens made stale (an empty access token and refresh token), so the
    pipeline refreshes once per phase with the URL's refresh token, as bare Apprise does (its
    tokens live in its fresh process's memory). The row is kept, not deleted: with no row, the
    first senders of a pass on PostgreSQL all refresh at once and all but one are refused (the
    row lock `DatabaseTokens.update` takes locks nothing yet; see the results notes)."""
    from referrals.notifiers.tokens import DatabaseTokens

    plugin = channels.plugin("zalo")
    if plugin is None:
        return
    stale = {"access_token": "", "refresh_token": "", "expires_at": 0, "seed": ""}
    DatabaseTokens(rt.engine, rt.ctx.vault).update(plugin.token_key, lambda _: stale)


def pipeline_work(rt: Any, kind: str, delivery: Any, channels: Any) -> Work:
    """The engine's delivery pass over the re-queued prompts, configured for this channel only
    (and the ZNS template for `referral.new`)."""
    import dataclasses

    from referrals.notifiers.delivery import deliver

    requeue(rt, kind)
    expire_tokens(rt, channels)
    p = rt.province
    rt.province = dataclasses.replace(
        p, province=p.province.model_copy(update={"delivery": delivery})
    )
    return lambda: deliver(rt, now=NOW, channels=channels).sent


def sent_rows(rt: Any, kind: str) -> list[Any]:
    """What the pipeline sent on `kind`: id, subject, body, and the contact's phone and e-mail."""
    from sqlalchemy import select
    from sqlmodel import col

    from referrals.infra.db import transaction
    from referrals.models.directory import Contact
    from referrals.models.workflow import Notification

    with transaction(rt.engine) as s:
        return list(
            s.execute(
                select(
                    col(Notification.id),
                    col(Notification.subject),
                    col(Notification.body),
                    col(Contact.phone),
                    col(Contact.email),
                )
                .join(Contact, col(Contact.id) == col(Notification.contact_id))
                .where(
                    col(Notification.template) == PROMPT,
                    col(Notification.channel) == kind,
                    col(Notification.status) == "sent",
                )
            ).all()
        )


def apprise_work(rows: list[Any], kind: str, channels: Any, concurrency: int) -> Work:
    """Bare Apprise: each recorded message through a fresh plugin, told our outbox id as the
    pipeline tells it (ZNS sends it as tracking_id, eSMS as RequestId)."""
    from referrals.notifiers.channels import instantiate

    jobs = [
        (channels.url(kind, phone=p, email=e), str(i), sub, body) for i, sub, body, p, e in rows
    ]

    def one(job: tuple[str, str, str | None, str]) -> bool:
        plugin = instantiate(job[0])  # fresh, as the pipeline does: a reused one throttles
        plugin.tracking_id = job[1]  # type: ignore[union-attr]
        return bool(plugin.notify(body=job[3], title=job[2] or ""))  # type: ignore[union-attr]

    def work() -> int:
        with ThreadPoolExecutor(concurrency) as pool:
            return sum(pool.map(one, jobs))

    return work


def smtplib_work(rows: list[Any], smtp_port: int) -> Work:
    """The same e-mails over one SMTP connection: what the wire allows."""

    def work() -> int:
        import smtplib
        from email.message import EmailMessage

        with smtplib.SMTP("127.0.0.1", smtp_port) as smtp:
            for _i, sub, body, _p, e in rows:
                msg = EmailMessage()
                msg["From"], msg["To"], msg["Subject"] = "chicuc@example.vn", e, sub
                msg.set_content(body)
                smtp.send_message(msg)
        return len(rows)

    return work


def phase(name: str, channel: str, db: str, receivers: dict[str, Any], concurrency: int) -> dict:
    """One measured phase, in this (fresh) process; arrived is counted by the receivers."""
    from referrals.config import Settings
    from referrals.config.province import ZaloTemplate
    from referrals.infra.runtime import Runtime
    from referrals.notifiers.channels import Channels

    kind = KINDS[channel]
    rt = Runtime(Settings(database_url=db, secret_key=os.environ["REFERRALS_SECRET_KEY"]))
    template = ZaloTemplate(template_id=ZNS_TEMPLATE, params=ZNS_PARAMS)
    delivery = rt.province.province.delivery.model_copy(
        update={
            "channels": {kind: "${URL}"},
            "concurrency": concurrency,
            "zalo_templates": {PROMPT: template},
        }
    )
    channels = Channels(delivery, secrets={"URL": channel_url(channel, receivers)}.get)
    before = get(receivers, "/count")
    rss_before = RssSampler.now()
    if name == "pipeline":
        work = pipeline_work(rt, kind, delivery, channels)
    elif name == "apprise":
        work = apprise_work(sent_rows(rt, kind), kind, channels, concurrency)
    else:
        work = smtplib_work(sent_rows(rt, kind), receivers["smtp"])
    with RssSampler() as rss:
        start = time.perf_counter()
        sent = work()
        elapsed = time.perf_counter() - start
    time.sleep(0.5)
    after = get(receivers, "/count")
    key = arrived_key(channel)
    return {
        "phase": name,
        "channel": channel,
        "kind": kind,
        "sent": sent,
        "arrived": after[key] - before[key],
        "token_refreshes": after["zns_refreshes"] - before["zns_refreshes"],
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


# ----------------------------------------------------------------------------------- main


def plan(only: str | None, rounds: int) -> list[tuple[str, str]]:
    """(phase, channel) in the order they run."""
    steps = [("pipeline", "email"), ("apprise", "email"), ("smtplib", "email")]
    for channel in ROUNDS:
        steps += [("pipeline", channel), ("apprise", channel)] * rounds
    return [(name, channel) for name, channel in steps if only in (None, channel)]


def summarize(results: dict[str, Any]) -> None:
    """Medians per (phase, channel), the ratios, and every phase whose count is off."""
    rates: dict[tuple[str, str], list[float]] = {}
    for r in results["phases"]:
        rates.setdefault((r["phase"], r["channel"]), []).append(r["per_second"])
    rate = {k: statistics.median(v) for k, v in rates.items()}
    results["median_per_second"] = {f"{p} {c}": v for (p, c), v in rate.items()}
    for channel in KINDS:
        if ("pipeline", channel) in rate and ("apprise", channel) in rate:
            ratio = rate["pipeline", channel] / rate["apprise", channel]
            results[f"ratio_{channel}"] = round(ratio, 2)
    if ("smtplib", "email") in rate:
        results["smtplib_over_apprise"] = round(
            rate["smtplib", "email"] / rate["apprise", "email"], 1
        )
    results["mismatches"] = [
        r for r in results["phases"] if not r["sent"] == r["arrived"] == results["n"]
    ]


def prepare(kind: str, n: int, workdir: Path) -> str:
    """A fresh database with N imported referrals (N `referral.new` prompts in the outbox)."""
    from referrals.infra.db import transaction
    from referrals.usecases.referrals.importing import import_referrals

    url = fresh_database(kind, workdir)
    rt = prepared_runtime(url, workdir)
    with transaction(rt.engine) as s:
        import_referrals(s, data=csv_rows(n), coordinator=rt.user(s), ctx=rt.ctx, now=NOW)
    rt.engine.dispose()
    return url


def start_receivers(port_file: Path) -> tuple[subprocess.Popen, dict[str, Any]]:
    receivers = subprocess.Popen([sys.executable, __file__, "--sinks", str(port_file)])
    while not port_file.exists() or not port_file.read_text():
        if receivers.poll() is not None:
            raise SystemExit("the receivers did not start")
        time.sleep(0.1)
    return receivers, json.loads(port_file.read_text())


def measure(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.node()} {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
        "load_average": os.getloadavg(),
        "db": args.db,
        "n": args.n,
        "concurrency": args.concurrency,
        "phases": [],
    }
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        process, receivers = start_receivers(workdir / "ports.json")
        try:
            url = prepare(args.db, args.n, workdir)
            common = ["--database", url, "--ports", json.dumps(receivers)]
            common += ["--concurrency", str(args.concurrency)]
            for name, channel in plan(args.only, args.rounds):
                r = run_phase(["--phase", name, "--channel", channel, *common])
                print(json.dumps(r), flush=True)
                results["phases"].append(r)
            drop_database(url)
        finally:
            process.kill()
            process.wait()
    results["load_average_after"] = os.getloadavg()
    summarize(results)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--db", default="sqlite", choices=["sqlite", "postgresql"])
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--only", choices=list(KINDS), help="measure one channel")
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="rounds of sms, zalo and esms (pipeline and Apprise alternate); medians",
    )
    parser.add_argument("--phase", help=argparse.SUPPRESS)
    parser.add_argument("--channel", help=argparse.SUPPRESS)
    parser.add_argument("--database", help=argparse.SUPPRESS)
    parser.add_argument("--ports", help=argparse.SUPPRESS)
    parser.add_argument("--sinks", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sinks:
        return sinks(Path(args.sinks))
    if args.phase:
        ports = json.loads(args.ports)
        print(json.dumps(phase(args.phase, args.channel, args.database, ports, args.concurrency)))
        return None
    results = measure(args)
    print(json.dumps({k: v for k, v in results.items() if k.startswith(("ratio", "smtplib"))}))
    write_results("deliver", results)
    if results["mismatches"]:
        raise SystemExit(f"{len(results['mismatches'])} phase(s) where sent != arrived != N")
    return None


if __name__ == "__main__":
    main()
