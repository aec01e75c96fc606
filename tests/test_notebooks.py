"""Notebook hygiene: what a learner opens must be complete, clean and reproducible.

nbval (run by ``make test``) re-executes every notebook and compares the outputs; these
tests check what nbval cannot: how the notebooks were committed.
"""

import json
import re
import sys
from pathlib import Path

import nbformat
import pytest
from jupytext.config import find_jupytext_configuration_file
from jupytext.paired_paths import paired_paths

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
sys.path.insert(0, str(ROOT / "tools"))
import notebooks as nbtool  # noqa: E402

MACHINE_PATH = re.compile(r"(/root/|/home/\w+|/tmp/|/usr/local/|/work/|site-packages|[A-Z]:\\\\Users)")
IGNORE_TAG = "nbval-ignore-output"
# What may carry the tag: widgets, timings, and live training runs (their last digits depend on the
# CPU and BLAS kernel; tests/test_*.py check what they must show instead).
IGNORABLE = re.compile(r"widget|interact|time|perf_counter|display|pretrain\(|sft\(|train_reward_model|train_ppo|"
                       r"_view\(|live|diag")


def _ignored(cell) -> bool:
    return IGNORE_TAG in cell.get("metadata", {}).get("tags", [])


def _code_cells(nb):
    return [c for c in nb.cells if c.cell_type == "code" and c.source.strip()]


@pytest.fixture(params=NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def nb(request):
    return nbformat.read(request.param, as_version=4)


def test_there_are_notebooks():
    assert NOTEBOOKS, "no notebooks found"


def test_executed_top_to_bottom(nb):
    counts = [c.execution_count for c in _code_cells(nb)]
    assert counts == list(range(1, len(counts) + 1)), counts


def test_no_error_outputs(nb):
    errors = [o for c in _code_cells(nb) for o in c.outputs if o.output_type == "error"]
    assert not errors, errors[0].get("ename") if errors else ""


def test_no_stderr_outputs_outside_ignored_cells(nb):
    for c in _code_cells(nb):
        if not _ignored(c):
            streams = [o for o in c.outputs if o.output_type == "stream" and o.name == "stderr"]
            assert not streams, f"stderr in cell: {c.source[:80]!r}: {streams[0].text[:200]!r}"


def test_no_machine_paths_in_outputs(nb):
    text = json.dumps([c.outputs for c in _code_cells(nb)])
    m = MACHINE_PATH.search(text)
    assert not m, f"machine path in outputs: ...{text[max(0, m.start() - 60): m.end() + 60]}..."


def test_has_a_parameters_cell(nb):
    tagged = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1 and tagged[0].cell_type == "code"


def test_says_it_is_not_medical_advice(nb):
    text = " ".join(c.source for c in nb.cells if c.cell_type == "markdown").lower()
    assert "not medical advice" in text


def test_size_under_limit():
    for p in NOTEBOOKS:
        assert p.stat().st_size < 1_500_000, f"{p.name} is {p.stat().st_size // 1000} kB"


def test_every_notebook_has_a_source_and_matches_it():
    srcs = {p.stem for p in nbtool.sources()}
    assert srcs == {p.stem for p in NOTEBOOKS}
    assert nbtool.check() == 0


def test_ignore_tag_only_on_widget_timing_or_live_run_cells(nb):
    for c in _code_cells(nb):
        assert "NBVAL" not in c.source, "use the cell tag, not a comment a learner has to read"
        if _ignored(c):
            assert IGNORABLE.search(c.source), c.source[:120]


def test_kernelspec_is_what_jupyterlab_reports(nb):
    """A different display name makes JupyterLab mark the notebook modified the moment it opens."""
    assert nb.metadata["kernelspec"] == {"display_name": "Python 3 (ipykernel)", "language": "python",
                                         "name": "python3"}


def test_percent_format_reader_round_trip():
    text = '# %% [markdown]\n# # Title\n#\n# text\n\n# %% tags=["parameters"]\nSEED = 0\n\n# %%\nprint(1)\n'
    cells = nbtool.parse_source(text)
    assert [(c["cell_type"], c["source"], c["tags"]) for c in cells] == [
        ("markdown", "# Title\n\ntext", []),
        ("code", "SEED = 0", ["parameters"]),
        ("code", "print(1)", []),
    ]


def test_reader_drops_blank_edges_empty_cells_and_metadata_other_than_tags():
    """jupytext keeps a trailing "#" line as an empty last line, an empty "# %%" as an empty cell, and
    titles and other metadata on the marker line; a built notebook keeps none of them."""
    text = ('# %% [markdown]\n#\n# text\n#\n# %%\n\n# %% Setup tags=["parameters"] slideshow={"slide_type": "-"}\n'
            '\n\nSEED = 0\n   \n')
    read = nbtool.read_source(text).cells                     # what jupytext itself reads
    assert [c.source for c in read] == ["\ntext\n", "", "\n\nSEED = 0\n   "]
    assert read[2].metadata["title"] == "Setup" and read[2].metadata["slideshow"] == {"slide_type": "-"}
    assert [(c["cell_type"], c["source"], c["tags"]) for c in nbtool.parse_source(text)] == [
        ("markdown", "text", []),
        ("code", "SEED = 0", ["parameters"]),
    ]


def test_reader_takes_jupytext_conventions():
    """Commented magics are uncommented and "# In[ ]:" starts a cell, as in JupyterLab's paired view."""
    cells = nbtool.parse_source("# %%\n# %timeit f()\nx = 1\n# In[2]:\ny = 2\n")
    assert [c["source"] for c in cells] == ["%timeit f()\nx = 1", "y = 2"]


@pytest.mark.parametrize("line", ["not a comment", "#no space", "x = 1"])
def test_percent_format_rejects_stray_markdown_lines(line):
    text = f"# %% [markdown]\n# # Title\n\n# %%\ny = 0\n\n# %% [markdown]\n# text\n{line}\n"
    with pytest.raises(ValueError, match=f"line 9: markdown line does not start with '# ': '{line}'"):
        nbtool.parse_source(text)
    cells = nbtool.parse_source(text.replace(f"\n{line}\n", "\n"))              # the same file without it
    assert [(c["cell_type"], c["source"]) for c in cells] == [("markdown", "# Title"), ("code", "y = 0"),
                                                              ("markdown", "text")]


def test_jupytext_pairs_every_notebook_with_its_source():
    """An author who opens notebooks/NN_name.ipynb in JupyterLab with jupytext edits notebooks/src/NN_name.py."""
    (formats,) = nbtool.jupytext_config().formats
    for nb_path in NOTEBOOKS:
        pairs = dict(paired_paths(str(nb_path), "ipynb", formats))
        src = str(nb_path.parent / "src" / (nb_path.stem + ".py"))
        assert set(pairs) == {str(nb_path), src}
        assert pairs[src]["format_name"] == "percent"


def test_pairing_does_not_reach_the_learners_working_copy():
    """jupytext looks for its configuration in a notebook's folder and the folders above it: lab/ (make lab)
    is a sibling of notebooks/, so its copies are never paired, and nothing is written into the repository."""
    assert Path(find_jupytext_configuration_file(ROOT / "notebooks")) == nbtool.JUPYTEXT_CONFIG
    found = find_jupytext_configuration_file(ROOT / "lab")
    assert found is None or ROOT not in Path(found).resolve().parents, found


def test_notebooks_carry_no_jupytext_metadata(nb):
    """What tools/notebooks.py writes: JupyterLab with jupytext adds its settings when it saves a notebook
    (rebuild with make notebooks), and a "formats" entry there would pair the copy in lab/ as well."""
    assert "jupytext" not in nb.metadata
