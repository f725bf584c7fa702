# Fresh machine: `make demo` (main job) and `make test` (test suite).
# Each creates its own virtual environment; Label Studio gets one of its own.
PYTHON  ?= python3.11
VENV    ?= .venv
LS_VENV ?= .venv-ls
LS_VERSION ?= 1.23.2
PIP_QUIET ?= -q

.PHONY: demo test venv ls-venv clean

venv: $(VENV)/.installed
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install $(PIP_QUIET) --upgrade pip
	$(VENV)/bin/pip install $(PIP_QUIET) -e '.[dev]'
	touch $@

ls-venv: $(LS_VENV)/.installed
$(LS_VENV)/.installed:
	$(PYTHON) -m venv $(LS_VENV)
	$(LS_VENV)/bin/pip install $(PIP_QUIET) --upgrade pip
	$(LS_VENV)/bin/pip install $(PIP_QUIET) 'label-studio==$(LS_VERSION)'
	touch $@

demo: venv
	$(VENV)/bin/hoptac run

test: venv ls-venv
	HOPTAC_LS_VENV=$(abspath $(LS_VENV)) $(VENV)/bin/python -m pytest

clean:
	rm -rf $(VENV) $(LS_VENV) build *.egg-info
