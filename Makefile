# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8080
PYTEST_ARGS ?=
# the demo prescriber system (server/demo_ehr.py) beside the hub; `make run DEMO_EHR=0` leaves it out
DEMO_EHR ?= 1

.PHONY: run test faults lint format bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)  ## migrate, seed the demo and serve on http://127.0.0.1:8080
	$(BIN)/telepharm migrate
	TELEPHARM_DEMO_EHR=$(DEMO_EHR) $(BIN)/telepharm demo
	TELEPHARM_DEMO_EHR=$(DEMO_EHR) $(BIN)/telepharm serve --host $(HOST) --port $(PORT)

test: $(STAMP)  ## unit and functional tests (SQLite; PostgreSQL too when TELEPHARM_TEST_DATABASE_URL is set)
	$(BIN)/pytest $(PYTEST_ARGS)

faults: $(STAMP)  ## fault injection under load (not part of make test); see tests/faults/README.md
	$(BIN)/pytest tests/faults $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	@# the web client's modules parse (with Node.js when the machine has it; the browser tests run them)
	@if command -v node >/dev/null; then \
	  for f in $$(find webclient -name '*.js'); do node --experimental-default-type=module --check $$f || exit 1; done; \
	else echo "node not found: web client syntax not checked"; fi

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP)  ## benchmarks (not part of make test); see tests/benchmarks/README.md
	command -v wrk >/dev/null || apt-get install -y wrk
	$(BIN)/python -m tests.benchmarks.intake
	$(BIN)/python -m tests.benchmarks.checks
	$(BIN)/python -m tests.benchmarks.picture
	$(BIN)/python -m tests.benchmarks.queue
	$(BIN)/python -m tests.benchmarks.outbound
	$(BIN)/python -m tests.benchmarks.consults
	$(BIN)/python -m tests.benchmarks.media
	$(BIN)/python -m tests.benchmarks.uploads
	$(BIN)/python -m tests.benchmarks.product_check_queue
	$(BIN)/python -m tests.benchmarks.ledger

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
