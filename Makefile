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
# Both parts run two at a time (pytest-xdist): the unit tests took 16 min one at a time on
# a slow machine and 7.3 min so (their time limits have room for a loaded machine: the
# planner's tests give HiGHS 3-4 times what it needs idle); the integration tests mostly
# wait on their broker, workers and Prometheus, each worker with its own services on its
# own free ports; those that solve plans against a clock stay on one worker
# (tests/integration/conftest.py, PLANNER_MODULES).
# $(call pytest,ARGS,WHAT): run pytest, stop make on a failure or on no test collected
pytest = PACKLOOP_REQUIRE_BINARIES=1 $(PY) -m pytest -q $(1); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "no $(2) tests ran" >&2; exit 1; fi; [ $$rc -eq 0 ] || exit $$rc
test: setup
	@$(call pytest,-m "not integration" -n 2,unit)
	@$(call pytest,-m integration -n 2 --dist loadgroup,integration)

# The quick loop while writing code: no broker, Prometheus or PostgreSQL (those tests are
# marked integration) and none of the tests marked slow (proven optima, promtool over whole
# test files, services started as subprocesses), which `make test` runs with the unit tests.
test-unit: setup
	$(PY) -m pytest -q -m "not integration and not slow" -n 2

lint: setup
	$(VENV)/bin/ruff check streams optimizer services tests bench
	$(VENV)/bin/mypy

schemas:
	$(PY) -m streams.schema_export
