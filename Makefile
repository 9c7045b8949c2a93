# The two quick-start commands: `make demo` and `make test`. On first use both install
# the local stack's system packages when missing (deploy/install-deps.sh) and Chorus
# into a project-local virtualenv (.venv).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: demo test install clean lock

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

# deploy/requirements.lock: the image's exact dependency versions with hashes. Run after changing
# the dependencies in pyproject.toml (a test fails until the lock has them).
lock: $(INSTALLED)
	$(BIN)/python -m pip install --quiet pip-tools
	$(BIN)/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras --no-emit-find-links \
		--output-file deploy/requirements.lock pyproject.toml deploy/lock.in

clean:
	-$(BIN)/chorus stack down
	rm -rf $(VENV) .chorus .pytest_cache .hypothesis
