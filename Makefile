# Every target builds on .venv; `make test` and `make demo` work from a clean clone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PLUGINS := $(wildcard plugins/*/pyproject.toml)
STAMP := $(VENV)/.installed

.PHONY: install test lint typecheck unit demo bench record clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml $(PLUGINS)
	$(BIN)/python -m pip install --quiet -e '.[dev,postgres,celery]' \
		$(foreach p,$(PLUGINS),-e '$(dir $(p))[dev]')
	touch $(STAMP)

install: $(STAMP)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy paycore $(dir $(wildcard plugins/*/paycore_*/__init__.py))

unit: install
	$(BIN)/pytest

test: lint typecheck unit

demo: install
	$(BIN)/paycore demo

# Re-record every plugin's cassettes against its sandbox (tests replay them otherwise).
record: install
	PAYCORE_RECORD=1 $(BIN)/pytest -q $(wildcard plugins/*/tests/test_recorded.py)

bench: install
	@for script in bench/[!_]*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

clean:
	rm -rf $(VENV) build *.egg-info
