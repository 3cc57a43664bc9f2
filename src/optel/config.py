"""Settings: what optel does, and where it keeps its state.

Precedence, lowest to highest::

    defaults  <  settings file  <  environment  <  init() arguments

with one exception: ``OPTEL_DESTINATIONS`` (the administrator's routing)
wins over the tool's ``init(destinations=...)``.

- *defaults* are the ``default`` of each :class:`Setting` below;
- the *settings file* is ``settings.json`` in the config folder, written by
  ``optel settings KEY=VALUE`` or ``optel.settings.update({...})``;
- the *environment* is the variable named by each setting (``OPTEL_*`` and
  the standard ``OTEL_*`` ones);
- *init() arguments* are what the tool passes to :func:`optel.init`.

A bad value in the file or the environment is skipped with one warning and
the next lower layer applies; a bad value from ``init()`` or
``settings.update()`` raises ``ValueError`` at once (the caller can fix it).
Consent is not a setting: it lives in ``consent`` and has its own rules.
"""

from __future__ import annotations

import os

from . import _errors, _fs, commands, env, kinds

TYPE_CHECKING = False  # typing is not imported at run time: it costs start-up
if TYPE_CHECKING:
    from typing import Any, Callable, Iterator, Mapping

DESTINATIONS = ("ga4", "otlp", "local", "none")

OTLP_SIGNAL = {"span": "traces", "metric": "metrics", "event": "logs", "log": "logs"}
"""The OTLP signal each kind of optel record is sent as (an event is a log record
named by ``event.name``)."""


# -- folders -----------------------------------------------------------------


class Paths:
    """Where optel keeps its state: every file it writes is named here."""

    __slots__ = ("config_dir", "data_dir")

    def __init__(self, config_dir: str, data_dir: str):
        self.config_dir = config_dir
        self.data_dir = data_dir

    def __repr__(self) -> str:
        return f"Paths({self.config_dir!r}, {self.data_dir!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Paths) and (self.config_dir, self.data_dir) == (
            other.config_dir,
            other.data_dir,
        )

    def __hash__(self) -> int:
        return hash((self.config_dir, self.data_dir))

    @property
    def consent(self) -> str:
        """The consent decisions and notices shown (``optel.consent.store``)."""
        return os.path.join(self.config_dir, "consent.json")

    @property
    def identity(self) -> str:
        """The random client id (``optel.identity``)."""
        return os.path.join(self.config_dir, "identity.json")

    @property
    def settings(self) -> str:
        """Stored settings (``optel settings``)."""
        return os.path.join(self.config_dir, "settings.json")

    @property
    def salt(self) -> str:
        """The local salt of ``optel.hashed`` (never leaves the machine)."""
        return os.path.join(self.config_dir, "salt.json")

    @property
    def usage(self) -> str:
        """How many times each tool ran here (a coarse bucket is sent)."""
        return os.path.join(self.config_dir, "usage.json")

    @property
    def lock(self) -> str:
        """The cross-process lock guarding writes to the files above."""
        return os.path.join(self.config_dir, ".lock")

    @property
    def spool(self) -> str:
        """The spool database (``-wal`` and ``-shm`` files beside it)."""
        return os.path.join(self.data_dir, "spool.sqlite3")

    def kept_aside(self) -> list[str]:
        """Unreadable state files moved aside earlier (the user's to inspect or delete)."""
        return sorted(
            aside
            for path in (self.consent, self.settings, self.spool)
            for aside in _fs.kept_aside(path)
        )


def paths(environ: Mapping[str, str] | None = None) -> Paths:
    """The state folders: ``OPTEL_HOME`` or the per-user folders."""
    environ = os.environ if environ is None else environ
    home = environ.get(env.OPTEL_HOME, "").strip()
    if home:
        home = os.path.abspath(os.path.expanduser(home))
        return Paths(home, home)
    import platformdirs  # only when needed: it costs import time

    return Paths(
        platformdirs.user_config_dir("optel", appauthor=False),
        platformdirs.user_data_dir("optel", appauthor=False),
    )


def declared_keys(environ: Mapping[str, str]) -> list[str]:
    """The attribute keys ``OPTEL_ALLOWED_ATTRIBUTES`` declares (comma list), for
    programs that do not call ``init`` themselves (the drop-in, the GA4 exporter)."""
    raw = environ.get(env.OPTEL_ALLOWED_ATTRIBUTES, "")
    keys: list[str] = []
    bad: list[str] = []
    for key in (k.strip() for k in raw.split(",")):
        if key:
            (bad if kinds.check_key(key) is not None else keys).append(key)
    if bad:
        # one mistyped key must not turn the whole drop-in off: the rest still apply
        _errors.warn_once(
            "allowed-attributes",
            f"{env.OPTEL_ALLOWED_ATTRIBUTES}: ignoring {', '.join(map(repr, bad))}"
            f" ({kinds.check_key(bad[0])}); using {', '.join(keys) or 'no declared keys'}",
        )
    return keys


# -- value parsers -------------------------------------------------------------

TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
"""Values that switch a boolean setting or a kill switch on (any case)."""
_FALSE = {"0", "false", "no", "off", ""}


def parse_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in TRUE_WORDS:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"expected true/false, got {value!r}")


def _int_in(lo: int, hi: int) -> Callable[[Any], int]:
    def parse(value: Any) -> int:
        if isinstance(value, bool):
            raise ValueError(f"expected a whole number, got {value!r}")
        try:
            number = int(str(value).strip()) if not isinstance(value, int) else value
        except ValueError:
            raise ValueError(f"expected a whole number, got {value!r}") from None
        if not lo <= number <= hi:
            raise ValueError(f"expected a number from {lo} to {hi}, got {number}")
        return number

    return parse


def parse_destinations(value: Any) -> tuple[str, ...]:
    """``"ga4,otlp"`` or a list -> validated tuple; ``none`` means no sending."""
    if isinstance(value, str):
        items = value.split(",")
    elif isinstance(value, (list, tuple)):
        items = list(value)
    else:
        raise ValueError(f"expected a comma list of ga4, otlp, local, none, got {value!r}")
    names = [str(v).strip().lower() for v in items if str(v).strip()]
    if not names:
        raise ValueError("expected a comma list of ga4, otlp, local, none")
    bad = [n for n in names if n not in DESTINATIONS]
    if bad:
        raise ValueError(f"unknown destination {bad[0]!r} (choose from {', '.join(DESTINATIONS)})")
    if "none" in names:
        return ()
    return tuple(dict.fromkeys(names))


def _text(value: Any) -> str:
    text = str(value).strip()
    if not text:
        raise ValueError("expected a non-empty value")
    return text


def _choice(*choices: str) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        text = str(value).strip().lower()
        if text not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}, got {value!r}")
        return text

    return parse


def _url(value: Any) -> str:
    text = _text(value)
    if not (text.startswith("http://") or text.startswith("https://")):
        raise ValueError(f"expected an http:// or https:// URL, got {text!r}")
    return text.rstrip("/")


def _float_in(lo: float, hi: float) -> Callable[[Any], float]:
    def parse(value: Any) -> float:
        if isinstance(value, bool):
            raise ValueError(f"expected a number, got {value!r}")
        try:
            number = float(str(value).strip())
        except ValueError:
            raise ValueError(f"expected a number, got {value!r}") from None
        if not lo <= number <= hi:
            raise ValueError(f"expected a number from {lo:g} to {hi:g}, got {number:g}")
        return number

    return parse


_TOKEN = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


def parse_otlp_headers(text: Any) -> tuple[dict[str, str], list[str]]:
    """``k1=v1,k2=v2`` (values URL-encoded, as the OTLP exporter spec says):
    the headers, and the entries that are not a valid ``name=value`` (a header
    name is an HTTP token; a value holds no line break)."""
    from urllib.parse import unquote

    headers: dict[str, str] = {}
    bad: list[str] = []
    for part in str(text or "").split(","):
        if not part.strip():
            continue
        key, sep, value = part.partition("=")
        name, value = unquote(key.strip()), unquote(value.strip())
        if not sep or not name or not set(name) <= _TOKEN or any(c in value for c in "\r\n\0"):
            bad.append(part.strip())
            continue
        headers[name] = value
    return headers, bad


def _headers(value: Any) -> str:
    headers, bad = parse_otlp_headers(value)
    if bad:
        raise ValueError(f"{len(bad)} entr{'y is' if len(bad) == 1 else 'ies are'} not name=value")
    if not headers:
        raise ValueError("expected name=value pairs")
    return str(value).strip()


def _salvage_headers(value: Any) -> tuple[str, str] | None:
    """The valid entries of a header list with malformed ones, and what that means."""
    headers, bad = parse_otlp_headers(value)
    if not headers:
        return None
    from urllib.parse import quote

    kept = ",".join(f"{quote(k)}={quote(v)}" for k, v in headers.items())
    return kept, f"the other {len(headers)} header(s)"


def _file(value: Any) -> str:
    path = os.path.expanduser(_text(value))
    if not os.path.isfile(path):
        raise ValueError(f"no such file: {path}")
    return path


# -- the settings ----------------------------------------------------------------


# The JSON types a setting may have in the settings file: anything else is
# a wrong type (one warning, ignored), never handed to a parser.
TEXT: tuple[type, ...] = (str,)
NUMBER: tuple[type, ...] = (int, float, str)  # a number, or its text (a hand edit)
BOOL: tuple[type, ...] = (bool, str)
LIST: tuple[type, ...] = (list, str)  # a list of names, or a comma list


class Setting:
    """One setting: its default, parser, environment variable and meaning.

    ``signal`` marks the per-signal form of an OTLP setting
    (``OTEL_EXPORTER_OTLP_TRACES_HEADERS``): it wins over the general one for
    that signal, and ``optel settings`` lists it only when it is set.
    ``types``: the JSON types it may have in the settings file.
    """

    __slots__ = (
        "name",
        "default",
        "parse",
        "env",
        "doc",
        "secret",
        "signal",
        "types",
        "unset",
        "salvage",
    )

    def __init__(
        self,
        name: str,
        default: Any,
        parse: Callable[[Any], Any],
        env: str | None,
        doc: str,
        secret: bool = False,
        signal: str | None = None,
        types: tuple[type, ...] = TEXT,
        unset: str = "nothing",
        salvage: Callable[[Any], tuple[Any, str] | None] | None = None,
    ):
        self.name, self.default, self.parse = name, default, parse
        self.env, self.doc, self.secret, self.signal = env, doc, secret, signal
        self.types = types
        self.unset = unset
        """What the setting's absence means, for warnings (``"http/protobuf"``)."""
        self.salvage = salvage
        """For a value that is partly wrong: (the usable part, what it is), or None."""

    def file_type_error(self, raw: Any) -> str | None:
        """Why ``raw`` (a value from the settings file) has the wrong type, or ``None``."""
        ok = isinstance(raw, self.types) and not (isinstance(raw, bool) and bool not in self.types)
        if ok and isinstance(raw, list):
            ok = all(isinstance(item, str) for item in raw)
        if ok:
            return None
        names = {str: "text", int: "a number", float: "a number", bool: "true/false",
                 list: "a list of names"}  # fmt: skip
        wanted = " or ".join(dict.fromkeys(names[t] for t in self.types))
        return f"expected {wanted}, got {_json_type(raw)}"


def _json_type(raw: Any) -> str:
    if raw is None:
        return "null"
    if isinstance(raw, bool):
        return "true/false"
    if isinstance(raw, (int, float)):
        return "a number"
    if isinstance(raw, str):
        return "text"
    if isinstance(raw, list):
        return "a list" if all(isinstance(i, str) for i in raw) else "a list of non-text items"
    return "an object"


def _otlp(name: str, parse: Callable[[Any], Any], var: str, doc: str, **kw: Any) -> list[Setting]:
    """An OTLP exporter setting: the general variable and one per signal
    (https://opentelemetry.io/docs/specs/otel/protocol/exporter/)."""
    out = [Setting(f"otlp_{name}", None, parse, var, doc, **kw)]
    for signal in env.OTLP_SIGNALS:
        out.append(
            Setting(
                f"otlp_{signal}_{name}",
                None,
                parse,
                env.otlp_signal_var(var, signal),
                f"{doc} ({signal} only)",
                signal=signal,
                **kw,
            )
        )
    return out


# the OTLP exporter settings' names, per signal (``otlp_traces_headers``)
def _general(setting: Setting) -> Setting | None:
    """The general setting a per-signal one falls back to."""
    if not setting.signal:
        return None
    return SETTINGS.get(setting.name.replace(f"otlp_{setting.signal}_", "otlp_", 1))


_TABLE = (
    Setting(
        "destinations",
        None,
        parse_destinations,
        env.OPTEL_DESTINATIONS,
        "where records go: ga4, otlp, local, none (default: every configured one, else local)",
        types=LIST,
        unset="every configured destination (else local)",
    ),
    Setting(
        "exit_budget_ms",
        300,
        _int_in(0, 60_000),
        env.OPTEL_EXIT_BUDGET_MS,
        "most milliseconds optel may add to the host's exit",
        types=NUMBER,
    ),
    Setting(
        "debug", False, parse_bool, env.OPTEL_DEBUG, "print payloads, send nothing", types=BOOL
    ),
    Setting("ga4_measurement_id", None, _text, env.OPTEL_GA4_MEASUREMENT_ID, "GA4 measurement id"),
    Setting(
        "ga4_api_secret",
        None,
        _text,
        env.OPTEL_GA4_API_SECRET,
        "GA4 Measurement Protocol API secret",
        secret=True,
    ),
    Setting(
        "ga4_endpoint",
        "https://www.google-analytics.com",
        _url,
        env.OPTEL_GA4_ENDPOINT,
        "base URL of the GA4 service",
    ),
    Setting(
        "ga4_region",
        "global",
        _choice("global", "eu"),
        env.OPTEL_GA4_REGION,
        "eu: send to GA4's EU endpoint (region1) unless ga4_endpoint is set",
    ),
    Setting(
        "otlp_endpoint",
        None,
        _url,
        env.OTEL_EXPORTER_OTLP_ENDPOINT,
        "OTLP collector base URL (/v1/traces, /v1/metrics, /v1/logs are added)",
        unset="no OTLP endpoint",
    ),
    *(
        Setting(
            f"otlp_{signal}_endpoint",
            None,
            _url,
            env.otlp_signal_var(env.OTEL_EXPORTER_OTLP_ENDPOINT, signal),
            f"full OTLP URL for {signal}, used as is (turns the otlp destination on for it)",
            signal=signal,
            unset="no OTLP endpoint of its own",
        )
        for signal in env.OTLP_SIGNALS
    ),
    *_otlp(
        "protocol",
        _choice("http/protobuf", "http/json", "grpc"),
        env.OTEL_EXPORTER_OTLP_PROTOCOL,
        "OTLP transport: http/protobuf (default), http/json or grpc",
        unset="http/protobuf",
    ),
    *_otlp(
        "headers",
        _headers,
        env.OTEL_EXPORTER_OTLP_HEADERS,
        "extra OTLP request headers, k1=v1,k2=v2 (values URL-encoded)",
        secret=True,
        unset="no extra headers",
        salvage=_salvage_headers,
    ),
    *_otlp(
        "compression",
        _choice("gzip", "none"),
        env.OTEL_EXPORTER_OTLP_COMPRESSION,
        "OTLP body compression: gzip or none",
        unset="none",
    ),
    *_otlp(
        "timeout",
        _float_in(1, 600_000),
        env.OTEL_EXPORTER_OTLP_TIMEOUT,
        "most milliseconds one OTLP request may take (the exit budget still bounds it)",
        types=NUMBER,
        unset="no timeout of its own (a request takes 10 s at most)",
    ),
    *_otlp(
        "certificate",
        _file,
        env.OTEL_EXPORTER_OTLP_CERTIFICATE,
        "CA certificate file to verify the OTLP server with",
        unset="the usual CA certificates",
    ),
    *_otlp(
        "client_certificate",
        _file,
        env.OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE,
        "client certificate file for mutual TLS",
        unset="no client certificate",
    ),
    *_otlp(
        "client_key",
        _file,
        env.OTEL_EXPORTER_OTLP_CLIENT_KEY,
        "client private key file for mutual TLS",
        unset="no client key",
    ),
    *_otlp(
        "insecure",
        parse_bool,
        env.OTEL_EXPORTER_OTLP_INSECURE,
        "gRPC without TLS (an http:// endpoint is plain anyway)",
        types=BOOL,
        unset="false",
    ),
    Setting(
        "spool_max_records",
        10_000,
        _int_in(10, 10_000_000),
        env.OPTEL_SPOOL_MAX_RECORDS,
        "most records waiting on disk (oldest dropped first)",
        types=NUMBER,
    ),
    Setting(
        "spool_max_bytes",
        20_000_000,
        _int_in(10_000, 10_000_000_000),
        env.OPTEL_SPOOL_MAX_BYTES,
        "most payload bytes waiting on disk",
        types=NUMBER,
    ),
    Setting(
        "spool_max_age_hours",
        168,
        _int_in(1, 24 * 365),
        env.OPTEL_SPOOL_MAX_AGE_HOURS,
        "records older than this are dropped unsent",
        types=NUMBER,
    ),
    Setting(
        "flush_interval_ms",
        5_000,
        _int_in(50, 600_000),
        env.OPTEL_FLUSH_INTERVAL_MS,
        "how often the worker spools and sends in the background",
        types=NUMBER,
    ),
    Setting(
        "prompt_timeout_s",
        10.0,
        _float_in(0, 600),
        env.OPTEL_PROMPT_TIMEOUT_S,
        "seconds the consent question waits for an answer (0: never ask)",
        types=NUMBER,
    ),
)

SETTINGS: dict[str, Setting] = {s.name: s for s in _TABLE}
"""Every setting optel has, by name: the one table (``optel settings`` lists it)."""


def suggest(key: str) -> str:
    """`` (did you mean 'x'?)`` for a mistyped setting name, else ``""``."""
    import difflib  # only for a mistyped key: keeps start-up cheap

    match = difflib.get_close_matches(key, list(SETTINGS), n=1)
    return f" (did you mean {match[0]!r}?)" if match else ""


def check_key(key: str) -> Setting:
    try:
        return SETTINGS[key]
    except KeyError:
        raise ValueError(f"unknown setting {key!r}{suggest(key)}") from None


def read_file(p: Paths) -> dict[str, Any]:
    """Settings stored in the file, validated; bad entries skipped with a warning.

    Never raises: a file that cannot be used (unreadable, not JSON, too big or
    too deeply nested, a link, in a folder others can write) is ignored with
    one warning; an unknown key, a value of the wrong JSON type (``null``, an
    object, a number where text belongs) or a value its setting rejects is
    skipped with one warning each.
    """
    try:
        data = _fs.read_json(p.settings)
    except NotADirectoryError:
        return {}  # the state folder cannot exist, so neither can the file (consent says why)
    except _fs.UntrustedFolder as exc:
        _fs.warn_untrusted(str(exc.strerror).removeprefix("not using "))
        return {}
    except (OSError, ValueError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc.__class__.__name__
        _errors.warn_once(
            "settings-file",
            f"ignoring unreadable settings file {p.settings} ({why}); "
            f"fix it or run '{commands.command('settings reset')}'",
        )
        return {}
    if data is None:
        return {}
    if not isinstance(data, dict):
        _errors.warn_once("settings-file", f"ignoring settings file {p.settings}: not an object")
        return {}
    values: dict[str, Any] = {}
    for key, raw in data.items():
        if key.startswith("_"):
            continue  # metadata such as _schema
        try:
            setting = check_key(key)
            wrong = setting.file_type_error(raw)
            if wrong:
                raise ValueError(wrong)
            values[key] = setting.parse(raw)
        except (ValueError, TypeError) as exc:
            _errors.warn_once(
                f"settings-file:{key}", f"ignoring setting {key} in {p.settings}: {exc}"
            )
    return values


def read_env(environ: Mapping[str, str]) -> dict[str, Any]:
    """Settings given by the environment, validated (bad values left out)."""
    return _read_env(environ)[0]


def _read_env(environ: Mapping[str, str]) -> tuple[dict[str, Any], list[tuple[Setting, str]]]:
    """Valid settings from the environment, and (setting, why) for each bad value."""
    values: dict[str, Any] = {}
    problems: list[tuple[Setting, str]] = []
    for s in SETTINGS.values():
        if not s.env or s.env not in environ:
            continue
        raw = environ[s.env]
        if not raw.strip():
            continue
        try:
            values[s.name] = s.parse(raw)
        except ValueError as exc:
            rescued = s.salvage(raw) if s.salvage is not None else None
            if rescued is not None:
                values[s.name] = rescued[0]
                problems.append((s, f"{exc}; using {rescued[1]}"))
            else:
                problems.append((s, str(exc)))
    return values, problems


def _in_force(s: Setting, values: Mapping[str, Any]) -> str:
    """What applies when ``s`` from the environment was refused: in words."""
    general = _general(s)
    if values.get(s.name) is None and general is not None:
        if values.get(general.name) is not None:
            shown = "" if general.secret else f" ({values[general.name]})"
            return f"{general.env}'s value{shown}"
        return general.unset
    value = values.get(s.name)
    if value is None:
        return s.unset
    if s.secret:
        return "the value from the settings file"
    return f"{value}" if value != s.default else f"{value} (the default)"


def _warn_env(problems: list[tuple[Setting, str]], values: Mapping[str, Any]) -> None:
    for s, why in problems:
        if "; using " in why:  # partly usable: the message says what is kept
            _errors.warn_once(f"env:{s.env}", f"{s.env}: {why}")
            continue
        _errors.warn_invalid(str(s.env), why, _in_force(s, values))


class Config:
    """Effective settings for one process, with where each value came from."""

    def __init__(
        self,
        values: dict[str, Any],
        sources: dict[str, str] | None = None,
        paths_: Paths | None = None,
    ):
        self.values = values
        self.sources = sources if sources is not None else {}
        self.paths = paths_ if paths_ is not None else paths()

    def __repr__(self) -> str:  # never shows secrets
        shown = {k: ("***" if SETTINGS[k].secret and v else v) for k, v in self.values.items()}
        return f"Config({shown})"

    def __getitem__(self, key: str) -> Any:
        return self.values[key]

    def otlp(self, name: str, signal: str) -> Any:
        """An OTLP setting for ``signal`` (traces, metrics, logs): the per-signal
        value when set, else the general one (the OTLP exporter spec's rule)."""
        value = self.values.get(f"otlp_{signal}_{name}")
        return value if value is not None else self.values.get(f"otlp_{name}")

    def otlp_configured(self) -> bool:
        """Is any OTLP endpoint set (the general one, or one signal's)?"""
        return any(
            self.values.get(name)
            for name in ("otlp_endpoint", *(f"otlp_{x}_endpoint" for x in env.OTLP_SIGNALS))
        )

    def otlp_endpoint(self, signal: str, grpc: bool = False) -> str | None:
        """Where OTLP sends ``signal`` (traces, metrics, logs).

        A per-signal endpoint is used as it is; else the general one, with
        ``/v1/<signal>`` added for HTTP; with no endpoint set at all, the
        spec's default (``http://localhost:4318``, gRPC ``:4317``). ``None``
        when only other signals have an endpoint: that signal is not sent by
        OTLP (sending it to localhost would only be wrong)."""
        explicit = self.values.get(f"otlp_{signal}_endpoint")
        if explicit:
            return str(explicit)
        base = self.values.get("otlp_endpoint")
        if not base:
            if self.otlp_configured():
                return None
            base = "http://localhost:4317" if grpc else "http://localhost:4318"
        base = str(base).rstrip("/")
        return base if grpc else f"{base}/v1/{signal}"

    def destinations(self) -> tuple[str, ...]:
        """Destinations in effect: the explicit list, or every configured one."""
        chosen = self.values["destinations"]
        if chosen is not None:
            return tuple(chosen)
        found = []
        if self.values["ga4_measurement_id"] and self.values["ga4_api_secret"]:
            found.append("ga4")
        if self.otlp_configured():  # the general endpoint or a signal's own
            found.append("otlp")
        return tuple(found) or ("local",)


def resolve(
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    settings_file: bool = True,
) -> Config:
    """Effective settings: defaults < settings file < environment < overrides.

    ``overrides`` (the ``init()`` arguments) are validated strictly and raise
    ``ValueError`` naming the argument; ``None`` or an empty string means not
    set. File and environment values never raise. ``settings_file=False`` and
    ``environ={}`` give what a tool configures by itself (``optel describe``).
    """
    environ = os.environ if environ is None else environ
    p = paths(environ)
    values = {name: s.default for name, s in SETTINGS.items()}
    sources = {name: "default" for name in SETTINGS}
    from_env, problems = _read_env(environ)
    stored = read_file(p) if settings_file else {}
    for layer, found in (("file", stored), ("env", from_env)):
        values.update(found)
        sources.update(dict.fromkeys(found, layer))
    for key, raw in (overrides or {}).items():
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            continue  # not set: "" is what os.environ.get(X, "") gives for an unset X
        try:
            values[key] = check_key(key).parse(raw)
        except ValueError as exc:
            raise ValueError(f"{key}: {exc}") from None  # name the argument at fault
        sources[key] = "init"
    if "destinations" in from_env:
        # The one exception to the order: OPTEL_DESTINATIONS is the
        # administrator's routing and overrides the tool's own choice.
        values["destinations"] = from_env["destinations"]
        sources["destinations"] = "env"
    if problems:
        _warn_env(problems, values)
    return Config(values, sources, p)


class Settings:
    """``optel.settings``: the user's stored settings, dict-like.

    Reading gives the effective value (file and environment applied);
    writing validates and stores in the settings file; ``reset()`` removes
    every stored value.
    """

    def _paths(self) -> Paths:
        return paths()

    def __getitem__(self, key: str) -> Any:
        check_key(key)
        return resolve()[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.update({key: value})

    def __delitem__(self, key: str) -> None:
        check_key(key)
        p = self._paths()
        with _fs.file_lock(p.lock):
            stored = _stored_for_update(p)
            stored.pop(key, None)
            _fs.write_json_atomic(p.settings, stored)

    def __iter__(self) -> Iterator[str]:
        return iter(SETTINGS)

    def __len__(self) -> int:
        return len(SETTINGS)

    def __contains__(self, key: object) -> bool:
        return key in SETTINGS

    def keys(self) -> list[str]:
        return list(SETTINGS)

    def items(self) -> list[tuple[str, Any]]:
        return list(resolve().values.items())

    def values(self) -> list[Any]:
        return list(resolve().values.values())

    def get(self, key: str, default: Any = None) -> Any:
        return self[key] if key in SETTINGS else default

    def update(self, *args: Any, **kwargs: Any) -> None:
        """Validate every value first, then store them together."""
        new = dict(*args, **kwargs)
        parsed = {}
        for key, value in new.items():
            setting = check_key(key)
            try:
                parsed[key] = setting.parse(value)
            except ValueError as exc:
                raise ValueError(f"{key}: {exc}") from None  # name the setting at fault
        p = self._paths()
        with _fs.file_lock(p.lock):
            stored = _stored_for_update(p)
            stored.update(_jsonable(parsed))
            _fs.write_json_atomic(p.settings, stored)

    def stored(self) -> dict[str, Any]:
        """Only what the settings file holds."""
        return read_file(self._paths())

    def reset(self) -> None:
        """Forget every stored setting (defaults and environment remain)."""
        p = self._paths()
        with _fs.file_lock(p.lock):
            try:
                os.unlink(p.settings)
            except FileNotFoundError:
                pass

    def __repr__(self) -> str:
        shown = {k: ("***" if SETTINGS[k].secret and v else v) for k, v in resolve().values.items()}
        return f"Settings({shown})"


def _stored_for_update(p: Paths) -> dict[str, Any]:
    """The file's document to change (under the lock), keeping what this
    version does not know (a newer optel's keys, metadata). A file that cannot
    be read is moved aside (``_fs.move_aside``), never overwritten."""
    try:
        data = _fs.read_json(p.settings)
    except (OSError, ValueError):
        data = ...
    if data is None:
        return {"_schema": 1}
    if not isinstance(data, dict):
        aside = _fs.move_aside(p.settings)
        _errors.warn_once("settings-aside", f"kept the unreadable settings file as {aside}")
        return {"_schema": 1}
    return {"_schema": 1, **data}


def _jsonable(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}
