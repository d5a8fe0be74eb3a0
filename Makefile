# Two commands matter: `make demo` and `make test`. Both build the virtualenv on first use.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# Pinned so a fresh clone gets the Airflow the suite was written against; the oldest supported
# Airflow (with the pandas of its day) gets a second venv and a compatibility pass.
AIRFLOW_PIN := apache-airflow==3.3.2
MIN_VENV    := .venv-min
MIN_PINS    := apache-airflow==3.1.8 'pandas<3'

.PHONY: venv test test-oldest lint demo bench clean

venv: $(STAMP)

$(STAMP): pyproject.toml Makefile
	# mysqlclient (the MySQL provider's driver) compiles against the MariaDB client headers.
	dpkg -s libmariadb-dev >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq libmariadb-dev pkg-config; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip uv
	$(VENV)/bin/uv pip install --quiet --python $(PY) -e '.[dev,bench,aliyun]' '$(AIRFLOW_PIN)'
	touch $(STAMP)

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy sls_provider

test: venv lint
	$(PY) -m pytest -n 2 -q
	$(MAKE) test-oldest

# The hook and operator in real DAG runs on the oldest Airflow we support.
test-oldest: $(MIN_VENV)/.installed
	$(MIN_VENV)/bin/python -m pytest -n 2 -q -p no:cacheprovider \
		tests/integration/test_operator_dag.py tests/integration/test_hook.py tests/reliability/test_dag_failures.py

$(MIN_VENV)/.installed: pyproject.toml Makefile
	test -x $(MIN_VENV)/bin/python || $(PYTHON) -m venv $(MIN_VENV)
	$(MIN_VENV)/bin/python -m pip install --quiet --upgrade pip uv
	$(MIN_VENV)/bin/uv pip install --quiet --python $(MIN_VENV)/bin/python -e '.[dev]' $(MIN_PINS)
	touch $@

demo: venv
	$(PY) scripts/demo.py

bench: venv
	@for b in benchmarks/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) $(MIN_VENV) .pytest_cache build *.egg-info .demo
