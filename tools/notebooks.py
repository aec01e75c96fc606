"""Build the chapter notebooks from their percent-format sources and execute them.

    python tools/notebooks.py build            # every notebooks/src/*.py -> notebooks/*.ipynb, executed
    python tools/notebooks.py build 03 05      # only chapters whose file name starts with 03 or 05
    python tools/notebooks.py check            # exit 1 if a committed notebook's cells differ from its source

A source is a plain Python file in jupytext's percent format: ``# %%`` starts a code cell
(``# %% tags=["parameters"]`` adds tags), ``# %% [markdown]`` starts a Markdown cell whose
lines begin with ``# ``. jupytext reads it, with the settings of ``notebooks/jupytext.toml``,
the file that also pairs ``notebooks/NN_name.ipynb`` with ``notebooks/src/NN_name.py`` for an
author who edits in JupyterLab with jupytext installed. A notebook built here keeps, of what
jupytext reads, each cell's type, text (without blank lines at its start and end) and tags;
empty cells are dropped, the cell ids are ``cell-000``, ``cell-001``, ... and the notebook's
metadata is the kernelspec JupyterLab reports, so that a rebuild changes nothing but outputs.
Execution uses nbclient: a fresh kernel with ``notebooks/`` as the working directory, exactly
as a learner who opens the notebook in JupyterLab and runs all cells.
"""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

import jupytext
import nbformat
from jupytext.config import JupytextConfiguration, load_jupytext_configuration_file

ROOT = Path(__file__).resolve().parent.parent
NB_DIR = ROOT / "notebooks"
SRC_DIR = NB_DIR / "src"
JUPYTEXT_CONFIG = NB_DIR / "jupytext.toml"
SOURCE_FORMAT = "py:percent"

# The lines jupytext takes for cell markers in a Python script (it also skips "# %%" inside a fenced
# block of a Markdown cell, which this does not: that only makes the check below more lenient).
_MARKER = re.compile(r"^\s*#\s*(%%(%*\s.*)?|<codecell>\s*|In\[[0-9 ]*\]:?\s*)$")
_MARKDOWN = re.compile(r"\[(markdown|md)\]")
_NEW_CELL = {
    "markdown": nbformat.v4.new_markdown_cell,
    "code": nbformat.v4.new_code_cell,
    "raw": nbformat.v4.new_raw_cell,
}


def jupytext_config() -> JupytextConfiguration:
    """The settings of ``notebooks/jupytext.toml``: those JupyterLab pairs the notebooks with."""
    return load_jupytext_configuration_file(str(JUPYTEXT_CONFIG))


def check_markdown_lines(text: str) -> None:
    """Raise ValueError if a line of a ``# %% [markdown]`` cell is neither blank nor a comment.

    jupytext would put such a line into the Markdown cell as it stands; in a source it is a slip,
    and it makes the file invalid Python more often than not.
    """
    markdown = False
    for number, line in enumerate(text.splitlines(), start=1):
        if _MARKER.match(line):
            markdown = bool(_MARKDOWN.search(line))
        elif markdown and line.strip() and not (line.startswith("# ") or line == "#"):
            raise ValueError(f"line {number}: markdown line does not start with '# ': {line!r}")


def read_source(text: str) -> nbformat.NotebookNode:
    """The notebook jupytext reads from a percent-format source (after ``check_markdown_lines``)."""
    check_markdown_lines(text)
    return jupytext.reads(text, fmt=SOURCE_FORMAT, config=jupytext_config())


def _strip_blank_lines(source: str) -> str:
    lines = source.split("\n")
    while lines and not lines[0].strip():
        lines.pop(0)
    while lines and not lines[-1].strip():
        lines.pop()
    return "\n".join(lines)


def parse_source(text: str) -> list[dict]:
    """The cells jupytext reads from a percent-format source: dicts with ``cell_type``, ``source``
    and ``tags``. Blank lines at the start and end of a cell are left out, and so are empty cells;
    of the cell metadata only the tags are kept."""
    cells = []
    for cell in read_source(text).cells:
        source = _strip_blank_lines(cell.source)
        if source:
            cells.append({"cell_type": cell.cell_type, "source": source, "tags": list(cell.metadata.get("tags", []))})
    return cells


def to_notebook(cells: list[dict]) -> nbformat.NotebookNode:
    """A notebook of ``cells`` (as ``parse_source`` returns them) with stable ids and fixed metadata."""
    nb = nbformat.v4.new_notebook()
    nb.metadata = {
        "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    }
    for i, c in enumerate(cells):
        meta = {"tags": c["tags"]} if c["tags"] else {}
        cell = _NEW_CELL[c["cell_type"]](c["source"], metadata=meta)
        cell.id = f"cell-{i:03d}"  # stable ids keep diffs readable
        nb.cells.append(cell)
    return nb


def cells_of(nb: nbformat.NotebookNode) -> list[tuple[str, str, list[str]]]:
    """The part of a notebook that must equal its source: type, text, tags of every cell."""
    return [(c.cell_type, c.source, list(c.get("metadata", {}).get("tags", []))) for c in nb.cells]


def sources(selection: list[str] | None = None) -> list[Path]:
    paths = sorted(SRC_DIR.glob("[0-9][0-9]_*.py"))
    if selection:
        paths = [p for p in paths if any(p.name.startswith(s) for s in selection)]
    return paths


class _DiscardWidgetState(dict):
    """Widget state that is never stored: nbclient's Output-widget hook writes to
    ``widget_state[comm_id]`` even with ``store_widget_state=False`` (a KeyError otherwise)."""

    def __missing__(self, key):
        return {}


def _client_class():
    from nbclient import NotebookClient

    class Client(NotebookClient):
        def reset_execution_trackers(self):
            super().reset_execution_trackers()
            self.widget_state = _DiscardWidgetState()

    return Client


def build(src: Path, execute: bool = True) -> Path:
    NotebookClient = _client_class()

    nb = to_notebook(parse_source(src.read_text(encoding="utf-8")))
    out = NB_DIR / (src.stem + ".ipynb")
    if execute:
        t0 = time.perf_counter()
        client = NotebookClient(
            nb, timeout=240, kernel_name="python3", record_timing=False,
            store_widget_state=False, resources={"metadata": {"path": str(NB_DIR)}},
        )
        client.execute()
        print(f"{out.name}: executed in {time.perf_counter() - t0:.1f} s")
    nbformat.write(nb, out)
    return out


def check() -> int:
    bad = 0
    for src in sources():
        nb_path = NB_DIR / (src.stem + ".ipynb")
        want = cells_of(to_notebook(parse_source(src.read_text(encoding="utf-8"))))
        if not nb_path.exists():
            print(f"{nb_path.name}: missing (run: python tools/notebooks.py build {src.stem[:2]})")
            bad += 1
        elif cells_of(nbformat.read(nb_path, as_version=4)) != want:
            print(f"{nb_path.name}: cells differ from {src.relative_to(ROOT)} (rebuild it)")
            bad += 1
    return 1 if bad else 0


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in {"build", "check"}:
        print(__doc__)
        return 2
    if argv[0] == "check":
        return check()
    for src in sources(argv[1:]):
        build(src)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
