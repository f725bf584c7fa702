# Fresh machine: `make demo` (main job) and `make test` (test suite).
# Each creates its own virtual environment; Label Studio gets one of its own.
PYTHON  ?= python3.11
VENV    ?= .venv
LS_VENV ?= .venv-ls
LS_VERSION ?= 1.23.2
PIP_QUIET ?= -q

.PHONY: demo test venv ls-venv browser screenshot clean

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

# Headless Chromium + its driver for the browser test and the screenshot (Debian packages; run as root).
browser:
	@if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium chromium-driver; \
	fi

test: venv ls-venv browser
	HOPTAC_LS_VENV=$(abspath $(LS_VENV)) $(VENV)/bin/python -m pytest

# Regenerate the README picture of the labelling screen (annotate/labelling-screen.png).
screenshot: venv ls-venv browser
	HOPTAC_LS_VENV=$(abspath $(LS_VENV)) $(VENV)/bin/python -m hoptac.annotate.screenshot --out annotate/labelling-screen.png

clean:
	rm -rf $(VENV) $(LS_VENV) build *.egg-info
