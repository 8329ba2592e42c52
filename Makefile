# Two commands on a fresh machine: `make demo` and `make test`. They need Python 3.12 and
# pip, nothing else: FFmpeg comes from wheels (PyAV, imageio-ffmpeg), no system package.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

# Python 3.12: pyenv's shim fails unless the version is selected, so look for the
# interpreter itself first, then fall back to whatever python3.12 is on PATH.
PYTHON312 ?= $(shell \
  for p in $$(pyenv root 2>/dev/null)/versions/3.12*/bin/python3.12 $$HOME/.pyenv/versions/3.12*/bin/python3.12; do \
    [ -x "$$p" ] && { echo "$$p"; exit 0; }; done; \
  PYENV_VERSION=$$(ls $$(pyenv root 2>/dev/null)/versions 2>/dev/null | grep '^3\.12' | tail -1) python3.12 -c 'import sys; print(sys.executable)' 2>/dev/null && exit 0; \
  command -v python3.12)

.PHONY: all setup demo test test-noffmpeg wheel-check lint bench clean

all: test

$(STAMP): pyproject.toml
	@test -n "$(PYTHON312)" || { echo "error: Python 3.12 not found (set PYTHON312=/path/to/python3.12)"; exit 1; }
	@test -x $(PY) || $(PYTHON312) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# the preview extra too, so its test (vspreview starts) runs here and in CI
	$(PY) -m pip install -q -e '.[test,preview]'
	# vspipe finds the core's plugins only after this, once per venv
	$(VENV)/bin/vapoursynth config >/dev/null
	@touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(PY) -m vidkompy_vs.demo

test: setup
	$(PY) -m pytest -q; rc=$$?; if [ $$rc -eq 5 ]; then echo "no tests collected"; exit 0; fi; exit $$rc

# `make demo` and `make test` with no ffmpeg or ffprobe on PATH (a system one must never be
# needed; VIDKOMPY_HIDE=ffmpeg hides only ffmpeg); the demo writes to its own folder, so
# that an earlier demo's pair, made with another ffmpeg, is not reused
test-noffmpeg: setup
	scripts/without-ffmpeg.sh $(PY) -m vidkompy_vs.demo out/demo-noffmpeg
	scripts/without-ffmpeg.sh $(MAKE) --no-print-directory test

# `pip wheel .` installs into a fresh venv and `vidkompy-vs comp` works from it (no ffmpeg
# on PATH); needs PyPI
wheel-check:
	@test -n "$(PYTHON312)" || { echo "error: Python 3.12 not found (set PYTHON312=/path/to/python3.12)"; exit 1; }
	PYTHON312=$(PYTHON312) scripts/check_wheel.sh

lint: setup
	$(VENV)/bin/ruff check vidkompy_vs tests benchmarks scripts

bench: setup
	$(PY) benchmarks/render.py
	$(PY) benchmarks/temporal.py
	$(PY) benchmarks/spatial.py
	$(PY) benchmarks/robustness.py
	$(PY) benchmarks/structure.py
	$(PY) benchmarks/sources.py
	$(PY) benchmarks/remap.py
	$(PY) benchmarks/color.py
	$(PY) benchmarks/report.py

clean:
	rm -rf $(VENV) out .pytest_cache
