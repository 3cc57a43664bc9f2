"""The report as one self-contained HTML page.

Everything is in the file: styles inline, charts as inline SVG
(:mod:`optel.report.svg`), no script, no font, no image to fetch. A
Content-Security-Policy in the page itself forbids loading anything, so
opening it offline shows all of it, and a page that tried to fetch something
would say so in the browser's console.

Every chart has its numbers beside it in a table. Each number cell carries
its exact value in ``data-value`` (the text shows it rounded for reading),
so a program can read the page's numbers back.
"""

from __future__ import annotations

from datetime import date
from html import escape
from typing import Any, Iterable, Sequence

from . import svg

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"

STYLE = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #222;
       margin: 0 auto; max-width: 1180px; padding: 16px 24px 48px; }
h1 { font-size: 22px; margin: 8px 0 2px; } h2 { font-size: 17px; margin: 28px 0 8px;
     border-bottom: 1px solid #ddd; padding-bottom: 4px; }
h3 { font-size: 14px; margin: 12px 0 4px; }
.sub { color: #666; margin: 0 0 12px; }
.cards { display: flex; flex-wrap: wrap; gap: 10px; }
.card { border: 1px solid #ddd; border-radius: 6px; padding: 8px 12px; flex: 1 1 100px; }
.card .v { font-size: 22px; font-weight: 600; } .card .k { color: #555; font-size: 12px; }
.card .d { font-size: 12px; color: #666; } .up { color: #2a7d2a; } .down { color: #b3261e; }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(340px, 1fr)); gap: 16px; }
figure.chart { margin: 8px 0; } svg.plot { max-width: 100%; height: auto; } figcaption { font-weight: 600; margin-bottom: 4px; }
table { border-collapse: collapse; margin: 6px 0; font-size: 13px; }
th, td { border-bottom: 1px solid #eee; padding: 3px 8px; text-align: left; vertical-align: top; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
code { font-size: 12px; } details { margin: 4px 0 10px; } summary { cursor: pointer; color: #555; }
.badge { background: #fde7e7; color: #b3261e; border-radius: 3px; padding: 0 4px; font-size: 11px; }
.note { color: #666; font-size: 12px; }
"""


# -- formatting ----------------------------------------------------------------------------


def _raw(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return repr(v)
    return str(v)


def _int(v: Any) -> str:
    return "–" if v is None else f"{v:,}"


def _pct(v: Any) -> str:
    return "–" if v is None else f"{100 * v:.1f}%"


def _ms(v: Any) -> str:
    return "–" if v is None else f"{v:,.1f}"


def _signed(v: Any, fmt: str = "{:+,}") -> str:
    return "–" if v is None else fmt.format(v)


class _Cell:
    def __init__(self, value: Any, text: str | None = None, numeric: bool = True):
        self.value, self.numeric = value, numeric
        self.text = text if text is not None else (_int(value) if numeric else str(value))


def _new(flag: bool) -> _Cell:
    return _Cell(flag, "new" if flag else "", numeric=False)


def num(value: Any, text: str | None = None) -> _Cell:
    return _Cell(value, text)


def txt(value: Any) -> _Cell:
    return _Cell(value, "–" if value is None else str(value), numeric=False)


def table(tid: str, head: Sequence[str], rows: Iterable[Sequence[_Cell]], numeric: set[int]) -> str:
    out = [f'<table id="{tid}"><thead><tr>']
    for i, h in enumerate(head):
        out.append(f"<th{' class=n' if i in numeric else ''}>{escape(h)}</th>")
    out.append("</tr></thead><tbody>")
    for row in rows:
        out.append("<tr>")
        for cell in row:
            cls = ' class="n"' if cell.numeric else ""
            out.append(f'<td{cls} data-value="{escape(_raw(cell.value))}">{escape(cell.text)}</td>')
        out.append("</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def figure(name: str, caption: str, chart: str, data: str = "") -> str:
    details = f"<details><summary>numbers</summary>{data}</details>" if data else ""
    return (
        f'<figure class="chart" id="chart-{name}" data-chart="{name}">'
        f"<figcaption>{escape(caption)}</figcaption>{chart}{details}</figure>"
    )


def _md(d: str) -> str:
    return date.fromisoformat(d).strftime("%m-%d")


# -- sections ------------------------------------------------------------------------------

CARDS = (
    ("active_installs", "active installs", _int),
    ("new_installs", "new installs", _int),
    ("runs", "runs", _int),
    ("commands", "commands", _int),
    ("success_rate", "command success", _pct),
    ("failures", "failures", _int),
    ("installs_failing", "installs with failures", _int),
    ("crashes", "crashes", _int),
)
WORSE_WHEN_UP = {"failures", "installs_failing", "crashes"}


def _cards(r: dict[str, Any]) -> str:
    out = ['<div class="cards" id="summary">']
    for key, label, fmt in CARDS:
        cur, prev = r["summary"][key], r["previous_summary"][key]
        if cur is None or prev is None:
            change = ""
        else:
            delta = cur - prev
            good = (delta > 0) != (key in WORSE_WHEN_UP)
            cls = "" if delta == 0 else ("up" if good else "down")
            shown = f"{100 * delta:+.1f} pts" if key == "success_rate" else f"{delta:+,}"
            change = f'<div class="d {cls}">{escape(shown)} vs {escape(fmt(prev))}</div>'
        out.append(
            f'<div class="card" data-metric="{key}" data-value="{escape(_raw(cur))}"'
            f' data-previous="{escape(_raw(prev))}"><div class="v">{escape(fmt(cur))}</div>'
            f'<div class="k">{escape(label)}</div>{change}</div>'
        )
    out.append("</div>")
    return "".join(out)


def _activity(r: dict[str, Any]) -> str:
    daily = r["active_installs"]["daily"]
    weekly = r["active_installs"]["weekly"]
    every = max(1, len(daily) // 10)
    day_chart = svg.columns(
        [_md(d["day"]) for d in daily],
        [d["installs"] for d in daily],
        "active installs per day",
        tips=[f"{d['day']}: {d['installs']} installs, {d['runs']} runs" for d in daily],
        faded=[date.fromisoformat(d["day"]).weekday() >= 5 for d in daily],
        every=every,
    )
    week_chart = svg.columns(
        [_md(w["week"]) + ("*" if w["days"] < 7 else "") for w in weekly],
        [w["installs"] for w in weekly],
        "active installs per week",
        tips=[
            f"week of {w['week']}: {w['installs']} installs"
            + (f" ({w['days']} days in the period)" if w["days"] < 7 else "")
            for w in weekly
        ],
        faded=[w["days"] < 7 for w in weekly],
        width=360,
    )
    day_table = table(
        "t-daily",
        ("day", "active installs", "runs"),
        ([txt(d["day"]), num(d["installs"]), num(d["runs"])] for d in daily),
        {1, 2},
    )
    week_table = table(
        "t-weekly",
        ("week (Monday)", "active installs", "days in period"),
        ([txt(w["week"]), num(w["installs"]), num(w["days"])] for w in weekly),
        {1, 2},
    )
    return (
        "<h2>Active installs</h2>"
        '<p class="note">An install is active on a day when it sent at least one record that'
        " day (UTC). Weekends are lighter; a week marked * is only partly in the period.</p>"
        '<div class="grid" style="grid-template-columns: 2fr 1fr">'
        + figure("daily", "Active installs per day", day_chart, day_table)
        + figure("weekly", "Active installs per week", week_chart, week_table)
        + "</div>"
    )


def _versions(r: dict[str, Any]) -> str:
    v = r["versions"]
    days = v["daily"]
    series: dict[str, Sequence[int]] = {
        name: [d["installs"][name] for d in days] for name in v["order"]
    }
    chart = svg.stacked_share(
        [_md(d["day"]) for d in days],
        series,
        "share of active installs per version, per day",
        every=max(1, len(days) // 10),
    )
    daily_table = table(
        "t-versions-daily",
        ("day", *v["order"]),
        ([txt(d["day"]), *(num(d["installs"][name]) for name in v["order"])] for d in days),
        set(range(1, len(v["order"]) + 1)),
    )
    period_table = table(
        "t-versions",
        ("version", "installs in period", "first seen", "new"),
        (
            [txt(x["version"]), num(x["installs"]), txt(x["first_seen"]), _new(x["new"])]
            for x in v["period"]
        ),
        {1},
    )
    return (
        "<h2>Version adoption</h2>"
        '<p class="note">Each day, the active installs by the version they ran (an install that'
        " upgraded that day counts for both).</p>"
        + figure("versions", "Versions in use, per day", chart, daily_table)
        + period_table
    )


MIX = (
    ("os", "Operating system"),
    ("python", "Python"),
    ("accelerators", "Accelerators"),
    ("frameworks", "Frameworks"),
)


def _mix(r: dict[str, Any]) -> str:
    m = r["mix"]
    figs = []
    for dim, caption in MIX:
        items = m[dim]
        chart = svg.hbars(
            [(i["value"], i["installs"], f"{i['installs']:,} ({_pct(i['share'])})") for i in items],
            f"installs by {caption.lower()}",
        )
        data = table(
            f"t-mix-{dim}",
            (caption.lower(), "installs", "share"),
            (
                [txt(i["value"]), num(i["installs"]), num(i["share"], _pct(i["share"]))]
                for i in items
            ),
            {1, 2},
        )
        figs.append(figure(f"mix-{dim}", caption, chart, data))
    return (
        "<h2>Who uses it</h2>"
        f'<p class="note">{m["installs_with_facts"]:,} installs that started a run in the period,'
        " each counted once with its latest facts. An install may have several accelerators or"
        " frameworks, so those shares can add up to more than 100%.</p>"
        '<div class="grid">' + "".join(figs) + "</div>"
    )


def _commands(r: dict[str, Any]) -> str:
    cmds = r["commands"]
    usage = svg.split_bars(
        [(c["command"], c["ok"], c["failed"]) for c in cmds], "calls per command and outcome"
    )
    timing = svg.log_pairs(
        [(c["command"], c["p50_ms"], c["p95_ms"]) for c in cmds],
        "duration of successful calls, p50 and p95",
    )
    data = table(
        "t-commands",
        ("command", "calls", "succeeded", "failed", "success rate", "installs", "p50 ms", "p95 ms"),
        (
            [
                txt(c["command"]),
                num(c["calls"]),
                num(c["ok"]),
                num(c["failed"]),
                num(c["success_rate"], _pct(c["success_rate"])),
                num(c["installs"]),
                num(c["p50_ms"], _ms(c["p50_ms"])),
                num(c["p95_ms"], _ms(c["p95_ms"])),
            ]
            for c in cmds
        ),
        set(range(1, 8)),
    )
    return (
        "<h2>Commands</h2>"
        + figure("commands", "Command usage and success", usage)
        + figure("durations", "Duration per command (successful calls)", timing)
        + data
        + '<p class="note">Percentiles are nearest-rank: p95 is the duration that 95% of the'
        " successful calls did not exceed.</p>"
    )


def _failure_rows(items: Sequence[dict[str, Any]], extra: bool = True) -> Iterable[list[_Cell]]:
    for f in items:
        row = [txt(f["exc_type"]), txt(f["location"]), num(f["occurrences"]), num(f["installs"])]
        if extra:
            row += [txt(f["first_day"]), txt(f["last_day"]), _new(f.get("new", False))]
        yield row


def _failures(r: dict[str, Any]) -> str:
    top = r["failures"]
    chart = svg.hbars(
        [
            (
                f"{f['exc_type']} @ {f['location']}",
                f["occurrences"],
                f"{f['occurrences']:,} in {f['installs']:,} installs",
            )
            for f in top
        ],
        "failures by type and location",
        width=720,
        label_w=330,
        color=svg.BAD,
        text_w=150,
    )
    data = table(
        "t-failures",
        ("exception type", "location", "occurrences", "installs", "first", "last", "new"),
        _failure_rows(top),
        {2, 3},
    )
    more = r["failure_groups"] - len(top)
    return (
        "<h2>Top failures</h2>"
        f'<p class="note">By exception type and innermost frame; occurrences include repeats'
        f" within a run. {r['failure_groups']:,} distinct failures in the period"
        + (f", the top {len(top)} shown" if more > 0 else "")
        + ".</p>"
        + figure("failures", "Failures by type and location", chart)
        + data
    )


def _changes(r: dict[str, Any]) -> str:
    c = r["changes"]
    summary = table(
        "t-changes",
        ("", "this period", "previous period", "change", "change %"),
        (
            [
                txt(s["label"]),
                num(s["current"], _pct(s["current"]) if s["metric"] == "success_rate" else None),
                num(s["previous"], _pct(s["previous"]) if s["metric"] == "success_rate" else None),
                num(
                    s["delta"],
                    _signed(s["delta"] * 100 if s["delta"] is not None else None, "{:+.1f} pts")
                    if s["metric"] == "success_rate"
                    else _signed(s["delta"]),
                ),
                num(
                    s["pct"], _signed(s["pct"] * 100 if s["pct"] is not None else None, "{:+.1f}%")
                ),
            ]
            for s in c["summary"]
        ),
        {1, 2, 3, 4},
    )
    commands = table(
        "t-changes-commands",
        ("command", "calls", "change", "success rate", "change", "p95 ms", "change"),
        (
            [
                txt(x["command"]),
                num(x["calls"]["current"]),
                num(x["calls"]["delta"], _signed(x["calls"]["delta"])),
                num(x["success_rate"]["current"], _pct(x["success_rate"]["current"])),
                num(
                    x["success_rate"]["delta"],
                    _signed(
                        None
                        if x["success_rate"]["delta"] is None
                        else 100 * x["success_rate"]["delta"],
                        "{:+.1f} pts",
                    ),
                ),
                num(x["p95_ms"]["current"], _ms(x["p95_ms"]["current"])),
                num(
                    x["p95_ms"]["pct"],
                    _signed(
                        None if x["p95_ms"]["pct"] is None else 100 * x["p95_ms"]["pct"], "{:+.1f}%"
                    ),
                ),
            ]
            for x in c["commands"]
        ),
        {1, 2, 3, 4, 5, 6},
    )
    head = ("exception type", "location", "occurrences", "installs")
    new = table("t-failures-new", head, _failure_rows(c["failures_new"], False), {2, 3})
    gone = table("t-failures-gone", head, _failure_rows(c["failures_gone"], False), {2, 3})
    rising = table(
        "t-failures-rising",
        (*head, "previous"),
        (
            [*row, num(f["previous"])]
            for row, f in zip(_failure_rows(c["failures_rising"], False), c["failures_rising"])
        ),
        {2, 3, 4},
    )
    versions = ", ".join(c["versions_new"]) or "none"
    p = r["previous_period"]
    return (
        "<h2>What changed since the previous period</h2>"
        f'<p class="sub">Compared with {p["start"]} to {p["end"]}. New versions: '
        f'<span id="versions-new">{escape(versions)}</span>.</p>'
        + summary
        + "<h3>Commands</h3>"
        + commands
        + "<h3>New failures (first seen in this period)</h3>"
        + new
        + "<h3>Failures gone (seen before, not in this period)</h3>"
        + gone
        + "<h3>Failures on the rise</h3>"
        + rising
    )


def render(r: dict[str, Any]) -> str:
    """The whole page for a report dict from :func:`optel.report.model.build`."""
    p = r["period"]
    s = r["summary"]
    warn = ""
    if s["without_install"]:
        warn = (
            f'<p class="note"><span class="badge">note</span> {s["without_install"]:,} records'
            " carry no install id (sent by an optel older than the install id): they are in the"
            " counts of records, runs, commands and failures, not in the install counts.</p>"
        )
    return (
        "<!doctype html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(r['tool'])}: usage report {p['start']} to {p['end']}</title>"
        f"<style>{STYLE}</style></head><body>"
        f"<h1>{escape(r['tool'])}: usage report</h1>"
        f'<p class="sub" id="period" data-start="{p["start"]}" data-end="{p["end"]}">'
        f"{p['start']} to {p['end']} ({p['days']} days, UTC) · {s['records']:,} records ·"
        f" generated {escape(r['generated'])} by optel report ({escape(r['engine'])})</p>"
        + warn
        + _cards(r)
        + _activity(r)
        + _versions(r)
        + _mix(r)
        + _commands(r)
        + _failures(r)
        + _changes(r)
        + '<p class="note">Made by <code>optel report</code> from anonymous optel telemetry:'
        " counts of anonymous install ids, never people. Nothing on this page is loaded from"
        " the network.</p></body></html>\n"
    )
