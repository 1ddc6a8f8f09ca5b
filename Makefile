# `make train` and `make test` set up .venv on first use (and when pyproject.toml changes).
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO_DATA := data/synthetic
TEST_WORKERS ?= 2  # pytest-xdist processes

.PHONY: train test test-fast bench lint format clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

$(DEMO_DATA)/train/train.csv: | $(STAMP)
	$(PY) -m mask_age_gender.data.synthetic --out $(DEMO_DATA) --people 320 --eval-people 60 --seed 0

train: $(STAMP) $(DEMO_DATA)/train/train.csv
	$(PY) -m mask_age_gender.train experiment=demo

bench: $(STAMP)  # efficientnet_lite0, 224×224, batch 32; JSON in outputs/bench/
	$(PY) -m mask_age_gender.bench

test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports  # the layers and no-cycles contracts in pyproject.toml
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadscope -ra --durations=15

test-fast: $(STAMP)  # while you work: the tests not marked slow (@pytest.mark.slow), no linters
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadscope -m "not slow" -q --durations=10

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf $(VENV) outputs multirun
