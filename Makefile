# wsgi-chain: nginx -> uWSGI -> WSGI app. `make help` lists the targets.

SHELL := /bin/bash
.DEFAULT_GOAL := help

# Settings (HTTP_PORT, TOPOLOGY, TLS, APP_SRC, ...) are not defined here: each has its default once, in defaults.env,
# read by tools/settings.py behind every target. Set them on the command line (`make up HTTP_PORT=9000`) or in the
# environment; make passes both on to the tools. The README's configuration table explains each one.
# The host's Python 3 for the tools (standard library only: tools/__init__.py), resolved once to the interpreter itself
# and exported: a version manager's shim (pyenv's runs some twenty shell processes, about 70 ms of CPU, before the
# interpreter) then runs once per top-level make, not before every tool a target starts, nor in each of the hundreds
# of makes the test suite runs.
ifeq ($(origin PYTHON),undefined)
PYTHON := $(shell python3 -c 'import sys; print(sys.executable)' 2>/dev/null)
endif
PYTHON := $(or $(PYTHON),python3)
export PYTHON
# Python keeps its compiled modules here (__pycache__: ignored by git and by the images' builds) even where the
# environment sets PYTHONDONTWRITEBYTECODE (an empty value writes them): make test starts hundreds of Python processes,
# and each compiled the tools and rewrote the suite's asserts again (docs/testing.md: where the time goes).
export PYTHONDONTWRITEBYTECODE :=
VENV ?= .venv
PYTEST_ARGS ?=
BENCH_ARGS ?=
# make test: the stack's suite runs its work groups (a module in one topology; tests/conftest.py) on this many pytest
# workers at once. Much of a stack test's time is waiting on containers, so twice as many workers as cores pay off
# (3 left the 2 cores a third idle); 1 runs them one after another (docs/testing.md: where the time goes).
TEST_WORKERS ?= 4

.PHONY: help bootstrap build up dev down logs ps shell top reload restart versions lint test test-quick test-app verify \
        bench venv \
        clean \
        swarm-up swarm-down swarm-update cert clean-data

help: ## Show this help
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}'

# BOOTSTRAPPED=1: a make that bootstrapped already passes it to the make it starts (below), which skips the step.
bootstrap: ## Install what this machine lacks: Docker engine, compose v2, the base image (no-op when present)
	@$(if $(BOOTSTRAPPED),:,$(PYTHON) -m tools.bootstrap)

build: bootstrap ## Build the images (app, nginx; and single with TOPOLOGY=single)
	@$(PYTHON) -m tools.stack build

up: ## Bootstrap and build if needed, start, wait until healthy and print the URL (VERBOSE=1: every build line)
	@$(PYTHON) -m tools.stack up

dev: ## Like up, serving APP_SRC's working copy: an edit is served in about a second (docs/development.md)
	@$(PYTHON) -m tools.stack dev

down: ## Stop the stack and remove its containers, either topology (volumes are kept)
	@$(PYTHON) -m tools.stack down

# These act on the stack that runs, in the topology and with the TLS setting it was started with (read off its
# containers' compose labels): TOPOLOGY and TLS choose only at `make up`.
logs: ## Follow the logs of every service
	@$(PYTHON) -m tools.stack logs

ps: ## List the stack's containers and their health
	@$(PYTHON) -m tools.stack ps

shell: ## Open a shell in the running app container
	@$(PYTHON) -m tools.stack shell

top: ## Live uWSGI worker state (uwsgitop on the loopback-only stats server); q quits
	@$(PYTHON) -m tools.stack top

reload: ## Zero-downtime reload of the app's code: uWSGI chain reload, worker by worker
	@$(PYTHON) -m tools.stack reload

restart: ## Full restart of the app server, for what a reload can't pick up (uWSGI config, environment)
	@$(PYTHON) -m tools.stack restart

cert: ## Write a self-signed certificate for SERVER_NAMES (else ALLOWED_HOSTS) into TLS_CERTS_DIR, to try TLS=on
	@$(PYTHON) -m tools.tls

versions: ## Print each piece's version as checked out and as running
	@$(PYTHON) -m tools.stack versions

.PHONY: soak
soak: venv ## Steady mixed load on the running stack for SOAK_DURATION s; fails on errors or growing memory or fds
	@$(VENV)/bin/python -m tools.soak

.PHONY: backup restore
backup: ## Back up the app's data into BACKUP_DIR while the stack serves: its database (SQLite or PostgreSQL), its other files
	@$(PYTHON) -m tools.backup backup

restore: ## Bring the app's data back from BACKUP=<file> (refuses anything that is not a backup)
	@$(PYTHON) -m tools.backup restore "$(BACKUP)"

swarm-up: $(VENV)/.installed ## Deploy the stack on Docker Swarm (starts a single-node swarm on 127.0.0.1 if there is none)
	@$(VENV)/bin/python -m tools.swarm up

swarm-update: $(VENV)/.installed ## Roll the Swarm stack to the current settings (e.g. APP_IMAGE=<new tag>), one replica at a time
	@$(VENV)/bin/python -m tools.swarm update

swarm-down: $(VENV)/.installed ## Remove the Swarm stack (volumes are kept); leave the swarm if swarm-up started it
	@$(VENV)/bin/python -m tools.swarm down

.PHONY: k8s-render k8s-validate
K8S_TARGET ?= base
k8s-render: ## Print the Kubernetes manifests of K8S_TARGET (base, overlays/production), offline, pinned kustomize
	@$(PYTHON) -m tools.k8s render $(K8S_TARGET)

k8s-validate: venv ## Validate every Kubernetes target against the schemas of Kubernetes 1.30 and 1.37, offline
	@$(VENV)/bin/python -m tools.k8s validate

.PHONY: cluster-up cluster-down cluster-status
cluster-up: $(VENV)/.installed ## A local 3-node Swarm (a test rig: containers as nodes) running the stack on HTTP_BIND:HTTP_PORT
	@$(VENV)/bin/python -m tools.cluster up

cluster-status: $(VENV)/.installed ## The local cluster's nodes and the stack's services on it
	@$(VENV)/bin/python -m tools.cluster status

cluster-down: $(VENV)/.installed ## Remove the local cluster and all cluster-up made: nodes, their volumes, network, images
	@$(VENV)/bin/python -m tools.cluster down

$(VENV)/.installed: tests/requirements.txt app/requirements.txt app/requirements-test.txt
	$(PYTHON) -m tools.venv $(VENV)
	touch $@

venv: $(VENV)/.installed ## Create the test virtualenv (host tools the tests drive, too)
	@$(PYTHON) -m tools.hostdeps

lint: build venv ## Run every linter, all must be clean: hadolint, gixy, compose config, ruff, Django check --deploy
	$(VENV)/bin/python -m tools.lint

# make test and test-quick start with this: the images beside the virtualenv, then lint (which needs both) beside the
# app's unit tests (which need the virtualenv). One job each; their outputs are kept apart. Bootstrap runs before, on
# its own: it and the virtualenv's host tools may both install Debian packages, one apt at a time.
BEFORE_STACK_TESTS = $(MAKE) --no-print-directory -j3 --output-sync=target BOOTSTRAPPED=1 lint test-app

test: bootstrap ## Run the whole test suite: lint and the app's unit tests, then the stack's, on stacks of their own
	@$(BEFORE_STACK_TESTS)
	@$(VENV)/bin/pytest -n $(TEST_WORKERS) --dist loadscope --no-loadscope-reorder -m "not serial" $(PYTEST_ARGS)
	@# The latencies measured against the clock, alone on the machine (5: the selection has none of them).
	@$(VENV)/bin/pytest -m serial $(PYTEST_ARGS) || [ $$? -eq 5 ]
	@# The images the run's rebuilds left untagged (tools/clean.py).
	@$(PYTHON) -m tools.clean --replaced

test-quick: bootstrap ## The edit loop's subset (under 2 min warm): lint, the app's unit tests, the chain checks on one stack
	@$(BEFORE_STACK_TESTS)
	@$(VENV)/bin/pytest tests/test_chain.py -k split -q

test-app: venv ## The app's unit tests alone (app/tests, pytest-django; part of test and test-quick)
	$(VENV)/bin/pytest -c app/pytest.ini app/tests -q

bench: build venv ## Benchmark the chain against bare uWSGI, gunicorn and granian (results/bench/; BENCH_ARGS=--sweep)
	$(VENV)/bin/python -m tools.bench $(BENCH_ARGS)

verify: ## Run the chain checks against a running deployment: BASE_URL=http://... NGINX_HOST=docker://... APP_HOST=... [VERIFY_CA=ca.pem]
	@BASE_URL="$(BASE_URL)" NGINX_HOST="$(NGINX_HOST)" APP_HOST="$(APP_HOST)" VERIFY_CA="$(VERIFY_CA)" $(PYTHON) -m tools.verify
	@$(MAKE) --no-print-directory -s $(VENV)/.installed
	@$(VENV)/bin/pytest -m chain --base-url "$(BASE_URL)" --nginx-host "$(NGINX_HOST)" --app-host "$(APP_HOST)" \
		--verify-ca="$(VERIFY_CA)" $(PYTEST_ARGS)

clean: ## Remove the stack's containers, its images, dangling build cache, the test venv, leftovers; keeps the data
	@VENV="$(VENV)" $(PYTHON) -m tools.clean

clean-data: ## What clean removes, plus the data volumes and .secrets/ (asks first; CONFIRM=yes for scripts)
	@VENV="$(VENV)" $(PYTHON) -m tools.clean --data
