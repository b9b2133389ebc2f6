# homelab.nixos — the two commands a new user needs:
#   make lab    set up the local six-host lab and converge site.yml on it
#   make test   every test: lint, unit, integration, sanity, syntax
SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV := .venv
BIN := $(VENV)/bin
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: help setup lab lab-down test lint unit sanity syntax changelog molecule

help:
	@echo "make lab       set up and converge the local six-host lab"
	@echo "make lab-down  remove the lab (the image stays cached)"
	@echo "make test      run every test (installs what it needs)"
	@echo "make lint      ruff, yamllint via ansible-lint (production profile)"

setup:
	@scripts/setup-controller.sh

lab:
	@scripts/setup-controller.sh --lab
	$(BIN)/python scripts/lab.py up
	ANSIBLE_CALLBACKS_ENABLED=homelab.nixos.fleet_summary $(BIN)/ansible-playbook -i inventory/lab site.yml

lab-down:
	@scripts/setup-controller.sh
	$(BIN)/python scripts/lab.py down

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/ansible-lint --profile production

unit: setup
	$(BIN)/pytest -q

sanity: setup
	scripts/sanity.sh

syntax: setup
	$(BIN)/ansible-playbook --syntax-check site.yml

changelog: setup
	$(BIN)/antsibull-changelog lint

test: setup
	$(MAKE) --no-print-directory lint
	$(MAKE) --no-print-directory changelog
	$(MAKE) --no-print-directory syntax
	$(MAKE) --no-print-directory sanity
	$(MAKE) --no-print-directory unit
