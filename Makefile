# Two commands do all the set-up on a fresh machine:
#   make demo   install, then run the whole workflow on the built-in synthetic regions
#   make test   install, then run the test suite (what CI runs)
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
DEMO_DIR ?= data/demo
DEMO_EVENTS ?= 200

.PHONY: install demo test bench clean-demo

install: $(VENV)/.installed

# constraints.txt pins torch==2.13.0: the CPU wheel on machines that ship it locally,
# PyPI's default CUDA build on GPU machines.
$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade -q pip
	$(PY) -m pip install -q -c constraints.txt -e '.[dev]'
	touch $@

demo: install
	$(VENV)/bin/raydisc generate $(DEMO_DIR)/archive --events $(DEMO_EVENTS)
	$(PY) jobs/preprocess.py $(DEMO_DIR)/archive $(DEMO_DIR)/shards

test: install
	$(PY) -m pytest -q tests

bench: install
	$(PY) bench/preprocess.py

clean-demo:
	rm -rf $(DEMO_DIR)
