# price-crawler functions — local commands. `make help` lists them.
# Targets call .venv/bin/... directly, so nothing needs activating; run `make setup` first.

PYTHON := .venv/bin/python

.DEFAULT_GOAL := help
.PHONY: help setup up down lint test migrate status bench clean cluster deploy gold

help: ## list the targets
	@awk 'BEGIN {FS = ":[^#]*## "} /^[a-z-]+:.*## / {printf "  make %-8s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(PYTHON):
	@echo "No .venv yet: run 'make setup' first." >&2; exit 1

setup: ## install everything: system packages if missing, .venv, Kafka from Maven Central
	@bash scripts/setup.sh

up: | $(PYTHON) ## run the whole system in the foreground (Kafka, PostgreSQL, market, functions, eventing); Ctrl-C stops it
	@$(PYTHON) -m local.stack

down: | $(PYTHON) ## stop the embedded Kafka/PostgreSQL left running from this directory
	@$(PYTHON) -m local.services stop-all

lint: | $(PYTHON) ## ruff (lint and format check) over the whole tree, mypy over the whole tree
	@$(PYTHON) -m ruff check .
	@$(PYTHON) -m ruff format --check .
	@$(PYTHON) -m mypy

test: lint | $(PYTHON) ## lint, then the test suite; it starts the Kafka and PostgreSQL it needs (PYTEST_ARGS="-k x" to narrow)
	@$(PYTHON) -m pytest $(PYTEST_ARGS)

migrate: | $(PYTHON) ## apply pending database migrations to DATABASE_URL (PostgreSQL must be running)
	@$(PYTHON) -m shared.db migrate

gold: | $(PYTHON) ## build the stock gold layer once: dbt build of dbt/stocks on DATABASE_URL, recorded in job_logs
	@$(PYTHON) -m shared.stocks gold

status: | $(PYTHON) ## show what runs and how fresh the prices are
	@if [ -f local/status.py ] || [ -f local/status/__main__.py ]; then $(PYTHON) -m local.status; \
	else echo "make status: not yet available (local/status.py is missing)"; fi

bench: | $(PYTHON) ## run the benchmarks and print them beside their baselines (BENCH_ARGS=--only-stocks: the stock run alone)
	@if [ -f bench/run.py ]; then $(PYTHON) bench/run.py $(BENCH_ARGS); \
	else echo "make bench: not yet available (bench/run.py is missing)"; fi

clean: down ## stop everything, then delete the local data and logs in .local (keeps the downloaded Kafka)
	@if [ -d .local ]; then \
	  find .local -mindepth 1 -maxdepth 1 ! -name kafka -exec rm -rf {} +; \
	  find .local/kafka -mindepth 1 -maxdepth 1 ! -name libs ! -name VERSION ! -name .pom.sha256 -exec rm -rf {} +; \
	fi
	@echo "local state removed (Kafka data, PostgreSQL cluster, logs)"

cluster: ## create a local k3d cluster (Kubernetes 1.35): Knative 1.23, Kafka extension, Strimzi 1.2.0, KEDA 2.20.2, Prometheus + Grafana
	@bash scripts/cluster.sh up

deploy: ## deploy to the current kubectl context: kn func deploy per function, then the eventing manifests (ENV=k3d|production)
	@bash scripts/deploy.sh --env $(or $(ENV),k3d)
