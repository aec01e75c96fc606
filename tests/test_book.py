"""``make book`` (tools/book.py) and the helpers of ``make test-browser`` (tools/browser_test.py).

The site is built from the committed notebooks when its tool (Sphinx with MyST-NB, the ``book``
extra) is installed, without executing anything and without the PDFs (those need Chromium and
are built by ``make book`` only). Everything else runs with the dev install.
"""

import importlib.util
import re
import sys
import tomllib
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import book  # noqa: E402
import notebooks as nbtool  # noqa: E402
import browser_test  # noqa: E402

NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
HAS_SPHINX = all(importlib.util.find_spec(m) for m in ("sphinx", "myst_nb", "sphinx_book_theme"))


# ============================================================================ chapters and parts
def test_chapters_are_found_by_glob_and_split_into_parts(tmp_path):
    for name in ["00_welcome", "01_a", "02_b", "03_c", "04_d", "05_e", "06_f", "07_g", "08_new"]:
        (tmp_path / f"{name}.ipynb").write_text("{}")
    (tmp_path / "notes.ipynb").write_text("{}")
    parts = book.split_parts(book.chapters(tmp_path))
    assert [p.stem for p in parts["welcome"]] == ["00_welcome"]
    assert [p.stem for p in parts["part1"]] == ["01_a", "02_b", "03_c", "04_d"]
    assert [p.stem for p in parts["part2"]] == ["05_e", "06_f", "07_g", "08_new"]
    assert book.part_caption("part2", parts["part2"]) == "Part 2 · Chapters 5-8"


def test_the_real_book_has_both_parts():
    parts = book.split_parts(book.chapters())
    assert [book.chapter_number(p) for p in parts["part1"]] == [1, 2, 3, 4]
    assert parts["part2"] and all(book.chapter_number(p) >= 5 for p in parts["part2"])


def test_headings_skip_code_fences():
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# Chapter 9 · Title\n\n## 1. First\n```\n## not a heading\n```"),
        nbformat.v4.new_code_cell("# ## a comment"),
        nbformat.v4.new_markdown_cell("## 2. Second"),
    ])
    assert book.headings(nb) == ("Chapter 9 · Title", ["1. First", "2. Second"])


# ============================================================================ equations
def test_display_equations_get_a_label_each_and_inline_math_none():
    src = ("Inline $x$ stays.\n\n$$a = b$$\n\ntext $$not on its own line$$ here\n\n"
           "$$c = d, \\qquad\ne = f$$\n")
    out, n = book.label_equations(src, chapter=3)
    assert n == 2
    assert "$$a = b$$ (eq-03-1)" in out
    assert "e = f$$ (eq-03-2)" in out
    assert "$$not on its own line$$ here" in out and "Inline $x$ stays." in out
    again, m = book.label_equations("$$g$$", chapter=3, start=n)
    assert (again, m) == ("$$g$$ (eq-03-3)", 3)


# ============================================================================ widgets
def _widget_output(text: str) -> dict:
    return nbformat.v4.new_output("display_data", data={book.WIDGET_MIME: {"model_id": "x", "version_major": 2,
                                                                            "version_minor": 0}, "text/plain": text})


def test_widgets_become_a_note_and_their_recorded_output():
    figure = nbformat.v4.new_output("display_data", data={"image/png": "iVBORw0KGgo=", "text/plain": "<Figure>"})
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# T"),
        nbformat.v4.new_code_cell("train()", outputs=[_widget_output("[progress: SFT, 120 steps]"),
                                                       nbformat.v4.new_output("stream", name="stdout", text="done\n")]),
        nbformat.v4.new_code_cell("lr_widget()", outputs=[_widget_output("VBox(children=(FloatLogSlider(...")]),
        nbformat.v4.new_code_cell("other_widget()", outputs=[_widget_output("VBox(children=(IntSlider(...")]),
    ])
    statics = {2: [book.WidgetStatic(controls=["learning rate = 0.003"], outputs=[figure], pressed=True)]}
    assert book.replace_widgets(nb, statics) == 2
    assert not any(book.WIDGET_MIME in o.get("data", {}) for c in nb.cells[1:] for o in c.outputs)
    assert nb.cells[1].outputs[0].text == "[progress: SFT, 120 steps]\n"
    note, fig = nb.cells[2].outputs
    assert "Interactive widget" in note.data["text/html"] and "learning rate = 0.003" in note.data["text/html"]
    assert "after pressing Run" in note.data["text/html"] and fig.data["image/png"] == "iVBORw0KGgo="
    (only,) = nb.cells[3].outputs                       # nothing recorded: the note alone
    assert "Run the chapter to see what it shows" in only.data["text/html"]


def test_executing_a_chapter_records_what_its_widgets_show(tmp_path):
    """A live widget and a Run-button widget, executed in a real kernel as ``make book`` does."""
    live = ("import ipywidgets as w\nslider = w.IntSlider(value=3, description='n')\n"
            "out = w.interactive_output(lambda n: print(f'value {n}'), {'n': slider})\nw.VBox([slider, out])")
    manual = ("button, box = w.Button(description='Run'), w.Output()\n"
              "def go(_):\n    with box:\n        print('pressed')\n"
              "button.on_click(go)\nw.VBox([button, box])")
    src = tmp_path / "09_demo.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# Demo"),
                                                   nbformat.v4.new_code_cell(live),
                                                   nbformat.v4.new_code_cell(manual)]), src)
    statics, errors = book.execute_for_widgets(src, cwd=tmp_path, timeout=120)
    assert errors == []
    (first,), (second,) = statics[1], statics[2]
    assert first.controls == ["n = 3"] and not first.pressed
    assert [o["text"] for o in first.outputs] == ["value 3\n"]
    assert second.pressed and [o["text"] for o in second.outputs] == ["pressed\n"]


def test_a_failing_cell_is_reported_and_the_widgets_after_it_still_recorded(tmp_path):
    src = tmp_path / "09_broken.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("import ipywidgets as w\nraise AttributeError('gone')"),
        nbformat.v4.new_code_cell("out = w.Output()\nwith out:\n    print('still here')\n"
                                  "w.VBox([w.IntSlider(description='k'), out])"),
    ]), src)
    statics, errors = book.execute_for_widgets(src, cwd=tmp_path, timeout=120)
    assert len(errors) == 1 and errors[0].startswith("cell 0: AttributeError: gone")
    assert statics[1][0].controls == ["k = 0"]


# ============================================================================ launch links
def test_launch_links_derive_from_the_one_repository_url():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert book.repository_url() == meta["urls"]["Repository"].rstrip("/")
    urls = book.launch_urls("05_ppo.ipynb", "https://github.com/acme/course")
    assert urls["binder"] == "https://mybinder.org/v2/gh/acme/course/main?urlpath=lab/tree/notebooks/05_ppo.ipynb"
    assert urls["colab"] == "https://colab.research.google.com/github/acme/course/blob/main/notebooks/05_ppo.ipynb"
    assert "colab-badge.svg" in book.launch_badges("05_ppo.ipynb", "https://github.com/acme/course")
    with pytest.raises(ValueError):
        book.launch_urls("05_ppo.ipynb", "https://example.org/course")


def test_a_chapter_gets_its_badges_under_the_title_once(tmp_path):
    src = tmp_path / "03_demo.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# Chapter 3 · Demo\n\nText.")]), src)
    nb = book.prepare_notebook(src, None, "https://github.com/acme/course")
    title, _, rest = nb.cells[0].source.partition("\n")
    assert title == "# Chapter 3 · Demo" and rest.count("mybinder.org/v2/gh/acme/course") == 1
    nbformat.write(nb, src)                              # a chapter that carries them already keeps one copy
    again = book.prepare_notebook(src, None, "https://github.com/acme/course")
    assert again.cells[0].source == nb.cells[0].source


def test_readme_carries_the_badges_built_from_pyproject():
    assert book.launch_badges() in (ROOT / "README.md").read_text(encoding="utf-8")


def test_every_chapter_opens_with_its_launch_links_and_the_colab_cell():
    """Under each chapter's title: its Binder and Colab badges; its first code cell: the Colab setup.
    Both come from the one repository URL in pyproject.toml (`python tools/book.py links NN` prints them)."""
    sources = sorted((ROOT / "notebooks" / "src").glob("[0-9][0-9]_*.py"))
    assert len(sources) == 9
    for src in sources:
        cells = nbtool.parse_source(src.read_text(encoding="utf-8"))
        first_markdown = next(c["source"] for c in cells if c["cell_type"] == "markdown")
        first_code = next(c["source"] for c in cells if c["cell_type"] == "code")
        assert book.launch_badges(src.stem + ".ipynb") in first_markdown.split("\n")[:4], src.name
        assert first_code.strip() == book.colab_setup_cell().strip(), src.name


def test_colab_cell_clones_the_repository_so_that_the_data_files_come_with_it():
    cell = book.colab_setup_cell("https://github.com/acme/course")
    compile(cell, "colab_cell", "exec")                 # plain Python: valid in a percent-format source
    assert '"clone", "--depth", "1", "https://github.com/acme/course", "/content/course"' in cell
    assert '"pip", "install", "--quiet", "-e", "/content/course"' in cell
    assert 'sys.path.insert(0, "/content/course")' in cell and '"google.colab" in sys.modules' in cell


def test_constraints_pin_the_book_and_browser_extras_inside_their_ranges():
    from packaging.requirements import Requirement

    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==")
            pins[name.strip().lower().replace("_", "-")] = version.strip()
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    for spec in extras["book"] + extras["browser"]:
        req = Requirement(spec)
        name = req.name.lower().replace("_", "-")
        assert name in pins, f"constraints.txt does not pin {name}"
        assert pins[name] in req.specifier, f"{name}=={pins[name]} is outside {req.specifier}"


# ============================================================================ the site
@pytest.mark.skipif(not HAS_SPHINX, reason="the book extra is not installed (make book installs it)")
def test_the_site_builds_from_the_executed_notebooks(tmp_path):
    summary = book.build(tmp_path, execute=False, pdf=False)
    html = tmp_path / "html"
    index = (html / "index.html").read_text(encoding="utf-8")
    parts = book.split_parts(book.chapters())
    for key in ("part1", "part2"):
        assert book.part_caption(key, parts[key]) in index
    for nb_path in NOTEBOOKS:
        page = (html / f"{nb_path.stem}.html").read_text(encoding="utf-8")
        nb = nbformat.read(nb_path, as_version=4)
        outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
        live = sum(book.WIDGET_MIME in o.get("data", {}) and not book.is_progress_bar(o) for o in outputs)
        figures = sum("image/png" in o.get("data", {}) for o in outputs)
        assert page.count("Interactive widget") == live, nb_path.name
        assert "widget-view+json" not in page, nb_path.name
        assert len(re.findall(r"<img [^>]*src=\"_images/", page)) >= figures, nb_path.name
        assert f"notebooks/{nb_path.name}" in page, nb_path.name          # its Binder / Colab links
        n = book.chapter_number(nb_path)
        equations = sum(book.label_equations(c.source, n)[1] for c in nb.cells if c.cell_type == "markdown")
        assert page.count('<span class="eqno">') == equations, nb_path.name
        if equations:
            assert f'<span class="eqno">({n}.1)' in page, nb_path.name
    assert summary["chapters"] == [p.name for p in NOTEBOOKS]


# ============================================================================ make test-browser's helpers
def test_browser_test_reads_the_widgets_warnings():
    text = "lr = 1\n⚠ The loss went far above the baseline.\n⚠ A learning rate of 0 ...\nsample: x"
    assert browser_test.warnings_in(text) == ["The loss went far above the baseline.", "A learning rate of 0 ..."]
    assert browser_test.warnings_in("no warning here") == []
    assert browser_test.NAN.search("loss nan") and not browser_test.NAN.search("nanmax, banana")


def test_browser_test_expects_every_widget_and_figure_of_the_saved_chapter():
    for nb_path in NOTEBOOKS:
        nb = nbformat.read(nb_path, as_version=4)
        outs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
        widgets, figures = browser_test.expected(nb_path)
        assert widgets == sum(book.WIDGET_MIME in o.get("data", {}) for o in outs)
        assert figures == sum(bool({"image/png", "image/svg+xml"} & set(o.get("data", {}))) for o in outs)
