# The two commands of the README. Each does all set-up on a fresh machine: a .venv on
# Python 3.11, the pinned torch/torchvision, zoo-core and every plugin under plugins/
# installed editable, and (as root, where apt exists) the Debian packages the tests need.

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
TORCH := torch==2.14.1 torchvision==0.29.1
PLUGINS := $(wildcard plugins/*/pyproject.toml)
DEBS := dataset-fashion-mnist fortunes chromium
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=
# make test runs the tests marked numerics (floats compared across shapes, batchings or caches,
# and the bundled models' recorded figures) a second time on AVX2 kernels, so that a test
# passing only with AVX-512's rounding fails on any machine. PYTEST_ARGS applies to both runs,
# except its -m, which NUMERICS replaces in the second: make test PYTEST_ARGS='-m "not slow"'
# NUMERICS='numerics and not slow'.
NUMERICS ?= numerics
AVX2 := ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2

.PHONY: demo test setup debs lint clean

demo: setup
	$(BIN)/zoo list
	mkdir -p demo-output
	$(BIN)/zoo sample ddpm-fashion -n 64 --seed 0 -o demo-output/ddpm-fashion.png
	$(BIN)/zoo sample ddpm-fashion -n 100 --seed 0 -o demo-output/ddpm-fashion-classes.png \
		--set labels='[$(shell seq -s, 0 9 | sed 's/[0-9]/&,&,&,&,&,&,&,&,&,&/g')]' --set steps=50
	$(BIN)/zoo sample gmm-ring8 -n 2000 --seed 0 -o demo-output/gmm-ring8.png
	$(BIN)/zoo sample dcgan-fashion -n 64 --seed 0 -o demo-output/dcgan-fashion.png
	$(BIN)/zoo sample cgan-fashion -n 100 --seed 0 -o demo-output/cgan-fashion-classes.png \
		--set labels='[$(shell seq -s, 0 9 | sed 's/[0-9]/&,&,&,&,&,&,&,&,&,&/g')]'
	$(BIN)/zoo sample pacgan-grid25 -n 2500 --seed 0 -o demo-output/pacgan-grid25.png
	$(BIN)/zoo sample vae-fashion -n 64 --seed 0 -o demo-output/vae-fashion.png
	$(BIN)/zoo sample vqvae-fashion -n 64 --seed 0 -o demo-output/vqvae-fashion.png
	$(BIN)/zoo sample pixelcnn-fashion -n 100 --seed 0 -o demo-output/pixelcnn-fashion-classes.png \
		--set labels='[$(shell seq -s, 0 9 | sed 's/[0-9]/&,&,&,&,&,&,&,&,&,&/g')]'
	$(BIN)/zoo sample wavenet-sunspots -n 4 --seed 0 -o demo-output/wavenet-sunspots.npy
	$(BIN)/zoo sample gpt-fortunes -n 8 --seed 0 -o demo-output/gpt-fortunes.txt \
		--set temperature=0.8 --set max_new_tokens=200

test: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache
	$(BIN)/python -m pytest $(PYTEST_ARGS)
	$(AVX2) $(BIN)/python -m pytest $(PYTEST_ARGS) -m '$(NUMERICS)' || [ $$? -eq 5 ]  # 5: none selected

setup: debs $(STAMP)

# The stamp records what was installed; a change of the pins or the project files redoes it.
$(STAMP): pyproject.toml $(PLUGINS) Makefile | debs
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found: install Python 3.11 (Debian: apt-get install python3.11 python3.11-venv) or pass PYTHON=/path/to/python3.11"; exit 1; }
	@if [ -x $(BIN)/python ] && ! $(BIN)/python -c 'import sys; assert sys.version_info[:2] == (3, 11)' 2>/dev/null; then \
		echo "$(VENV) is not Python 3.11: recreating it"; rm -rf $(VENV); fi
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip "setuptools>=77"
	$(BIN)/python -m pip install --quiet $(TORCH)
	$(BIN)/python -m pip install --quiet -e '.[test,docs]' $(foreach p,$(PLUGINS),-e '$(dir $(p))[test]')
	touch $@

# Debian packages: installed where we are root and apt exists; elsewhere, say what is missing.
# Python 3.11 itself comes from Debian too where the machine has none.
debs:
	@missing=""; for p in $(DEBS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	command -v $(PYTHON) >/dev/null || missing="$$missing python3.11 python3.11-venv"; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	else \
		echo "note: Debian packages not installed:$$missing (tests needing them will fail under CI=true)"; \
	fi

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache

clean:
	rm -rf $(VENV) demo-output .pytest_cache .ruff_cache .hypothesis
