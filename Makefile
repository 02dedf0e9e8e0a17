# crowdsafe: `make demo` and `make test` set up what they need on a fresh machine and reuse it after.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
CROWDSAFE := $(VENV)/bin/crowdsafe
# The demo needs only Java and Maven (the broker) and crowdsafe's own Python packages; the tests
# also use the [test] extra (pytest, ruff, onnx, ...), Chromium (the page),
# Prometheus (rules and dashboards), Alertmanager and amtool (its alerts), kcat (an outside
# Kafka client), xmllint (the CAP 1.2 schema check) and docker-compose (`docker-compose config`
# validates deploy/compose.yaml without a daemon; nothing is built or pulled).
RUN_PACKAGES := openjdk-17-jre-headless maven
TEST_PACKAGES := $(RUN_PACKAGES) chromium prometheus prometheus-alertmanager kcat libxml2-utils \
  docker-compose
APT_PACKAGES := $(TEST_PACKAGES)
# Target-specific: a prerequisite (system-packages) built for `demo` sees the demo's list.
demo: APT_PACKAGES := $(RUN_PACKAGES)

.PHONY: setup system-packages demo test test-full lint bench kafka-up kafka-down clean

# Python packages into .venv/, re-installed only when pyproject.toml changes: the demo's
# (crowdsafe and what it imports, .installed-run) or also the tests' (the [test] extra, .installed).
$(VENV)/.installed-run: pyproject.toml
	@test -x $(PY) || { echo "setup: creating virtual environment $(VENV)/"; python3 -m venv $(VENV); }
	@echo "setup: installing Python packages (first run takes ~1 min) ..."
	@$(PY) -m pip install -q --disable-pip-version-check -U pip
	@$(PY) -m pip install -q --disable-pip-version-check -e .
	@touch $@

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || { echo "setup: creating virtual environment $(VENV)/"; python3 -m venv $(VENV); }
	@echo "setup: installing Python packages with the tests' (first run takes ~1 min) ..."
	@$(PY) -m pip install -q --disable-pip-version-check -U pip
	@$(PY) -m pip install -q --disable-pip-version-check -e ".[test]"
	@touch $@ $(VENV)/.installed-run

# Debian packages: what the target being made needs (see APT_PACKAGES above).
system-packages:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "setup: installing Debian packages:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

setup: $(VENV)/.installed

demo: system-packages $(VENV)/.installed-run
	$(CROWDSAFE) demo

# Starts the local broker (jars resolved on first use), runs every test, stops the broker by pid.
test: system-packages setup
	@$(CROWDSAFE) kafka up
	@status=0; $(VENV)/bin/pytest -q -ra || status=$$?; \
	$(CROWDSAFE) kafka down; exit $$status

# Everything in `make test`, then the fault tests again with 10 SIGKILLs instead of 3 (~5 min)
# and the fuzz test with 100,000 hostile messages instead of 5,000.
test-full: test
	@$(CROWDSAFE) kafka up
	@status=0; CROWDSAFE_FAULT_KILLS=10 $(VENV)/bin/pytest -q -ra -s tests/faults || status=$$?; \
	CROWDSAFE_FUZZ_MESSAGES=100000 $(VENV)/bin/pytest -q -ra -s tests/fuzz || status=$$?; \
	$(CROWDSAFE) kafka down; exit $$status

lint: setup
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

bench: setup
	$(CROWDSAFE) kafka up
	$(CROWDSAFE) bench --out bench-results/latest.json

kafka-up: setup
	$(CROWDSAFE) kafka up

kafka-down: setup
	$(CROWDSAFE) kafka down

clean:
	-$(CROWDSAFE) kafka down
	rm -rf .state run bench-results build dist
