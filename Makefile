# The two commands the README promises: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
TOOLS  := .tools
# Client tools the end-to-end tests drive, each in its own venv so their pins don't clash.
CLIENT_TOOLS := poetry pdm hatch

.PHONY: run test install install-test system-deps client-tools node-deps bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip setuptools wheel

$(VENV)/.installed: $(BIN)/python setup.cfg setup.py
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.installed-test: $(BIN)/python setup.cfg setup.py
	$(BIN)/pip install -q -e ".[testing,postgresql,s3,gcs,azure]"
	touch $@

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test system-deps client-tools node-deps

run: install
	$(BIN)/pserve development.ini

# PostgreSQL for the database tests, wrk for the benchmarks and the load tests, openssl (a
# CA folder's hashed names in the upstream TLS tests), curl (a client test) and Chromium for
# the web UI's tests (driven by Playwright; never `playwright install`, which downloads its
# own browser), from Debian's packages.
system-deps:
	@missing=""; \
	for pkg in postgresql-15 wrk openssl curl chromium; do dpkg -s $$pkg >/dev/null 2>&1 || missing="$$missing $$pkg"; done; \
	if [ -n "$$missing" ]; then \
	  echo "apt-get install$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-upgrade $$missing >/dev/null; \
	fi

# pdm's open dependency ranges let in a hishel it cannot run with; its `locked` extra pins
# the versions pdm was released with. Bytecode is compiled once here, not on every
# start of a tool in the tests.
client-tools: $(VENV)/.installed-test
	@for tool in $(CLIENT_TOOLS); do \
	  spec=$$tool; [ $$tool = pdm ] && spec='pdm[locked]'; \
	  if [ ! -x $(TOOLS)/$$tool/bin/$$tool ]; then \
	    echo "installing $$spec into $(TOOLS)/$$tool"; \
	    $(BIN)/uv venv -q --python $(BIN)/python $(TOOLS)/$$tool && \
	    $(BIN)/uv pip install -q --compile-bytecode --python $(TOOLS)/$$tool/bin/python "$$spec" || exit 1; \
	  fi; \
	done

node-deps:
	@if [ -f package.json ] && [ ! -d node_modules ]; then npm ci --no-audit --no-fund --silent; fi

test: install-test
	$(BIN)/pytest -n 2 --dist loadgroup -q

bench: install-test
	$(BIN)/python -m benchmarks.run

clean:
	rm -rf $(VENV) $(TOOLS) node_modules var build dist *.egg-info
