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

# System tools some tests need beyond PyPI, from Debian: VictoriaMetrics (vmsingle, vmalert, vmauth) and
# Alertmanager, for `wvsctl obs` and the compose `ga` profile's files. As root they are installed; otherwise
# those tests are skipped, saying why.
TEST_PACKAGES := victoria-metrics prometheus-alertmanager
test-tools:
	@command -v victoria-metrics >/dev/null && command -v prometheus-alertmanager >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get install -y -qq $(TEST_PACKAGES) >/dev/null 2>&1 || \
	    { apt-get update -qq && apt-get install -y -qq $(TEST_PACKAGES) >/dev/null; }; \
	  else echo "note: apt-get install $(TEST_PACKAGES) to run the observability tests; they will be skipped"; fi; }

protos: $(STAMP)  ## Regenerate the gRPC stubs after editing protos/
	$(BIN)/python scripts/gen_protos.py

bench: $(STAMP)  ## Print the benchmark figures
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) build .pytest_cache .mypy_cache .ruff_cache
