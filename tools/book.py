"""Render the executed book as a static website and as one PDF per part: ``make book`` runs this.

    python tools/book.py build                # site + Part 1 and Part 2 PDFs, into build/book/
    python tools/book.py build --no-pdf       # the site only (no browser needed)
    python tools/book.py build --no-execute   # widgets become a note without their figure (no kernel, fast)
    python tools/book.py links                # the Binder and Colab badges for the README
    python tools/book.py links 03             # ... and the snippet for the top of chapter 03
    python tools/book.py links --write        # rewrite them at the top of every chapter's source

What is rendered is the committed, executed book, ``notebooks/NN_*.ipynb``, found by glob:
chapter 00 is the welcome page, chapters 1-4 are Part 1 and chapters 5 onwards Part 2. The
renderer is Sphinx with MyST-NB and the Sphinx Book Theme (the engine of Jupyter Book 1);
this file only prepares a copy of every notebook and the configuration:

* display equations (``$$ ... $$`` on lines of their own) get MyST labels, and Sphinx numbers
  them per chapter: (3.2) is the second equation of chapter 3;
* a live widget saves no output in a notebook, so each one is replaced by a note naming its
  controls, followed by what it shows at its default settings. To get that, the chapter is
  executed once more in a kernel (cached under the notebook's hash), with every "Run" button
  pressed once, and the output area of each widget is kept. Progress bars become their line
  of text;
* every chapter starts with its Binder and Colab launch badges, built from the one repository
  URL in ``pyproject.toml`` (``[project.urls] Repository``); the theme adds launch buttons too.

The PDFs are the single-page HTML of each part, printed by headless Chromium (Debian's
``chromium`` package, driven by playwright through ``executable_path``; no TeX, no browser
download). Output: ``build/book/html/index.html`` and ``build/book/pdf/part{1,2}.pdf``.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import html
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
BOOK = ROOT / "notebooks"
OUT = ROOT / "build" / "book"
TITLE = "How LLMs are trained and aligned"
SUBTITLE = "A hands-on course with pharmaceutical examples"
BRANCH = "main"
CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
CACHE_VERSION = 1
PLACEHOLDER_URL = "https://github.com/OWNER/REPO"
DISCLAIMER = ("**Educational material, not medical advice.** The pharmaceutical cases are simplified "
              "teaching examples and the models are toys. Never use them for decisions about real "
              "patients; ask a pharmacist or prescriber.")


# ============================================================================ chapters and parts
def chapters(book: Path = BOOK) -> list[Path]:
    """Every chapter notebook of the book, in order (``NN_name.ipynb``)."""
    return sorted(book.glob("[0-9][0-9]_*.ipynb"))


def chapter_number(path: Path | str) -> int:
    return int(Path(path).name[:2])


def split_parts(paths: list[Path]) -> dict[str, list[Path]]:
    """``welcome`` (chapter 0), ``part1`` (chapters 1-4) and ``part2`` (chapters 5 onwards)."""
    parts: dict[str, list[Path]] = {"welcome": [], "part1": [], "part2": []}
    for p in paths:
        n = chapter_number(p)
        parts["welcome" if n == 0 else "part1" if n <= 4 else "part2"].append(p)
    return parts


def part_caption(key: str, paths: list[Path]) -> str:
    """'Part 1 · Chapters 1-4' from the chapters the part has now."""
    nums = [chapter_number(p) for p in paths]
    span = f"Chapter {nums[0]}" if len(nums) == 1 else f"Chapters {nums[0]}-{nums[-1]}"
    return f"Part {key[-1]} · {span}"


def headings(nb: nbformat.NotebookNode) -> tuple[str, list[str]]:
    """The chapter title (first ``# `` line) and its ``## `` section titles."""
    title, sections, fenced = "", [], False
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        for line in cell.source.splitlines():
            if line.startswith("```"):
                fenced = not fenced
            elif not fenced and line.startswith("# ") and not title:
                title = line[2:].strip()
            elif not fenced and line.startswith("## "):
                sections.append(line[3:].strip())
    return title, sections


# ============================================================================ launch links
def repository_url(pyproject: Path = ROOT / "pyproject.toml") -> str:
    """The repository's URL: the one place it is written is ``[project.urls] Repository``."""
    text = pyproject.read_text(encoding="utf-8")
    try:
        import tomllib                                   # Python >= 3.11
    except ImportError:                                  # Python 3.10: the one line is enough
        m = re.search(r'^Repository\s*=\s*"([^"]+)"', text, re.M)
        if not m:
            raise KeyError("no Repository under [project.urls] in pyproject.toml") from None
        return m.group(1).rstrip("/")
    return tomllib.loads(text)["project"]["urls"]["Repository"].rstrip("/")


def _github_path(repo_url: str) -> str:
    m = re.match(r"^https://github\.com/([^/]+/[^/]+?)(?:\.git)?$", repo_url)
    if not m:
        raise ValueError(f"the launch links need a GitHub repository URL, got {repo_url!r}")
    return m.group(1)


def launch_urls(notebook: str | None = None, repo_url: str | None = None, branch: str = BRANCH) -> dict[str, str]:
    """Binder and Colab URLs that open ``notebooks/<notebook>`` (or JupyterLab / the repository)."""
    gh = _github_path(repo_url or repository_url())
    binder = f"https://mybinder.org/v2/gh/{gh}/{branch}"
    if notebook:
        return {"binder": f"{binder}?urlpath=lab/tree/notebooks/{notebook}",
                "colab": f"https://colab.research.google.com/github/{gh}/blob/{branch}/notebooks/{notebook}"}
    return {"binder": f"{binder}?urlpath=lab/tree/notebooks",
            "colab": f"https://colab.research.google.com/github/{gh}/blob/{branch}/notebooks/00_welcome.ipynb"}


def launch_badges(notebook: str | None = None, repo_url: str | None = None, branch: str = BRANCH,
                  images: bool = True) -> str:
    """One Markdown line with the Binder and Colab badges (for the README or a chapter's first cell);
    ``images=False``: plain links, for print."""
    urls = launch_urls(notebook, repo_url, branch)
    if not images:
        return f"Run this chapter: [on Binder]({urls['binder']}) · [on Colab]({urls['colab']})"
    return (f"[![Launch on Binder](https://mybinder.org/badge_logo.svg)]({urls['binder']}) "
            f"[![Open in Colab](https://colab.research.google.com/assets/colab-badge.svg)]({urls['colab']})")


def colab_setup_cell(repo_url: str | None = None) -> str:
    """The first code cell a chapter needs on Colab: the course's code *and its data files*.

    ``data/`` is not package data (``course_utils.paths`` finds it next to the package), so a
    ``pip install git+...`` alone would lack it: the cell clones the repository, installs the
    package from the clone, and imports it from there (an editable install is only seen by a
    new kernel). Plain Python, so that the percent-format source stays valid Python; it does
    nothing outside Colab (JupyterLab, nbval, papermill).
    """
    url = repo_url or repository_url()
    clone = f"/content/{_github_path(url).split('/')[1]}"
    return (
        "# On Colab only: fetch the course (its code and data files) and install it.\n"
        "import os\n"
        "import subprocess\n"
        "import sys\n"
        "\n"
        "if \"google.colab\" in sys.modules:\n"
        f"    if not os.path.isdir(\"{clone}\"):\n"
        f"        subprocess.run([\"git\", \"clone\", \"--depth\", \"1\", \"{url}\", \"{clone}\"], check=True)\n"
        f"        subprocess.run([sys.executable, \"-m\", \"pip\", \"install\", \"--quiet\", \"-e\", \"{clone}\"],"
        " check=True)\n"
        f"    sys.path.insert(0, \"{clone}\")\n"
        f"    os.chdir(\"{clone}/notebooks\")\n"
    )


# ============================================================================ notebook preparation
_DISPLAY_MATH = re.compile(r"^\$\$.+?\$\$(?=[ \t]*$)", re.M | re.S)


def label_equations(source: str, chapter: int, start: int = 0) -> tuple[str, int]:
    """Give every display equation that stands on lines of its own a MyST label ``eq-NN-K``.

    Sphinx numbers labelled equations only; returns the new source and the last K used.
    """
    count = start

    def _label(m: re.Match) -> str:
        nonlocal count
        count += 1
        return f"{m.group(0)} (eq-{chapter:02d}-{count})"

    return _DISPLAY_MATH.sub(_label, source), count


@dataclass
class WidgetStatic:
    """What one live widget shows at its default settings, recorded by executing its chapter."""

    controls: list[str] = field(default_factory=list)   # "learning rate = 0.003", ...
    outputs: list[dict] = field(default_factory=list)   # nbformat outputs of its output area
    pressed: bool = False                                # a Run button was pressed to produce them


def is_progress_bar(output: dict) -> bool:
    """A ``course_utils.progress`` bar: its saved text is ``[progress: <what>, <n> steps]``."""
    text = output.get("data", {}).get("text/plain", "")
    text = "".join(text) if isinstance(text, list) else text
    return text.startswith("[progress:")


def _live_widget_outputs(cell: dict) -> list[dict]:
    return [o for o in cell.get("outputs", []) if WIDGET_MIME in o.get("data", {}) and not is_progress_bar(o)]


def widget_note(static: WidgetStatic | None) -> dict:
    """The HTML output that stands in for a live widget in the book."""
    controls = ", ".join(static.controls) if static and static.controls else ""
    what = f" Its controls: {html.escape(controls)}." if controls else ""
    if static is None:
        after = "Run the chapter to see what it shows."
    elif static.outputs:
        after = ("Below: what it shows at these settings" + (", after pressing Run." if static.pressed else "."))
    else:
        after = "At its default settings it shows nothing yet."
    text = (f'<div class="admonition note widget-note"><p class="admonition-title">Interactive widget</p>'
            f"<p>In JupyterLab this cell shows a live widget that recomputes when you change it.{what} "
            "Open the chapter on Binder or Colab (links at the top of the chapter) or with <code>make lab</code> "
            "to use it. "
            f"{after}</p></div>")
    return nbformat.v4.new_output("display_data", data={"text/html": text})


def replace_widgets(nb: nbformat.NotebookNode, statics: dict[int, list[WidgetStatic]] | None) -> int:
    """Replace every widget output of ``nb`` in place; returns how many live widgets were replaced.

    A progress bar keeps only its text; a live widget becomes :func:`widget_note` followed by the
    outputs recorded in ``statics[cell index][k]`` for the cell's k-th live widget.
    """
    replaced = 0
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        new_outputs, k = [], 0
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if WIDGET_MIME not in data:
                new_outputs.append(out)
            elif is_progress_bar(out):
                new_outputs.append(nbformat.v4.new_output("stream", name="stdout",
                                                          text=_text(data["text/plain"]) + "\n"))
            else:
                found = (statics or {}).get(index, [])
                static = found[k] if k < len(found) else None
                new_outputs.append(widget_note(static))
                new_outputs.extend(_static_output(o) for o in (static.outputs if static else []))
                k += 1
                replaced += 1
        cell.outputs = new_outputs
    return replaced


def _text(value: str | list[str]) -> str:
    return "".join(value) if isinstance(value, list) else value


def _static_output(output: dict) -> nbformat.NotebookNode:
    """A recorded output for the page: a widget nested in it (a progress bar) keeps only its text."""
    data = output.get("data", {})
    if WIDGET_MIME in data:
        return nbformat.v4.new_output("stream", name="stdout", text=_text(data.get("text/plain", "")) + "\n")
    return nbformat.from_dict(output)


def prepare_notebook(src: Path, statics: dict[int, list[WidgetStatic]] | None, repo_url: str,
                     for_print: bool = False) -> nbformat.NotebookNode:
    """A copy of chapter ``src`` ready for Sphinx: badges under the title (unless the chapter has
    them already), equations labelled, widgets replaced."""
    nb = nbformat.read(src, as_version=4)
    chapter, count = chapter_number(src), 0
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            cell.source, count = label_equations(cell.source, chapter, count)
    replace_widgets(nb, statics)
    first_md = next((c for c in nb.cells if c.cell_type == "markdown"), None)
    badges = launch_badges(src.name, repo_url, images=not for_print)
    if first_md is not None and first_md.source.startswith("# ") and "mybinder.org/v2/gh" not in first_md.source:
        title, _, rest = first_md.source.partition("\n")
        first_md.source = f"{title}\n\n{badges}\n{rest}"
    return nb


# ============================================================================ widget figures
_PRESS_RUN = '''\
def _book_press_run_buttons():
    """Press, once, every "Run" button created so far (tools/book.py records what it shows)."""
    import ipywidgets
    from ipywidgets.widgets.widget import _instances
    for widget in list(_instances.values()):
        if isinstance(widget, ipywidgets.Button) and widget.description == "Run" \\
                and not getattr(widget, "_book_pressed", False):
            widget._book_pressed = True
            widget.click()'''


def _walk(state: dict, model_id: str) -> list[dict]:
    """The widget models reachable from ``model_id`` through ``children``, in display order."""
    found, todo, seen = [], [model_id], set()
    while todo:
        mid = todo.pop(0)
        if mid in seen or mid not in state:
            continue
        seen.add(mid)
        found.append(state[mid])
        children = state[mid].get("state", {}).get("children", [])
        todo = [c.removeprefix("IPY_MODEL_") for c in children] + todo
    return found


def _describe(model: dict) -> str | None:
    """'learning rate = 0.003' for a control, None for buttons, boxes, labels and outputs."""
    s = model.get("state", {})
    desc = s.get("description")
    if not desc or model.get("model_name") in {"ButtonModel", "LabelModel", "HTMLModel"} \
            or "Progress" in model.get("model_name", ""):
        return None
    if "_options_labels" in s:
        labels, index = s["_options_labels"], s.get("index")
        if isinstance(index, (list, tuple)):
            value = "all" if len(index) == len(labels) else f"{len(index)} of {len(labels)} chosen"
        else:
            value = "none" if index is None else labels[index]
    else:
        value = s.get("value")
        value = f"{value:g}" if isinstance(value, float) else str(value)
    return f"{desc} = {value}"


def _static_of(state: dict, model_id: str) -> WidgetStatic:
    models = _walk(state, model_id)
    outputs = [o for m in models if m.get("model_name") == "OutputModel" for o in m["state"].get("outputs", [])]
    pressed = any(m.get("model_name") == "ButtonModel" and m["state"].get("description") == "Run" for m in models)
    controls = [d for d in map(_describe, models) if d]
    return WidgetStatic(controls=controls, outputs=outputs, pressed=pressed)


def execute_for_widgets(src: Path, cwd: Path = BOOK,
                        timeout: int = 900) -> tuple[dict[int, list[WidgetStatic]], list[str]]:
    """Execute chapter ``src`` in a fresh kernel and record what each live widget shows.

    After every code cell, each new "Run" button is pressed once, so widgets that compute only on
    demand show a result too. A cell that fails does not stop the run (the widgets after it are
    still recorded). Returns ``({cell index: [WidgetStatic per live widget]}, [errors])``.
    """
    from nbclient import NotebookClient

    nb = nbformat.read(src, as_version=4)
    run = copy.deepcopy(nb)
    run.cells, where = [nbformat.v4.new_code_cell(_PRESS_RUN)], {}
    for index, cell in enumerate(nb.cells):
        run.cells.append(copy.deepcopy(cell))
        if cell.cell_type == "code":
            where[index] = len(run.cells) - 1
            run.cells.append(nbformat.v4.new_code_cell("_book_press_run_buttons()"))
    for i, cell in enumerate(run.cells):
        cell.id = f"book-{i:04d}"
    client = NotebookClient(run, timeout=timeout, kernel_name="python3", record_timing=False, allow_errors=True,
                            store_widget_state=True, resources={"metadata": {"path": str(cwd)}})
    client.execute()
    state = run.metadata.get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {}).get("state", {})
    statics: dict[int, list[WidgetStatic]] = {}
    errors = [f"cell {index}: {o.get('ename')}: {o.get('evalue', '')}"[:300]
              for index, at in where.items() for o in run.cells[at].outputs if o.output_type == "error"]
    for index, at in where.items():
        ids = [o["data"][WIDGET_MIME]["model_id"] for o in _live_widget_outputs(run.cells[at])]
        if ids:
            statics[index] = [_static_of(state, mid) for mid in ids]
    return statics, errors


def widget_statics(src: Path, cache: Path, execute: bool = True) -> dict[int, list[WidgetStatic]] | None:
    """:func:`execute_for_widgets`, cached in ``cache`` under the notebook's sha256 (None: not executed).

    A chapter that fails to execute is reported on stderr and not cached; the book still shows
    its widgets' notes, with whatever they recorded before the failure."""
    if not execute or not any(_live_widget_outputs(c) for c in nbformat.read(src, as_version=4).cells):
        return None
    sha = hashlib.sha256(src.read_bytes()).hexdigest()
    path = cache / f"{src.stem}-{sha[:16]}.json"
    if path.exists():
        saved = json.loads(path.read_text(encoding="utf-8"))
        if saved.get("version") == CACHE_VERSION:
            return {int(k): [WidgetStatic(**w) for w in v] for k, v in saved["widgets"].items()}
    t0 = time.perf_counter()
    try:
        statics, errors = execute_for_widgets(src)
    except Exception as err:  # noqa: BLE001 - a dead kernel or a time-out: the book goes on without the figures
        statics, errors = {}, [f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"]
    print(f"{src.name}: executed for its widget figures in {time.perf_counter() - t0:.0f} s", flush=True)
    if errors:
        print(f"WARNING {src.name} does not execute cleanly; its widgets show what they recorded before the "
              f"failure ({'; '.join(errors)})", file=sys.stderr, flush=True)
        return statics
    cache.mkdir(parents=True, exist_ok=True)
    for old in cache.glob(f"{src.stem}-*.json"):
        old.unlink()
    path.write_text(json.dumps({"version": CACHE_VERSION, "widgets": {
        str(k): [asdict(w) for w in v] for k, v in statics.items()}}), encoding="utf-8")
    return statics


# ============================================================================ Sphinx sources
_CONF = '''\
# Generated by tools/book.py for one build; edit that file, not this one.
project = {title}
author = "the course's authors"
copyright = "the course's authors"
root_doc = "index"
extensions = ["myst_nb", "sphinx-mathjax-offline"]
myst_enable_extensions = ["dollarmath"]
myst_heading_anchors = 2
nb_execution_mode = "off"
nb_merge_streams = True
numfig = True
math_numfig = True
exclude_patterns = ["_build"]
html_theme = {theme}
html_title = {html_title}
html_theme_options = {theme_options}
html_sidebars = {sidebars}
html_static_path = ["_static"]
html_css_files = {css_files}
html_last_updated_fmt = None
html_copy_source = False
html_show_sourcelink = False


def _equations_per_chapter(app, env):
    """Number the equations of chapter NN as (NN.1), (NN.2), ... instead of across the book."""
    for doc, kinds in env.toc_fignumbers.items():
        eqs = kinds.get("displaymath")
        if eqs and doc[:2].isdigit():
            order = sorted(eqs, key=eqs.get)
            kinds["displaymath"] = {{key: (int(doc[:2]), i + 1) for i, key in enumerate(order)}}
    return []


def setup(app):
    app.connect("env-get-updated", _equations_per_chapter, priority=900)
'''


_PRINT_CSS = """\
/* tools/book.py: the single-page HTML of one part, printed to PDF by Chromium. */
body { font-size: 10.5pt; margin: 0; }
div.document, div.documentwrapper, div.body { width: auto !important; max-width: none !important; }
div.bodywrapper { margin: 0 !important; }
div.body { padding: 0 !important; }
div.sphinxsidebar, div.related, div.footer, a.headerlink, .github-ribbon { display: none !important; }
span[id^="document-"] + section { break-before: page; }
pre { white-space: pre-wrap; overflow-wrap: anywhere; font-size: 8.5pt; }
div.cell_output img { max-width: 100%; height: auto; break-inside: avoid; }
div.cell_output table { font-size: 8.5pt; }
div.admonition, blockquote, tr { break-inside: avoid; }
h1, h2, h3, h4 { break-after: avoid; }
div.body li, div.body li p { margin-top: 0; margin-bottom: 0; }
table.dataframe { border-collapse: collapse; border: none; }
table.dataframe th, table.dataframe td { border: none; border-bottom: 1px solid #ccc; padding: 1px 8px; }
"""


def write_conf(src: Path, html_title: str, repo_url: str, for_print: bool = False) -> None:
    """conf.py for the site (book theme, launch buttons) or for a part's PDF (plain theme, print CSS)."""
    if for_print:
        theme, options, sidebars, css = "alabaster", {"nosidebar": True}, {"**": []}, ["print.css"]
    else:
        theme, sidebars, css = "sphinx_book_theme", {}, []
        options = {
            "repository_url": repo_url, "repository_branch": BRANCH, "path_to_docs": "notebooks",
            "use_repository_button": True, "use_download_button": True, "home_page_in_toc": True,
            "launch_buttons": {"binderhub_url": "https://mybinder.org", "colab_url": "https://colab.research.google.com",
                               "notebook_interface": "jupyterlab"},
        }
    (src / "_static").mkdir(parents=True, exist_ok=True)
    (src / "_static" / "print.css").write_text(_PRINT_CSS, encoding="utf-8")
    (src / "conf.py").write_text(_CONF.format(title=json.dumps(TITLE), html_title=json.dumps(html_title),
                                              theme=json.dumps(theme), theme_options=repr(options),
                                              sidebars=repr(sidebars), css_files=repr(css)), encoding="utf-8")


def _toctree(entries: list[str], caption: str | None = None, hidden: bool = False, maxdepth: int = 2) -> str:
    opts = [f":maxdepth: {maxdepth}"] + ([f":caption: {caption}"] if caption else []) + ([":hidden:"] if hidden else [])
    return "```{toctree}\n" + "\n".join(opts + [""] + entries) + "\n```\n"


def site_index(parts: dict[str, list[Path]], pdfs: dict[str, str], repo_url: str) -> str:
    """The landing page of the site: what the course is, the two parts, and the PDFs."""
    lines = [f"# {TITLE}", "", f"*{SUBTITLE}.*", "", launch_badges(None, repo_url), "",
             "A Jupyter-notebook course that runs the whole training and alignment pipeline of a language "
             "model on one tiny transformer: pretraining, supervised fine-tuning, a reward model, Elo and "
             "Bradley-Terry ratings, and RLHF with PPO. This is the book as committed, with every output; "
             "the interactive widgets are shown at their default settings (open a chapter on Binder, Colab "
             "or in JupyterLab to move them).", "", f"> {DISCLAIMER}", ""]
    if pdfs:
        lines += ["Download: " + " · ".join(f"{{download}}`{part_caption(k, parts[k])} (PDF) <{name}>`"
                                             for k, name in pdfs.items()), ""]
    if parts["welcome"]:
        lines.append(_toctree([p.stem for p in parts["welcome"]], caption="Welcome", maxdepth=1))
    for key in ("part1", "part2"):
        if parts[key]:
            lines.append(_toctree([p.stem for p in parts[key]], caption=part_caption(key, parts[key]), maxdepth=1))
    return "\n".join(lines)


def part_index(key: str, paths: list[Path]) -> str:
    """The first page of one part's PDF: title, contents (chapters and their sections), then the chapters."""
    lines = [f"# {part_caption(key, paths)}", "", f"**{TITLE}**: {SUBTITLE[0].lower()}{SUBTITLE[1:]}.", "",
             f"> {DISCLAIMER}", "", "**Contents**", ""]
    for p in paths:
        title, sections = headings(nbformat.read(p, as_version=4))
        lines.append(f"- {{doc}}`{title} <{p.stem}>`")
        lines += [f"  - {s}" for s in sections]
    lines += ["", _toctree([p.stem for p in paths], hidden=True)]
    return "\n".join(lines)


def write_sources(src: Path, paths: list[Path], index: str, html_title: str, repo_url: str,
                  statics: dict[str, dict | None], extra: dict[str, Path] | None = None,
                  for_print: bool = False) -> None:
    """A fresh Sphinx source folder: conf.py, index.md, the prepared chapters and ``extra`` files."""
    shutil.rmtree(src, ignore_errors=True)
    src.mkdir(parents=True)
    write_conf(src, html_title, repo_url, for_print)
    (src / "index.md").write_text(index, encoding="utf-8")
    for p in paths:
        nbformat.write(prepare_notebook(p, statics.get(p.name), repo_url, for_print), src / p.name)
    for name, path in (extra or {}).items():
        shutil.copy2(path, src / name)


def sphinx(src: Path, out: Path, builder: str) -> list[str]:
    """Run ``sphinx-build -b builder`` from scratch; returns its warnings (raises if it fails)."""
    shutil.rmtree(out, ignore_errors=True)
    proc = subprocess.run([sys.executable, "-m", "sphinx", "-b", builder, "-E", "-q", str(src), str(out)],
                          capture_output=True, text=True)
    warnings = [line for line in proc.stderr.splitlines() if "WARNING" in line or "ERROR" in line]
    if proc.returncode:
        raise RuntimeError(f"sphinx-build -b {builder} {src} failed:\n{proc.stderr[-4000:]}")
    return warnings


# ============================================================================ PDF
def print_pdf(html_file: Path, pdf: Path, footer: str, chromium: Path = CHROMIUM) -> int:
    """Print ``html_file`` to ``pdf`` (A4) with headless Chromium once MathJax has typeset; returns the page count."""
    from playwright.sync_api import sync_playwright
    from pypdf import PdfReader

    if not chromium.exists():
        raise SystemExit(f"{chromium} not found: the PDFs need Debian's chromium (apt-get install chromium), "
                         "or build the site alone with --no-pdf")
    pdf.parent.mkdir(parents=True, exist_ok=True)
    foot = (f'<div style="font-size:8px;width:100%;text-align:center;color:#555">{html.escape(footer)} · '
            '<span class="pageNumber"></span> / <span class="totalPages"></span></div>')
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(chromium), headless=True,
                                    args=["--no-sandbox", "--disable-dev-shm-usage"])
        try:
            page = browser.new_page()
            page.goto(html_file.resolve().as_uri(), wait_until="load")
            page.wait_for_function("() => !window.MathJax || (window.MathJax.startup && window.MathJax.startup.promise"
                                   " && (window.MathJax.startup.promise.then(() => window.__typeset = true),"
                                   " window.__typeset))",
                                   timeout=120_000)
            page.emulate_media(media="print")
            page.pdf(path=str(pdf), format="A4", print_background=True, display_header_footer=True,
                     header_template="<span></span>", footer_template=foot,
                     margin={"top": "14mm", "bottom": "16mm", "left": "12mm", "right": "12mm"})
        finally:
            browser.close()
    return len(PdfReader(str(pdf)).pages)


# ============================================================================ the build
def build(out: Path = OUT, execute: bool = True, pdf: bool = True, book: Path = BOOK) -> dict:
    """Build the site (and the PDFs); returns a summary: chapters, widgets, pages, warnings, seconds."""
    t0 = time.perf_counter()
    repo_url, paths = repository_url(), chapters(book)
    if not paths:
        raise SystemExit(f"no chapters in {book}")
    parts = split_parts(paths)
    statics: dict[str, dict | None] = {}
    for p in paths:
        statics[p.name] = widget_statics(p, out / "cache", execute)
    summary: dict = {"chapters": [p.name for p in paths], "pages": {}, "warnings": []}
    pdfs: dict[str, str] = {}
    for key in ("part1", "part2"):
        if not (pdf and parts[key]):
            continue
        src = out / "src" / key
        write_sources(src, parts[key], part_index(key, parts[key]), part_caption(key, parts[key]), repo_url, statics,
                      for_print=True)
        summary["warnings"] += sphinx(src, out / "singlehtml" / key, "singlehtml")
        target = out / "pdf" / f"{key}.pdf"
        summary["pages"][key] = print_pdf(out / "singlehtml" / key / "index.html", target,
                                          f"{TITLE} · {part_caption(key, parts[key])}")
        pdfs[key] = f"{key}.pdf"
    src = out / "src" / "site"
    write_sources(src, paths, site_index(parts, pdfs, repo_url), TITLE, repo_url, statics,
                  extra={name: out / "pdf" / name for name in pdfs.values()})
    summary["warnings"] += sphinx(src, out / "html", "html")
    summary["widgets"] = sum(len(v) for s in statics.values() if s for v in s.values())
    summary["seconds"] = round(time.perf_counter() - t0, 1)
    return summary


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="build the site and the PDFs into build/book/")
    b.add_argument("--no-pdf", action="store_true", help="the site only (no browser needed)")
    b.add_argument("--no-execute", action="store_true", help="widgets become a note without their figure")
    b.add_argument("--out", type=Path, default=OUT)
    links = sub.add_parser("links", help="print the Binder/Colab badges (README, or the top of chapter NN)")
    links.add_argument("chapter", nargs="*")
    links.add_argument("--write", action="store_true",
                       help="write the badges and the Colab cell into notebooks/src/ (then make notebooks)")
    args = parser.parse_args(argv)
    if args.command == "links":
        return _write_links() if args.write else _print_links(args.chapter)
    summary = build(args.out, execute=not args.no_execute, pdf=not args.no_pdf)
    for w in summary["warnings"]:
        print(w)
    print(f"site: {args.out / 'html' / 'index.html'}")
    for key, pages in summary["pages"].items():
        print(f"{key}: {args.out / 'pdf' / (key + '.pdf')} ({pages} pages)")
    print(f"{len(summary['chapters'])} chapters, {summary['widgets']} widget figures, "
          f"{len(summary['warnings'])} Sphinx warnings, {summary['seconds']:.0f} s")
    return 0


_BADGE_LINE = re.compile(r"^# \[!\[Launch on Binder\].*$", re.M)
_COLAB_CELL = re.compile(r"^# On Colab only:.*?^    os\.chdir\([^\n]*\)$", re.M | re.S)


def _write_links() -> int:
    """Put the badges under each chapter source's title and the Colab cell first among its code
    cells, from the repository URL in pyproject.toml (replacing the ones already there)."""
    url = repository_url()
    for src in sorted((ROOT / "notebooks" / "src").glob("[0-9][0-9]_*.py")):
        text = src.read_text(encoding="utf-8")
        badges, cell = f"# {launch_badges(src.stem + '.ipynb', url)}", colab_setup_cell(url).rstrip("\n")
        if _BADGE_LINE.search(text) and _COLAB_CELL.search(text):
            text = _COLAB_CELL.sub(lambda m: cell, _BADGE_LINE.sub(lambda m: badges, text, count=1), count=1)
        else:
            lines = text.split("\n")
            lines[2:2] = ["#", badges]                                   # under "# # Title"
            end = next(k for k in range(2, len(lines)) if lines[k].startswith("# %%"))
            lines[end:end] = ["# %%", *cell.split("\n"), "", ""]        # before the first code cell
            text = "\n".join(lines)
        src.write_text(text, encoding="utf-8")
        print(f"{src.name}: badges and Colab cell for {url}")
    return 0


def _print_links(selection: list[str]) -> int:
    url = repository_url()
    if url == PLACEHOLDER_URL:
        print(f"# [project.urls] Repository in pyproject.toml is still the placeholder {url}", file=sys.stderr)
    if not selection:
        print(launch_badges(None, url))
        return 0
    for p in chapters():
        if any(p.name.startswith(s) for s in selection):
            print(f"# {p.name}: first Markdown cell, under the title\n{launch_badges(p.name, url)}\n")
            print(f"# {p.name}: first code cell (Colab)\n{colab_setup_cell(url)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
