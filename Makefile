# The two commands a user needs (see README):  make benchmark   and   make test
.PHONY: benchmark test test-slow lint venv lock-upgrade clean

PY := .venv/bin/python

venv:
	@bash scripts/ensure_venv.sh

# Main job: benchmark the scripted agents on every registered env's default panel.
benchmark: venv
	$(PY) tools/benchmark.py

# Lint and format check, then the default (fast) test suite.
test: venv
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m pytest -q

# The slow cases too (every ScienceWorld task's gold path, long runs).
test-slow: venv
	$(PY) -m pytest -q -m "slow or not slow"

# Move constraints.txt to the newest releases setup.cfg allows (torch stays at its pin):
# upgrade .venv, run the tests, and only if they pass write the new constraints.
lock-upgrade: venv
	$(PY) -m pip install -q --upgrade --upgrade-strategy eager -e ".[test,plot,lora,tracking]" \
		"$$(grep '^torch==' constraints.txt)"
	$(MAKE) test
	$(PY) scripts/lock.py

lint: venv
	$(PY) -m ruff check . && $(PY) -m ruff format --check .

clean:
	rm -rf .venv build *.egg-info .pytest_cache .ruff_cache
