# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
BUILT := $(VENV)/.core-built-stamp
BENCH := $(VENV)/.bench-stamp
CORE_SOURCES := $(shell find udptcp/core -name '*.py') udptcp/wire.py setup.py

.PHONY: demo test build lint typecheck bench compare lossy tunnel-bench fuzz clean

$(STAMP): pyproject.toml setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip setuptools
	UDPTCP_COMPILE=0 $(BIN)/python -m pip install --quiet -e '.[test,dev]'
	touch $(STAMP)

# The core compiled with mypyc where a C compiler is present (setup.py), next to its sources,
# and again after every edit of them (a stale build is never used: udptcp/corebuild.py).
$(BUILT): $(STAMP) $(CORE_SOURCES)
	@echo "compiling the core with mypyc (about a minute)"
	$(BIN)/python setup.py --quiet build_ext --inplace
	@# An edit that changes no C (a docstring) leaves the library as it was, and older than the
	@# source: mark it current, or udptcp/corebuild.py would take it for stale.
	find udptcp/core -maxdepth 1 -name 'native__mypyc*' -exec touch {} +
	touch $(BUILT)

build: $(BUILT)

demo: $(BUILT)
	$(BIN)/python examples/demo.py

# The whole suite runs twice: against the compiled core, then against the pure-Python one.
test: lint typecheck $(BUILT)
	@$(BIN)/python -c "import udptcp.corebuild as b; print('== tests against the', b.core_build(), 'core')"
	$(BIN)/python -m pytest -q
	@echo "== tests against the pure Python core (UDPTCP_PURE_PYTHON=1)"
	UDPTCP_PURE_PYTHON=1 $(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy

bench: $(BUILT)
	$(BIN)/udptcp bench

# The peers the benchmarks compare with (aioquic, kcp) and matplotlib, once.
$(BENCH): $(STAMP)
	UDPTCP_COMPILE=0 $(BIN)/python -m pip install --quiet -e '.[bench]'
	touch $(BENCH)

compare: $(BUILT) $(BENCH)
	$(BIN)/python -m benchmarks.compare

lossy: $(BUILT) $(BENCH)
	$(BIN)/python -m benchmarks.lossy --plot benchmarks/out/lossy.png

# Needs no optional peer: the tunnel is measured against kernel TCP only.
tunnel-bench: $(BUILT)
	$(BIN)/python -m benchmarks.tunnel

# Coverage-guided fuzzing (atheris, the fuzz extra, once) of each target for FUZZ_SECONDS, on the
# pure-Python core; the corpus found is merged into tests/fuzz_corpus/, which the suite replays.
FUZZ_SECONDS ?= 60
FUZZ_STAMP := $(VENV)/.fuzz-stamp
$(FUZZ_STAMP): $(STAMP)
	UDPTCP_COMPILE=0 $(BIN)/python -m pip install --quiet -e '.[fuzz]'
	touch $(FUZZ_STAMP)

fuzz: $(FUZZ_STAMP)
	cd tests && for target in decode connection; do \
		UDPTCP_PURE_PYTHON=1 ../$(BIN)/python fuzz.py $$target $(FUZZ_SECONDS) || exit 1; \
	done

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
	find udptcp -name '*.so' -delete
