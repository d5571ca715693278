# Set-up and checks. `make demo` and `make test` do everything on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check

.PHONY: install install-test demo test test-fast lint bench bench-deps bench-web screenshot serve gui clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

# The plain install: what `make demo` needs (each front end's extra is added by its own target).
$(VENV)/.installed: $(PY) pyproject.toml constraints.txt
	$(PIP) install -q -c constraints.txt -e .
	@touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(PIP) install -q -c constraints.txt -e '.[all,test]'
	$(PIP) check
	@touch $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

# The sample portrait ships inside scikit-image's wheel: only that file is taken from it (scikit-image
# and scipy would add ~200 MB to the demo environment).
demo: install
	@mkdir -p demo-output
	$(VENV)/bin/faceveil models > /dev/null
	@test -s demo-output/astronaut.png || { rm -rf demo-output/.wheel \
		&& $(PIP) download -q --no-deps --only-binary :all: -d demo-output/.wheel 'scikit-image>=0.21' \
		&& $(PY) -c "import glob, zipfile; w = zipfile.ZipFile(glob.glob('demo-output/.wheel/*.whl')[0]); open('demo-output/astronaut.png', 'wb').write(w.read('skimage/data/astronaut.png'))" \
		&& rm -rf demo-output/.wheel; }
	$(VENV)/bin/faceveil run demo-output/astronaut.png -o demo-output/astronaut.anonymized.png --json
	@echo
	@echo "Done. The anonymized sample is $(CURDIR)/demo-output/astronaut.anonymized.png"
	@echo "(faces found: demo-output/astronaut.anonymized.faces.json). Try: $(VENV)/bin/faceveil --help"

test: install-test
	$(VENV)/bin/ruff check src tests bench
	$(PY) -m pytest

test-fast: install-test
	$(PY) -m pytest -m "not slow"

lint: install-test
	$(VENV)/bin/ruff check src tests bench

# deface, the tool the benchmarks compare against, in a venv of its own: it is not a dependency of
# faceveil (it pulls opencv-python, scikit-image and imageio-ffmpeg). The benchmarks run its CLI
# from $(DEFACE_VENV)/bin/deface and skip its rows, saying so, when it is absent.
DEFACE_VENV ?= .venv-deface
$(DEFACE_VENV)/bin/deface:
	$(PYTHON) -m venv $(DEFACE_VENV)
	$(DEFACE_VENV)/bin/python -m pip install -q --disable-pip-version-check 'deface==1.5.0'

bench-deps: $(DEFACE_VENV)/bin/deface

bench: install-test bench-deps
	$(PY) bench/images.py
	$(PY) bench/video.py
	$(PY) bench/batch.py

# The web app: a load test on loopback, the page's screenshot (docs/web.png), the server itself.
# The browser tests need Debian's chromium (/usr/bin/chromium; .ci/run installs it).
bench-web: install-test
	$(PY) bench/web_load.py --markdown

# docs/web.png (the web page) and docs/gui*.png (the desktop app, under Xvfb when installed)
screenshot: install-test
	FACEVEIL_SCREENSHOT=1 $(PY) -m pytest tests/web/test_web_e2e.py tests/gui/test_gui.py -k screenshot -q

serve: install
	$(PIP) install -q -c constraints.txt -e '.[web]'
	$(VENV)/bin/faceveil serve

gui: install
	$(PIP) install -q -c constraints.txt -e '.[web,gui]'
	$(VENV)/bin/faceveil gui

clean:
	rm -rf $(VENV) $(DEFACE_VENV) demo-output bench/out build dist src/*.egg-info .pytest_cache .ruff_cache
