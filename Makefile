# Two set-up commands: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
EXTRAS ?= dev,dist,plot

.PHONY: demo test test-fast test-estimators lint venv bench-features clean

$(VENV)/.installed-$(EXTRAS): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[$(EXTRAS)]"
	touch $@

venv: $(VENV)/.installed-$(EXTRAS)

demo: venv
	$(VENV)/bin/cvpipe demo

test: venv
	$(PY) -m pytest

# Everything but the tests marked slow (a wheel build, gunicorn, a browser, a real dataset).
test-fast: venv
	$(PY) -m pytest -m "not slow"

# scikit-learn's estimator checks of every extractor and classifier.
test-estimators: venv
	$(PY) -m pytest -m estimator_checks

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports

bench-features:
	$(MAKE) venv EXTRAS=dev,dist,bench
	$(PY) bench/bench_features.py

clean:
	rm -rf $(VENV) .venv-min runs .pytest_cache
