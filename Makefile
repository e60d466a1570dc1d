# Aidline: `make run` sets up and serves the API (SQLite, demo data); `make test` runs the suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
FLASK := $(BIN)/flask --app wsgi
PORT ?= 5000

.PHONY: install browser screenshots run serve test test-sqlite test-postgres fuzz lint format spec bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	@echo "== resolved:"
	@$(BIN)/pip freeze --exclude-editable | grep -iE '^(flask|flask-smorest|flask-limiter|flask-wtf|werkzeug|marshmallow|sqlalchemy|alembic|psycopg|psycopg-binary|pyjwt|gunicorn|twilio|redis|orjson)=='
	touch $(STAMP)

install: $(STAMP) browser

## The console's browser tests drive Debian's Chromium with a CJK font (never `playwright
## install`, which downloads a browser of its own).
browser:
	@if [ ! -x /usr/bin/chromium ] || ! dpkg -s fonts-noto-cjk >/dev/null 2>&1; then \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
			chromium fonts-noto-cjk; \
	fi

## Regenerate the console's screenshots under docs/console/ (desktop and 375 px phone).
screenshots: $(STAMP) browser
	$(BIN)/python scripts/console_screenshots.py

## Set up the embedded default (SQLite + console SMS), load demo data, serve the API and
## run the SMS worker beside it.
# One development key for every process of `make run` (what the API seals and hashes, the
# worker and the CLI must open and match), kept in instance/ so demo data survives restarts.
DEV_KEY := instance/dev-secret-key
run: export SECRET_KEY ?= $(shell mkdir -p instance && { [ -s $(DEV_KEY) ] || (umask 077 && \
	$(PYTHON) -c 'import secrets; print(secrets.token_urlsafe(48))' > $(DEV_KEY)); } && cat $(DEV_KEY))

run: $(STAMP)
	$(FLASK) db upgrade
	$(FLASK) divisions load
	$(FLASK) demo seed
	@# The SMS worker runs beside the dev server so sign-in codes and receipts show on stderr.
	SMS_POLL_SECONDS=1 $(FLASK) worker & WORKER=$$!; trap 'kill $$WORKER 2>/dev/null' EXIT INT TERM; \
		$(FLASK) run --host 127.0.0.1 --port $(PORT)

## Run the whole suite on SQLite, and on PostgreSQL too when TEST_DATABASE_URL is set.
test: $(STAMP) browser
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	env -u TEST_DATABASE_URL $(BIN)/pytest -q
	@if [ -n "$$TEST_DATABASE_URL" ]; then \
		echo "== PostgreSQL: $$TEST_DATABASE_URL"; \
		$(BIN)/pytest -q; \
	fi

test-sqlite: $(STAMP)
	env -u TEST_DATABASE_URL $(BIN)/pytest -q

test-postgres: $(STAMP)
	TEST_DATABASE_URL=$${TEST_DATABASE_URL:-postgresql+psycopg://postgres@127.0.0.1:5432/test} $(BIN)/pytest -q

## Long fuzzing run: FUZZ_EXAMPLES per operation, role and mode (random seed; make test uses 4,
## derandomised). Runs on PostgreSQL too when TEST_DATABASE_URL is set.
FUZZ_EXAMPLES ?= 60
fuzz: $(STAMP)
	env -u TEST_DATABASE_URL FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) FUZZ_RANDOM=1 \
		$(BIN)/pytest -q tests/reliability/test_fuzz.py tests/reliability/test_bad_input.py
	@if [ -n "$$TEST_DATABASE_URL" ]; then \
		FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) FUZZ_RANDOM=1 $(BIN)/pytest -q \
			tests/reliability/test_fuzz.py tests/reliability/test_bad_input.py; \
	fi

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

## Regenerate api_spec/openapi.json from the app.
spec: $(STAMP)
	$(FLASK) openapi write --format=json api_spec/openapi.json

bench: $(STAMP)
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) instance .pytest_cache .ruff_cache
