# Two commands do all the set-up: `make demo` and `make test`.
# Everything lands in .venv; the extension is built in release mode by maturin.
PYTHON ?= python3
VENV   := .venv
VPY    := $(abspath $(VENV))/bin/python
export VIRTUAL_ENV := $(abspath $(VENV))
export PYO3_PYTHON := $(VPY)
PY_SOURCES := python/crackle_runtime tests benches
RUST_SOURCES := $(shell find src-rust -name '*.rs') Cargo.toml

.PHONY: demo test build lint format rust-test py-test browser bench-quick bench fuzz clean

demo: build
	$(VENV)/bin/crackle demo

test: build lint rust-test py-test bench-quick

# The virtual environment with every dependency of pyproject.toml (runtime, test, dev),
# read from pyproject.toml itself so the list lives in one place.
$(VENV)/.deps: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install -q --upgrade pip
	$(VPY) tools/requirements.py pyproject.toml test dev pandas progress arrow plot dask > $(VENV)/requirements.txt
	$(VPY) -m pip install -q -r $(VENV)/requirements.txt
	touch $@

# Release build of the extension, installed into the venv (python/ is the package source).
$(VENV)/.built: $(VENV)/.deps $(RUST_SOURCES) pyproject.toml
	$(VENV)/bin/maturin develop --release -q
	touch $@

build: $(VENV)/.built

lint: $(VENV)/.deps
	cargo fmt --all -- --check
	cargo clippy --all-targets -q -- -D warnings
	cargo clippy --all-targets --no-default-features -q -- -D warnings
	$(VENV)/bin/ruff check $(PY_SOURCES) tools
	$(VENV)/bin/ruff format --check $(PY_SOURCES) tools
	$(VENV)/bin/mypy --strict python/crackle_runtime
	$(VPY) -m mypy.stubtest crackle_runtime._native --allowlist tools/stubtest-allowlist.txt

# Rewrites the sources in place: cargo fmt, ruff's import order and formatting.
format: $(VENV)/.deps
	cargo fmt --all
	$(VENV)/bin/ruff check --fix-only -q $(PY_SOURCES) tools
	$(VENV)/bin/ruff format -q $(PY_SOURCES) tools

# The core needs no interpreter: its tests build without the `python` feature.
rust-test:
	cargo test --release -q --no-default-features

py-test: build browser
	CRACKLE_REQUIRE_NATIVE=1 CRACKLE_REQUIRE_BROWSER=1 $(VPY) -m pytest -q -p no:cacheprovider

# Chromium and its driver from Debian's packages, for the HTML report's browser test.
browser:
	@command -v chromedriver >/dev/null 2>&1 || { \
		SUDO=$$( [ "$$(id -u)" -eq 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends \
			chromium chromium-driver; }

bench-quick: build
	$(VPY) benches/run.py --quick
	$(VPY) benches/quality.py --quick
	$(VPY) benches/detector_cost.py --quick
	$(VPY) benches/telemetry.py --quick
	$(VPY) benches/gathered_rows.py --tasks 50000 --metrics 4
	$(VPY) benches/dask_parquet.py --quick

bench: build
	$(VPY) benches/run.py

# Longer fuzzing of the native kernels (make test runs the same tests briefly);
# CRACKLE_INTERRUPT_TRIALS adds SIGINT fault-injection trials.
fuzz: build
	CRACKLE_REQUIRE_NATIVE=1 HYPOTHESIS_PROFILE=fuzz CRACKLE_INTERRUPT_TRIALS=300 \
		$(VPY) -m pytest -q -p no:cacheprovider tests/test_fuzz.py tests/test_interrupts.py

clean:
	rm -rf $(VENV) target python/crackle_runtime/*.so
