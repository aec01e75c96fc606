# The course's commands. Each creates .venv and installs the course if needed.
#   make lab               open JupyterLab on lab/, your working copy of the book (git ignores it)
#   make lab-reset NB=03   replace your copy of chapter 03 with the book's version (asks first; NB= empty: all)
#   make test              unit tests + every notebook executed and compared by nbval (what CI runs)
#   make run NB=01 ARGS="-p LEARNING_RATE 0.003"   run one chapter with papermill into lab/runs/
#   make notebooks         rebuild and execute the book from notebooks/src/ (NB=03 for one chapter)
#   make data              rebuild the datasets from data/scenarios.jsonl
#   make checkpoints       retrain every stage and rewrite data/checkpoints/
#   make check-checkpoints retrain in a temporary folder and compare with data/checkpoints/
#   make bench             speed and memory measurements
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
NB     ?=
ARGS   ?=
# A cell that runs longer than this fails loudly instead of waiting (the slowest cell takes ~30 s).
CELL_TIMEOUT ?= 240

.PHONY: lab lab-reset test run notebooks data checkpoints check-checkpoints bench clean

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "Python 3.10 or newer is needed")'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e ".[dev]"
	@touch $(STAMP)

lab: $(STAMP)
	$(PY) tools/lab.py

lab-reset: $(STAMP)
	$(PY) tools/lab.py reset $(if $(YES),--yes) $(NB)

test: $(STAMP)
	$(PY) -m pytest tests notebooks --nbval --nbval-current-env \
		--nbval-sanitize-with tests/sanitize.cfg --nbval-cell-timeout=$(CELL_TIMEOUT) -q

run: $(STAMP)
	@test -n "$(NB)" || (echo 'usage: make run NB=01 ARGS="-p LEARNING_RATE 0.003"'; exit 2)
	@mkdir -p lab/runs
	$(PY) -m papermill --execution-timeout $(CELL_TIMEOUT) --cwd notebooks \
		$(wildcard notebooks/$(NB)_*.ipynb) lab/runs/$(notdir $(wildcard notebooks/$(NB)_*.ipynb)) $(ARGS)

notebooks: $(STAMP)
	$(PY) tools/notebooks.py build $(NB)

data: $(STAMP)
	$(PY) -m course_utils.data build

checkpoints: $(STAMP)
	$(PY) -m course_utils.checkpoints build

check-checkpoints: $(STAMP)
	$(PY) -m course_utils.checkpoints check

bench: $(STAMP)
	for f in benchmarks/bench_*.py; do echo "== $$f"; $(PY) $$f || exit 1; done

clean:
	rm -rf $(VENV) .course_cache
