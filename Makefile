# make demo | make test | make test-fast | make bench — each bootstraps .venv on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test test-fast bench lint clean check-java

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' || \
	  { echo "make: Python >= 3.11 is required ($(PYTHON) is $$($(PYTHON) --version 2>&1))" >&2; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,bench,dev,report]'
	@touch $(STAMP)

check-java:
	@command -v java >/dev/null 2>&1 || { echo "make: java not found: Spark needs a Java 17+ runtime (e.g. apt-get install openjdk-17-jre-headless)" >&2; exit 1; }
	@v=$$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -1); \
	  if [ -z "$$v" ] || [ "$$v" -lt 17 ]; then echo "make: Java 17+ is required, found: $$(java -version 2>&1 | head -1)" >&2; exit 1; fi

demo: $(STAMP) check-java
	$(VENV)/bin/sparkml-jobs demo

test: $(STAMP) check-java
	$(PY) -m pytest

# the Spark-free tests for the edit-test loop (no Java needed): everything under tests/unit, whose
# conftest refuses the Spark session, so a test added there cannot quietly start Spark
test-fast: $(STAMP)
	$(PY) -m pytest tests/unit -q

bench: $(STAMP) check-java
	$(PY) -m benchmarks.run $(BENCH_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check sparkml_jobs tests benchmarks

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
