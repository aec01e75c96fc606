# The course's commands. Each creates .venv and installs the course if needed.
#   make lab               open JupyterLab on lab/, your working copy of the book (git ignores it)
#   make lab-reset NB=03   replace your copy of chapter 03 with the book's version (asks first; NB= empty: all)
#   make test              ruff, unit tests + every notebook executed and compared by nbval (what CI runs)
#   make run NB=01 ARGS="-p LEARNING_RATE 0.003"   run one chapter with papermill into lab/runs/
#   make notebooks         rebuild and execute the book from notebooks/src/ (NB=03 for one chapter)
#   make data              rebuild the datasets from data/scenarios.jsonl
#   make checkpoints       retrain every stage and rewrite data/checkpoints/
#   make check-checkpoints retrain in a temporary folder and compare with data/checkpoints/
#   make bench             speed and memory measurements
#   make test-browser      every chapter run in headless Chromium: widgets, figures, extremes (NB=03 for one; apt as root)
#   make book              the book as a website and one PDF per part, into build/book/ (apt as root)
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
NB     ?=
ARGS   ?=
# A cell that runs longer than this fails loudly instead of waiting (the slowest cell takes ~30 s).
CELL_TIMEOUT ?= 240

.PHONY: lab lab-reset test run notebooks data checkpoints check-checkpoints bench clean test-browser book

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
	$(PY) -m ruff check course_utils tests tools benchmarks notebooks/src
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
	rm -rf $(VENV)

# ---------------------------------------------------------------- browser test and books
# Neither is part of `make test`: both need Debian's chromium, installed with apt when missing
# (as root; otherwise run `sudo apt-get install -y chromium fonts-dejavu-core` first), and
# install extras of their own (pyproject.toml: browser, book). See README.md.
CHROMIUM      ?= /usr/bin/chromium
BROWSER_STAMP := $(VENV)/.browser-stamp
BOOK_STAMP    := $(VENV)/.book-stamp

$(CHROMIUM):
	@if [ "$$(id -u)" != 0 ]; then echo "$(CHROMIUM) is missing: sudo apt-get install -y chromium fonts-dejavu-core"; exit 1; fi
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-dejavu-core
	@test -x $(CHROMIUM) || (echo "no browser at $(CHROMIUM) after the install (set CHROMIUM=/path/to/chromium)"; exit 1)

$(BROWSER_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -c constraints.txt -e ".[dev,browser]"
	@touch $@

$(BOOK_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -c constraints.txt -e ".[dev,book,browser]"
	@touch $@

test-browser: $(BROWSER_STAMP) | $(CHROMIUM)
	CHROMIUM=$(CHROMIUM) $(PY) tools/browser_test.py $(NB)

book: $(BOOK_STAMP) | $(CHROMIUM)
	CHROMIUM=$(CHROMIUM) $(PY) tools/book.py build
