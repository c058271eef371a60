# Two commands do all set-up on a fresh clone:
#   make demo   sandbox emulators + Airflow running the DAGs against them
#   make test   the whole test suite (what CI runs)
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin

.PHONY: demo test venv lint clean-demo bench fault-matrix

$(BIN)/.installed: requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

venv: $(BIN)/.installed

# two workers, a test file each at a time: the suite waits on servers, schedulers and retry
# delays as much as it computes, and a file keeps its module's emulators to itself
test: venv
	$(BIN)/pytest -n 2 --dist loadfile

# every flow of every pairing under every injectable fault; prints the held/broken table
fault-matrix: venv
	$(BIN)/pytest tests/reliability/test_fault_matrix*.py -q -p no:cacheprovider

demo: venv
	PATH="$(CURDIR)/$(BIN):$$PATH" bash scripts/demo.sh

clean-demo:
	rm -rf .demo
