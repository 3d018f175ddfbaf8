# The two quick-start commands: `make demo` and `make test`. Both set up what they need.
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: setup demo test test-unit lint schemas

setup:
	@bash scripts/setup.sh

demo: setup
	$(VENV)/bin/packloop demo

# pytest exits 5 when it collected no test: that is a failure here, not a pass.
test: setup
	$(PY) -m pytest -q; rc=$$?; if [ $$rc -eq 5 ]; then echo "no tests ran" >&2; exit 1; fi; exit $$rc

test-unit: setup
	$(PY) -m pytest -q -m "not integration"

lint: setup
	$(VENV)/bin/ruff check streams optimizer services tests bench
	$(VENV)/bin/mypy

schemas:
	$(PY) -m streams.schema_export
