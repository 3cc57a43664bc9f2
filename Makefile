# optel: `make demo` runs the main job, `make test` runs the whole suite.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test unit integration lint bench collector chromium layers pythons wheel gateway clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/optel demo

# The whole suite, then the unit suite on the oldest and newest Python the
# package claims, then the wheel and sdist as users get them.
test: $(STAMP) collector chromium
	$(PY) -m pytest -q tests
	$(PY) -m tests.pythons
	$(PY) -m tests.wheel

unit: $(STAMP)
	$(PY) -m pytest -q tests/unit

integration: $(STAMP) collector
	$(PY) -m pytest -q tests/integration

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench
	$(VENV)/bin/mypy

# openvino-telemetry is a reference in bench/datapath.py: installed for the bench
# only; its rows say they are skipped when it cannot be installed (offline).
bench: $(STAMP)
	@$(PY) -m pip install --quiet -e '.[bench]' || echo "bench: openvino-telemetry not installed; its rows are skipped"
	$(PY) bench/run.py

# The unit suite on the oldest and newest claimed Python (.venv-3.N, cached;
# a Python this machine lacks is skipped, saying so).
pythons: $(STAMP)
	$(PY) -m tests.pythons

# Build the wheel and sdist, install the wheel into .venv-wheel, run it.
wheel: $(STAMP)
	$(PY) -m tests.wheel

# The import graph of src/optel against its layers (cycles, imports running up).
layers: $(STAMP)
	$(PY) -m tests.layers

# Custom OpenTelemetry Collector for the integration tests (cached in .build/).
# build.sh exits 3 when Go is missing: the collector tests then skip, saying so.
collector:
	@if [ -f collector-config/build.sh ]; then \
		bash collector-config/build.sh || { rc=$$?; [ $$rc -eq 3 ] || exit $$rc; }; \
	else echo "collector: no build script yet; collector tests skip"; fi

# Debian's chromium for the report's browser test (tests/report/test_browser.py),
# installed only where it is missing (about a minute); where it cannot be
# (not root, no apt-get) the test skips, saying why.
chromium:
	@if ! command -v chromium >/dev/null 2>&1; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			echo "chromium: installing Debian's chromium for the browser test"; \
			{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
				|| echo "chromium: apt-get install failed; the browser test will skip"; \
		else echo "chromium: missing, and installing it needs root and apt-get; the browser test will skip"; fi; \
	fi

# collector-config/gateway.yaml, generated from optel's rules and the demo
# tool's declarations (a test fails when the shipped file differs).
gateway: $(STAMP)
	$(PY) -m optel gateway-config --declarations optel._demo_tool:ATTRIBUTES > collector-config/gateway.yaml

clean:
	rm -rf $(VENV) .venv-* dist .build .pytest_cache .mypy_cache .ruff_cache
