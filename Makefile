# The two quick-start commands: `make run` and `make test`.
PYTHON ?= python3
# Three pytest workers on two cores: most of the suite waits on servers, sockets and browsers (four were slower: 11:21).
PYTEST_ARGS ?= -n 3 --dist worksteal
VENV   := .venv
BIN    := $(VENV)/bin
LOCK   := requirements.lock

.PHONY: run test lint audit lock clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
	  { echo "jutella needs Python 3.11 or newer (found $$($(PYTHON) --version))" >&2; exit 1; }
	@$(PYTHON) -m venv $(VENV) || { rm -rf $(VENV); \
	  echo "could not create $(VENV): on Debian, install python3-venv (apt-get install python3-venv)" >&2; exit 1; }
	$(BIN)/python -m pip install --quiet --upgrade pip

# Installs from the lock file, again whenever it or pyproject.toml changes.
$(VENV)/.run-installed: pyproject.toml $(LOCK) | $(BIN)/python
	$(BIN)/python -m pip install --quiet -c $(LOCK) -e .
	@touch $@

$(VENV)/.test-installed: pyproject.toml $(LOCK) | $(BIN)/python
	$(BIN)/python -m pip install --quiet -c $(LOCK) -e '.[test]'
	@touch $@ $(VENV)/.run-installed

run: $(VENV)/.run-installed
	$(BIN)/jutella serve

test: $(VENV)/.test-installed
	$(BIN)/bandit -q -r src/jutella
	$(BIN)/lint-imports
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Needs a machine that can reach an advisory service; not part of CI.
audit: $(VENV)/.test-installed
	$(BIN)/python -m pip install --quiet pip-audit
	$(BIN)/pip-audit -r $(LOCK)

# Re-pin every dependency (run after changing pyproject.toml).
lock: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	$(BIN)/python -m pip freeze --exclude-editable --exclude jutella > $(LOCK)

clean:
	rm -rf $(VENV) .pytest_cache build src/*.egg-info
