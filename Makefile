# `make train` and `make test` set up .venv on first use (and when pyproject.toml changes).
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# the exact development and CI set, which `make lock` refreshes from pyproject.toml's ranges
LOCK := requirements/dev.lock
DEMO_DATA := data/synthetic
TEST_WORKERS ?= 2  # pytest-xdist processes

.PHONY: train test test-fast bench lint lock format clean

$(STAMP): pyproject.toml $(LOCK)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r $(LOCK)
	$(PY) -m pip install --quiet --no-deps -e .
	$(PY) -m pip check
	touch $(STAMP)

lock: $(STAMP)  # pyproject.toml's ranges resolved anew (newest releases) into $(LOCK)
	$(VENV)/bin/uv pip compile pyproject.toml --extra dev --upgrade \
	    --constraint requirements/lock-constraints.txt --python-version 3.11 \
	    --python-platform x86_64-manylinux_2_28 --no-header --annotation-style line -o $(LOCK)

$(DEMO_DATA)/train/train.csv: | $(STAMP)
	$(PY) -m mask_age_gender.data.synthetic --out $(DEMO_DATA) --people 320 --eval-people 60 --seed 0

train: $(STAMP) $(DEMO_DATA)/train/train.csv
	$(PY) -m mask_age_gender.train experiment=demo

bench: $(STAMP)  # efficientnet_lite0, 224×224, batch 32; JSON in outputs/bench/
	$(PY) -m mask_age_gender.bench

test: lint
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadscope -ra --durations=15

test-fast: $(STAMP)  # the unit tier: no Trainer.fit, no process started (the slow tier has them)
	MASK_AGE_GENDER_UNIT_TIER=1 $(PY) -m pytest -n $(TEST_WORKERS) --dist load -m "not slow" \
	    -q -rfE --durations=10

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports  # the layers and no-cycles contracts in pyproject.toml
	$(VENV)/bin/deptry .  # every import declared, every declaration used, none transitive

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf $(VENV) outputs multirun
