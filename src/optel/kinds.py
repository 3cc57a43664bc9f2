"""Kinds: the shape a declared value must have to leave the machine.

A tool declares each attribute it sends with a kind::

    optel.init(app="mytool", attributes={
        "framework": ("onnx", "tensorflow", "pytorch"),  # a closed set
        "model": optel.Label,        # the default: a short identifier-like token
        "batch": int,                # a number (int and float alike)
        "fp16": bool,                # a bool
        "opset": optel.Version,      # 1.2.3, 2.1.0+cu121, 17
        "input": optel.PathKind,     # what a path is, never the path: file:.onnx@home
        "dataset": optel.Hashed,     # keyed hash, salt kept on this machine: h:3f2a...
        "query": optel.Text,         # free text, pattern-scrubbed: an explicit risk
    })

``allowed_attributes=["framework", ...]`` declares labels. A value that does
not fit its kind is replaced by a typed placeholder (``<not-label>``,
``<not-number>``, ``<other>``, ...) and counted (``optel status``).

This module is the vocabulary only: what a tool can declare, what each kind
means, an example of what is sent (:meth:`Kind.row`), and
:class:`Declarations`, the public way to read a tool's declared keys with
their kinds (``telemetry.declarations``). It imports nothing heavy, so the
package face can export the kind names. How a value is made to fit its kind
is the anonymizer's (:mod:`optel.anonymize.fit`).

Besides the tool's keys, two tables hold keys optel knows: :data:`OPTEL_KEYS`
(the ``optel.`` prefix is reserved: only these are sent) and
:data:`BUILTIN_KEYS` (resource and exception keys of the OpenTelemetry
semantic conventions); :func:`semconv_keys` adds the keys instrumentations
record (:mod:`optel.semconv`), read on first use.
"""

from __future__ import annotations

import re

TYPE_CHECKING = False  # typing is not imported at run time: it costs start-up
if TYPE_CHECKING:
    from typing import Any, Iterable, Iterator, Mapping

KIND_MISMATCH = "kind_mismatch:"
"""Spool stats key prefix (``kind_mismatch:<app>``): values that did not fit their
kind and keys that were not identifiers, counted; ``optel status`` shows it."""

__all__ = [
    "KIND_MISMATCH",
    "Kind",
    "OneOf",
    "Label",
    "Number",
    "Bool",
    "Version",
    "PathKind",
    "Hashed",
    "Text",
    "Name",
    "Entry",
    "NameEntry",
    "Declarations",
    "NAME_KINDS",
    "check_name",
    "kind_of",
    "check_key",
    "OPTEL_KEYS",
    "BUILTIN_KEYS",
    "semconv_keys",
]


class Kind:
    """One kind of value. Immutable; ``kind(doc="...")`` gives a documented copy.

    ``name`` is what the anonymizer dispatches on; ``description`` says what
    is sent; ``example`` is an example of a sent value; ``doc`` is the tool
    author's own description of the key (for ``optel describe``-like pages).
    """

    __slots__ = ("name", "description", "example", "doc", "values", "sep", "fitted")

    def __init__(
        self,
        name: str,
        description: str,
        example: Any,
        doc: str = "",
        values: tuple[Any, ...] = (),
        sep: str = "",
    ):
        self.name = name
        self.description = description
        self.example = example
        self.doc = doc
        self.values = values
        self.sep = sep
        self.fitted: dict[Any, Any] = {}
        """The anonymizer's memo of values already made to fit this kind."""

    def __call__(self, doc: str | None = None, example: Any = None) -> Kind:
        """A copy of this kind carrying the tool author's description of the key
        and, optionally, an example of a value sent (``optel describe`` shows both);
        what is not given is kept."""
        doc = self.doc if doc is None else doc
        if not isinstance(doc, str):
            raise ValueError(f"doc must be a string, got {doc!r}")
        if example is not None and not isinstance(example, (str, int, float, bool)):
            raise ValueError(f"example must be a string, number or bool, got {example!r}")
        example = self.example if example is None else example
        return Kind(self.name, self.description, example, doc, self.values, self.sep)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Kind) and (self.name, self.values, self.sep) == (
            other.name,
            other.values,
            other.sep,
        )

    def __hash__(self) -> int:
        return hash((self.name, self.values, self.sep))

    def __repr__(self) -> str:
        if self.name == "oneof":
            return f"OneOf{self.values!r}"
        return f"<kind {self.name}>"


def OneOf(*values: Any, doc: str = "") -> Kind:  # noqa: N802 - reads like the other kinds
    """A closed set: the value is sent when it is one of ``values``, else ``<other>``.

    A tuple, list, set or frozenset in ``attributes={...}`` means the same.
    """
    if len(values) == 1 and isinstance(values[0], (list, tuple, set, frozenset)):
        values = tuple(values[0])
    if not values:
        raise ValueError("a closed set needs at least one value")
    for v in values:
        if not isinstance(v, (str, int, float, bool)) or isinstance(v, str) and not v:
            raise ValueError(f"closed-set values must be non-empty strings or numbers, got {v!r}")
    ordered = tuple(sorted(set(values), key=lambda v: (str(type(v)), str(v))))
    return Kind(
        "oneof",
        "one of the declared values, else <other>",
        ordered[0],
        doc,
        ordered,
    )


Label = Kind(
    "label",
    "a short identifier-like token (letters, digits, . _ - + :; no spaces, slashes,"
    " @, long digit runs, secrets, local user or host names); numbers and bools as"
    " they are; else <not-label>",
    "resnet50",
)
"""The default kind: what ``allowed_attributes=[...]`` and ``event(**attrs)`` declare."""

Number = Kind("number", "an int or float (numeric strings are parsed), else <not-number>", 97.8)
Bool = Kind("bool", "true or false (also 'true'/'false', 0/1), else <not-bool>", True)
Version = Kind(
    "version",
    "a version such as 1.2.3, 2.1.0+cu121, 17, v1.0.0-rc.1, else <not-version>",
    "2.1.0+cu121",
)
PathKind = Kind(
    "path",
    "what a path is, never the path: file, dir, url or path; its extension; where it is"
    " (home, temp, site-packages, cwd-relative, network, other)",
    "file:.onnx@home",
)
Hashed = Kind(
    "hashed",
    "h: and 16 hex digits of a keyed hash (HMAC-SHA256, salt kept on this machine)",
    "h:3f2a9c1b7d4e8a06",
)
Text = Kind(
    "text",
    "free text, scrubbed by patterns into typed placeholders: an explicit risk, opt-in",
    "converted <file:.onnx@home> in 3 s",
)
Name = Kind(
    "name",
    "an identifier; literals, paths and addresses reduced to ? (SELECT * FROM t WHERE id = ?)",
    "SELECT orders",
)
# Kinds optel uses for its own keys; a tool may not declare them.
_Stack = Kind(
    "stacktrace",
    "frames only: module-relative file, line and function; source lines and messages dropped",
    "site-packages/torch/nn/functional.py:2 in relu",
)
_Fingerprint = Kind(
    "fingerprint", "12 hex digits optel computed from a type and frames", "7aa7ee93b331"
)
_AtSend = Kind(
    "at_send",
    "added by the otlp destination when a request is sent, never recorded (a record carrying"
    " it loses it: no fitter knows this kind, so it fails closed)",
    "0b6f3c52-9c4e-4e0b-8d39-2f1d1c6a9e47",
)
_Message = Kind(
    "message",
    "free text: not sent unless the tool passes free_text=True (then the text kind)",
    "",
)


# Reductions: keys of the semantic conventions whose values say who or where
# keep the part that says what (optel.anonymize.reduce); optel's own kinds.
_Url = Kind(
    "url",
    "a URL as scheme, well-known public host (else <host>) and route template: ids, numbers,"
    " file names and members of a collection become {}; user, port, query and fragment dropped",
    "https://<host>/v1/users/{}/repos",
)
_Route = Kind(
    "route",
    "a path as a route template: plain lowercase words stay, anything else becomes {}",
    "/v1/users/{}/repos",
)
_Statement = Kind(
    "statement",
    "a database query with every literal replaced by ? and comments removed",
    "SELECT name FROM users WHERE email = ?",
)
_Location = Kind(
    "location",
    "a source file as a module-relative location (site-packages/..., <stdlib>/...),"
    " else <user-code>",
    "site-packages/requests/api.py",
)


def _labels(sep: str, doc: str = "") -> Kind:
    return Kind("labels", f"labels separated by {sep!r}", "onnx", doc, (), sep)


_BY_TYPE: dict[Any, Kind] = {int: Number, float: Number, bool: Bool, str: Label}
_PUBLIC = {k.name for k in (Label, Number, Bool, Version, PathKind, Hashed, Text, Name)}


def kind_of(spec: Any) -> Kind:
    """The :class:`Kind` a declaration names; ``ValueError`` for anything else.

    Accepted: a kind (``optel.Label``, ``optel.Version(doc=...)``), the types
    ``int``, ``float``, ``bool`` and ``str``, or a closed set given as a tuple,
    list, set or frozenset of values.
    """
    if isinstance(spec, Kind):
        if spec.name not in _PUBLIC and spec.name != "oneof":
            raise ValueError(f"{spec!r} is optel's own kind and cannot be declared")
        return spec
    if isinstance(spec, type) and spec in _BY_TYPE:
        return _BY_TYPE[spec]
    if isinstance(spec, (tuple, list, set, frozenset)):
        return OneOf(*spec)
    raise ValueError(
        "an attribute's kind must be optel.Label, optel.Number, optel.Bool, optel.Version,"
        " optel.PathKind, optel.Hashed, optel.Text, int, float, bool, str or a tuple of"
        f" allowed values, got {spec!r}"
    )


# -- keys ---------------------------------------------------------------------------------

MAX_KEY = 128
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")


def check_key(key: Any) -> str | None:
    """Why ``key`` cannot be an attribute key, or ``None`` when it can.

    Keys are identifiers: ASCII letters, digits, ``_``, ``.`` and ``-``,
    starting with a letter or ``_``, at most :data:`MAX_KEY` characters. The
    ``optel.`` prefix is reserved for :data:`OPTEL_KEYS`. (Keys naming a
    secret or an identity are the anonymizer's deny list; they are valid keys
    that are never sent.)
    """
    if not isinstance(key, str) or not key:
        return "a key must be a non-empty string"
    if len(key) > MAX_KEY or _KEY.fullmatch(key) is None:
        return (
            "a key must be an identifier (letters, digits, '_', '.', '-', starting with a"
            f" letter or '_', at most {MAX_KEY} characters)"
        )
    if key.lower().startswith("optel."):
        return "the 'optel.' prefix is reserved for optel's own keys"
    return None


# -- the keys optel knows ------------------------------------------------------------------

_MEMORY = ("unknown", "0-2GB", "2-4GB", "4-8GB", "8-16GB", "16-32GB", "32-64GB", "64-128GB",
           "128-256GB", ">=256GB")  # fmt: skip
_RUNS = ("first", "<=10", "<=100", "<=1000", ">1000")
_OS_TYPES = ("linux", "darwin", "windows", "freebsd", "netbsd", "openbsd", "dragonflybsd",
             "hpux", "aix", "solaris", "sunos", "z_os", "cygwin", "msys", "emscripten", "wasi",
             "ios", "android")  # fmt: skip
_IMPLEMENTATIONS = ("cpython", "pypy", "ironpython", "jython", "graalvm", "graalpy", "micropython")
_LANGUAGES = ("cpp", "dotnet", "erlang", "go", "java", "nodejs", "php", "python", "ruby",
              "rust", "swift", "webjs")  # fmt: skip

OPTEL_KEYS: dict[str, Kind] = {
    "optel.version": Version("optel's version", "0.1.0"),
    "optel.tool.version": Version("the tool's version", "1.2.3"),
    "optel.os.type": OneOf(*_OS_TYPES, doc="operating system type")(example="linux"),
    "optel.os.version": _labels(" ", "coarse OS version")(example="ubuntu 22.04"),
    "optel.arch": Label("CPU architecture", "x86_64"),
    "optel.python.version": Version("Python version", "3.11.7"),
    "optel.python.implementation": OneOf(*_IMPLEMENTATIONS, doc="Python implementation")(
        example="cpython"
    ),
    "optel.cpu.count": Number("CPU count", 8),
    "optel.memory": OneOf(*_MEMORY, doc="memory size bucket")(example="16-32GB"),
    "optel.accelerators": _labels(",", "GPU families found: nvidia, rocm, apple, or none")(
        example="nvidia"
    ),
    "optel.frameworks": _labels(",", "ML frameworks installed (found, never imported), or none")(
        example="torch,onnxruntime"
    ),
    "optel.container": Bool("running in a container", False),
    "optel.notebook": Bool("running in a notebook", False),
    "optel.ci": Bool("running in CI", False),
    "optel.runs": OneOf(*_RUNS, doc="how many runs of this tool on this machine, bucketed")(
        example="<=10"
    ),
    "optel.command": Name("the tracked command", "convert"),
    "optel.success": Bool("the command succeeded"),
    "optel.duration_ms": Number("the command's duration in milliseconds", 1234.5),
    "optel.error.type": Name("the exception type of a failed command", "ValueError"),
    "optel.failure.id": _Fingerprint("fingerprint of a failure: type and frames"),
    "optel.failure.type": Name("exception type of a repeated failure", "OSError"),
    "optel.failure.count": Number("how many times a failure repeated in the run", 3),
    "optel.failures": Number("failures in the run", 0),
    "optel.failures.distinct": Number("distinct failures in the run", 0),
    "optel.crash": Bool("the report is of an unhandled exception"),
    "optel.crash.thread": OneOf("main", "thread", doc="where the crash happened")(example="main"),
    "optel.rate_limited": Number("events over the tool's caps in the run", 0),
    "optel.run.duration_s": Number("run duration in seconds", 12.3),
    "optel.run.outcome": OneOf("ok", "crash", doc="how the run ended")(example="ok"),
    "optel.validate": Bool("a GA4 validation sample"),
    "optel.install.id": _AtSend("the install's random id (a uuid4, GA4's client_id) on OTLP"),
}
"""optel's own keys, each with its kind: the only ``optel.`` keys that are sent."""

BUILTIN_KEYS: dict[str, Kind] = {
    "service.name": Label("the tool's name", "mytool"),
    "service.version": Version("the tool's version", "1.2.3"),
    "telemetry.sdk.name": OneOf("opentelemetry", doc="the telemetry SDK"),
    "telemetry.sdk.language": OneOf(*_LANGUAGES, doc="the SDK's language")(example="python"),
    "telemetry.sdk.version": Version("the OpenTelemetry SDK's version", "1.39.1"),
    "os.type": OneOf(*_OS_TYPES, doc="operating system type")(example="linux"),
    "process.runtime.name": OneOf(*_IMPLEMENTATIONS, doc="Python implementation")(
        example="cpython"
    ),
    "process.runtime.version": Version("Python version", "3.11.7"),
    "exception.type": Name("the exception's type", "FileNotFoundError"),
    "exception.message": _Message("the exception's message"),
    "exception.stacktrace": _Stack("the exception's frames"),
    "exception.escaped": Bool("the exception left the span"),
    "event.name": Name("the event's name", "model_converted"),
    "code.function": Name("the function that logged", "convert"),
    "code.lineno": Number("the line that logged", 42),
}
"""Keys of the OpenTelemetry semantic conventions that optel sends without a
declaration, each with its kind (a safe key does not make a safe value); the
instrumentations' keys are in :func:`semconv_keys`."""

_SEMCONV_KINDS: dict[str, Kind] = {
    "label": Label,
    "number": Number,
    "bool": Bool,
    "version": Version,
    "name": Name,
    "path": PathKind,
    "url": _Url,
    "route": _Route,
    "statement": _Statement,
    "location": _Location,
    "stacktrace": _Stack,
}
_semconv: dict[str, Kind] = {}


def semconv_keys() -> dict[str, Kind]:
    """The semantic-convention keys of :mod:`optel.semconv` (what instrumentations
    record: HTTP, databases, RPC, messaging, GenAI, code, ...), each with its kind.

    Built on first use (never by ``import optel``); the same dict afterwards.
    """
    if not _semconv:
        from .semconv import REGISTRY

        table: dict[str, Kind] = {}
        for key, spec, _constant, doc in REGISTRY:
            if isinstance(spec, tuple):
                table[key] = OneOf(*spec, doc=doc)
            else:
                table[key] = _SEMCONV_KINDS[str(spec)](doc)
        _semconv.update(table)
    return _semconv


# -- names ----------------------------------------------------------------------------------

NAME_KINDS = ("command", "event", "span", "span event", "metric", "log", "scope")
"""What a name can name: a tracked command (an event with a duration and an
outcome), an event, a span, an event on a span, a metric, a log record (its
logger) and the instrumentation scope (the code) a record came from."""
MAX_NAME = 128
MAX_USED = 1000
"""Names seen in use that one :class:`Declarations` remembers (bounded)."""


def check_name(name: Any) -> str | None:
    """Why ``name`` cannot be declared as an event, span or metric name, or ``None``."""
    if not isinstance(name, str) or not name.strip():
        return "a name must be a non-empty string"
    if len(name) > MAX_NAME or not name.isprintable() or name != name.strip():
        return f"a name must be printable, without leading or trailing spaces, at most {MAX_NAME}"
    return None


def _named(what: str, given: Any) -> list[tuple[str, str]]:
    """``events=``/``spans=``/``metrics=`` as (name, description) pairs; ``ValueError``."""
    if given is None:
        return []
    if isinstance(given, str):
        raise ValueError(f"{what}s must be a list of names or a mapping of names to descriptions")
    pairs = list(given.items()) if hasattr(given, "items") else [(n, "") for n in given]
    for name, doc in pairs:
        problem = check_name(name)
        if problem is not None:
            raise ValueError(f"{what}s: {name!r}: {problem}")
        if not isinstance(doc, str):
            raise ValueError(f"{what}s: {name!r}: the description must be a string, got {doc!r}")
    return [(n, d.strip()) for n, d in pairs]


class NameEntry:
    """One event, span or metric name as a "what we collect" page shows it."""

    __slots__ = ("what", "name", "description", "declared", "used")

    def __init__(self, what: str, name: str, description: str, declared: bool, used: bool):
        self.what = what
        self.name = name
        self.description = description
        self.declared = declared
        """Declared by the tool (``init(events=...)``, a ``track()`` name)."""
        self.used = used
        """Seen in a record of this process (after anonymization)."""

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__slots__}

    def __repr__(self) -> str:
        return f"<{self.what} {self.name!r}{'' if self.declared else ' (used, not declared)'}>"


# -- a tool's declarations ------------------------------------------------------------------


class Entry:
    """One declared key as a "what we collect" page shows it."""

    __slots__ = ("key", "kind", "description", "example", "source")

    def __init__(self, key: str, kind: Kind, source: str):
        self.key = key
        self.kind = kind
        self.description = kind.doc or kind.description
        self.example = kind.example
        self.source = source
        """``tool`` (declared), ``optel`` (optel's own) or ``builtin`` (semantic conventions)."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "kind": self.kind.name,
            "values": list(self.kind.values) or None,
            "description": self.description,
            "example": self.example,
            "source": self.source,
        }

    def __repr__(self) -> str:
        return f"<{self.key}: {self.kind.name} ({self.source})>"


class Declarations:
    """What a tool declared: each key with its kind, and whether free text may leave.

    Read it as a mapping (``decl["framework"]`` is a :class:`Kind`,
    ``"framework" in decl``, iteration gives keys in declaration order);
    :meth:`entries` lists every key that can leave (the tool's, optel's own
    and the built-in ones) with kind, description and an example of what is
    sent. ``telemetry.declarations`` gives the tool's, with or without
    consent.

    Names: ``events``, ``spans`` and ``metrics`` declare the names the tool
    records (a list, or a mapping of name to description); ``track()`` names
    are declared as commands (:meth:`declare_name`); names seen in records
    are noted (:meth:`use`); :meth:`names` lists them all. Names are
    identifiers and are sent whether declared or not: declaring one only
    documents it (``optel describe`` shows a used name that was not
    declared).

    Building one from ``init()`` arguments raises ``ValueError`` for the
    author's mistakes; :meth:`add` at run time (keys passed to ``event()``)
    never raises: it returns the keys it refused.
    """

    def __init__(
        self,
        attributes: Mapping[str, Any] | None = None,
        labels: Iterable[str] = (),
        free_text: bool = False,
        events: Any = None,
        spans: Any = None,
        metrics: Any = None,
    ):
        if not isinstance(free_text, bool):
            raise ValueError(f"free_text must be True or False, got {free_text!r}")
        self.free_text = free_text
        self._names: dict[tuple[str, str], str] = {}  # (what, name) -> description
        self._used: dict[tuple[str, str], None] = {}  # (what, name), in order seen
        for what, given in (("event", events), ("span", spans), ("metric", metrics)):
            for name, doc in _named(what, given):
                self._names[(what, name)] = doc
        self._kinds: dict[str, Kind] = {}
        if attributes is not None and not hasattr(attributes, "items"):
            raise ValueError("attributes must be a mapping of keys to kinds")
        for key, spec in (attributes or {}).items():
            problem = check_key(key)
            if problem is not None:
                raise ValueError(f"attribute key {key!r}: {problem}")
            if key in self._kinds:
                raise ValueError(f"attribute key {key!r} declared twice")
            self._kinds[key] = kind_of(spec)
        if isinstance(labels, str):
            raise ValueError("allowed_attributes must be a list of keys, not one string")
        for key in labels:
            if not isinstance(key, str) or not key:
                raise ValueError(f"allowed_attributes must hold non-empty strings, got {key!r}")
            problem = check_key(key)
            if problem is not None:
                raise ValueError(f"allowed_attributes key {key!r}: {problem}")
            self._kinds.setdefault(key, Label)

    def add(self, other: Declarations | Iterable[str]) -> list[Any]:
        """Add keys (of the default kind) or another declaration's keys and
        free-text choice; a key already declared keeps its kind. Returns the
        keys refused (not identifiers, or reserved); never raises."""
        refused: list[Any] = []
        if isinstance(other, Declarations):
            self.free_text = self.free_text or other.free_text
            for key, kind in other._kinds.items():
                self._kinds.setdefault(key, kind)
            for named, doc in other._names.items():
                if doc or named not in self._names:
                    self._names[named] = doc
            for named in list(other._used):
                self.use(*named)
            return refused
        for key in other:
            if key in self._kinds:
                continue
            if check_key(key) is None:
                self._kinds[key] = Label
            else:
                refused.append(key)
        return refused

    def copy(self) -> Declarations:
        new = Declarations(free_text=self.free_text)
        new._kinds = dict(self._kinds)
        new._names = dict(self._names)
        new._used = dict(self._used)
        return new

    # -- names --------------------------------------------------------------------------

    def declare_name(self, what: str, name: Any, description: str = "") -> None:
        """Declare one name (``track()`` declares its command); never raises: a
        name that is not one is left out."""
        if what in NAME_KINDS and check_name(name) is None:
            key = (what, name)
            if description or key not in self._names:
                self._names[key] = description

    def use(self, what: Any, name: Any) -> None:
        """Note a name seen in a record (the anonymizer, after scrubbing); bounded."""
        key = (what, name)
        if key not in self._used and len(self._used) < MAX_USED and isinstance(name, str):
            self._used[key] = None

    def names(self) -> list[NameEntry]:
        """Every declared and used name: declared ones first, in declaration order."""
        used = dict(self._used)  # a copy: the worker may note more meanwhile
        out = [
            NameEntry(w, n, d, True, (w, n) in used or (w == "command" and ("event", n) in used))
            for (w, n), d in list(self._names.items())
        ]
        declared = set(self._names)
        # a tracked command's records are events: its name is declared
        commands = {n for (w, n) in declared if w == "command"}
        for w, n in used:
            if (w, n) not in declared and not (w == "event" and n in commands):
                out.append(NameEntry(str(w), n, "", False, True))
        return out

    # -- mapping ------------------------------------------------------------------------

    def __getitem__(self, key: str) -> Kind:
        return self._kinds[key]

    def get(self, key: str, default: Kind | None = None) -> Kind | None:
        return self._kinds.get(key, default)

    def __contains__(self, key: object) -> bool:
        return key in self._kinds

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._kinds))

    def __len__(self) -> int:
        return len(self._kinds)

    def items(self) -> list[tuple[str, Kind]]:
        return list(self._kinds.items())

    # -- for pages and commands that say what is collected ------------------------------

    def entries(self, builtin: bool = True) -> list[Entry]:
        """Every key that can leave: the tool's first, then optel's own and the
        built-in ones (``builtin=False``: the tool's only)."""
        out = [Entry(k, kind, "tool") for k, kind in self._kinds.items()]
        if builtin:
            out += [Entry(k, kind, "optel") for k, kind in OPTEL_KEYS.items()]
            out += [Entry(k, kind, "builtin") for k, kind in BUILTIN_KEYS.items()]
            out += [
                Entry(k, kind, "builtin")
                for k, kind in semconv_keys().items()
                if k not in self._kinds and k not in BUILTIN_KEYS
            ]
        return out

    def __repr__(self) -> str:
        keys = ", ".join(f"{k}: {v.name}" for k, v in self._kinds.items())
        return f"<Declarations {{{keys}}} free_text={self.free_text}>"
