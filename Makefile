# Two set-up commands: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
EXTRAS ?= dev,dist,plot

.PHONY: demo test venv bench-features clean

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

bench-features:
	$(MAKE) venv EXTRAS=dev,dist,bench
	$(PY) bench/bench_features.py

clean:
	rm -rf $(VENV) runs .pytest_cache
