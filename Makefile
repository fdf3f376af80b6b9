# A newcomer needs two commands: `make demo` and `make test`. Both create the virtual
# environment on first use; nothing has to be installed by hand beyond Python 3.11+.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: install demo test lint bench run sandbox image clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@# compat: the checkout itself is on the path, so devtools/ (left out of the wheel) imports too.
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --config-settings editable_mode=compat -e '.[dev,postgres]'
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/rapport demo --weeks 6 --out demo-out

test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python bench/run_all.py

sandbox: $(STAMP)
	$(BIN)/rapport sandbox --port 8081

# The container image, built and smoke-tested here (root, debootstrap and a Docker daemon; not in
# CI): devtools/image/image.sh says what it does and which settings it reads.
image:
	devtools/image/image.sh

clean:
	rm -rf $(VENV) demo-out build *.egg-info
