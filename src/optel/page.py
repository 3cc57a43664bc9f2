"""A tool's "what we collect" page, generated from what it declared.

Tool authors write this page by hand today, and it drifts from what the code
sends. optel knows what a tool declared (:class:`optel.kinds.Declarations`:
keys with kinds, event, span and metric names, ``track()`` commands, names
seen in use) and what optel adds itself, so it writes the page:

- :func:`data` gathers the facts as plain data (``optel describe --json``);
- :func:`render` renders them as Markdown.

Every section comes from the same tables optel runs on: the kinds
(:mod:`optel.kinds`), the anonymizer's key rule, the settings (spool
bounds, exit budget, destinations) and :mod:`optel.collected` (the words
the opt-out notice uses too). ``tests/integration/test_describe.py`` runs a
sample tool and fails when a name or key in ``optel show`` is not on its page.

The configuration shown is the tool's own (its ``init()`` arguments over
the defaults), never the settings or environment of the machine the page is
made on, so a docs build gives the same page everywhere.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable

from . import collected, commands, config, kinds
from ._version import __version__

if TYPE_CHECKING:
    from .telemetry import Setup

FACT_KEYS = (
    "optel.os.type",
    "optel.os.version",
    "optel.arch",
    "optel.python.version",
    "optel.python.implementation",
    "optel.version",
    "optel.cpu.count",
    "optel.memory",
    "optel.accelerators",
    "optel.frameworks",
    "optel.container",
    "optel.notebook",
    "optel.ci",
)
"""The anonymous system facts (:func:`optel.system.facts`), in the order sent."""

RESOURCE_KEYS = (
    "service.name",
    "service.version",
    "os.type",
    "process.runtime.name",
    "process.runtime.version",
    "optel.version",
    "telemetry.sdk.name",
    "telemetry.sdk.language",
    "telemetry.sdk.version",
)
"""Keys every record carries about the tool (the OpenTelemetry resource)."""

COMMAND_KEYS = ("optel.duration_ms", "optel.success", "optel.error.type")
RUN_START_KEYS = (*FACT_KEYS, "optel.tool.version", "optel.runs")
RUN_END_KEYS = (
    "optel.run.duration_s",
    "optel.run.outcome",
    "optel.failures",
    "optel.failures.distinct",
    "optel.rate_limited",
)
FAILURE_KEYS = ("exception.type", "exception.stacktrace", "optel.failure.id")
CRASH_KEYS = ("optel.crash", "optel.crash.thread")
REPEATED_KEYS = ("optel.failure.id", "optel.failure.type", "optel.failure.count")
LOG_KEYS = ("code.function", "code.lineno")

NOT_FROM_TOOLS = ("optel.validate",)
"""optel keys no tool sends (``optel ga4 validate`` marks its sample with it)."""

AT_SEND_KEYS = ("optel.install.id",)
"""Keys the otlp destination adds to every request it sends (never recorded)."""

OWN_SCOPE = "optel"
"""The instrumentation scope of optel's own events."""


def own_records(app: str, capture_crashes: bool, log_level: int | None) -> list[dict[str, Any]]:
    """optel's own records: what, name, when, and the keys each carries."""
    failure_when = "a failure the tool reports (telemetry.error(), a tracked command that raised)"
    failure_keys = list(FAILURE_KEYS)
    if capture_crashes:
        failure_when += ", or a crash (an unhandled exception) with the system facts"
        failure_keys += [*CRASH_KEYS, *FACT_KEYS, "optel.tool.version"]
    out = [
        {
            "what": "event",
            "name": "run_start",
            "description": "once per run, at the first call of a tracked command",
            "keys": list(RUN_START_KEYS),
        },
        {
            "what": "event",
            "name": "run_end",
            "description": "once per run that started, at exit",
            "keys": list(RUN_END_KEYS),
        },
        {"what": "event", "name": "exception", "description": failure_when, "keys": failure_keys},
        {
            "what": "event",
            "name": "exception_repeated",
            "description": "at the end of a run, once per failure that happened more than once",
            "keys": list(REPEATED_KEYS),
        },
        {
            "what": "span event",
            "name": "exception",
            "description": "a failure reported while a span was open, on that span",
            "keys": ["exception.type", "exception.stacktrace"],
        },
        {
            "what": "metric",
            "name": "optel.command.duration",
            "description": "histogram of tracked commands' durations (ms)",
            "keys": ["optel.command", "optel.success"],
        },
        {
            "what": "metric",
            "name": "optel.failures",
            "description": "count of failures reported",
            "keys": ["exception.type"],
        },
    ]
    if log_level is not None:
        import logging

        out.append(
            {
                "what": "log",
                "name": "log records",
                "description": f"log records at {logging.getLevelName(log_level)} and above:"
                " level, logger name, the function and line that logged and the message"
                " template (never its arguments)",
                "keys": list(LOG_KEYS),
            }
        )
    return out


# -- the facts -------------------------------------------------------------------------------


def _tool_config(setup: Setup) -> config.Config:
    """What the tool configures by itself: its init() arguments over the defaults."""
    return config.resolve(setup.overrides, environ={}, settings_file=False)


def _entry(key: str, kind: kinds.Kind, ga4: bool, source: str) -> dict[str, Any]:
    item = kinds.Entry(key, kind, source).as_dict()
    item["doc"] = kind.doc
    item["kind_description"] = (
        "one of the values listed; anything else is sent as <other>"
        if kind.name == "oneof"
        else kind.description
    )
    if ga4:
        from .exporters.ga4 import limits

        item["ga4"] = limits.param_name(key)
    return item


def _where(name: str, cfg: config.Config) -> str:
    if name == "ga4":
        from .exporters.ga4 import endpoint

        return (
            "Google Analytics 4 (the tool authors' property), through the Measurement"
            f" Protocol at {endpoint(cfg)}"
        )
    if name == "otlp":
        url = cfg["otlp_endpoint"] or "http://localhost:4318"
        return f"an OpenTelemetry (OTLP) collector at {url}"
    if name == "local":
        return (
            "nowhere: records stay on this machine, in optel's spool, where"
            " `optel show` lists them until they age out"
        )
    return name


def data(setup: Setup, declarations: kinds.Declarations | None = None) -> dict[str, Any]:
    """Everything the page says, as plain data (``optel describe --json``).

    ``declarations`` defaults to the setup's; a running tool passes its own
    (with ``track()`` commands and the names it used).
    """
    from .anonymize import Anonymizer
    from .spool import limits_from

    decl = declarations if declarations is not None else setup.declarations
    app = setup.app
    cfg = _tool_config(setup)
    dests = [d for d in cfg.destinations() if d != "none"]
    ga4 = "ga4" in dests
    sendable = Anonymizer(decl).kinds  # the tool's keys that can leave, with optel's own

    def group(keys: Iterable[str], source: str) -> list[dict[str, Any]]:
        table = {**kinds.BUILTIN_KEYS, **kinds.OPTEL_KEYS}
        return [_entry(k, table[k], ga4, source) for k in keys]

    tool_keys = []
    for entry in decl.entries(builtin=False):
        item = _entry(entry.key, entry.kind, ga4, "tool")
        item["sent"] = entry.key in sendable
        tool_keys.append(item)
    builtin = [e for e in decl.entries() if e.source == "builtin"]
    instrumentation = [
        _entry(e.key, e.kind, ga4, "instrumentation")
        for e in builtin
        if e.key not in kinds.BUILTIN_KEYS and e.key not in decl
    ]
    failure = list(FAILURE_KEYS) + (list(CRASH_KEYS) if setup.capture_crashes else [])
    if decl.free_text:
        failure.append("exception.message")
    shown = set(FACT_KEYS) | set(RESOURCE_KEYS) | set(failure) | set(NOT_FROM_TOOLS)
    shown |= set(AT_SEND_KEYS)
    resource = list(RESOURCE_KEYS) + [
        k for k in AT_SEND_KEYS if k in kinds.OPTEL_KEYS and "otlp" in dests
    ]
    others = [k for k in kinds.OPTEL_KEYS if k not in shown]
    standard = [k for k in kinds.BUILTIN_KEYS if k not in shown and k not in ("exception.message",)]

    names = []
    for n in decl.names():
        names.append({**n.as_dict(), "source": "tool"})
    own = own_records(app, setup.capture_crashes, setup.log_level)
    for rec in own:
        names.append({**rec, "declared": True, "used": False, "source": "optel"})
    scopes = {OWN_SCOPE, f"optel.{app}"}
    if ga4:
        from .exporters.ga4 import limits

        for item in names:
            item["ga4"] = limits.event_name(
                "exception" if item["name"] == "exception" else item["name"]
            )

    limits_ = limits_from(cfg.values)
    notice = None
    if setup.policy == "opt-out":
        from .consent.notice import notice_text

        notice = notice_text(app, setup.notice_text, setup.notice_url, decl.free_text)
    return {
        "app": app,
        "version": setup.version,
        "policy": setup.policy,
        "optel_version": __version__,
        "in_short": collected.in_short(app, decl.free_text),
        "notice": notice,
        "notice_version": setup.notice_version,
        "free_text": decl.free_text,
        "capture_crashes": setup.capture_crashes,
        "capture_logs": setup.log_level,
        "caps": list(setup.caps) if setup.caps else None,
        "names": names,
        "scopes": sorted(scopes),
        "keys": {
            "tool": tool_keys,
            "facts": group(FACT_KEYS, "optel"),
            "optel": group(others, "optel"),
            "standard": group(standard, "builtin"),
            "resource": group(resource, "builtin"),
            "failure": group(failure, "builtin"),
            "instrumentation": instrumentation,
        },
        "destinations": [{"name": d, "where": _where(d, cfg)} for d in dests],
        "spool": {
            "max_records": limits_.max_records,
            "max_bytes": limits_.max_bytes,
            "max_age_hours": round(limits_.max_age_s / 3600),
        },
        "exit_budget_ms": cfg["exit_budget_ms"],
        "never": [
            *collected.NEVER_DETAILS[:3],
            collected.FREE_TEXT_DETAILS if decl.free_text else collected.MESSAGE_DETAILS,
            *collected.NEVER_DETAILS[3:],
        ],
        "commands": {
            "status": commands.command("status", app),
            "show": commands.plain("show", app),
            "opt_in": commands.command("opt-in", app),
            "opt_out": commands.command("opt-out", app),
            "opt_out_all": commands.command("opt-out", app, every_tool=True),
            "flush": commands.plain("flush", app),
            "own": commands.prefix(app) is not None,
        },
    }


# -- the page ----------------------------------------------------------------------------------


def _code(text: Any) -> str:
    text = str(text).replace("|", "\\|")
    return f"``{text}``" if "`" in text else f"`{text}`"


def _cell(text: Any) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


_GENERIC = {(k.name, k.example) for k in (kinds.Label, kinds.Number, kinds.Bool, kinds.Version)}


def _example(item: dict[str, Any]) -> str:
    value = item["example"]
    if item["source"] == "instrumentation" and (item["kind"], value) in _GENERIC:
        return "-"  # the kind's own example says nothing about an instrumentation's key
    if isinstance(value, bool):
        value = str(value).lower()
    return _code(value) if value not in (None, "") else "-"


KIND_TITLES = {"oneof": "one of", "labels": "labels"}


def _about(item: dict[str, Any]) -> str:
    """What a key is (the author's words) and, for a closed set, its values."""
    about = _cell(item.get("doc") or "")
    if item["kind"] == "oneof":
        values = ", ".join(_code(v) for v in item["values"] or ())
        about = f"{about}: {values}" if about else values
    return about or "-"


def _key_table(items: list[dict[str, Any]], ga4: bool) -> list[str]:
    head, rule = "| key | kind | about | example |", "|---|---|---|---|"
    if ga4:
        head, rule = head + " in GA4 |", rule + "---|"
    lines = [head, rule]
    for item in items:
        kind = KIND_TITLES.get(item["kind"], item["kind"])
        about, example = _about(item), _example(item)
        if item.get("sent") is False:
            about, example = "**never sent**: the key names a person, a machine or a secret", "-"
        row = f"| {_code(item['key'])} | {kind} | {about} | {example} |"
        if ga4:
            row += f" {_code(item['ga4'])} |"
        lines.append(row)
    return lines


def _legend(groups: Iterable[list[dict[str, Any]]]) -> list[str]:
    """One line per kind used on the page: what is sent for it."""
    seen: dict[str, str] = {}
    for items in groups:
        for item in items:
            seen.setdefault(item["kind"], item["kind_description"])
    if "labels" in seen:  # one kind, several separators
        seen["labels"] = "labels, each as the label kind, separated as in the example"
    return [
        f"- **{KIND_TITLES.get(kind, kind)}**: {_cell(text)}."
        for kind, text in sorted(seen.items(), key=lambda kv: KIND_TITLES.get(kv[0], kv[0]))
    ]


def _size(n: int) -> str:
    return f"{n / 1_000_000:g} MB" if n >= 1_000_000 else f"{n / 1000:g} kB"


def _age(hours: int) -> str:
    return f"{hours // 24} days" if hours % 24 == 0 and hours >= 48 else f"{hours} hours"


def render(setup: Setup, declarations: kinds.Declarations | None = None) -> str:
    """The tool's "what we collect" page in Markdown (see :func:`data`)."""
    d = data(setup, declarations)
    app, cmd = d["app"], d["commands"]
    ga4 = any(x["name"] == "ga4" for x in d["destinations"])
    version = f" {d['version']}" if d["version"] else ""
    out: list[str] = [
        f"# What {app} sends: telemetry",
        "",
        f"{app}{version} collects anonymous usage telemetry with optel. This page is"
        " generated by `optel describe`"
        f" from what {app} declares, so it lists everything that can leave your machine:"
        " each name, each attribute with the kind of value it may hold and an example,"
        " where it goes, and how to see, stop and delete it.",
        "",
        f"**In short.** {d['in_short']}",
        "",
        "## Your choice",
        "",
    ]
    if d["policy"] == "opt-in":
        out.append(
            f"Nothing is sent unless you agree: `{cmd['opt_in']}` allows it for {app},"
            f" `{cmd['opt_out']}` refuses it, `{cmd['opt_out_all']}` refuses it for every"
            " tool that uses optel."
        )
    else:
        out += [
            f"{app} sends telemetry unless you refuse (its policy is opt-out), and only after"
            " this notice reached you once, on a terminal or in a notebook; until then"
            f" nothing is sent. `{cmd['opt_out']}` refuses it, `{cmd['opt_out_all']}` refuses"
            " it for every tool that uses optel. The notice:",
            "",
            *(f"> {line}" for line in d["notice"].splitlines()),
        ]
    out += [
        "",
        "## What is recorded",
        "",
        "### Names",
        "",
        "Events, spans and metrics are sent under these names. Names are identifiers:"
        " quoted strings, numbers, paths and addresses in them are replaced by `?`.",
        "",
    ]
    head, rule = "| name | what | when, and what it carries |", "|---|---|---|"
    if ga4:
        head, rule = head + " GA4 event |", rule + "---|"
    out += [head, rule]
    for item in d["names"]:
        if item["what"] == "scope":
            continue
        about = _cell(item["description"])
        if item["what"] == "command":
            about = (
                (about + ": " if about else "")
                + "a tracked command, with "
                + ", ".join(_code(k) for k in COMMAND_KEYS)
                + " and its declared parameters (also timed in `optel.command.duration`)"
            )
        if item.get("keys") and item["source"] == "optel":
            shown = [k for k in item["keys"] if k not in FACT_KEYS]
            facts = " the system facts," if any(k in FACT_KEYS for k in item["keys"]) else ""
            about += f";{facts} {', '.join(_code(k) for k in shown)}"
        if not item["declared"]:
            about = (about + "; " if about else "") + "seen in use, not declared by the tool"
        who = f"{item['what']} (optel)" if item["source"] == "optel" else item["what"]
        row = f"| {_code(item['name'])} | {who} | {about or '-'} |"
        if ga4:
            row += f" {_code(item.get('ga4', item['name']))} |"
        out.append(row)
    scopes = sorted({*d["scopes"], *(i["name"] for i in d["names"] if i["what"] == "scope")})
    out += [
        "",
        "Each record also names the code that made it (its instrumentation scope): "
        + ", ".join(_code(s) for s in scopes)
        + ", or the name of a library that records through OpenTelemetry.",
        "",
        f"### Attributes {app} declares",
        "",
        "Only declared keys leave, each in its kind: a value that does not fit is replaced"
        " by a placeholder such as `<not-label>` and counted (`optel status` shows how"
        " many).",
        "",
    ]
    if d["keys"]["tool"]:
        out += _key_table(d["keys"]["tool"], ga4)
    else:
        out.append(f"{app} declares no attributes of its own.")
    out += [
        "",
        "### Anonymous system facts",
        "",
        "Sent with `run_start`"
        + (" and with crash reports" if d["capture_crashes"] else "")
        + ": coarse facts shared by many machines, never a name, an address or a serial"
        " number.",
        "",
        *_key_table(d["keys"]["facts"], ga4),
        "",
        "### optel's own keys",
        "",
        *_key_table(d["keys"]["optel"], ga4),
        "",
        "### Standard OpenTelemetry keys",
        "",
        "On failures inside spans (`exception.escaped`), events (`event.name`) and log"
        " records (`code.function`, `code.lineno`):",
        "",
        *_key_table(d["keys"]["standard"], ga4),
        "",
        "### On every record",
        "",
        "The tool and its environment (the OpenTelemetry resource), the record's time, a"
        " session id (random, one per process) and a random install id (a uuid4 made at the"
        " first grant, deleted by opt-out: Google Analytics' client id, `optel.install.id`"
        " on OTLP, added when a request is sent):",
        "",
        *_key_table(d["keys"]["resource"], ga4),
        "",
        "### Failure reports",
        "",
        "A failure is sent as its type and its code location: module-relative frames (file,"
        " line, function); source lines and local variables never."
        + (
            " This tool opted in to free text: the message is sent, pattern-scrubbed."
            if d["free_text"]
            else " Its message is not sent."
        ),
        "",
        *_key_table(d["keys"]["failure"], ga4),
    ]
    out += [
        "",
        "### Kinds of values",
        "",
        "What each kind lets through; a value that does not fit is replaced by the"
        " placeholder named.",
        "",
        *_legend(d["keys"].values()),
    ]
    if d["keys"]["instrumentation"]:
        out += [
            "",
            "### From OpenTelemetry instrumentations",
            "",
            "If the tool uses OpenTelemetry instrumentations (HTTP clients, databases, ...),"
            " their records keep these keys, each in its kind; other keys are dropped.",
            "",
            f"<details><summary>{len(d['keys']['instrumentation'])} keys</summary>",
            "",
            *_key_table(d["keys"]["instrumentation"], ga4),
            "",
            "</details>",
        ]
    out += ["", "## Where it goes", ""]
    if d["destinations"]:
        out += [f"- {x['where']}." for x in d["destinations"]]
    else:
        out.append("- nowhere: no destination is configured.")
    out += [
        "",
        "An administrator can send everything to a collector of their own instead"
        " (`OPTEL_DESTINATIONS=otlp` and `OTEL_EXPORTER_OTLP_ENDPOINT`), or nowhere"
        f" (`OPTEL_DESTINATIONS=none`); `{cmd['status']}` shows where yours go.",
    ]
    if ga4:
        out += [
            "",
            "In Google Analytics each record is an event named as in the table above (a"
            " failure report is the `exception` event with `exception_type` and"
            ' `exception_location`); attribute keys become event parameters (column "in'
            ' GA4"); every event carries `session_id` and `engagement_time_msec`; metrics'
            " carry `value` (histograms `count`, `sum`, `min`, `max`), `metric_type` and"
            " `unit`; user properties are `app`, `app_version`, `os`, `python`,"
            " `python_impl` and `optel_version`.",
        ]
    sp = d["spool"]
    out += [
        "",
        "## How long records wait on your machine",
        "",
        "Records are anonymized first, then kept in a queue on disk (SQLite, in optel's"
        " state folder) until a destination accepts them: at most"
        f" {sp['max_records']:,} records, {_size(sp['max_bytes'])} and"
        f" {_age(sp['max_age_hours'])}; beyond that the oldest are dropped, unsent."
        " Sending happens in the background while the tool runs and at its exit, which"
        f" waits at most {d['exit_budget_ms']} ms for it; what is left goes with a later"
        f" run or `{cmd['flush']}`."
        + (
            f" At most {d['caps'][0]} events a minute and {d['caps'][1]} a run are recorded."
            if d["caps"]
            else ""
        ),
        "",
        "## What is never sent",
        "",
        *(f"- **{title}**: {why}." for title, why in d["never"]),
        "",
        "## See it, stop it, delete it",
        "",
        f"- `{cmd['status']}`: whether {app} sends now and why, where to, what waits.",
        f"- `{cmd['show']}`: what waits to be sent, exactly as it will be sent"
        " (`--sent`: what already left).",
        f"- `{cmd['opt_out']}`: stops it, and deletes what waits, the random client id"
        f" and the hashing salt; `{cmd['opt_out_all']}` does so for every tool.",
        "- `DO_NOT_TRACK=1` or `OPTEL_DISABLED=1` (or `OTEL_SDK_DISABLED=true`) in the"
        " environment: nothing is sent, whatever was decided; CI runs send nothing unless"
        " `OPTEL_ALLOW_CI=1`.",
        f"- `OPTEL_DEBUG=1 {app} ...`: prints each record as it would be sent, and sends and"
        " writes nothing, before or after you decide.",
        f"- Everything lives in one folder (`{cmd['status']}` names it, `OPTEL_HOME` moves"
        " it); deleting it forgets everything.",
        "",
        "---",
        "",
        f"Generated by optel {d['optel_version']} from {app}'s declarations.",
        "",
    ]
    return "\n".join(out)
