# The two commands: `make test` and `make demo`. Both create .venv with the pinned CPU stack.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.installed

.PHONY: venv test demo benchmark clean

venv: $(STAMP)

$(STAMP): requirements/cpu.txt requirements/nodeps.txt requirements/tests.txt setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q -U pip wheel "setuptools>=77.0.3,<82"
	$(PIP) install -q -r requirements/cpu.txt -r requirements/tests.txt
	$(PIP) install -q --no-build-isolation --no-binary xtcocotools xtcocotools==1.14.3
	$(PIP) install -q --no-deps -r requirements/nodeps.txt
	$(PIP) install -q --no-deps --no-build-isolation -e .
	touch $(STAMP)

test: venv
	$(PY) -m pytest tests -q -ra

demo: venv
	$(PY) tools/demo.py

benchmark: venv
	$(PY) tools/benchmark.py

clean:
	rm -rf $(VENV) work_dirs
