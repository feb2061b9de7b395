# The two commands of the README. Each does all set-up on a fresh machine: a .venv on
# Python 3.11, the pinned torch/torchvision, zoo-core and every plugin under plugins/
# installed editable, and (as root, where apt exists) the Debian packages the tests need.

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
TORCH := torch==2.14.1 torchvision==0.29.1
PLUGINS := $(wildcard plugins/*/pyproject.toml)
DEBS := dataset-fashion-mnist fortunes
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: demo test setup debs lint clean

demo: setup
	$(BIN)/zoo list
	mkdir -p demo-output
	$(BIN)/zoo sample gmm-ring8 -n 2000 --seed 0 -o demo-output/gmm-ring8.png
	$(BIN)/zoo sample gmm-ring8 -n 2000 --seed 0 -o demo-output/gmm-ring8.npy

test: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest $(PYTEST_ARGS)

setup: $(STAMP) debs

$(STAMP): pyproject.toml $(PLUGINS)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH)
	$(BIN)/python -m pip install --quiet -e '.[test]' $(foreach p,$(PLUGINS),-e $(dir $(p)))
	touch $@

# Debian packages: installed where we are root and apt exists; elsewhere, say what is missing.
debs:
	@missing=""; for p in $(DEBS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	else \
		echo "note: Debian packages not installed:$$missing (tests needing them will fail under CI=true)"; \
	fi

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) demo-output .pytest_cache .ruff_cache .hypothesis
