"""Build the chapter notebooks from their percent-format sources and execute them.

    python tools/notebooks.py build            # every notebooks/src/*.py -> notebooks/*.ipynb, executed
    python tools/notebooks.py build 03 05      # only chapters whose file name starts with 03 or 05
    python tools/notebooks.py check            # exit 1 if a committed notebook's cells differ from its source

A source file is plain Python. ``# %%`` starts a code cell (``# %% tags=["parameters"]``
adds tags), ``# %% [markdown]`` starts a Markdown cell whose lines begin with ``# ``.
Execution uses a fresh kernel with ``notebooks/`` as the working directory, exactly as a
learner who opens the notebook in JupyterLab and runs all cells.
"""

from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
NB_DIR = ROOT / "notebooks"
SRC_DIR = NB_DIR / "src"

_HEADER = re.compile(r"^# %%(?P<md> \[markdown\])?(?:\s+tags=(?P<tags>\[.*\]))?\s*$")


def parse_source(text: str) -> list[dict]:
    """Split a percent-format source into cells: dicts with ``cell_type``, ``source`` and ``tags``."""
    cells: list[dict] = []
    current: dict | None = None
    for line in text.splitlines():
        m = _HEADER.match(line)
        if m:
            current = {
                "cell_type": "markdown" if m.group("md") else "code",
                "tags": json.loads(m.group("tags")) if m.group("tags") else [],
                "lines": [],
            }
            cells.append(current)
        elif current is not None:
            if current["cell_type"] == "markdown":
                if line.strip() and not (line.startswith("# ") or line == "#"):
                    raise ValueError(f"markdown line does not start with '# ': {line!r}")
                line = line[2:]
            current["lines"].append(line)
    for cell in cells:
        lines = cell.pop("lines")
        while lines and not lines[0].strip():
            lines.pop(0)
        while lines and not lines[-1].strip():
            lines.pop()
        cell["source"] = "\n".join(lines)
    return [c for c in cells if c["source"]]


def to_notebook(cells: list[dict]) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata = {
        "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    }
    for i, c in enumerate(cells):
        meta = {"tags": c["tags"]} if c["tags"] else {}
        if c["cell_type"] == "markdown":
            cell = nbformat.v4.new_markdown_cell(c["source"], metadata=meta)
        else:
            cell = nbformat.v4.new_code_cell(c["source"], metadata=meta)
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
