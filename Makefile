# Two commands on a fresh machine (only Python >= 3.10 and pip needed):
#   make demo   set up .venv and run the whole pipeline on the embedded synthetic cohort
#   make test   set up .venv (with test extras) and run the test suite
PYTHON ?= python3
VENV ?= .venv
PIP := $(VENV)/bin/pip
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test

.PHONY: setup setup-test demo test test-slow lint bench clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

$(STAMP): $(VENV)/bin/python pyproject.toml constraints.txt
	$(PIP) install -q -c constraints.txt -e .
	touch $@

$(TEST_STAMP): $(STAMP)
	$(PIP) install -q -c constraints.txt -e '.[test]'
	touch $@

setup: $(STAMP)
setup-test: $(TEST_STAMP)

demo: $(STAMP)
	$(VENV)/bin/deepradiomics demo --out demo_run

test: $(TEST_STAMP)
	$(PY) -m pytest -q -n 2

lint: $(TEST_STAMP)
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench

test-slow: $(TEST_STAMP)
	$(PY) -m pytest -q -m slow

clean:
	rm -rf $(VENV) demo_run
