# Two commands do all set-up on a fresh Debian machine with Python 3.11:
#   make run    -> virtual environment, installs, then the app on http://127.0.0.1:8501
#   make test   -> virtual environment, installs (plus Debian's chromium for browser tests), whole suite
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8501

.PHONY: run test venv browser sample bench clean

$(VENV)/bin/python:
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "Python 3.11 is needed ($(PYTHON) not found)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

# the app needs requirements.txt only; the tests add requirements-dev.txt (pytest, Playwright)
$(VENV)/.installed-app: requirements.txt | $(VENV)/bin/python
	$(PY) -m pip install -q -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements-dev.txt requirements-extras.txt $(VENV)/.installed-app
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $@

venv: $(VENV)/.installed-dev

browser:
	@if [ ! -x /usr/bin/chromium ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	  else echo "Browser tests need Debian's chromium: sudo apt-get install chromium"; fi; fi

run: $(VENV)/.installed-app
	$(PY) -m streamlit run app.py --server.address 127.0.0.1 --server.port $(PORT)

test: $(VENV)/.installed-dev browser
	$(PY) -m pytest

sample: $(VENV)/.installed-app
	$(PY) -m mtlrec sample --out sample_data

clean:
	rm -rf $(VENV) .pytest_cache runs test-artifacts
