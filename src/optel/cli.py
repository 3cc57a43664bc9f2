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


def _spool(cfg: config.Config, create: bool = False) -> Any:
    """The spool, or ``None`` when there is none yet and ``create`` is off."""
    from .spool import Spool, limits_from

    if not create and not os.path.exists(cfg.paths.spool):
        return None
    return Spool(cfg.paths.spool, limits_from(cfg.values))


# -- commands ------------------------------------------------------------------


def status_data(app: str | None, policy: str = "opt-in") -> dict[str, Any]:
    """The facts ``optel status`` prints (also used by the demo and tests)."""
    cfg = config.resolve()
    d = consent.decide(app or "", policy, p=cfg.paths)
    spool = _spool(cfg)
    pending, stats, last_error = 0, {}, None
    if spool is not None:
        try:
            pending = spool.count(app)
            stats = spool.stats()
            last_error = spool.last_error()
        except Exception as exc:  # a broken spool must not break status
            last_error = f"spool unreadable: {exc}"
        finally:
            spool.close()
    return {
        "app": app,
        "consent": d.consent,
        "enabled": d.enabled,
        "reason": d.reason,
        "scope": d.scope or None,
        "source": d.source or None,  # how the applying decision was recorded
        "notice_version": d.notice_version,
        # a record optel cannot use (telemetry is off until a new decision)
        "problem": d.problem or None,
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


def cmd_status(args: argparse.Namespace) -> int:
    data = status_data(None if args.all_tools else args.app, args.policy)
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    who = data["app"] or "every optel tool"
    print(f"telemetry for {who}: {'ON' if data['enabled'] else 'OFF'} ({data['reason']})")
    how = f" ({data['scope']} decision, {data['source']})" if data["scope"] else ""
    print(f"consent:      {data['consent']}{how}")
    if data["problem"]:
        print(f"problem:      {data['problem']}")
    for path in data["kept_aside"]:
        print(
            f"kept aside:   {path} (an earlier record optel could not read; yours to inspect or delete)"
        )
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


def cmd_opt(args: argparse.Namespace, decision: str) -> int:
    cfg = config.resolve()
    if args.all_tools:
        args.app = None
    scope = f"for {args.app}" if args.app else "for every optel tool"
    try:
        consent.record(decision, args.app, source="cli", p=cfg.paths)
    except OSError as exc:  # e.g. a read-only home: say so in one line, change nothing
        meanwhile = "; DO_NOT_TRACK=1 turns it off meanwhile" if decision == consent.DENIED else ""
        sys.stderr.write(
            f"{args.prog}: cannot record the decision in {cfg.paths.config_dir}"
            f" ({exc.strerror or exc.__class__.__name__}); set OPTEL_HOME to a writable"
            f" folder{meanwhile}\n"
        )
        return 1
    # recorded first: a sender checking now already sees the refusal
    removed = consent.take_effect(decision, args.app, cfg.paths)
    if decision == consent.GRANTED:
        undo = commands.command("opt-out", args.app, every_tool=not args.app)
        print(f"telemetry consent granted {scope}; '{undo}' withdraws it")
        return 0
    print(
        f"telemetry consent withdrawn {scope}; deleted {removed} waiting record(s) and the client id"
    )
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    cfg = config.resolve()
    spool = _spool(cfg)
    if args.sent:
        rows = [] if spool is None else spool.sent_log(args.limit)
        items = [
            {"time": t, "destination": d, "app": a, "payload": _parse(p)} for t, d, a, p in rows
        ]
    else:
        found = [] if spool is None else spool.pending(limit=args.limit)
        items = [
            {
                "id": r.id,
                "destination": r.destination,
                "app": r.app,
                "signal": r.signal,
                "created": r.created,
                "attempts": r.attempts,
                "payload": _parse(r.payload),
            }
            for r in found
        ]
    if spool is not None:
        spool.close()
    if args.json:
        print(json.dumps(items, indent=2))
        return 0
    what = "sent" if args.sent else "waiting to be sent"
    print(f"{len(items)} record(s) {what} (spool: {cfg.paths.spool})")
    for item in items:
        when = time.strftime(
            "%Y-%m-%d %H:%M:%S", time.localtime(item.get("created") or item.get("time"))
        )
        print(f"\n[{item['destination']}] {item['app']} {item.get('signal', '')} {when}")
        print(json.dumps(item["payload"], indent=2))
    return 0


def _parse(payload: str) -> Any:
    try:
        return json.loads(payload)
    except ValueError:
        return payload


def cmd_flush(args: argparse.Namespace) -> int:
    from . import delivery, exporters

    cfg = config.resolve()
    spool = _spool(cfg)
    if spool is None:
        print("nothing waiting")
        return 0
    owner = f"flush-{os.getpid()}"
    # the user asked for now: rows still backing off go too
    with exporters.Destinations(cfg) as dests:  # this command's own, closed when done
        deadline = time.monotonic() + args.timeout
        report = delivery.deliver(spool, dests, cfg, deadline, owner, force=True)
    left = spool.count()
    spool.close()
    print(
        f"sent {report.sent}, retry later {report.retried}, dropped {report.dropped},"
        f" held back {report.held}; {left} waiting"
    )
    for err in report.errors:
        print(f"  {err}")
    return 0 if not report.errors else 1


def cmd_settings(args: argparse.Namespace) -> int:
    from . import settings

    if args.pairs == ["reset"]:
        settings.reset()
        print("settings reset to defaults")
        return 0
    if args.pairs:
        new = {}
        for pair in args.pairs:
            key, sep, value = pair.partition("=")
            if not sep:
                return _usage_error(args.prog, f"expected KEY=VALUE, got {pair!r}")
            new[key.strip()] = value
        try:
            settings.update(new)
        except ValueError as exc:
            return _usage_error(args.prog, str(exc))
    cfg = config.resolve()
    for name, s in config.SETTINGS.items():
        value = cfg.values[name]
        if s.signal and value is None:
            continue  # per-signal OTLP forms: listed only when set
        if s.secret and value:
            value = "***"
        if isinstance(value, tuple):
            value = ",".join(value) or "none"
        print(f"{name} = {value}  [{cfg.sources[name]}]  {s.doc}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run

    return run()


def cmd_ga4_validate(args: argparse.Namespace) -> int:
    """Send a sample batch (or what waits) to GA4's validation server; print its messages."""
    from .exporters import ga4

    cfg = config.resolve()
    if not (cfg["ga4_measurement_id"] and cfg["ga4_api_secret"]):
        return _usage_error(
            args.prog,
            "GA4 is not configured: set OPTEL_GA4_MEASUREMENT_ID and OPTEL_GA4_API_SECRET",
        )
    fragments = None
    if args.pending:
        spool = _spool(cfg)
        rows = [] if spool is None else spool.pending("ga4", limit=args.limit)
        if spool is not None:
            spool.close()
        fragments = [r.payload for r in rows]
        if not fragments:
            print("no GA4 records waiting; validating the sample batch instead")
            fragments = None
    result = ga4.validate(cfg, fragments)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        where = ga4.endpoint(cfg) + ga4.limits.DEBUG_PATH
        print(
            f"validated {result['events']} event(s) in {result['requests']} request(s) at {where}"
        )
        for m in result["messages"]:
            print(f"  {m.get('validationCode')}: {m.get('fieldPath')}: {m.get('description')}")
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
    p = _Parser(prog=prog, description="See and control what optel telemetry sends.")
    if app is None:  # optel's own command (a tool has its own --version)
        p.add_argument("--version", action="version", version=f"optel {__version__}")
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

    def with_app(sp: argparse.ArgumentParser) -> None:
        where = f"default: {app}" if app else "default: every optel tool"
        sp.add_argument("--app", default=app, help=f"one tool ({where})")
        sp.add_argument("--global", dest="all_tools", action="store_true", help="every optel tool")

    s = sub.add_parser("status", help="consent, whether sending is on and why, what waits")
    with_app(s)
    s.add_argument("--policy", choices=("opt-in", "opt-out"), default=policy or "opt-in")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_status)
    for name, decision in (("opt-in", consent.GRANTED), ("opt-out", consent.DENIED)):
        s = sub.add_parser(name, help=f"record the decision to {name}")
        with_app(s)
        s.set_defaults(func=lambda a, d=decision: cmd_opt(a, d))
    s = sub.add_parser("show", help="what is waiting to be sent, exactly as it would be sent")
    s.add_argument("--json", action="store_true")
    s.add_argument("--sent", action="store_true", help="what was sent (audit log)")
    s.add_argument("--limit", type=int, default=200)
    s.set_defaults(func=cmd_show)
    s = sub.add_parser("flush", help="deliver what is waiting, now")
    s.add_argument("--timeout", type=float, default=30.0)
    s.set_defaults(func=cmd_flush)
    s = sub.add_parser("settings", help="view or change settings: KEY=VALUE ..., or reset")
    s.add_argument("pairs", nargs="*", metavar="KEY=VALUE")
    s.set_defaults(func=cmd_settings)
    if app is not None:
        return
    s = sub.add_parser("demo", help="run a sample tool instrumented with optel")
    s.set_defaults(func=cmd_demo)
    s = sub.add_parser("ga4", help="Google Analytics 4 destination tools")
    ga4_sub = s.add_subparsers(dest="ga4_command", metavar="ACTION", parser_class=_Parser)
    ga4_sub.required = True
    s = ga4_sub.add_parser(
        "validate", help="send a sample batch to /debug/mp/collect, print messages"
    )
    s.add_argument(
        "--pending", action="store_true", help="validate the GA4 records waiting instead"
    )
    s.add_argument("--limit", type=int, default=100)
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_ga4_validate)


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
        return int(args.func(args))
    except KeyboardInterrupt:
        return 130
    except OSError as exc:
        sys.stderr.write(f"{prog}: {exc.strerror or exc} ({getattr(exc, 'filename', '')})\n")
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
