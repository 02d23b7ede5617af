# Two commands (see README): `make demo` runs the main job, `make test` runs the tests.
# Both create ./.venv on first use and install everything they need into it.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test install lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	@# CPU machines: these exact wheels are cached locally; other versions of torch
	@# either break torchvision or pull multi-GB CUDA builds.
	$(BIN)/python -m pip install "torch==2.14.1" "torchvision==0.29.1"
	$(BIN)/python -m pip install -e ".[all,dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/python examples/quickstart.py

test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) build *.egg-info
