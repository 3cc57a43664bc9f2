"""The ``optel`` command line (also ``python -m optel``).

Exit status: 0 on success, 2 on a usage error (one line naming the fix),
1 when the command ran but could not do its job.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any, NoReturn, Sequence

from . import commands, config, consent
from ._version import __version__


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"{self.prog}: {message} (see '{self.prog} --help')\n")
        raise SystemExit(2)


def _usage_error(prog: str, message: str) -> int:
    sys.stderr.write(f"{prog}: {message}\n")
    return 2


class UsageError(Exception):
    """A usage error found after parsing: exit 2 with its one line."""


def _spool(cfg: config.Config, create: bool = False) -> Any:
    """The spool, or ``None`` when there is none yet and ``create`` is off, or
    when the state folder is not one optel uses (one warning says why)."""
    from . import _fs
    from .spool import Spool, limits_from

    problem = _untrusted(cfg)
    if problem:
        _fs.warn_untrusted(problem)
        return None
    if not create and not os.path.exists(cfg.paths.spool):
        return None
    return Spool(cfg.paths.spool, limits_from(cfg.values))


# -- commands ------------------------------------------------------------------


def _chosen_app(args: argparse.Namespace) -> str | None:
    """The tool a command is about (``None``: every tool); :class:`UsageError` for
    ``--app`` with ``--global`` or a name ``init(app=...)`` refuses."""
    explicit = getattr(args, "app", None)
    if getattr(args, "all_tools", False):
        if explicit is not None:
            raise UsageError("--app and --global contradict each other: use one of them")
        return None
    app = explicit if explicit is not None else getattr(args, "optel_app", None)
    if app is None:
        return None
    problem = consent.app_problem(app)
    if problem:
        raise UsageError(f"--app: {problem.replace('app must', 'a tool name must')}")
    return str(app)


def _when(t: Any) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(t)) if isinstance(t, int) else "?"


_HOW = {
    "cli": "on the command line",
    "prompt": "at the prompt",
    "api": "by the tool",
    "notice": "by the notice shown",
}


def _entry(raw: dict[str, Any] | None) -> dict[str, Any] | None:
    if raw is None:
        return None
    return {"decision": raw["decision"], "source": raw["source"], "time": raw["time"]}


def _seen(
    cfg: config.Config, records: dict[str, Any] | None, spooled: dict[str, dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """The tools seen on this machine, by name (lower case): ``policy`` (``None``
    when unknown) and ``pending``.

    optel writes nothing for a tool that runs without consent and never asks,
    so a tool is seen through what exists anyway: a decision or an unanswered
    question for it in consent.json, its opt-out notice there (which also
    tells its policy), its run count in usage.json (runs with consent), and
    its records in the spool (which carry their policy).
    """
    found: dict[str, dict[str, Any]] = {}

    def see(app: str, policy: str | None = None, pending: int = 0) -> None:
        item = found.setdefault(consent.app_key(app), {"policy": None, "pending": 0})
        item["policy"] = item["policy"] or policy
        item["pending"] += pending

    if records is not None:
        for app in records["apps"]:
            see(app)
        for app in records["notices"]:
            see(app, "opt-out")  # a notice is only ever shown under the opt-out policy
        for app in records.get("asked", {}):
            see(app)
    from . import _fs

    try:
        usage = _fs.read_json(cfg.paths.usage)
    except (OSError, ValueError):
        usage = None
    if isinstance(usage, dict) and isinstance(usage.get("apps"), dict):
        for app in usage["apps"]:
            if isinstance(app, str) and consent.app_problem(app) is None:
                see(app)
    for app, info in spooled.items():
        see(app, info["policy"], info["pending"])
    return found


def _spooled(spool: Any) -> dict[str, dict[str, Any]]:
    """Apps with records waiting (their policy and how many) or in the sent log."""
    out: dict[str, dict[str, Any]] = {}

    def item(app: str) -> dict[str, Any] | None:
        if consent.app_problem(app) is not None:
            return None  # not a name optel would have written
        return out.setdefault(consent.app_key(app), {"policy": None, "pending": 0})

    for app, (policy, waiting) in spool.apps().items():  # counted by SQLite, no row read
        found = item(app)
        if found is not None:
            found["pending"] += waiting
            if policy in consent.POLICIES:
                found["policy"] = policy
    return out


def _untrusted(cfg: config.Config) -> str | None:
    from . import _fs

    for folder in dict.fromkeys((cfg.paths.config_dir, cfg.paths.data_dir)):
        problem = _fs.folder_problem(folder)
        if problem:
            return problem
    return None


def status_data(app: str | None, policy: str | None = None) -> dict[str, Any]:
    """The facts ``optel status`` prints (also used by the demo and tests).

    ``app``: one tool (its policy is ``policy``, else the one it was seen
    with, else ``opt-in``); ``None``: the global decision. Either way the
    global decision, every per-tool decision and every tool seen here are
    listed (``global``, ``decisions``, ``tools``).
    """
    cfg = config.resolve()
    p = cfg.paths
    untrusted = _untrusted(cfg)
    try:
        records: dict[str, Any] | None = consent.cached_records(p)
    except consent.ConsentFileError:
        records = None  # the decision below says why (off)
    spool = None if untrusted else _spool(cfg)  # (status says why in its own words)
    pending, stats, last_error, spooled = 0, {}, None, {}
    if spool is not None:
        try:
            spooled = _spooled(spool)
            pending = (
                spooled.get(consent.app_key(app), {}).get("pending", 0) if app else spool.waiting()
            )
            stats = spool.stats()
            last_error = spool.last_error()
        except Exception as exc:  # a broken spool must not break status
            last_error = f"spool unreadable: {exc}"
        finally:
            spool.close()
    seen = _seen(cfg, records, spooled)
    if app:
        known = seen.get(consent.app_key(app), {}).get("policy")
        used = policy or known or "opt-in"
        how = "given" if policy else ("seen" if known else "assumed")
    else:
        used, how = policy or "opt-in", "given" if policy else "assumed"
    d = consent.decide(app or "", used, p=p)
    tools = []
    for name, info in sorted(seen.items()):
        td = consent.decide(name, info["policy"] or "opt-in", p=p)
        notice = (records or {}).get("notices", {}).get(name)
        tools.append(
            {
                "app": name,
                "policy": info["policy"],  # None: not known here (a decision makes it moot)
                "consent": td.consent,
                "scope": td.scope or None,
                "notice": {"version": notice["notice_version"], "time": notice["time"]}
                if notice
                else None,
                "enabled": td.enabled,
                "reason": td.reason,
                "pending": info["pending"],
            }
        )
    return {
        "app": app,
        "consent": d.consent,
        "enabled": d.enabled,
        "reason": d.reason,
        "policy": used,
        "policy_known": how,  # given (--policy), seen (from what it left here), assumed
        "scope": d.scope or None,
        "source": d.source or None,  # how the applying decision was recorded
        "notice_version": d.notice_version,
        # a record optel cannot use, or a folder it will not use (off until fixed)
        "problem": d.problem or None,
        "untrusted": untrusted,
        "global": _entry(records["global"]) if records else None,
        "decisions": {k: _entry(v) for k, v in sorted(records["apps"].items())} if records else {},
        "tools": tools,
        "kept_aside": cfg.paths.kept_aside(),
        "destinations": list(cfg.destinations()),
        "pending": pending,
        "dropped": {k[len("dropped_") :]: v for k, v in stats.items() if k.startswith("dropped_")},
        # events over a tool's caps (optel.ratelimit), per app
        "rate_limited": sum(
            v
            for k, v in stats.items()
            if k.startswith("rate_limited:") and (app is None or k == "rate_limited:" + app)
        ),
        # values that did not fit their declared kind, replaced (optel.kinds), per app
        "kind_mismatch": sum(
            v
            for k, v in stats.items()
            if k.startswith("kind_mismatch:") and (app is None or k == "kind_mismatch:" + app)
        ),
        "sent": stats.get("sent", 0),
        "last_error": last_error,
        "home": cfg.paths.config_dir,
    }


def _decision_text(entry: dict[str, Any]) -> str:
    how = _HOW.get(entry["source"], entry["source"])
    return f"{entry['decision']}, {how}, {_when(entry['time'])}"


def _why(reason: str) -> str:
    """A decision's reason without its ``on:``/``off:`` (the line before says which)."""
    return reason.partition(": ")[2] if reason.startswith(("on: ", "off: ")) else reason


def cmd_status(args: argparse.Namespace) -> int:
    app = _chosen_app(args)
    data = status_data(app, args.policy)
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    state = "ON" if data["enabled"] else "OFF"
    if app:
        print(f"telemetry for {app}: {state}")
        print(f"why:          {_why(data['reason'])}")
        scope = {"app": "for this tool", "global": "for every tool"}.get(data["scope"] or "", "")
        how = f", {scope}, given {_HOW.get(data['source'], data['source'])}" if scope else ""
        print(f"consent:      {data['consent']}{how}")
        known = {"seen": "seen here", "given": "--policy", "assumed": "assumed: not seen here"}
        print(f"policy:       {data['policy']}, {known[data['policy_known']]}")
    else:
        print(f"telemetry for tools without their own decision: {state}")
        print(f"why:          {_why(data['reason'])}")
    if data["problem"]:
        print(f"problem:      {data['problem']}")
    glob = data["global"]
    print(f"global decision: {_decision_text(glob) if glob else 'none recorded'}")
    if data["decisions"]:
        print("per-tool decisions:")
        for name, entry in data["decisions"].items():
            print(f"  {name:<24} {_decision_text(entry)}")
    else:
        print("per-tool decisions: none recorded")
    if data["tools"]:
        print("tools seen on this machine:")
        width = max(24, *(len(t["app"]) for t in data["tools"]))
        print(f"  {'TOOL':<{width}} {'POLICY':<8} {'NOTICE':<14} SENDS NOW")
        for t in data["tools"]:
            notice = f"v{t['notice']['version']} shown" if t["notice"] else "-"
            now = "yes" if t["enabled"] else "no"
            pending = f"; {t['pending']} waiting" if t["pending"] else ""
            print(f"  {t['app']:<{width}} {t['policy'] or '?':<8} {notice:<14} {now}:"
                  f" {_why(t['reason'])}{pending}")  # fmt: skip
    else:
        print("tools seen on this machine: none; a tool without consent leaves nothing here")
    for path in data["kept_aside"]:
        print(f"kept aside:   {path}: an earlier record optel could not read, yours to inspect")
    print(f"destinations: {', '.join(data['destinations']) or 'none'}")
    print(f"pending:      {data['pending']} record(s) waiting")
    if data["rate_limited"]:
        print(f"rate limited: {data['rate_limited']} event(s) over the tool's caps, not recorded")
    if data["kind_mismatch"]:
        print(
            f"kind mismatch: {data['kind_mismatch']} value(s) did not fit their declared kind"
            " and were replaced by a placeholder"
        )
    if data["dropped"]:
        print("dropped:      " + ", ".join(f"{k}={v}" for k, v in sorted(data["dropped"].items())))
    if data["last_error"]:
        print(f"last error:   {data['last_error']}")
    print(f"state folder: {data['home']}")
    return 0


def _names(apps: Sequence[str]) -> str:
    return ", ".join(apps)


def cmd_opt(args: argparse.Namespace, decision: str) -> int:
    app = _chosen_app(args)
    cfg = config.resolve()
    p = cfg.paths
    scope = f"for {app}" if app else "for every optel tool"
    unknown = app is not None and not _known(cfg, app)
    try:
        withdrawn = consent.record(decision, app, source="cli", p=p)
    except OSError as exc:  # e.g. a read-only home: say so in one line, change nothing
        meanwhile = "; DO_NOT_TRACK=1 turns it off meanwhile" if decision == consent.DENIED else ""
        why = exc.strerror or exc.__class__.__name__
        sys.stderr.write(
            f"{args.prog}: cannot record the decision in {p.config_dir} ({why});"
            f" set OPTEL_HOME to a folder only you can write{meanwhile}\n"
        )
        return 1
    # recorded first: a sender checking now already sees the refusal
    removed = consent.take_effect(decision, app, p)
    try:
        records = consent.cached_records(p)
    except consent.ConsentFileError:  # changed again meanwhile: describe nothing more
        records = {"global": None, "apps": {}}
    if decision == consent.GRANTED:
        refused = sorted(a for a, e in records["apps"].items() if e["decision"] == consent.DENIED)
        if app:
            every = records["global"]
            only = " only (other tools follow the global refusal)" if every and every[
                "decision"] == consent.DENIED else ""  # fmt: skip
            undo = commands.command("opt-out", app)
            print(f"telemetry consent granted for {app}{only}; '{undo}' withdraws it")
        else:
            undo = commands.command("opt-out", None, every_tool=True)
            if refused:
                print(f"telemetry consent granted for every optel tool except {_names(refused)}"
                      f" (refused per tool; '{commands.command('opt-in', refused[0])}' changes"
                      f" that); '{undo}' withdraws it")  # fmt: skip
            else:
                print(f"telemetry consent granted for every optel tool; '{undo}' withdraws it")
        switch = consent.kill_switch(os.environ)
        if switch:
            print(f"note: nothing is sent while {switch.partition(' (')[0]}")
    else:
        also = f" (including the per-tool grants for {_names(withdrawn)})" if withdrawn else ""
        of = f" of {app}" if app else ""
        print(f"telemetry consent withdrawn {scope}{also}; deleted {removed} waiting record(s){of},"
              f" the log of what was sent{of}, the client id and the hashing salt")  # fmt: skip
    if unknown:
        print(f"note: no tool named {app} has used optel on this machine yet; the decision"
              " applies when one does")  # fmt: skip
    return 0


def _known(cfg: config.Config, app: str) -> bool:
    """Was ``app`` seen on this machine (see :func:`_seen`)?"""
    try:
        records: dict[str, Any] | None = consent.cached_records(cfg.paths)
    except consent.ConsentFileError:
        records = None
    spool = None if _untrusted(cfg) else _spool(cfg)
    spooled = {}
    if spool is not None:
        try:
            spooled = _spooled(spool)
        finally:
            spool.close()
    return consent.app_key(app) in _seen(cfg, records, spooled)


def cmd_show(args: argparse.Namespace) -> int:
    from . import delivery, exporters

    cfg = config.resolve()
    spool = _spool(cfg)
    try:
        # the spool keeps records; each destination renders them, as it does to send
        with exporters.Destinations(cfg) as dests:
            if args.sent:
                log = [] if spool is None else spool.sent_log(max(args.limit, _SUMMARY_MAX))
                total = len(log)  # the log keeps the newest entries only (bounded)
                entries = [
                    {"time": t, "destination": d, "app": a, "signal": "", "raw": p, "record": rec}
                    for t, d, a, p, rec in log
                ]
            else:
                total = 0 if spool is None else spool.waiting()
                rows = (
                    [] if spool is None else spool.pending(limit=max(1, min(total, _SUMMARY_MAX)))
                )
                entries = [
                    {
                        "id": r.id,
                        "destination": r.destination,
                        "app": r.app,
                        "signal": r.signal,
                        "created": r.created,
                        "attempts": r.attempts,
                        "raw": r.payload,
                        "record": not r.rendered,
                        "row": r,
                        # re-checked as a sender does: what is shown is what would leave
                        "not_sent": delivery.preview(r, None)[1],
                    }
                    for r in rows
                ]
            shown = entries[-args.limit :] if args.sent else entries[: args.limit]
            items = [_item(e, dests.get(e["destination"])) for e in shown]
    finally:
        if spool is not None:
            spool.close()
    if args.json:
        print(json.dumps(items, indent=2))
        return 0
    what = "sent (the newest, as they left)" if args.sent else "waiting to be sent"
    where = cfg.paths.spool if spool is not None else f"none yet at {cfg.paths.spool}"
    print(f"{total:,} record(s) {what}; spool: {where}")
    refused = sum(1 for e in entries if e.get("not_sent"))
    if refused:
        print(f"{refused:,} of them fail the re-check before sending and will not be sent"
              " (dropped and counted as unverified when a sender reaches them)")  # fmt: skip
    if entries:
        _summary(entries, total)
    if args.full:
        for item in items:
            when = time.strftime(
                "%Y-%m-%d %H:%M:%S", time.localtime(item.get("created") or item.get("time"))
            )
            print(f"\n[{item['destination']}] {item['app']} {item.get('signal', '')} {when}")
            if item.get("not_sent"):
                print(f"not sent: {item['not_sent']}")
            else:
                print(json.dumps(item["payload"], indent=2))
        if len(items) < total:
            print(f"\n(the first {len(items):,} of {total:,}; --limit N shows more)")
    elif entries:
        print("\npayloads, exactly as they will be sent: --full (or --json)")
    return 0


_SUMMARY_MAX = 100_000
"""Rows the summary reads at most (the spool's own bound is 10,000 by default)."""


def _item(entry: dict[str, Any], dest: Any) -> dict[str, Any]:
    """An entry as ``show`` prints it: its payload exactly as ``dest`` will send it
    (or sent it); ``None`` when that destination is not available here."""
    from . import delivery

    item = {
        k: v
        for k, v in entry.items()
        if k not in ("raw", "record", "row", "not_sent") and (k != "signal" or v)
    }
    if entry.get("not_sent"):
        item["payload"], item["not_sent"] = None, entry["not_sent"]
    elif "row" in entry:  # waiting, and passed the re-check
        item["payload"] = _parse(delivery.shown(entry["row"], dest))
    else:
        item["payload"] = _parse(delivery.shown_text(entry["raw"], not entry["record"], dest))
    return item


def _summary(entries: list[dict[str, Any]], total: int) -> None:
    """Counts by tool, signal, name and destination, as an aligned table."""
    groups: dict[tuple[str, str, str, str], int] = {}
    for e in entries:
        if e.get("not_sent"):
            names = [("", "(fails the re-check)")]  # its content is not read
        else:
            names = _payload_names(_parse(e["raw"])) or [("", "?")]
        signal, name = names[0]
        key = (e["app"], e["signal"] or signal or "?", name, e["destination"])
        groups[key] = groups.get(key, 0) + 1
    by: list[dict[str, int]] = [{}, {}, {}]  # tool, signal, destination
    for (app, sig, _name, dest), n in groups.items():
        for counts, value in zip(by, (app, sig, dest)):
            counts[value] = counts.get(value, 0) + n
    for title, counts in zip(("tool", "signal", "destination"), by):
        line = ", ".join(f"{k} {n:,}" for k, n in sorted(counts.items(), key=lambda kv: -kv[1]))
        print(f"{'by ' + title + ':':<16}{line}")
    if len(entries) < total:
        print(f"(names counted in the oldest {len(entries):,})")
    rows = [("TOOL", "SIGNAL", "NAME", "DESTINATION", "RECORDS")] + [
        (app, sig, name, dest, f"{n:,}")
        for (app, sig, name, dest), n in sorted(groups.items(), key=lambda kv: (kv[0], -kv[1]))
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    print()
    for r in rows:
        cells = [r[i].ljust(widths[i]) for i in range(4)]
        print(("  ".join(cells) + "  " + r[4].rjust(7)).rstrip())


def _payload_names(payload: Any) -> list[tuple[str, str]]:
    """(signal, name) pairs a payload carries, whatever its shape: an optel record
    (the local destination, and what the spool keeps), a GA4 request fragment, or
    OTLP/JSON."""
    if not isinstance(payload, dict):
        return []
    if isinstance(payload.get("name"), str) and "signal" in payload:  # an optel record
        return [(str(payload["signal"]), payload["name"])]
    if isinstance(payload.get("events"), list):  # a GA4 fragment
        names = [e.get("name") for e in payload["events"] if isinstance(e, dict)]
        return [("", n) for n in dict.fromkeys(names) if isinstance(n, str)]
    out = []
    for outer, middle, inner, signal in (
        ("resourceSpans", "scopeSpans", "spans", "span"),
        ("resourceMetrics", "scopeMetrics", "metrics", "metric"),
        ("resourceLogs", "scopeLogs", "logRecords", "log"),
    ):
        for res in payload.get(outer) or ():
            for scope in res.get(middle) or ():
                for thing in scope.get(inner) or ():
                    name = thing.get("name") or thing.get("eventName")
                    for kv in thing.get("attributes") or ():
                        if kv.get("key") == "event.name":
                            name, signal = kv.get("value", {}).get("stringValue"), "event"
                    out.append((signal, name or signal))
    return out


def _parse(payload: str | None) -> Any:
    if payload is None:
        return None  # the destination is not available here, or does not take it
    try:
        return json.loads(payload)
    except (ValueError, RecursionError):
        return payload


PROGRESS_MIN = 500
"""Rows from which ``optel flush`` shows its progress on a terminal."""


def cmd_flush(args: argparse.Namespace) -> int:
    from . import delivery, exporters

    cfg = config.resolve()
    if _refused(args, cfg):
        return 1
    spool = _spool(cfg)
    if spool is None:
        print("nothing waiting")
        return 0
    owner = f"flush-{os.getpid()}"
    try:
        # the user asked for now: rows still backing off go too
        with exporters.Destinations(cfg) as dests:  # this command's own, closed when done
            remote = {  # rows waiting per destination that sends (local ones stay)
                d: len(spool.pending(d, limit=_SUMMARY_MAX))
                for d in spool.destinations_due()
                if getattr(dests.get(d), "remote", False)
            }
            total = sum(remote.values())
            progress = total >= PROGRESS_MIN and sys.stderr.isatty()
            deadline = time.monotonic() + args.timeout
            report = delivery.Report()
            while True:
                step = delivery.deliver(
                    spool, dests, cfg, deadline, owner, force=True,
                    max_rows=delivery.BATCH * 5 if progress else None,
                )  # fmt: skip
                report.sent += step.sent
                report.retried += step.retried
                report.dropped += step.dropped
                report.held = max(report.held, step.held)  # held rows come back each step
                report.errors += [e for e in step.errors if e not in report.errors]
                if progress:
                    done = report.sent + report.dropped
                    sys.stderr.write(f"\rsending: {done:,} of {total:,} ({done * 100 // total}%)")
                    sys.stderr.flush()
                # in steps on a terminal, until a step moves nothing (done, or every
                # destination failing) or the time is up
                if not progress or not (step.sent or step.dropped):
                    break
                if time.monotonic() >= deadline:
                    break
            if progress:
                sys.stderr.write("\n")
            where = {d: _endpoint(cfg, dests, d) for d in remote}
        left = spool.waiting()
        if report.sent and not report.errors:
            spool.clear_last_error()  # a delivery that went through: the old error is history
    finally:
        spool.close()
    print(
        f"sent {report.sent}, retry later {report.retried}, dropped {report.dropped},"
        f" held back {report.held}; {left} waiting"
    )
    for err in report.errors:
        name, _, reason = err.partition(": ")
        at = f" at {where[name]}" if where.get(name) else ""
        print(f"  {name}{at}: {reason}")
    return 0 if not report.errors else 1


def _endpoint(cfg: config.Config, dests: Any, name: str) -> str:
    """Where destination ``name`` sends, for messages (no secret: no query string)."""
    if name == "ga4":
        from .exporters import ga4

        return ga4.endpoint(cfg) + "/mp/collect"
    if name == "otlp":
        dest = dests.get("otlp")
        urls = dict.fromkeys(
            str(dest.url(signal)) for signal in ("traces", "metrics", "logs")
        ) if dest is not None and hasattr(dest, "url") else {}  # fmt: skip
        return ", ".join(urls) or str(cfg["otlp_endpoint"] or "")
    return ""


def _timeout(text: str) -> float:
    """``--timeout``: seconds, more than 0 and at most a day."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not 0 < value <= 86_400:  # also refuses nan and inf
        raise argparse.ArgumentTypeError(
            f"must be more than 0 and at most 86400 seconds, got {text}"
        )
    return value


def _count(text: str) -> int:
    """``--limit``: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text}")
    return value


def _refused(args: argparse.Namespace, cfg: config.Config) -> bool:
    """A command that sends obeys the kill switches and refuses an untrusted state
    folder, like every other send (says so once on stderr)."""
    why = consent.kill_switch(os.environ) or _untrusted(cfg)
    if why:
        sys.stderr.write(f"{args.prog}: nothing sent: {why}\n")
    return bool(why)


def cmd_settings(args: argparse.Namespace) -> int:
    from . import settings

    if args.pairs == ["reset"]:
        settings.reset()
        print("settings reset to defaults (the environment still applies)")
        return 0
    if args.pairs:
        new, unset = {}, []
        for pair in args.pairs:
            key, sep, value = pair.partition("=")
            key = key.strip()
            if not sep:
                known = f"; '{args.prog} settings --help' lists them" if key else ""
                return _usage_error(args.prog, f"settings: expected KEY=VALUE, got {pair!r}{known}")
            try:
                config.check_key(key)
            except ValueError as exc:
                return _usage_error(
                    args.prog, f"settings: {exc}; '{args.prog} settings --help' lists them"
                )
            if value.strip():
                new[key] = value
            else:
                unset.append(key)  # KEY= : back to the default
        try:
            settings.update(new)  # validates every value first, names the one at fault
        except ValueError as exc:
            return _usage_error(args.prog, f"settings: {exc}")
        for key in unset:
            del settings[key]
        cfg = config.resolve()
        for key in [*new, *unset]:
            value, source = _shown(cfg, key), cfg.sources[key]
            verb = "unset" if key in unset else "set"
            note = ""
            if source == "env":
                var = config.SETTINGS[key].env
                note = f"; {var} in the environment wins"
            print(f"{verb} {key}: now {value}, from {_SOURCES.get(source, source)}{note}")
        return 0
    cfg = config.resolve()
    rows = [("KEY", "VALUE", "FROM", "MEANING")]
    for name, s in config.SETTINGS.items():
        if s.signal and cfg.values[name] is None:
            continue  # per-signal OTLP forms: listed only when set
        rows.append((name, _shown(cfg, name), _SOURCES.get(cfg.sources[name], ""), s.doc))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    for r in rows:
        print(f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:<{widths[2]}}  {r[3]}".rstrip())
    print(
        f"\n'{args.prog} settings KEY=VALUE' sets one, 'KEY=' unsets it; file: {cfg.paths.settings}"
    )
    return 0


_SOURCES = {"default": "default", "file": "settings", "env": "environment", "init": "tool"}


def _shown(cfg: config.Config, name: str) -> str:
    """A setting's value for a person: ``-`` when unset, secrets hidden, lists joined."""
    value = cfg.values[name]
    if value is None or value == "":
        return "-"
    if config.SETTINGS[name].secret:
        return "***"
    if isinstance(value, tuple):
        return ",".join(value) or "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _settings_help() -> str:
    """``settings --help``: every key, its variable and meaning."""
    lines = ["settings (KEY: meaning; environment variable):"]
    for name, s in config.SETTINGS.items():
        if s.signal:
            continue
        lines.append(f"  {name}: {s.doc}; {s.env}")
    lines.append(
        "  otlp_<signal>_<setting> (signal: traces, metrics or logs): the OTLP settings for"
        " one signal; OTEL_EXPORTER_OTLP_<SIGNAL>_<SETTING>"
    )
    lines.append(
        "\nPrecedence: defaults < settings file < environment < the tool's init()"
        " arguments, except OPTEL_DESTINATIONS, which wins over the tool."
    )
    return "\n".join(lines)


def cmd_describe(args: argparse.Namespace) -> int:
    """The "what we collect" page of a tool (Markdown, or its facts as JSON)."""
    from . import describe_cli, telemetry

    target = getattr(args, "target", None)
    preset = getattr(args, "optel_app", None)  # a tool's own command: the tool is here
    try:
        if target:
            found = describe_cli.load(target, getattr(args, "app", None), args.prog_name)
        elif preset:
            found = next((t for a, t in telemetry.tools.items() if a.lower() == preset.lower()),
                         None)  # fmt: skip
            if found is None:
                sys.stderr.write(
                    f"{args.prog}: {preset} has not set up optel (optel.init) in this process"
                    f" before this command ran; its authors can write the page with"
                    f" 'optel describe MODULE'\n"
                )
                return 1
        else:
            raise UsageError(
                "describe: name the tool: MODULE[:ATTRIBUTE] or SCRIPT.py[:ATTRIBUTE]"
                f" (see '{args.prog} describe --help')"
            )
        text = (
            json.dumps(describe_cli.describe_loaded(found, as_data=True), indent=2) + "\n"
            if args.json
            else describe_cli.describe_loaded(found)
        )
    except describe_cli.TargetError as exc:
        sys.stderr.write(f"{args.prog}: describe: {exc}\n")
        return 1
    except ValueError as exc:  # init() arguments the tool got wrong
        sys.stderr.write(f"{args.prog}: describe: the tool's optel.init() arguments: {exc}\n")
        return 1
    if args.output:
        with open(args.output, "w", encoding="utf-8") as f:
            f.write(text)
        print(f"wrote {args.output}")
    else:
        sys.stdout.write(text)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run

    return run()


def cmd_gateway_config(args: argparse.Namespace) -> int:
    from .gateway import command

    return command(args)


def cmd_ga4_validate(args: argparse.Namespace) -> int:
    """Send a sample batch (or what waits) to GA4's validation server; print its messages."""
    from .exporters import ga4

    cfg = config.resolve()
    if _refused(args, cfg):
        return 1
    if not (cfg["ga4_measurement_id"] and cfg["ga4_api_secret"]):
        return _usage_error(
            args.prog,
            "GA4 is not configured: set OPTEL_GA4_MEASUREMENT_ID and OPTEL_GA4_API_SECRET",
        )
    fragments = None
    if args.pending:
        from . import delivery

        spool = _spool(cfg)
        rows = [] if spool is None else spool.pending("ga4", limit=args.limit)
        if spool is not None:
            spool.close()
        # the records' own consent, as for any send: only what may leave now is validated
        decided: dict[tuple[str, str], bool] = {}
        for r in rows:
            key = (r.app, r.policy)
            if key not in decided:
                decided[key] = consent.decide(r.app, r.policy, p=cfg.paths).enabled
        held = sum(1 for r in rows if not decided[(r.app, r.policy)])
        if held:
            print(f"{held} waiting GA4 record(s) held back: their consent is off now")
        rows = [r for r in rows if decided[(r.app, r.policy)]]
        dest = ga4.Destination(cfg)  # renders what waits as it would be sent
        fragments = [f for f in (delivery.shown(r, dest) for r in rows) if f]
        if not fragments:
            print("no GA4 records waiting; validating the sample batch instead")
            fragments = None
    result = ga4.validate(cfg, fragments)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0 if not result["messages"] and not result["errors"] else 1
    where = ga4.endpoint(cfg) + ga4.limits.DEBUG_PATH
    answered, asked = result.get("answered", result["requests"]), result["requests"]
    reasons = ", ".join(dict.fromkeys(result["errors"]))
    if asked and not answered:
        unreachable = all(
            e.startswith(("ga4_connection_error", "ga4_timeout")) for e in result["errors"]
        )
        what = "could not connect to" if unreachable else "got no usable answer from"
        print(f"nothing validated: {what} GA4's validation server at {where}: {reasons}")
        return 1
    partly = answered < asked
    if partly:
        print(f"validated {answered} of {asked} request(s) at {where}; the rest: {reasons}")
    else:
        print(f"validated {result['events']} event(s) in {asked} request(s) at {where}")
    for m in result["messages"]:
        print(f"  {m.get('validationCode')}: {m.get('fieldPath')}: {m.get('description')}")
    if not partly:
        for e in result["errors"]:
            print(f"  error: {e}")
    print(f"{len(result['messages'])} validation message(s)")
    return 0 if not result["messages"] and not result["errors"] else 1


# -- parser --------------------------------------------------------------------


def build_parser(
    prog: str = "optel", app: str | None = None, policy: str | None = None
) -> argparse.ArgumentParser:
    """The parser; ``app`` presets ``--app`` and ``policy`` the policy
    ``status`` assumes (for a tool's own subcommand, see :func:`mount`)."""
    p = _Parser(
        prog=prog,
        description="See and control what optel telemetry sends.",
        epilog="OPTEL_DEBUG=1 before a tool's command previews what it would send, and sends"
        " and writes nothing; DO_NOT_TRACK=1 turns all sending off.",
    )
    if app is None:  # optel's own command (a tool has its own --version)
        p.add_argument(
            "--version", action="version", version=f"optel {__version__}", help="optel's version"
        )
    p.set_defaults(optel_prog=prog)
    if app is not None and prog != "optel":
        commands.register(app, prog)  # messages name the tool's command
    _add_commands(p, app, policy)
    return p


def _help(p: argparse.ArgumentParser) -> int:
    p.print_help()
    return 0


def _add_commands(p: argparse.ArgumentParser, app: str | None, policy: str | None) -> None:
    """optel's commands; a preset ``app`` means a tool's own command, which
    lists only what its users need (no ``demo``, no ``ga4``)."""
    sub = p.add_subparsers(dest="optel_command", metavar="COMMAND", parser_class=_Parser)
    p.set_defaults(func=lambda a: _help(p))  # no command: the help, not an error
    who = app or "a tool"

    def command(name: str, about: str, **kw: Any) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=about, description=about[:1].upper() + about[1:] + ".",
                              **kw)  # fmt: skip

    def with_app(sp: argparse.ArgumentParser) -> None:
        where = f"default: {app}" if app else "default: every optel tool"
        sp.set_defaults(optel_app=app)  # a preset, which --global overrides without a conflict
        sp.add_argument(
            "--app", default=None, metavar="TOOL", help=f"one tool, by name in any case ({where})"
        )
        sp.add_argument(
            "--global",
            dest="all_tools",
            action="store_true",
            help="every optel tool on this machine",
        )

    def as_json(sp: argparse.ArgumentParser, what: str) -> None:
        sp.add_argument("--json", action="store_true", help=f"print {what} as JSON")

    s = command("status", f"whether {who} sends telemetry now and why, where to, what waits")
    with_app(s)
    s.add_argument(
        "--policy",
        choices=("opt-in", "opt-out"),
        default=policy,
        help="the tool's policy (default: the one it was seen with here, else opt-in)",
    )
    as_json(s, "the facts")
    s.set_defaults(func=cmd_status)
    for name, decision, about in (
        ("opt-in", consent.GRANTED, "allow telemetry"),
        ("opt-out", consent.DENIED, "refuse telemetry and delete what waits, the id and the salt"),
    ):
        s = command(name, f"{about}: for {who}, or every tool with --global")
        with_app(s)
        s.set_defaults(func=lambda a, d=decision: cmd_opt(a, d))
    s = command("show", "what waits to be sent: a summary, and each payload exactly as sent")
    s.add_argument("--full", action="store_true", help="print each payload after the summary")
    as_json(s, "the payloads (no summary)")
    s.add_argument("--sent", action="store_true", help="what already left (the audit log)")
    s.add_argument(
        "--limit", type=_count, default=200, metavar="N", help="payloads printed at most (200)"
    )
    s.set_defaults(func=cmd_show)
    s = command("flush", "send what waits, now (progress on a terminal for large backlogs)")
    s.add_argument(
        "--timeout",
        type=_timeout,
        default=30.0,
        metavar="SECONDS",
        help="give up after this long; what is left waits for later (default 30)",
    )
    s.set_defaults(func=cmd_flush)
    s = command(
        "settings",
        "view settings, or change them: KEY=VALUE sets, KEY= unsets, reset forgets all",
        epilog=_settings_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    s.add_argument("pairs", nargs="*", metavar="KEY=VALUE", help="settings to change (or: reset)")
    s.set_defaults(func=cmd_settings)
    s = command(
        "describe",
        f"what {who} collects, as a Markdown page generated from its declarations",
        epilog=None if app else _describe_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    if app is None:
        s.add_argument(
            "target",
            nargs="?",
            metavar="TARGET",
            help="the tool: MODULE[:ATTRIBUTE] or SCRIPT.py[:ATTRIBUTE]",
        )
        s.add_argument(
            "--app", default=None, metavar="TOOL", help="which tool, when the import makes several"
        )
        s.add_argument(
            "--prog",
            dest="prog_name",
            metavar="COMMAND",
            help="what users type to run the tool (default: the script or package name)",
        )
    else:
        s.set_defaults(optel_app=app)
    as_json(s, "the page's facts")
    s.add_argument("-o", "--output", metavar="FILE", help="write the page to FILE")
    s.set_defaults(func=cmd_describe)
    if app is not None:
        return
    s = command("demo", "run a sample tool instrumented with optel, in a throw-away folder")
    s.set_defaults(func=cmd_demo)
    from .report.command import add_parser as add_report  # its code lives in optel.report

    add_report(sub)
    s = command("ga4", "Google Analytics 4 destination tools")
    ga4_sub = s.add_subparsers(dest="ga4_command", metavar="ACTION", parser_class=_Parser)
    ga4_sub.required = True
    about = "send a sample batch (or what waits) to GA4's validation server, print its messages"
    s = ga4_sub.add_parser("validate", help=about, description=about[:1].upper() + about[1:] + ".")
    s.add_argument(
        "--pending", action="store_true", help="validate the GA4 records waiting instead"
    )
    s.add_argument(
        "--limit", type=_count, default=100, metavar="N", help="records validated at most (100)"
    )
    as_json(s, "the server's answers")
    s.set_defaults(func=cmd_ga4_validate)
    s = command("gateway-config", "print the gateway collector's config (optel's rules)")
    s.add_argument(
        "--declarations",
        action="append",
        default=[],
        metavar="MODULE:NAME",
        help="a tool's declared keys: the mapping it passes to optel.init(attributes=)",
    )
    s.add_argument("--free-text", action="store_true", help="the tools opted in to free text")
    s.set_defaults(func=cmd_gateway_config)


def _describe_help() -> str:
    return (
        "How the tool is read: its module is imported (a script runs as a module, not as\n"
        "__main__) with optel.init() in describe mode: init checks and keeps its arguments\n"
        "and decides, asks, writes and sends nothing, whatever the consent. A tool whose\n"
        "init() runs later (in main()) names what describes it: MODULE:ATTRIBUTE, a\n"
        "telemetry object, a dict of init() arguments or a function returning one.\n"
        "In Python: optel.describe(**init_args) or telemetry.describe()."
    )


def main(
    argv: Sequence[str] | None = None,
    prog: str = "optel",
    app: str | None = None,
    policy: str | None = None,
) -> int:
    """Run optel's command line and return the exit status.

    A tool can offer the same commands under its own name, with its app
    (and policy) preset, in two lines::

        # mytool telemetry status | opt-in | opt-out | show | flush | settings
        if sys.argv[1:2] == ["telemetry"]:
            sys.exit(optel.cli.main(sys.argv[2:], prog="mytool telemetry", app="mytool"))

    or, with argparse, through :func:`mount`. ``--global`` still reaches
    every optel tool.
    """
    parser = build_parser(prog, app, policy)
    return run(parser.parse_args(argv))


def mount(
    subparsers: Any,
    name: str = "telemetry",
    *,
    app: str,
    policy: str = "opt-in",
    prog: str | None = None,
    help: str = "see and control the anonymous telemetry this tool sends",
) -> argparse.ArgumentParser:
    """Add optel's commands as ``name`` to a tool's argparse ``subparsers``::

        sub = parser.add_subparsers(dest="command")
        optel.cli.mount(sub, app="mytool", policy="opt-in")
        args = parser.parse_args()
        if optel.cli.handles(args):
            sys.exit(optel.cli.run(args))

    ``mytool telemetry status`` then reports for ``mytool`` under its policy.
    """
    if policy not in consent.POLICIES:
        raise ValueError(f"policy must be 'opt-in' or 'opt-out', got {policy!r}")
    parser = subparsers.add_parser(name, help=help, description=help)
    parser.set_defaults(optel_prog=prog or parser.prog)
    commands.register(app, prog or parser.prog)  # messages name the tool's command
    _add_commands(parser, app, policy)
    return parser


def handles(args: argparse.Namespace) -> bool:
    """True when ``args`` (parsed by a tool's parser) is one of optel's commands."""
    return callable(getattr(args, "func", None)) and bool(getattr(args, "optel_prog", None))


def run(args: argparse.Namespace) -> int:
    """Run the optel command parsed into ``args``; the exit status."""
    prog = getattr(args, "optel_prog", None) or "optel"
    args.prog = prog  # the commands name themselves in usage errors
    try:
        status = int(args.func(args))
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's last flush
        return status
    except UsageError as exc:  # found after parsing (contradictory flags, --app)
        return _usage_error(prog, str(exc))
    except BrokenPipeError:  # `optel show | head`: the reader has all it wants
        _quiet_stdout()
        return 141  # as a shell reports a command ended by SIGPIPE
    except KeyboardInterrupt:
        _quiet_stdout()
        sys.stderr.write("\n")
        return 130
    except OSError as exc:
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        sys.stderr.write(f"{prog}: {exc.strerror or exc}{where}\n")
        return 1


def _quiet_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's own last flush of a closed
    pipe prints nothing either."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
