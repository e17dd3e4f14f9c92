# Two set-up commands: `make demo` (install, run the baseline scenario) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test install bench clean

$(BIN)/simulator: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(BIN)/simulator

install: $(BIN)/simulator

demo: install
	$(BIN)/simulator run scenarios/baseline.toml

test: install
	$(BIN)/python -m pytest

bench: install
	$(BIN)/python benchmarks/kernel_throughput.py

clean:
	rm -rf $(VENV) reports/*/
