# Two commands matter: `make up` runs the service, `make test` runs every check CI runs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: up test lint pytest test-tools protos bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

up: $(STAMP)  ## Run WVS on this machine (embedded PostgreSQL + JuiceFS); ARGS="--port 8080 --data-dir DIR"
	$(BIN)/wvs up $(ARGS)

test: lint pytest  ## Lint, type-check, import contracts, then the test suite

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

pytest: $(STAMP) test-tools
	$(BIN)/pytest $(PYTEST_ARGS)

# System tools some tests need beyond PyPI: VictoriaMetrics (Debian package) for `wvsctl obs`. As root it is
# installed; otherwise its tests are skipped, saying why.
test-tools:
	@command -v victoria-metrics >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get install -y -qq victoria-metrics >/dev/null 2>&1 || \
	    { apt-get update -qq && apt-get install -y -qq victoria-metrics >/dev/null; }; \
	  else echo "note: victoria-metrics not installed (apt-get install victoria-metrics); the obs tests will be skipped"; fi; }

protos: $(STAMP)  ## Regenerate the gRPC stubs after editing protos/
	$(BIN)/python scripts/gen_protos.py

bench: $(STAMP)  ## Print the benchmark figures
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) build .pytest_cache .mypy_cache .ruff_cache
