# The two quick-start commands: `make demo` and `make test`. On first use both install
# the local stack's system packages when missing (deploy/install-deps.sh) and Chorus
# into a project-local virtualenv (.venv).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: demo test install clean

install: $(INSTALLED)

$(INSTALLED): pyproject.toml
	deploy/install-deps.sh
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

demo: $(INSTALLED)
	$(BIN)/chorus demo

test: $(INSTALLED)
	$(BIN)/python -m pytest

clean:
	-$(BIN)/chorus stack down
	rm -rf $(VENV) .chorus .pytest_cache .hypothesis
