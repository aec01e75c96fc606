# The course's commands. Each creates .venv and installs the course if needed.
#   make lab         open JupyterLab on notebooks/ (127.0.0.1, token authentication)
#   make test        unit tests + every notebook executed and compared by nbval (what CI runs)
#   make notebooks   rebuild and execute every notebook from notebooks/src/ (NB=03 for one chapter)
#   make data        rebuild the datasets from data/scenarios.jsonl
#   make checkpoints rebuild the model checkpoints in data/checkpoints/
#   make bench       speed and memory measurements
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: lab test notebooks data checkpoints bench clean

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "Python 3.10 or newer is needed")'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e ".[dev]"
	@touch $(STAMP)

lab: $(STAMP)
	$(PY) tools/lab.py

test: $(STAMP)
	$(PY) -m pytest tests notebooks --nbval --nbval-current-env \
		--nbval-sanitize-with tests/sanitize.cfg --nbval-cell-timeout=300 -q

notebooks: $(STAMP)
	$(PY) tools/notebooks.py build $(NB)

data: $(STAMP)
	$(PY) -m course_utils.data build

checkpoints: $(STAMP)
	$(PY) -m course_utils.checkpoints build

bench: $(STAMP)
	for f in benchmarks/bench_*.py; do echo "== $$f"; $(PY) $$f || exit 1; done

clean:
	rm -rf $(VENV) .course_cache
