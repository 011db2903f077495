# Every target creates the project-local virtual environment (.venv) when it is missing and
# installs tinymem into it (editable, with the dev, sweep and caption extras). Nothing else is needed.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.tinymem-installed

.PHONY: install train test test-full lint bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -e ".[dev,sweep,caption]"
	touch $(STAMP)

train: $(STAMP)  ## the built-in demo: synthetic world, memory=text+region, CPU
	$(PY) -m tinymem.train $(ARGS)

test: $(STAMP)  ## fast tier
	$(PY) -m pytest -m "not slow" -q $(ARGS)

test-full: $(STAMP)  ## every test, slow ones included
	$(PY) -m pytest -q $(ARGS)

lint: $(STAMP)
	$(PY) -m ruff check src tests
	$(PY) -m ruff format --check src tests

bench: $(STAMP)
	$(PY) -m tinymem.bench $(ARGS)

clean:
	rm -rf $(VENV) logs data .pytest_cache
