# Two commands do all the set-up on a fresh machine:
#   make demo   install, then run the whole workflow on the built-in synthetic regions
#   make test   install, then run the test suite (what CI runs)
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
DEMO_DIR ?= data/demo
DEMO_EVENTS ?= 200
DEMO_MEMBERS ?= 4
DEMO_EPOCHS ?= 10
DEMO_ARCH ?= spectrogram_cnn
EXPERIMENT_DIR ?= data/crossregion
# The sweep fine-tunes the experiment's spectrogram_cnn ensemble pretrained on alpine+basin
# (trained here with the experiment's default settings if the experiment has not run yet).
SWEEP_PRETRAIN := $(EXPERIMENT_DIR)/run/spectrogram_cnn/pretrain-alpine+basin

.PHONY: install demo test bench experiment sweep report clean-demo

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
	$(PY) jobs/pretrain.py --shards $(DEMO_DIR)/shards --regions alpine,basin \
	    --run-dir $(DEMO_DIR)/runs/$(DEMO_ARCH) --architecture $(DEMO_ARCH) \
	    --members $(DEMO_MEMBERS) --epochs $(DEMO_EPOCHS) --patience 3
	$(PY) jobs/reprocess.py $(DEMO_DIR)/runs/$(DEMO_ARCH)/bundle $(DEMO_DIR)/relabelled --archive $(DEMO_DIR)/archive

# The study's leave-one-region-out matrix on the synthetic regions (about an hour on 2
# cores; re-running continues an interrupted run), then its report.
experiment: install
	$(PY) jobs/crossregion.py --work-dir $(EXPERIMENT_DIR) --run-dir $(EXPERIMENT_DIR)/run

# Accuracy vs. the fraction of craton's training events given to fine-tuning (Ray Tune),
# fine-tuned vs. from scratch: about 30 minutes on 2 cores (data, pretraining, 28 trials).
sweep: install
	$(PY) jobs/crossregion.py --work-dir $(EXPERIMENT_DIR) --prepare-only
	test -e $(SWEEP_PRETRAIN)/bundle/bundle.json || $(PY) jobs/pretrain.py --shards $(EXPERIMENT_DIR)/shards \
	    --regions alpine,basin --run-dir $(SWEEP_PRETRAIN) --architecture spectrogram_cnn --members 4 \
	    --epochs 8 --patience 3 --cpus-per-worker 0.5 --no-evaluate
	$(PY) jobs/sweep_fractions.py $(SWEEP_PRETRAIN)/bundle $(EXPERIMENT_DIR)/shards --target craton \
	    --out-dir $(EXPERIMENT_DIR)/run/sweep

report: install
	$(VENV)/bin/raydisc report $(EXPERIMENT_DIR)/run

test: install
	$(PY) -m pytest -q tests

bench: install
	$(PY) bench/preprocess.py
	$(PY) bench/train.py
	$(PY) bench/serve.py
	$(PY) bench/reprocess.py

clean-demo:
	rm -rf $(DEMO_DIR)
