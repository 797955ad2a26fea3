# Two set-up commands on a fresh clone: `make plan` and `make test`. Both create .venv when it
# is missing (and refresh it when the requirements change).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: venv plan test docs bench clean

venv: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -r requirements-dev.txt
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps -e .
	@touch $(STAMP)

# Offline plan of every stack under Pulumi mocks: no CLI, no credentials, no network.
plan: $(STAMP)
	$(BIN)/residency plan --all

# pytest exits 5 when it collected nothing; a suite that runs no test must not pass.
# Suricata (tests/test_suricata_rules.py) is installed when possible (root + apt-get); otherwise
# those tests skip with instructions (and fail under CI=true).
test: $(STAMP)
	@.ci/install-suricata || echo "make test: Suricata not installed; its tests will skip" >&2
	@$(BIN)/python -m pytest -q; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests" >&2; exit 1; fi; exit $$rc

# The data-path maps in docs/ (a test fails when they are stale).
docs: $(STAMP)
	$(BIN)/python -m infra.render --write-docs

bench: $(STAMP)
	$(BIN)/python benchmarks/plan_all.py
	$(BIN)/python benchmarks/audit_scale.py
	$(BIN)/python benchmarks/crossguard_wire.py
	$(BIN)/python benchmarks/cost_all.py

clean:
	rm -rf $(VENV) .pytest_cache
