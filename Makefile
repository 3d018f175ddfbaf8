# The two quick-start commands: `make demo` and `make test`. Both set up what they need.
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: setup demo test test-unit lint schemas

setup:
	@bash scripts/setup.sh

demo: setup
	$(VENV)/bin/packloop demo

# pytest exits 5 when it collected no test: that is a failure here, not a pass.
# The whole suite needs promtool, amtool, prometheus and docker-compose (setup installs
# them): a missing one fails its tests here instead of skipping them.
test: setup
	PACKLOOP_REQUIRE_BINARIES=1 $(PY) -m pytest -q; rc=$$?; if [ $$rc -eq 5 ]; then echo "no tests ran" >&2; exit 1; fi; exit $$rc

# No broker, Prometheus or PostgreSQL: those tests are marked integration.
test-unit: setup
	$(PY) -m pytest -q -m "not integration"

lint: setup
	$(VENV)/bin/ruff check streams optimizer services tests bench
	$(VENV)/bin/mypy

schemas:
	$(PY) -m streams.schema_export
