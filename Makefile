# Every target builds on .venv; `make test` and `make demo` work from a clean clone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PLUGINS := $(wildcard plugins/*/pyproject.toml)
STAMP := $(VENV)/.installed

# The end-to-end tests drive Debian's Chromium (PAYCORE_CHROMIUM names another binary).
CHROMIUM := $(or $(PAYCORE_CHROMIUM),chromium)

.PHONY: install browser test lint typecheck unit demo bench record clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml $(PLUGINS)
	$(BIN)/python -m pip install --quiet -e '.[dev,postgres,celery]' \
		$(foreach p,$(PLUGINS),-e '$(dir $(p))[dev]')
	touch $(STAMP)

install: $(STAMP)

# Chromium for the end-to-end tests, from Debian's packages, once. Where it cannot be
# installed the step says why and goes on: the tests then skip, or fail when CI=true.
browser:
	@if command -v '$(CHROMIUM)' >/dev/null 2>&1; then :; \
	elif [ -n '$(PAYCORE_CHROMIUM)' ]; then \
		echo "browser: PAYCORE_CHROMIUM=$(PAYCORE_CHROMIUM) is not an executable" >&2; \
	elif ! command -v apt-get >/dev/null 2>&1; then \
		echo "browser: no apt-get here; install Chromium and set PAYCORE_CHROMIUM" >&2; \
	elif [ "$$(id -u)" != 0 ]; then \
		echo "browser: not root; run 'sudo apt-get install chromium' or set PAYCORE_CHROMIUM" >&2; \
	else \
		echo "browser: installing chromium (Debian package)"; \
		log=$$(mktemp); export DEBIAN_FRONTEND=noninteractive; \
		{ apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium; } \
			>"$$log" 2>&1 || { echo "browser: apt-get could not install chromium:" >&2; \
			tail -n 5 "$$log" >&2; }; \
		rm -f "$$log"; \
	fi

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy paycore $(dir $(wildcard plugins/*/paycore_*/__init__.py))

unit: install browser
	$(BIN)/pytest

test: browser lint typecheck unit

demo: install
	$(BIN)/paycore demo

# Re-record every plugin's cassettes against its sandbox (tests replay them otherwise).
record: install
	PAYCORE_RECORD=1 $(BIN)/pytest -q $(wildcard plugins/*/tests/test_recorded.py)

bench: install
	@for script in bench/[!_]*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

clean:
	rm -rf $(VENV) build *.egg-info
