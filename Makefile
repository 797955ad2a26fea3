# Two set-up commands on a fresh clone: `make plan` (installs only what the plan needs:
# requirements.txt) and `make test` (adds the test tools of requirements-dev.txt and Mermaid's
# parser from npm). Both create .venv when it is missing, refresh it when the requirements change,
# and say what they are doing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip install --disable-pip-version-check --progress-bar off
RUNTIME_STAMP := $(VENV)/.installed-runtime
DEV_STAMP     := $(VENV)/.installed-dev
MERMAID_DIR   := tests/mermaid
MERMAID_STAMP := $(MERMAID_DIR)/node_modules/.installed

.PHONY: venv venv-locked plan test docs bench clean

# The Python development environment (the workflows run `make venv`); `make test` adds npm's part.
venv: $(DEV_STAMP)

$(BIN)/python:
	@echo "make: creating the virtualenv $(VENV) ($(PYTHON) -m venv)"
	$(PYTHON) -m venv $(VENV)

$(RUNTIME_STAMP): requirements.txt pyproject.toml | $(BIN)/python
	@echo "make: installing the runtime packages (requirements.txt: pulumi, pulumi-aws, boto3, ...)"
	$(PIP) -r requirements.txt
	@echo "make: installing ai-companion itself (editable) and the console script $(BIN)/residency"
	$(PIP) --no-deps -e .
	@touch $@

$(DEV_STAMP): $(RUNTIME_STAMP) requirements-dev.txt
	@echo "make: installing the test tools (requirements-dev.txt: pytest, moto[server], actionlint, shellcheck)"
	$(PIP) -r requirements-dev.txt
	@touch $@

# Credentialed CI jobs (deploy, preview, live audit): the runtime packages only, every one pinned by
# its hash (requirements.lock: `pip-compile --generate-hashes --allow-unsafe` of requirements.txt
# plus setuptools, the build backend of `-e .`), and no test tools next to the AWS credentials.
venv-locked: | $(BIN)/python
	@echo "make: installing the hash-locked runtime packages (requirements.lock, pip --require-hashes)"
	$(PIP) --require-hashes --no-deps -r requirements.lock
	$(PIP) --no-deps --no-build-isolation -e .

$(MERMAID_STAMP): $(MERMAID_DIR)/package.json $(MERMAID_DIR)/package-lock.json
	@echo "make: installing Mermaid's parser for the diagram tests (npm ci in $(MERMAID_DIR))"
	npm ci --prefix $(MERMAID_DIR) --no-audit --no-fund
	@touch $@

# Offline plan of every stack under Pulumi mocks: no CLI, no credentials, no network.
plan: $(RUNTIME_STAMP)
	@echo "make: planning every stack (residency plan --all)"
	$(BIN)/residency plan --all

# pytest exits 5 when it collected nothing; a suite that runs no test must not pass.
# PYTHONDONTWRITEBYTECODE is emptied for the suite (it is set on some machines, ours included):
# without .pyc files every run compiles the repository's modules again, in each pytest worker
# (pytest's assertion rewriting: about 4 s of each worker's start), in each policy-pack process
# and in each console script the suite executes. The files go to __pycache__/ (git-ignored).
test: $(DEV_STAMP) $(MERMAID_STAMP)
	@.ci/install-test-tools || echo "make test: Suricata/skopeo/docker-registry/jq/chromium not installed; their tests will skip (CI=true: they fail)" >&2
	@echo "make: running the test suite (pytest)"
	@PYTHONDONTWRITEBYTECODE= $(BIN)/python -m pytest -q -n auto --dist loadfile; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests" >&2; exit 1; fi; exit $$rc

# The data-path maps in docs/ (a test fails when they are stale).
docs: $(RUNTIME_STAMP)
	$(BIN)/python -m infra.commands.render --write-docs

bench: $(DEV_STAMP)
	$(BIN)/python benchmarks/plan_all.py
	$(BIN)/python benchmarks/audit_scale.py
	$(BIN)/python benchmarks/crossguard_wire.py
	$(BIN)/python benchmarks/cost_all.py
	$(BIN)/python benchmarks/suite_time.py

clean:
	rm -rf $(VENV) .pytest_cache $(MERMAID_DIR)/node_modules
