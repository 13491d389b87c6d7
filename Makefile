# Local development: `make run` serves the API on DynamoDB Local, `make test` runs every test.
VENV ?= .venv
PYTHON := $(VENV)/bin/python
# Reinstall only when a requirements file changed since the last install.
STAMP := $(VENV)/.requirements.stamp
TENANT ?= demo
ROLE ?=
SUB ?=
CLIENT_ID ?=
FILE ?=
PYTEST_ARGS ?=
# Two xdist workers: each gets its own in-memory DynamoDB Local (session fixture), so none share tables.
# PYTEST_WORKERS=0 runs everything in one process.
PYTEST_WORKERS ?= 2
STAGE ?= dev

.PHONY: help install run test lint soak bench token webhook ddb package
.DEFAULT_GOAL := help

# make help: every target with the line after its `##`.
help:
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  make %-8s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(PYTHON):
	python3 -m venv $(VENV)

$(STAMP): requirements.txt requirements-dev.txt | $(PYTHON)
	$(PYTHON) -m pip install --disable-pip-version-check --quiet -r requirements-dev.txt
	@touch $@

install: $(STAMP) ## create .venv and install requirements-dev.txt (only when a requirements file changed)

run: $(STAMP) ## serve the API on 127.0.0.1:8000 on DynamoDB Local, with the local event runtime
	$(PYTHON) -m chalicelib.local run

test: $(STAMP) lint ## lint, then every test (unit, moto, DynamoDB Local over HTTP, robustness) on 2 workers
	$(PYTHON) -m pytest -n $(PYTEST_WORKERS) $(PYTEST_ARGS)

lint: $(STAMP) ## ruff over the tree, mypy over chalicelib/ and app.py (pyproject.toml)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

# make soak: the robustness suites with many more cases (about 13 minutes; not part of make test or CI): Schemathesis
# with 25 examples an operation, its coverage phase and a random seed, then the stateful recount, replays, faults
# and the isolation matrix. Figures print per suite (SECURITY.md keeps the last run's).
SOAK_FUZZ ?= FUZZ_EXAMPLES=25 FUZZ_COVERAGE=1 FUZZ_SEED=random
SOAK_STATEFUL ?= SOAK=1 STATEFUL_EXAMPLES=40 STATEFUL_STEPS=20
soak: $(STAMP) ## the robustness suites with many more cases (about 13 minutes)
	$(SOAK_FUZZ) $(PYTHON) -m pytest -q -s -p no:cacheprovider -p no:xdist tests/fuzz
	$(SOAK_STATEFUL) $(PYTHON) -m pytest -q -s -p no:cacheprovider -p no:xdist tests/integration/test_stateful_recount.py \
		tests/integration/test_replays.py tests/integration/test_faults_audit.py tests/integration/test_concurrent_creates.py
	$(PYTHON) -m pytest -q -p no:cacheprovider -n $(PYTEST_WORKERS) tests/security

# make bench [BENCH_CLIENTS=100000] [BENCH=scale|bulk,export,import|all]: benchmarks on DynamoDB Local (not part of
# make test). The default (scale, 10,000 clients beside 1,000) takes about 10 minutes and rewrites its section of
# docs/BENCHMARKS.md and bench/results.json; BENCH_CLIENTS=100000 about an hour, most of it loading.
bench: $(STAMP) ## two tenants side by side on DynamoDB Local: docs/BENCHMARKS.md, bench/results.json
	$(PYTHON) -m bench $(if $(BENCH),--only $(BENCH))

# make token TENANT=demo ROLE=agent,viewer   |   make token CLIENT_ID=<client id> SUB=<contact id>  (portal)
token: $(STAMP) ## print a local token (TENANT, ROLE; CLIENT_ID and SUB for a portal token)
	@$(PYTHON) -m chalicelib.local token --tenant "$(TENANT)" $(if $(ROLE),--role "$(ROLE)") \
		$(if $(SUB),--sub "$(SUB)") $(if $(CLIENT_ID),--client-id "$(CLIENT_ID)")

# make webhook FILE=event.json: sign it with the local NODE_WEBHOOK_SECRET and POST it to the local server
# (ARGS=--print prints a curl command instead; ARGS="--id msg_1" repeats a webhook-id)
webhook: $(STAMP) ## sign FILE=event.json as the Node platform would and POST it to make run
	@$(if $(FILE),,$(error FILE=<event.json> is required))$(PYTHON) -m chalicelib.local webhook "$(FILE)" $(ARGS)

# make package STAGE=prod: build/<stage>/sam.json (SAM template, linted in CI) and build/<stage>/deployment.zip
package: $(STAMP) ## build/<STAGE>/sam.json and deployment.zip (no AWS call)
	AWS_DEFAULT_REGION=$${AWS_DEFAULT_REGION:-eu-west-1} $(PYTHON) deploy/package.py --stage $(STAGE)

# make jobs [ARGS="retry <id> --tenant demo --kind rescore"]: the local jobs (list by default), see README "Jobs"
.PHONY: jobs
jobs: $(STAMP) ## the local jobs (ARGS="retry <id> ..."), see README "Jobs"
	@$(PYTHON) -m chalicelib.local jobs $(if $(ARGS),$(ARGS),list)

# make ops ARGS="verify --tenant demo": the on-call commands (recount, verify, segments, rescore, reindex, replay, show)
.PHONY: ops
ops: $(STAMP) ## on-call commands (ARGS="verify --tenant demo"; no ARGS: their list)
	@$(PYTHON) -m chalicelib.ops $(if $(ARGS),$(ARGS),--help)

# Fetch DynamoDB Local into .cache/dynamodb-local/ (and check for Java) without starting anything.
ddb: $(STAMP) ## fetch DynamoDB Local into .cache/ and check for Java, starting nothing
	$(PYTHON) -m chalicelib.local ddb
