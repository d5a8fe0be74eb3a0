# Two commands matter: `make demo` and `make test`. Both build the virtualenv on first use, from the
# committed locks: uv.lock (the development set) and requirements/oldest.txt (the declared lower bounds).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
UV     := $(VENV)/bin/uv
STAMP  := $(VENV)/.installed
MIN_VENV := .venv-min
# The installer itself is locked: its version is read from uv.lock, so bootstrap and lock agree.
UV_PIN = uv==$(shell sed -n '/^name = "uv"$$/{n;s/^version = "\(.*\)"$$/\1/p;}' uv.lock)

.PHONY: venv lock check-lock test test-ui test-ui-if-chromium test-oldest lint demo bench clean

venv: $(STAMP)

# mysqlclient (the MySQL provider's driver) compiles against the MariaDB client headers.
$(STAMP): pyproject.toml uv.lock Makefile
	dpkg -s libmariadb-dev >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq libmariadb-dev pkg-config; }
	@# The browser test (make test-ui) drives Debian's Chromium; Playwright never downloads a browser.
	test -x /usr/bin/chromium || { apt-get update -qq && apt-get install -y -qq chromium; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	test -x $(UV) && $(UV) --version | grep -q "$(subst uv==,,$(UV_PIN))" || $(PY) -m pip install --quiet '$(UV_PIN)'
	@$(MAKE) --no-print-directory check-lock
	@# Bytecode compiled once, at install: where PYTHONDONTWRITEBYTECODE is set (as on these machines)
	@# every process would otherwise compile each module it imports (import airflow: 5.1 CPU-s, 2.6 compiled).
	UV_PROJECT_ENVIRONMENT=$(VENV) $(UV) sync --quiet --locked --all-extras --all-groups --compile-bytecode --python $(PY)
	touch $(STAMP)

# Fails with one line when pyproject.toml changed and `make lock` was not run.
check-lock:
	@$(UV) lock --check --quiet 2>/dev/null || { echo "uv.lock is out of date with pyproject.toml: run 'make lock' and commit the result" >&2; exit 1; }
	@$(PY) scripts/oldest_requirements.py --check

# Regenerate both locks from pyproject.toml (needs the registry; commit the result).
lock:
	test -x $(UV) || { test -x $(PY) || $(PYTHON) -m venv $(VENV); $(PY) -m pip install --quiet uv; }
	$(UV) lock
	$(PY) scripts/oldest_requirements.py
	$(UV) pip compile --quiet requirements/oldest.in --python-version 3.11 \
		--python-platform x86_64-unknown-linux-gnu -o requirements/oldest.txt

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy sls_provider

# The suite keeps both cores busy; lint (one core, about 25 s from cold caches) runs beside the browser
# test, which mostly waits; -Otarget prints each part's output whole, when it ends.
test: venv check-lock
	$(PY) -m pytest -n 2 --dist loadgroup -q --ignore=tests/ui
	$(MAKE) -j3 -Otarget lint test-ui-if-chromium test-oldest

test-ui-if-chromium:
	if test -x /usr/bin/chromium; then $(MAKE) test-ui; else echo "no /usr/bin/chromium: make test-ui skipped"; fi

# The connection form in Airflow's own UI, in Chromium (tests/ui; screenshots of failures in
# tests/ui/screenshots/).
test-ui: venv
	$(PY) -m pytest -q -p no:xdist tests/ui

# The hook and operator in real DAG runs with every runtime dependency at its declared lower bound.
test-oldest: $(MIN_VENV)/.installed
	$(MIN_VENV)/bin/python -m pytest -n 2 -q -p no:cacheprovider \
		tests/integration/test_operator_dag.py tests/integration/test_hook.py tests/reliability/test_dag_failures.py \
		tests/integration/test_incremental_versions.py

$(MIN_VENV)/.installed: requirements/oldest.txt $(STAMP)
	rm -rf $(MIN_VENV)
	$(UV) venv --quiet --python $(PYTHON) $(MIN_VENV)
	$(UV) pip sync --quiet --compile-bytecode --python $(MIN_VENV)/bin/python requirements/oldest.txt
	$(UV) pip install --quiet --python $(MIN_VENV)/bin/python --no-deps -e .
	touch $@

demo: venv
	$(PY) scripts/demo.py

# Every benchmark runs, so a missed target in one does not hide the others' figures; fails at the end.
bench: venv
	@failed=""; for b in benchmarks/bench_*.py; do echo "== $$b"; $(PY) $$b || failed="$$failed $$b"; done; \
	if test -n "$$failed"; then echo "targets missed in:$$failed" >&2; exit 1; fi

clean:
	rm -rf $(VENV) $(MIN_VENV) .pytest_cache build *.egg-info .demo
