# homelab.nixos — the two commands a new user needs:
#   make lab    set up the local six-host lab and converge site.yml on it
#   make test   every test: lint, sanity, molecule on the lab, pytest
SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV := .venv
BIN := $(VENV)/bin
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export PATH := $(CURDIR)/$(BIN):$(CURDIR)/.cache/tools/usr/bin:$(PATH)

.PHONY: help setup setup-lab lab lab-down test lint changelog syntax sanity unit molecule pytest-all benchmark \
	benchmark-backup

help:
	@echo "make lab        set up and converge the local six-host lab"
	@echo "make lab-down   remove the lab (the image stays cached)"
	@echo "make test       run every test (installs what it needs)"
	@echo "make lint       ruff and ansible-lint (production profile)"
	@echo "make unit       pytest without the lab"
	@echo "make benchmark  converge + no-op rerun timings on the lab"
	@echo "make benchmark-backup  backup, dedup, drill and check timings (after make lab)"

setup:
	@scripts/setup-controller.sh

setup-lab:
	@scripts/setup-controller.sh --lab

lab: setup-lab
	$(BIN)/python scripts/lab.py up
	ANSIBLE_CALLBACKS_ENABLED=homelab.nixos.fleet_summary $(BIN)/ansible-playbook -i inventory/lab site.yml

lab-down: setup
	$(BIN)/python scripts/lab.py down

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/ansible-lint --profile production

changelog: setup
	$(BIN)/antsibull-changelog lint

syntax: setup
	$(BIN)/ansible-playbook --syntax-check site.yml

sanity: setup
	scripts/sanity.sh

unit: setup
	$(BIN)/pytest -q

# Every scenario creates the lab from the cached image and destroys it: base (the
# foundation role alone) and fleet (all of site.yml, with every role's checks).
molecule: setup-lab
	$(BIN)/python scripts/lab.py overlay
	$(BIN)/molecule test --all

# Unit, integration and lab tests; pytest's summary is the last line of `make test`
# (after the slowest tests, to keep an eye on the suite's time).
pytest-all: setup-lab
	HOMELAB_LAB_TESTS=1 $(BIN)/pytest -q --durations=25

benchmark: setup-lab
	$(BIN)/python benchmarks/fleet.py

# Needs a converged lab (make lab).
benchmark-backup: setup-lab
	$(BIN)/python benchmarks/backup.py

test: setup-lab
	@# A lab left over from an earlier run (CI runs right after a session) goes first.
	$(BIN)/python scripts/lab.py down
	$(MAKE) --no-print-directory lint
	$(MAKE) --no-print-directory changelog
	$(MAKE) --no-print-directory syntax
	$(MAKE) --no-print-directory sanity
	$(MAKE) --no-print-directory molecule
	$(MAKE) --no-print-directory pytest-all
