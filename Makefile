# The two commands a newcomer needs (see README.md):
#   make demo   - set up the environment and run the main job
#   make test   - set up the environment from nothing and run the test suite
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml setup.cfg constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt torch
	$(PY) -m pip install --quiet -c constraints.txt -e ".[test]"
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m skgradnorm demo

test: $(STAMP)
	HF_HUB_OFFLINE=1 $(PY) -m pytest

# make lint - what CI checks besides the tests: ruff's linter and formatter (see pyproject.toml)
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

clean:
	rm -rf $(VENV) build *.egg-info

# make docs - install the "docs" extra into the same .venv and build the documentation
# site (offline; warnings are errors) into docs/_build/html.
.PHONY: docs
docs: $(STAMP)
	$(PY) -m pip install --quiet -c constraints.txt -e ".[docs]"
	HF_HUB_OFFLINE=1 MPLBACKEND=Agg $(PY) -m sphinx -W --keep-going -b html docs docs/_build/html
