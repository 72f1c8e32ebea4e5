# Every target does its own set-up on a fresh Debian machine.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
APT_STAMP := $(VENV)/.apt
PYTHON ?= python3
# Build deps of systemd-python, the browser for UI tests, systemd-analyze for unit checks,
# sfdisk for the image layout check.
APT_PACKAGES := libsystemd-dev pkg-config chromium systemd fdisk
APT := $(if $(shell command -v sudo 2>/dev/null),sudo ,)apt-get

.PHONY: run test screenshots test-slow bench lint format deps image image-test release vendor clean

$(APT_STAMP):
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "installing apt packages:$$missing"; \
	  $(APT) update -qq && DEBIAN_FRONTEND=noninteractive $(APT) install -y -qq --no-install-recommends $$missing; fi
	@mkdir -p $(VENV) && touch $@

$(STAMP): pyproject.toml $(APT_STAMP)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	@touch $@

deps: $(STAMP)

run: $(STAMP)
	$(BIN)/bfr run --sim

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest -q

# Refresh the UI screenshots in docs/ (a normal test run writes them to a temporary directory).
screenshots: $(STAMP)
	BFR_SCREENSHOTS_DIR=$(CURDIR)/docs/screenshots $(BIN)/pytest -q tests/test_ui_browser.py

test-slow: $(STAMP)
	$(BIN)/pytest -q -m slow

bench: $(STAMP)
	$(PY) bench/regulation.py
	$(PY) bench/feasibility.py
	$(PY) bench/lop.py
	$(PY) bench/latency.py

# Signed update bundle for `bfr update` (docs/technician.md).
release: $(STAMP)
	@test -n "$(RELEASE_KEY)" || { echo "set RELEASE_KEY=path/to/fleet-update.key"; exit 2; }
	$(PY) -m appliance.technician.release --key $(RELEASE_KEY) --out dist $(if $(RELEASE_WHEELHOUSE),--wheelhouse $(RELEASE_WHEELHOUSE))

# Re-vendor the front-end libraries from npm (pinned in package-lock.json); the copies are committed.
vendor:
	npm ci && npm run vendor

lint: $(STAMP)
	$(BIN)/ruff check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) build dist *.egg-info

# The arm64 SD card image of the appliance and its QEMU boot test (image/README.md).
# Both need root: chroot, bind mounts, file ownership in the image.
AS_ROOT := $(if $(filter 0,$(shell id -u)),,sudo )
IMAGE_FILE ?= out/bfr-appliance.img

image: $(STAMP)
	$(AS_ROOT)env PYTHON=$(abspath $(PY)) image/build.sh

image-test: $(STAMP)
	@test -e $(IMAGE_FILE) || $(MAKE) image
	$(AS_ROOT)env PYTHON=$(abspath $(PY)) image/boot-test.sh $(IMAGE_FILE)
