# Two set-up commands: `make demo` (install, run the baseline scenario) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test prime install bench clean

$(BIN)/simulator: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(BIN)/simulator

install: $(BIN)/simulator

demo: install
	$(BIN)/simulator run scenarios/baseline.toml

# Compile (and cache) the Numba kernels once with a tiny run, so that no test file pays for it.
prime: install
	@d=$$(mktemp -d) && $(BIN)/python -m simulator run scenarios/baseline.toml --set applicants.monthly_volume=100 \
		--set run.paths=1 --out $$d/prime --quiet --no-report; s=$$?; rm -rf $$d; exit $$s

test: prime
	$(BIN)/python -m pytest -n auto

bench: install
	$(BIN)/python benchmarks/kernel_throughput.py

clean:
	rm -rf $(VENV) reports/*/
