"""The OTEL_* variables the SDK reads for optel's providers: an invalid one gives
optel's one line and the value the SDK has when the variable is unset (the SDK
itself, run without the variable, is the oracle); a valid one means what the
SDK makes of it. Before, a bad span limit or exemplar filter made the SDK raise
inside init ("internal error in init": no telemetry), and a bad sampler printed
the SDK's own message into the host's output."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.trace import SpanLimits  # loaded here, under a clean environment

from optel import _errors, env, sdkenv
from tests.conftest import grant, run_cli, run_python

LIMIT_VARS = [var for var, _ in (*sdkenv._COUNTS.values(), *sdkenv._LENGTHS.values())]
LIMIT_FIELDS = [*sdkenv._COUNTS, *sdkenv._LENGTHS]


def _whole(text: str) -> bool:
    try:
        return int(text.strip().lower()) >= 0
    except ValueError:
        return False


# what an environment variable can hold: no NUL, no lone surrogate
env_text = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")

# what the SDK reads as a limit: a whole number of 0 or more (any padding), or empty
valid_limit = st.one_of(
    st.integers(0, 2**31 - 1).map(str),
    st.tuples(st.sampled_from(["", " ", "\t"]), st.integers(0, 999)).map(
        lambda p: f"{p[0]}{p[1]}{p[0]}"
    ),
    st.just(""),
)
# anything else: classes of wrong numbers, then any text at all
invalid_limit = st.one_of(
    st.integers(max_value=-1).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["unlimited", "none", "1e3", "0x10", "1_000", "½", "١٢", "128 spans"]),
    st.text(env_text, min_size=1, max_size=20),
).filter(lambda s: s.strip() != "" and not _whole(s))


def _written(stderr: mock.MagicMock) -> str:
    """What was written to a mocked ``sys.stderr``."""
    return "".join(c.args[0] for c in stderr.write.call_args_list)


def _limits(obj: Any) -> dict[str, Any]:
    return {field: getattr(obj, field) for field in LIMIT_FIELDS}


def _sdk_limits(environ: dict[str, str]) -> dict[str, Any]:
    """What the SDK's own SpanLimits() reads with ``environ`` as its limit variables.
    Only they are patched into os.environ: optel threads of earlier tests may be
    reading the rest (OPTEL_HOME among them) meanwhile."""
    assert not any(var in os.environ for var in LIMIT_VARS)  # (conftest removes OTEL_*)
    with mock.patch.dict(os.environ, environ):
        return _limits(SpanLimits())


@settings(max_examples=300, deadline=None)
@given(
    others=st.dictionaries(st.sampled_from(LIMIT_VARS), valid_limit),
    bad=st.dictionaries(st.sampled_from(LIMIT_VARS), invalid_limit, min_size=1),
)
def test_an_invalid_limit_is_the_sdks_value_for_it_unset_with_one_line_each(
    others: dict[str, str], bad: dict[str, str]
) -> None:
    others = {k: v for k, v in others.items() if k not in bad}
    _errors._warned.clear()
    with mock.patch("sys.stderr") as err, mock.patch.dict(os.environ, others):
        # as in a host, the SDK reads the valid values from os.environ; the invalid ones
        # are given to optel's check alone (in os.environ, an optel thread left by an
        # earlier test read them too, and its warning took this one's place)
        limits = sdkenv.span_limits({**others, **bad})
    lines = _written(err).splitlines()
    assert _limits(limits) == _sdk_limits(others)  # as if the invalid ones were not set
    assert sorted(line.split()[1] for line in lines) == sorted(bad), lines
    for line in lines:
        assert " is not valid (expected a whole number of 0 or more, got " in line, line
        assert line.endswith(" instead"), line


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.sampled_from(LIMIT_VARS), valid_limit))
def test_valid_limits_are_left_to_the_sdk(environ: dict[str, str]) -> None:
    _errors._warned.clear()
    with mock.patch("sys.stderr") as err:
        assert sdkenv.span_limits(environ) is None  # the SDK reads them itself
    assert not err.write.called


def _padded(word: str) -> st.SearchStrategy[str]:
    cases = st.sampled_from([word, word.upper(), word.title()])
    return st.tuples(st.sampled_from(["", " "]), cases).map(lambda p: f"{p[0]}{p[1]}{p[0]}")


def _sdk_sampler(name: str, arg: str | None) -> str:
    from opentelemetry.sdk.trace import sampling

    environ = {env.OTEL_TRACES_SAMPLER: name}
    if arg is not None:
        environ[env.OTEL_TRACES_SAMPLER_ARG] = arg
    with mock.patch.dict(os.environ, environ):  # (conftest removed every OTEL_* variable)
        return sampling._get_from_env_or_default().get_description()  # type: ignore[no-any-return]


@settings(max_examples=200, deadline=None)
@given(
    name=st.sampled_from(sdkenv.SAMPLERS).flatmap(lambda n: st.tuples(st.just(n), _padded(n))),
    rate=st.floats(0.0, 1.0),
)
def test_a_sampler_named_in_any_case_is_the_sdks_own(name: tuple[str, str], rate: float) -> None:
    canonical, written = name
    _errors._warned.clear()
    with mock.patch("sys.stderr") as err:
        made = sdkenv.sampler(
            {"OTEL_TRACES_SAMPLER": written, "OTEL_TRACES_SAMPLER_ARG": repr(rate)}
        )
    assert made.get_description() == _sdk_sampler(canonical, repr(rate))
    assert not err.write.called


@settings(max_examples=200, deadline=None)
@given(
    name=st.text(max_size=30).filter(
        lambda s: s.strip() and s.strip().lower() not in sdkenv.SAMPLERS
    ),
)
def test_an_unknown_sampler_is_the_default_with_one_line(name: str) -> None:
    _errors._warned.clear()
    with mock.patch("sys.stderr") as err:
        made = sdkenv.sampler({"OTEL_TRACES_SAMPLER": name})
    assert made.get_description() == _sdk_sampler(sdkenv.DEFAULT_SAMPLER, None)
    (line,) = _written(err).splitlines()
    assert line.startswith("optel: OTEL_TRACES_SAMPLER is not valid (expected one of always_on")
    assert line.endswith("; using parentbased_always_on instead")


def _number_in_unit(text: str) -> bool:
    try:
        return 0.0 <= float(text) <= 1.0
    except ValueError:
        return False


@settings(max_examples=200, deadline=None)
@given(
    name=st.sampled_from(["traceidratio", "parentbased_traceidratio"]),
    arg=st.one_of(
        st.floats(allow_nan=True, allow_infinity=True).map(repr),
        st.text(min_size=1, max_size=12),
    ).filter(lambda s: s.strip() != "" and not _number_in_unit(s.strip())),
)
def test_a_ratio_that_is_not_from_0_to_1_is_1_with_one_line(name: str, arg: str) -> None:
    _errors._warned.clear()
    with mock.patch("sys.stderr") as err:
        made = sdkenv.sampler({"OTEL_TRACES_SAMPLER": name, "OTEL_TRACES_SAMPLER_ARG": arg})
    assert made.get_description() == _sdk_sampler(name, "1.0")
    (line,) = _written(err).splitlines()
    assert line.startswith(
        "optel: OTEL_TRACES_SAMPLER_ARG is not valid (expected a number from 0 to 1"
    )
    assert line.endswith("; using 1.0 instead")


def test_a_ratio_sampler_without_an_argument_samples_everything_without_a_word(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # the SDK warns "Could not convert TRACES_SAMPLER_ARG to float" for a missing argument
    made = sdkenv.sampler({"OTEL_TRACES_SAMPLER": "traceidratio"})
    assert made.get_description() == _sdk_sampler("traceidratio", "1.0")
    assert capsys.readouterr().err == ""
    assert sdkenv.sampler({}) is None and sdkenv.sampler({"OTEL_TRACES_SAMPLER": " "}) is None


@pytest.mark.parametrize(
    ("value", "made"),
    [
        ("trace_based", "TraceBasedExemplarFilter"),
        (" Always_On ", "AlwaysOnExemplarFilter"),
        ("ALWAYS_OFF", "AlwaysOffExemplarFilter"),
        ("bogus", "TraceBasedExemplarFilter"),
        ("always", "TraceBasedExemplarFilter"),
    ],
)
def test_exemplar_filter(value: str, made: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert type(sdkenv.exemplar_filter({"OTEL_METRICS_EXEMPLAR_FILTER": value})).__name__ == made
    err = capsys.readouterr().err
    if value.strip().lower() in sdkenv.EXEMPLAR_FILTERS:
        assert err == ""
    else:
        assert err == (
            "optel: OTEL_METRICS_EXEMPLAR_FILTER is not valid (expected one of trace_based,"
            f" always_on, always_off, got {value!r}); using trace_based instead\n"
        )


@settings(max_examples=200, deadline=None)
@given(st.one_of(_padded("true"), _padded("false"), st.just(""), st.text(max_size=12)))
def test_otel_sdk_disabled_is_true_only_for_true_and_warns_for_what_is_neither(value: str) -> None:
    # the spec: true only for "true" in any case; other than true, false or empty: a warning
    _errors._warned.clear()
    with mock.patch("sys.stderr") as err:
        disabled = sdkenv.sdk_disabled({"OTEL_SDK_DISABLED": value})
    assert disabled == (value.strip().lower() == "true")
    warned = _written(err)
    if value.strip().lower() in ("", "true", "false"):
        assert warned == ""
    else:
        assert warned.startswith("optel: OTEL_SDK_DISABLED is not valid (expected true or false")
        assert warned.endswith("; using false instead\n")


TEMPORALITY = "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE"
HISTOGRAM = "OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION"
# the spec's values (https://opentelemetry.io/docs/specs/otel/metrics/sdk_exporters/otlp/)
SHAPES = {
    TEMPORALITY: (("cumulative", "delta", "lowmemory"), "delta"),
    HISTOGRAM: (("explicit_bucket_histogram", "base2_exponential_bucket_histogram"),
                "explicit_bucket_histogram"),
}  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(
    var=st.sampled_from(sorted(SHAPES)),
    value=st.one_of(
        st.sampled_from([*SHAPES[TEMPORALITY][0], *SHAPES[HISTOGRAM][0]]).flatmap(_padded),
        st.just(""),
        st.text(env_text, max_size=30),
    ),
)
def test_a_metric_shape_optel_does_not_send_is_one_line_saying_what_it_sends(
    var: str, value: str
) -> None:
    known, sent = SHAPES[var]
    _errors._warned.clear()
    with mock.patch("sys.stderr") as err:
        sdkenv.metrics_shape({var: value})
    said = _written(err)
    asked = value.strip().lower()
    if asked in ("", sent):
        assert said == ""  # unset, or what optel sends anyway
        return
    (line,) = said.splitlines()
    if asked in known:  # a shape the spec knows, optel does not send: not applied
        assert line.startswith(f"optel: {var}={asked} is not applied; optel sends ")
        assert line.endswith(" to every destination")
    else:
        assert line.startswith(f"optel: {var} is not valid (expected one of {', '.join(known)}")
        assert line.endswith(f"; using {sent} instead")


BAD_ENV = {
    "OTEL_ATTRIBUTE_COUNT_LIMIT": "-3",
    "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT": "abc",
    "OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT": "-1",
    "OTEL_SPAN_EVENT_COUNT_LIMIT": "1.5",
    "OTEL_SPAN_LINK_COUNT_LIMIT": "lots",
    "OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT": "q",
    "OTEL_LINK_ATTRIBUTE_COUNT_LIMIT": "∞",
    "OTEL_TRACES_SAMPLER": "sometimes",
    "OTEL_METRICS_EXEMPLAR_FILTER": "bogus",
    "OTEL_SDK_DISABLED": "maybe",
}


def test_a_tool_under_every_invalid_value_at_once_records_and_says_one_line_each(
    home: Path,
) -> None:
    grant(home, "mytool")
    out = run_python(
        """
        import json, optel, optel.testing
        t = optel.init(app="mytool", version="1")
        with t.tracer.start_as_current_span("convert"):
            pass
        t.event("used", n=1)
        t.meter.create_counter("runs").add(1)
        t.flush(5)
        rows = optel.testing.pending()
        print(json.dumps([t.enabled, sorted({r.signal for r in rows})]))
        """,
        home,
        {"OPTEL_DESTINATIONS": "local", **BAD_ENV},
    )
    assert out.returncode == 0, out.stderr
    enabled, signals = json.loads(out.stdout)
    assert enabled is True
    assert "span" in signals and "event" in signals, signals
    lines = out.stderr.splitlines()
    named = sorted(line.split()[1] for line in lines)
    assert named == sorted(BAD_ENV), out.stderr  # one line each, nothing else (no SDK message)
    assert all(line.startswith("optel: ") and line.endswith(" instead") for line in lines), lines


def test_a_span_attribute_count_limit_the_sdk_cannot_load_with_is_one_line_and_nothing_recorded(
    home: Path,
) -> None:
    # the SDK's tracing module reads it as it loads, and raises: in any program
    grant(home, "mytool")
    bad = {"OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT": "128 spans"}
    sdk = run_python("import opentelemetry.sdk.trace", home, bad)
    assert "ValueError" in sdk.stderr  # the SDK's own behaviour, which optel works round
    out = run_python(
        """
        import json, optel, optel.testing
        t = optel.init(app="mytool", version="1")
        with t.tracer.start_as_current_span("convert"):
            pass
        t.event("used", n=1)
        print(json.dumps([t.enabled, t.reason, len(optel.testing.pending())]))
        """,
        home,
        {"OPTEL_DESTINATIONS": "local", **bad},
    )
    assert out.returncode == 0, out.stderr
    enabled, reason, pending = json.loads(out.stdout)
    assert (enabled, pending) == (False, 0)
    assert reason.startswith("off: OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT is not valid"), reason
    assert out.stderr == (
        "optel: OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT is not valid (expected a whole number of 0 or"
        " more, got '128 spans'), and the OpenTelemetry SDK cannot load with it: nothing is"
        " recorded\n"
    )


def test_optel_status_says_a_tool_sends_nothing_under_that_limit(home: Path) -> None:
    # it said "yes: consent granted" while the tool recorded nothing
    grant(home, "mytool")
    run_python("import optel; optel.init(app='mytool', version='1')", home)  # seen once
    bad = {"OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT": "x"}
    out = run_cli("status", home=home, extra_env=bad)
    (row,) = [line for line in out.stdout.splitlines() if line.lstrip().startswith("mytool ")][-1:]
    assert "no: OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT is not valid" in row, out.stdout
    assert run_cli("status", home=home).stdout.count("yes: consent granted for mytool") == 1
