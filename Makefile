PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export HOST ?= 127.0.0.1
export PORT ?= 8000

.PHONY: setup run dev test bench bench-peers screenshots clean

setup: $(VENV)/.installed static/vendor/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements-dev.txt
	touch $@

static/vendor/.installed: package.json package-lock.json
	scripts/vendor.sh
	touch $@

run: setup
	scripts/run.sh

# The same, with Django's debug pages (tracebacks, settings, URL patterns): never on a shared network.
dev: setup
	DEBUG=1 scripts/run.sh

test: setup
	scripts/test.sh

bench: setup
	scripts/bench.sh

# Only the side-by-side comparison; ARGS raise the sizes: make bench-peers ARGS="--instances 1000 --rounds 3"
bench-peers: setup
	scripts/services.sh
	$(BIN)/python bench/peers/run.py $(ARGS)

screenshots: setup
	$(BIN)/python scripts/screenshots.py

clean:
	rm -rf $(VENV) var node_modules
