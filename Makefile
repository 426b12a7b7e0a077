# Set-up and everyday commands.  Everything runs inside .venv at the repository root.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed

.PHONY: install demo test viewer bench clean

install: $(STAMP)

$(STAMP): pyproject.toml Makefile scripts/fetch_visdom_assets.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	# Pinned: these two lie on the build machines' disk; a loose range pulls GBs.
	$(PIP) install -q torch==2.14.1 torchvision==0.29.1
	# visdom ships only as an sdist whose build imports pkg_resources.
	$(PIP) install -q "setuptools<81" wheel
	$(PIP) install -q --no-build-isolation visdom
	$(PIP) install -q --no-build-isolation -e ".[test]"
	$(PY) scripts/fetch_visdom_assets.py
	touch $(STAMP)

demo: install
	$(PY) scripts/demo.py

test: install
	$(PY) -m pytest

viewer: install
	$(PY) -m translate.viewer --port 8097

bench: install
	$(PY) -m translate.bench standard --out bench-results/standard.md

clean:
	rm -rf $(VENV) checkpoints results build/npm
