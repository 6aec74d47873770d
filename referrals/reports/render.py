"""The period report as JSON, Markdown, CSV (for Excel) or a standalone HTML page with charts.

The figures come from queries/report.py; this module only lays them out. The HTML draws its two
charts as inline SVG (no script, no CDN: the machine may be offline) and carries its own styles.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from html import escape
from typing import Any

from referrals import locale
from referrals.reports.formats import ReportFormat
from referrals.reports.words import PEER, REASONS, WORDS

FORMATS = tuple(f.value for f in ReportFormat)
COLUMNS = ("clients", "launched", "successful", "not_successful", "still_open", "overdue")
PALETTE = ("#17456b", "#e0a800", "#2e7d32", "#c62828", "#6a1b9a", "#00838f")


def render(report: dict[str, Any], fmt: str, *, lang: str = "vi") -> str:
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r} (one of: {', '.join(FORMATS)})")
    if fmt == "json":
        return json.dumps(report, ensure_ascii=False, indent=2) + "\n"
    return {"md": _markdown, "csv": _csv, "html": _html}[fmt](_Labels(report, lang))


class _Labels:
    """The report with every key turned into words of one language."""

    def __init__(self, report: dict[str, Any], lang: str) -> None:
        self.r, self.lang, self.w = report, lang, WORDS.get(lang, WORDS["vi"])

    def service(self, key: str) -> str:
        return self.r["names"]["pathways"].get(key, {}).get(self.lang, key)

    def group(self, g: dict[str, Any]) -> str:
        return str(g["name"] if self.lang == "vi" else g["name_en"])

    def district(self, key: str) -> str:
        return self.r["names"]["districts"].get(key, {}).get(self.lang, key)

    def partner(self, p: dict[str, Any]) -> str:
        return p["name_en"] if self.lang == "en" and p.get("name_en") else p["name"]

    def channel(self, name: str) -> str:
        """SMS, E-mail: a channel as people name it, never the outbox's key."""
        key = f"channel_{name}"
        return self.w.get(key, name)

    def reasons(self, counts: dict[str, int]) -> str:
        names = REASONS.get(self.lang, REASONS["vi"])
        return "; ".join(f"{names.get(k, k)}: {n}" for k, n in sorted(counts.items()))

    def period(self) -> str:
        p = self.r["period"]
        first, last = (locale.day(dt.date.fromisoformat(p[k]), self.lang) for k in ("from", "to"))
        where = (
            f" · {self.w['district_only']}: {self.district(p['district'])}" if p["district"] else ""
        )
        on = locale.day(dt.date.fromisoformat(p["areas_as_of"]), self.lang)
        return f"{first} – {last}{where} · {self.w['areas_as_of'] % {'day': on}}"

    def as_of(self) -> str:
        at = locale.when(dt.datetime.fromisoformat(self.r["period"]["as_of"]), self.lang)
        return self.w["as_of"] % {"at": at}

    def tables(self) -> list[tuple[str, list[str], list[list[Any]]]]:
        """(title, header, rows) for each table, in order: what every text format shows."""
        w, r = self.w, self.r
        head = [w[c] for c in COLUMNS]
        by_district = [
            [
                self.service(x["pathway"]),
                self.district(x["district"]),
                *(x[c] for c in COLUMNS),
                self.reasons(x["not_successful_by"]),
            ]
            for x in r["rows"]
        ]
        by_service = [
            [
                self.service(x["pathway"]),
                *(x[c] for c in COLUMNS),
                self.reasons(x["not_successful_by"]),
            ]
            for x in r["services"]
        ]
        by_service.append([w["total"], *(r["total"][c] for c in COLUMNS), ""])
        by_group = []
        for g in r.get("service_groups", []):  # none in reports made before issue 23
            by_group.append([self.group(g), *(g[c] for c in COLUMNS)])
            by_group += [
                [f"   · {self.service(x['pathway'])}", *(x[c] for c in COLUMNS)]
                for x in r["services"]
                if x["pathway"] in g["services"]
            ]
        partners = [
            [
                self.partner(p),
                p["launched"],
                p["successful"],
                p["still_open"],
                _blank(p["acknowledge"]["median"]),
                _blank(p["acknowledge"]["p90"]),
                _blank(p["complete"]["median"]),
                _blank(p["complete"]["p90"]),
                f"{p['on_time_pct']}% ({p['steps_on_time']}/{p['steps_counted']})"
                if p["on_time_pct"] is not None
                else "",
                p.get("steps_extended", 0),  # given more time (gia hạn); none in older reports
                p.get("arrived", 0),  # the slip scanned on arrival; none in older reports
                p.get("no_show", 0),
                self.reasons(p["declines"]),
            ]
            for p in r["partners"]
        ]
        m = r["messages"]
        return [
            (
                w["by_service_district"],
                [w["service"], w["district"], *head, w["reasons"]],
                by_district,
            ),
            (w["by_service"], [w["service"], *head, w["reasons"]], by_service),
            *([(w["by_group"], [w["group"], *head], by_group)] if by_group else []),
            (
                w["partners"],
                [
                    w["partner"],
                    w["launched"],
                    w["successful"],
                    w["still_open"],
                    w["ack_median"],
                    w["ack_p90"],
                    w["complete_median"],
                    w["complete_p90"],
                    w["on_time"],
                    w["extended"],
                    w["arrived"],
                    w["no_show"],
                    w["declines"],
                ],
                partners,
            ),
            (
                w["messages"],
                [w["sent"], *(self.channel(c) for c in sorted(m["sent"])), w["dead"]],
                [[m["sent_total"], *(m["sent"][c] for c in sorted(m["sent"])), m["dead"]]],
            ),
            *self.costs(),
            *self.peer_groups(),
        ]

    def costs(self) -> list[tuple[str, list[str], list[list[Any]]]]:
        """What each channel sent and cost per month (none in an older report)."""
        if not self.r.get("costs"):
            return []
        w = self.w
        head = [w["month"], w["channel"], w["sent"], w["units"], w["price"], w["cost"]]
        rows = [
            [
                f"{c['month'][5:]}/{c['month'][:4]}",
                self.channel(c["channel"]),
                c["messages"],
                c["units"],
                _blank(c["price"]),
                _blank(c["cost"]),
            ]
            for c in self.r["costs"]
        ]
        return [(w["costs"], head, rows)]

    def peer_groups(self) -> list[tuple[str, list[str], list[list[Any]]]]:
        """The people peer groups brought in: a table of its own (none in an older report)."""
        if "peer_groups" not in self.r:
            return []
        w = PEER.get(self.lang) or PEER["vi"]
        rows = [[self.partner(g), g["received"], g["clients"]] for g in self.r["peer_groups"]]
        return [(w["title"], [w["group"], w["received"], w["clients"]], rows)]


def _blank(value: Any) -> Any:
    return "" if value is None else value


def _markdown(labels: _Labels) -> str:
    out = [
        f"# {labels.w['title']}",
        "",
        f"**{labels.w['period']}:** {labels.period()}",
        "",
        labels.as_of(),
        "",
    ]
    for title, head, rows in labels.tables():
        out += [f"## {title}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        out += ["| " + " | ".join(str(c).replace("|", "/") for c in row) + " |" for row in rows]
        out.append("")
    return "\n".join(out)


def _csv(labels: _Labels) -> str:
    """One sheet: a title row per table, a blank row between. A UTF-8 BOM so Excel reads the
    Vietnamese as Vietnamese."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([labels.w["title"], labels.period()])
    writer.writerow([labels.as_of()])
    for title, head, rows in labels.tables():
        writer.writerow([])
        writer.writerow([title])
        writer.writerow(head)
        writer.writerows(rows)
    return "\ufeff" + buffer.getvalue()


def _html(labels: _Labels) -> str:
    w = labels.w
    parts = [
        f'<!doctype html><html lang="{labels.lang}"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(w['title'])} {escape(labels.period())}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{escape(w['title'])}</h1><p><strong>{escape(w['period'])}:</strong> "
        f"{escape(labels.period())}</p><p class=note>{escape(labels.as_of())}</p>",
    ]
    if labels.r["total"]["launched"]:
        parts.append(_services_chart(labels))
        parts.append(_partners_chart(labels))
    else:
        parts.append(f"<p>{escape(w['none'])}</p>")
    for title, head, rows in labels.tables():
        parts.append(f"<h2>{escape(title)}</h2><div class=scroll><table><thead><tr>")
        parts += [f"<th>{escape(str(h))}</th>" for h in head]
        parts.append("</tr></thead><tbody>")
        for row in rows:
            parts.append("<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in row) + "</tr>")
        parts.append("</tbody></table></div>")
    parts.append("</body></html>\n")
    return "".join(parts)


_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:72rem;margin:1rem auto;padding:0 1rem;color:#1b1b1b}"
    "table{border-collapse:collapse;width:100%;font-size:.9rem}th,td{text-align:left;padding:.3rem .5rem;"
    "border-bottom:1px solid #e3e6ea;vertical-align:top}th{background:#eef1f5}.note{color:#555}"
    ".scroll{overflow-x:auto}svg{max-width:100%;height:auto;margin:.5rem 0}svg text{font-size:13px}"
)


def _services_chart(labels: _Labels) -> str:
    """Grouped horizontal bars: clients per service, one bar per district."""
    rows = labels.r["rows"]
    districts = sorted({x["district"] for x in rows})
    services = [s["pathway"] for s in labels.r["services"]]
    colour = {d: PALETTE[i % len(PALETTE)] for i, d in enumerate(districts)}
    top = max((x["clients"] for x in rows), default=1) or 1
    bar, label, width = 16, 260, 760
    y, out = 40, []
    for key in services:
        out.append(f'<text x="0" y="{y + 12}">{escape(labels.service(key))}</text>')
        for d in districts:
            found = next((x for x in rows if x["pathway"] == key and x["district"] == d), None)
            n = found["clients"] if found else 0
            length = round(n / top * (width - label - 60), 1)
            out.append(
                f'<rect x="{label}" y="{y}" width="{max(length, 1)}" height="{bar - 3}" fill="{colour[d]}">'
                f"<title>{escape(labels.service(key))}, {escape(labels.district(d))}: {n}</title></rect>"
                f'<text x="{label + length + 4}" y="{y + 12}">{n}</text>'
            )
            y += bar
        y += 8
    legend = "".join(
        f'<rect x="{label + i * 170}" y="20" width="12" height="12" fill="{colour[d]}"/>'
        f'<text x="{label + i * 170 + 16}" y="31">{escape(labels.district(d))}</text>'
        for i, d in enumerate(districts)
    )
    title = f'<text x="0" y="14" font-weight="bold">{escape(labels.w["chart_services"])}</text>'
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" id="chart-services" '
        f'viewBox="0 0 {width} {y + 4}" width="{width}" height="{y + 4}">{title}{legend}{"".join(out)}</svg>'
    )


def _partners_chart(labels: _Labels) -> str:
    """Per partner: a bar to the median working days to acknowledge, a thin one to the 90%."""
    partners = [p for p in labels.r["partners"] if p["acknowledge"]["n"]]
    if not partners:
        return ""
    top = max(p["acknowledge"]["p90"] for p in partners) or 1
    bar, label, width = 24, 330, 760
    scale = (width - label - 80) / top
    y, out = 40, []
    for p in partners:
        median, p90 = p["acknowledge"]["median"], p["acknowledge"]["p90"]
        out.append(
            f'<text x="0" y="{y + 15}">{escape(labels.partner(p)[:46])}</text>'
            f'<rect x="{label}" y="{y + 9}" width="{max(p90 * scale, 1):.1f}" height="4" fill="#e0a800"/>'
            f'<rect x="{label}" y="{y + 2}" width="{max(median * scale, 1):.1f}" height="{bar - 10}" fill="#17456b">'
            f"<title>{escape(labels.partner(p))}: {median} / {p90}</title></rect>"
            f'<text x="{label + max(median, p90) * scale + 6:.1f}" y="{y + 15}">{median} · {p90}</text>'
        )
        y += bar
    legend = (
        f'<rect x="{label}" y="20" width="12" height="12" fill="#17456b"/>'
        f'<text x="{label + 16}" y="31">{escape(labels.w["median"])}</text>'
        f'<rect x="{label + 120}" y="24" width="12" height="4" fill="#e0a800"/>'
        f'<text x="{label + 136}" y="31">{escape(labels.w["p90"])}</text>'
    )
    title = f'<text x="0" y="14" font-weight="bold">{escape(labels.w["chart_partners"])}</text>'
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" id="chart-partners" '
        f'viewBox="0 0 {width} {y + 4}" width="{width}" height="{y + 4}">{title}{legend}{"".join(out)}</svg>'
    )
