# Every target creates the project-local virtual environment (.venv) when it is missing and
# installs exactly the versions pinned in uv.lock into it (tinymem editable, with the dev, sweep
# and caption extras). Nothing else is needed: when `uv` is not on the machine it is bootstrapped
# from the package index into .tools/ with the Python found here.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.tinymem-installed
EXTRAS := --extra dev --extra sweep --extra caption
UV_VERSION := 0.13.9
UV_BOOTSTRAP := .tools/bin/uv
UV ?= $(or $(shell command -v uv 2>/dev/null),$(UV_BOOTSTRAP))
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: install lock check-lock train test test-full lint bench bench-gpu clean

install: $(STAMP)

$(UV_BOOTSTRAP):
	$(PYTHON) -m venv .tools
	.tools/bin/python -m pip install --quiet "uv==$(UV_VERSION)"

check-lock: | $(UV)  ## fails when pyproject.toml changed without a new uv.lock
	@$(UV) lock --check --quiet || { \
	  echo "uv.lock is out of date with pyproject.toml: run 'make lock' and commit uv.lock"; \
	  exit 1; }

$(STAMP): pyproject.toml uv.lock | $(UV)
	@$(MAKE) --no-print-directory check-lock
	$(UV) sync --frozen $(EXTRAS) --python $(PYTHON)
	touch $(STAMP)

lock: | $(UV)  ## re-resolve uv.lock after a change to pyproject.toml
	$(UV) lock

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

bench-gpu: $(STAMP)  ## the GPU run-book (ARGS=--dry-run: on the CPU, tiny)
	$(PY) -m tinymem.bench gpu $(ARGS)

clean:
	rm -rf $(VENV) .tools logs data .pytest_cache
