# Two commands matter: `make up` runs the service, `make test` runs every check CI runs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: up test lint pytest test-tools bench-tools protos bench clean

$(STAMP): pyproject.toml clients/python/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# wvs-client first on the line: the server depends on it, from this repository
	$(BIN)/pip install --quiet -e clients/python -e '.[dev,bench]'  # bench: the queues make bench measures beside WVS
	touch $@

up: $(STAMP)  ## Run WVS on this machine (embedded PostgreSQL + JuiceFS); ARGS="--port 8080 --data-dir DIR"
	$(BIN)/wvs up $(ARGS)

test: lint pytest  ## Lint, type-check, import contracts, then the test suite

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

# One pytest worker per core (at most 4), each with its own PostgreSQL and JuiceFS mount; a file's tests stay
# on one worker, so its module fixtures (one `wvs up`, one service) are made once. PYTEST_ARGS="-n 0": serially.
pytest: $(STAMP) test-tools bench-tools
	$(BIN)/pytest -n auto --maxprocesses 4 --dist loadfile $(PYTEST_ARGS)

# $(call debian,COMMANDS,PACKAGES,WHY): when a command is missing, install PACKAGES from Debian as root;
# otherwise say what is missing and what will not run.
debian = missing=; for c in $(1); do command -v $$c >/dev/null || missing=1; done; [ -z "$$missing" ] || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get install -y -qq $(2) >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq $(2) >/dev/null; }; \
	  else echo "note: apt-get install $(2) $(3)"; fi; }

# VictoriaMetrics (vmsingle, vmalert, vmauth) and Alertmanager, for `wvsctl obs` and the compose `ga`
# profile's files; without them (not root) those tests are skipped, saying why.
test-tools:
	@$(call debian,victoria-metrics prometheus-alertmanager,victoria-metrics prometheus-alertmanager,to run the observability tests; they will be skipped)

bench-tools:
	@$(call debian,wrk,wrk,for the API figures of make bench)

protos: $(STAMP)  ## Regenerate the gRPC stubs after editing protos/
	$(BIN)/python scripts/gen_protos.py

bench: $(STAMP) bench-tools  ## Print WVS's figures beside PgQueuer's and Procrastinate's; ARGS="--rounds 5" or "--quick"
	$(BIN)/python -m bench $(ARGS)

clean:
	rm -rf $(VENV) build .pytest_cache .mypy_cache .ruff_cache
