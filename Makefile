# Two commands on a fresh machine: `make run` (install, prepare, serve) and `make test` (install, prepare, test).
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000
PYTEST_ARGS ?=

.PHONY: setup prepare run test test-deps lint check bench clean

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip==26.3"
	# torch==2.13.0 (CPU) is pinned in pyproject; constraints.txt freezes everything else for CI.
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

## setup: create .venv and install the project with its pinned dependencies
setup: $(STAMP)

## prepare: build what the default configuration needs when missing (embedding model, search index, database)
prepare: setup
	$(BIN)/bot models build
	$(BIN)/bot index
	$(BIN)/bot db upgrade

## run: install, prepare and serve on $(HOST):$(PORT)
run: prepare
	$(BIN)/bot serve --host $(HOST) --port $(PORT)

## test-deps: Chromium and CJK fonts for the browser tests (installed from Debian when missing, as root)
test-deps:
	@if ! command -v chromium >/dev/null 2>&1 || ! fc-list 2>/dev/null | grep -qi "Noto Sans CJK"; then \
		if [ "$$(id -u)" = "0" ]; then \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk >/dev/null; \
		else \
			echo "Chromium and fonts-noto-cjk are missing; install them (apt-get install chromium fonts-noto-cjk)" >&2; exit 1; \
		fi; \
	fi

## lint: ruff and mypy
lint: setup
	$(BIN)/ruff check bot tests bench
	$(BIN)/mypy bot

## check: lint the article library
check: setup
	$(BIN)/bot knowledge check

## test: install everything, prepare, lint, then the whole suite
test: setup test-deps prepare lint check
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## bench: the benchmarks (print numbers; run on demand)
bench: prepare
	for script in bench/*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

clean:
	rm -rf $(VENV) data
