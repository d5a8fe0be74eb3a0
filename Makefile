# Two commands matter: `make demo` and `make test`. Both build the virtualenv on first use.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# Pinned so a fresh clone gets the Airflow the suite was written against.
AIRFLOW_PIN := apache-airflow==3.3.2

.PHONY: venv test lint unit demo bench docs clean

venv: $(STAMP)

$(STAMP): pyproject.toml Makefile
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

demo: venv
	$(PY) scripts/demo.py

bench: venv
	@for b in benchmarks/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info .demo
