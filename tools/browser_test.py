"""Run every chapter of the book in a real browser: ``make test-browser`` runs this.

    python tools/browser_test.py            # every chapter (notebooks/NN_*.ipynb)
    python tools/browser_test.py 03 05      # only chapters whose file name starts with 03 or 05

Headless Chromium (Debian's ``chromium`` package, driven by playwright through
``executable_path``: no browser download) plays a student, chapter by chapter:

1. the book is copied into a fresh working copy, ``.browser-test/lab/``, by the code that fills
   ``lab/`` for ``make lab`` (your own ``lab/`` is never touched), and JupyterLab is started on it
   with the command line of ``make lab`` (tools/lab.py: 127.0.0.1, a token, ``--allow-root`` as
   root), with settings and workspaces of its own;
2. the chapter is opened, *Kernel → Restart Kernel and Run All Cells…*, and the test waits until
   the kernel has been busy and is idle again;
3. no output may be an error or stderr; every widget the saved chapter shows must be rendered
   (no "Error displaying widget", no text fallback such as ``IntSlider(value=...)``); every figure
   must be there and loaded; a screenshot of the chapter's first widget goes to
   ``.browser-test/screenshots/`` (``NN_*_first_widget.png``, and ``..._after.png`` once used);
4. the first live widget is used: its Run button pressed, or else its first slider moved one
   step, or else its list choice changed; its output must change. Every other Run button is
   pressed once too;
5. every slider named β, ε, K or "learning rate" is dragged to its minimum and to its maximum
   (then Run is pressed when the widget has one): the widget must print a warning (⚠) and no
   NaN and no traceback. The slider is then put back;
6. ``git status`` must be what it was before the run.

Results: a table on stdout and ``.browser-test/report.json``; the exit status is 1 when a
chapter has a problem. Each chapter takes 10-40 s to run in the browser, more with its
widgets' training runs.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterator

import nbformat

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
from lab import lab_command, prepare_working_copy  # noqa: E402

BOOK = ROOT / "notebooks"
OUT = ROOT / ".browser-test"
CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
KNOBS = ("β", "ε", "K", "learning rate")   # sliders whose two extremes must warn
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
VISIBLE = ".jp-NotebookPanel:not(.lm-mod-hidden)"
LIVE = ".jp-OutputArea-output:has(.widget-output)"      # a widget with an output area (not a progress bar)
RUN_ALL = "Restart Kernel and Run All Cells…"
NAN = re.compile(r"\bnan\b", re.I)
RUN_ALL_TIMEOUT = 900       # seconds for one chapter on a busy 2-core machine
ACTION_TIMEOUT = 600        # seconds for one widget computation (a short PPO run)
SETTINGS = {                # no news pop-up over the notebook, no update check (no network)
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings":
        {"fetchNews": "false", "checkForUpdates": False},
}


@dataclass
class Extreme:
    """One slider at one end of its range."""

    widget: int
    knob: str
    end: str
    readout: str
    warnings: list[str]
    nan: bool
    traceback: bool

    @property
    def ok(self) -> bool:
        return bool(self.warnings) and not self.nan and not self.traceback


@dataclass
class ChapterResult:
    chapter: str
    run_all_seconds: float = 0.0
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)
    widgets_expected: int = 0
    widgets_rendered: int = 0
    widget_failures: list[str] = field(default_factory=list)
    live_widgets: int = 0
    figures_expected: int = 0
    figures_rendered: int = 0
    figures_broken: int = 0
    interaction: str = ""
    changed: bool | None = None
    presses: list[str] = field(default_factory=list)
    extremes: list[Extreme] = field(default_factory=list)
    screenshot: str = ""
    console_errors: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


# ============================================================================ the saved chapter
def expected(nb_path: Path) -> tuple[int, int]:
    """(widget outputs, figures) that the saved chapter shows: a run must show at least as many."""
    nb = nbformat.read(nb_path, as_version=4)
    outs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    return (sum(WIDGET_MIME in o.get("data", {}) for o in outs),
            sum("image/png" in o.get("data", {}) or "image/svg+xml" in o.get("data", {}) for o in outs))


# ============================================================================ JupyterLab
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


@contextmanager
def jupyterlab(root: Path, home: Path) -> Iterator[tuple[str, str]]:
    """Start JupyterLab on ``root`` with the command of ``make lab``; yield (base URL, token)."""
    port, token = _free_port(), secrets.token_hex(16)
    for rel, values in SETTINGS.items():
        path = home / "settings" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values), encoding="utf-8")
    env = dict(os.environ, JUPYTER_RUNTIME_DIR=str(home / "runtime"), JUPYTERLAB_SETTINGS_DIR=str(home / "settings"),
               JUPYTERLAB_WORKSPACES_DIR=str(home / "workspaces"))
    log = (home / "jupyterlab.log").open("w")
    proc = subprocess.Popen(lab_command(port=port, token=token, open_browser=False, root=root),
                            stdout=log, stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while True:
            try:
                if _get(f"{base}/api/status?token={token}") == 200:
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"JupyterLab did not start; see {home / 'jupyterlab.log'}")
            time.sleep(0.5)
        yield base, token
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def shutdown_kernels(base: str, token: str) -> None:
    """End every session (and its kernel), so that chapters do not share the two cores."""
    with urllib.request.urlopen(f"{base}/api/sessions?token={token}", timeout=10) as r:
        sessions = json.load(r)
    for s in sessions:
        req = urllib.request.Request(f"{base}/api/sessions/{s['id']}?token={token}", method="DELETE")
        urllib.request.urlopen(req, timeout=30).close()


# ============================================================================ waiting
_OBSERVE = """() => {
  const el = document.querySelector('%s .jp-Notebook-ExecutionIndicator');
  window.__btLog = [];
  if (!el) return false;
  if (!window.__btObserver) {
    window.__btObserver = new MutationObserver(() => window.__btLog.push(el.getAttribute('data-status')));
    window.__btObserver.observe(el, {attributes: true, attributeFilter: ['data-status']});
  }
  return true;
}""" % VISIBLE

_STATE = """() => {
  const nb = document.querySelector('%s');
  const el = nb && nb.querySelector('.jp-Notebook-ExecutionIndicator');
  const running = nb ? [...nb.querySelectorAll('.jp-InputArea-prompt')].some(p => p.textContent.includes('*')) : true;
  return {status: el ? el.getAttribute('data-status') : null, running, log: window.__btLog || []};
}""" % VISIBLE


def watch(page) -> None:
    """Start recording the kernel status changes of the visible notebook."""
    if not page.evaluate(_OBSERVE):
        raise RuntimeError("no kernel status indicator in the notebook toolbar")


def settle(page, timeout: float, need_busy: bool = True, changed=None, quiet: float = 2.0) -> float:
    """Wait until the kernel was busy (or ``changed()`` is true) and is idle, with nothing running, for
    ``quiet`` seconds; returns the seconds waited. Without a sign of work after 15 s it returns too."""
    t0 = time.time()
    idle_since = None
    while time.time() - t0 < timeout:
        s = page.evaluate(_STATE)
        worked = any(x in ("busy", "restarting") for x in s["log"]) or (changed is not None and changed())
        if s["status"] == "idle" and not s["running"]:
            idle_since = idle_since or time.time()
            if time.time() - idle_since >= quiet and (worked or not need_busy or time.time() - t0 > 15):
                return time.time() - t0
        else:
            idle_since = None
        page.wait_for_timeout(250)
    raise TimeoutError(f"the kernel was not idle after {timeout:.0f} s")


# ============================================================================ one chapter
def kernel_state(base: str, token: str, name: str) -> str | None:
    """The execution state the server reports for the kernel of notebook ``name`` (None: no session yet)."""
    with urllib.request.urlopen(f"{base}/api/sessions?token={token}", timeout=10) as r:
        sessions = json.load(r)
    states = [s["kernel"]["execution_state"] for s in sessions if s.get("path", "").endswith(name) and s.get("kernel")]
    return states[0] if states else None


def open_chapter(page, base: str, token: str, name: str, timeout: float = 180) -> None:
    """Open ``name`` in a fresh workspace and wait until its kernel is started and idle.

    The toolbar's indicator says "idle" before the kernel exists, so the server's session list
    decides first, then the indicator must stay idle for two seconds."""
    url = f"{base}/lab/workspaces/bt-{name[:2]}-{secrets.token_hex(3)}/tree/{name}?token={token}&reset"
    page.goto(url)
    page.wait_for_selector(f"{VISIBLE} .jp-Cell", timeout=120_000)
    t0 = time.time()
    while kernel_state(base, token, name) != "idle":
        if time.time() - t0 > timeout:
            raise TimeoutError(f"the kernel of {name} did not start within {timeout:.0f} s")
        page.wait_for_timeout(500)
    watch(page)
    settle(page, timeout, need_busy=False)


def run_all(page) -> float:
    """Kernel → Restart Kernel and Run All Cells…, accept, and wait; returns the seconds it took."""
    watch(page)
    page.click(".lm-MenuBar-itemLabel:text-is('Kernel')")
    page.click(f".lm-Menu-itemLabel:text-is('{RUN_ALL}')")
    page.click(".jp-Dialog-button.jp-mod-accept")
    return settle(page, RUN_ALL_TIMEOUT)


_COUNT = """(nb) => {
  const all = [...nb.querySelectorAll('.jp-OutputArea-output')];
  const top = all.filter(o => !o.parentElement.closest('.jp-OutputArea-output'));
  const fallback =
    /^\\s*(?:[A-Z]\\w*(?:Box|Slider|Button|Output|Select\\w*|Dropdown|Checkbox|Progress)\\(|\\[progress:)/;
  const r = {errors: [], widgets: 0, rendered: 0, failures: [], live: 0, figures: 0, broken: 0};
  for (const o of nb.querySelectorAll('[data-mime-type="application/vnd.jupyter.stderr"], .jp-mod-error'))
    r.errors.push(o.textContent.slice(0, 400));
  for (const o of top) {
    const mime = o.getAttribute('data-mime-type') || '';
    const text = o.textContent || '';
    const widget = mime === 'application/vnd.jupyter.widget-view+json' || (!mime && (o.querySelector('.jupyter-widgets')
                   || text.includes('Error displaying widget')));  // JupyterLab 4 sets no mime type on a widget's panel
    if (widget) {
      r.widgets += 1;
      if (text.includes('Error displaying widget') || !o.querySelector('.jupyter-widgets'))
        r.failures.push(text.slice(0, 200) || '(empty widget output)');
      else r.rendered += 1;
      if (o.querySelector('.widget-output')) r.live += 1;
    } else if (mime === 'text/plain' && fallback.test(text)) {
      r.widgets += 1;
      r.failures.push('text fallback: ' + text.slice(0, 200));
    } else {
      for (const img of o.querySelectorAll('img')) {
        r.figures += 1;
        if (!img.complete || img.naturalWidth === 0) r.broken += 1;
      }
    }
  }
  if (nb.textContent.includes('Error displaying widget')) r.failures.push('"Error displaying widget" in the page');
  return r;
}"""


def check_outputs(page, result: ChapterResult) -> None:
    """Errors, stderr, widgets and figures of the visible notebook after Run All."""
    r = page.locator(VISIBLE).evaluate(_COUNT)
    result.errors = r["errors"]
    result.widgets_rendered, result.widget_failures, result.live_widgets = r["rendered"], r["failures"], r["live"]
    result.figures_rendered, result.figures_broken = r["figures"], r["broken"]
    if result.errors:
        result.problems.append(f"{len(result.errors)} error/stderr output(s): {result.errors[0][:200]!r}")
    if result.widget_failures or result.widgets_rendered < result.widgets_expected:
        result.problems.append(f"widgets rendered {result.widgets_rendered}/{result.widgets_expected}: "
                               f"{result.widget_failures[:2]}")
    if result.figures_rendered < result.figures_expected or result.figures_broken:
        result.problems.append(f"figures {result.figures_rendered}/{result.figures_expected}, "
                               f"{result.figures_broken} not loaded")


# ============================================================================ widgets
_SNAP = """(w) => {
  const out = w.querySelector('.widget-output');
  if (!out) return {text: '', imgs: [], stderr: 0};
  return {text: out.textContent,
          imgs: [...out.querySelectorAll('img')].map(i => i.src.length + ':' + i.src.slice(-96)),
          stderr: out.querySelectorAll('[data-mime-type="application/vnd.jupyter.stderr"]').length};
}"""


def snapshot(widget) -> dict:
    """What a widget's output area shows: its text, its images, its error outputs."""
    return widget.evaluate(_SNAP)


def warnings_in(text: str) -> list[str]:
    """The warnings a widget printed (``course_utils.widgets`` prints each as a line ``⚠ ...``)."""
    return [part.strip().splitlines()[0][:240] for part in text.split("⚠")[1:] if part.strip()]


def act(page, widget, action, timeout: float = ACTION_TIMEOUT) -> tuple[dict, dict]:
    """Do ``action()`` and wait for the kernel to finish what it started; returns (before, after)."""
    before = snapshot(widget)
    watch(page)
    action()
    settle(page, timeout, changed=lambda: snapshot(widget) != before)
    return before, snapshot(widget)


def sliders(widget) -> list[tuple[str, object]]:
    """(label, locator) of the widget's sliders, found by the label's textContent."""
    found = []
    all_sliders = widget.locator(".widget-slider")
    for i in range(all_sliders.count()):
        s = all_sliders.nth(i)
        found.append(((s.locator(".widget-label").first.text_content() or "").strip(), s))
    return found


def into_view(page, locator) -> None:
    """Scroll ``locator`` into view and again once the cells around it have rendered: JupyterLab
    renders off-screen cells lazily (CSS content-visibility), so the first scroll moves the layout."""
    for _ in range(2):
        locator.scroll_into_view_if_needed()
        page.wait_for_timeout(400)


def readout(slider) -> str:
    return (slider.locator(".widget-readout").first.text_content() or "").strip()


def _handle_x(page, slider) -> float:
    handle = slider.locator(".noUi-handle").first
    into_view(page, handle)
    box = handle.bounding_box()
    return box["x"] + box["width"] / 2


def drag(page, slider, end: str | None = None, x: float | None = None) -> str:
    """Drag the slider's handle 40 px past one end of its track (``end``) or to ``x``; returns the readout."""
    handle = slider.locator(".noUi-handle").first
    into_view(page, handle)
    hb, tb = handle.bounding_box(), slider.locator(".noUi-target").first.bounding_box()
    y, x0 = hb["y"] + hb["height"] / 2, hb["x"] + hb["width"] / 2
    if x is None:
        x = tb["x"] - 40 if end == "min" else tb["x"] + tb["width"] + 40
    page.mouse.move(x0, y)
    page.mouse.down()
    page.mouse.move(x, y, steps=12)
    page.mouse.up()
    page.wait_for_timeout(300)
    return readout(slider)


def type_readout(page, slider, text: str) -> str:
    """Type an exact value into the slider's readout; returns the readout afterwards."""
    slider.locator(".widget-readout").first.click()
    page.keyboard.press("Control+A")
    page.keyboard.type(text)
    page.keyboard.press("Enter")
    page.wait_for_timeout(300)
    return readout(slider)


def _run_button(widget):
    return widget.locator("button:has-text('Run')")


def interact(page, widget) -> tuple[str, bool]:
    """Use a live widget once: Run, else one slider step, else another list choice. Returns (what, changed)."""
    if _run_button(widget).count():
        before, after = act(page, widget, lambda: _run_button(widget).first.click())
        return "pressed Run", after != before
    found = sliders(widget)
    if found:
        label, slider = found[0]
        old = readout(slider)

        def step():
            handle = slider.locator(".noUi-handle").first
            handle.focus()
            handle.press("ArrowRight")
            page.wait_for_timeout(200)
            if readout(slider) == old:          # already at its maximum
                handle.press("ArrowLeft")
                handle.press("ArrowLeft")

        before, after = act(page, widget, step)
        return f"moved slider '{label}' {old} → {readout(slider)}", after != before
    multi = widget.locator("select[multiple]")
    if multi.count():
        values = multi.first.evaluate("s => [...s.options].map(o => o.value)")
        before, after = act(page, widget, lambda: multi.first.select_option(values[:1]))
        return f"chose 1 of {len(values)} in a multiple-choice list", after != before
    select = widget.locator("select")
    if select.count():
        values = select.first.evaluate("s => [...s.options].map(o => o.value)")
        before, after = act(page, widget, lambda: select.first.select_option(values[-1]))
        return "chose another entry of a drop-down list", after != before
    return "nothing to move (no Run button, slider or list)", False


def try_extremes(page, widget, index: int, result: ChapterResult) -> bool:
    """Both ends of every β/ε/K/learning-rate slider of one widget; returns whether Run was pressed."""
    manual, pressed = _run_button(widget).count() > 0, False
    for label, slider in sliders(widget):
        if label not in KNOBS:
            continue
        original, x0 = readout(slider), _handle_x(page, slider)
        for end in ("min", "max"):
            value = {}

            def move():
                value["readout"] = drag(page, slider, end=end)
                if manual:
                    _run_button(widget).first.click()

            _, after = act(page, widget, move)
            pressed |= manual
            text = after["text"]
            result.extremes.append(Extreme(index, label, end, value["readout"], warnings_in(text),
                                           bool(NAN.search(text)), after["stderr"] > 0 or "Traceback" in text))
        watch(page)
        if drag(page, slider, x=x0) != original and type_readout(page, slider, original) != original:
            result.problems.append(f"widget {index}: could not put slider '{label}' back to {original}")
        settle(page, ACTION_TIMEOUT, need_busy=False)
    return pressed


def use_widgets(page, result: ChapterResult, shots: Path) -> None:
    """Screenshot, one interaction, the extremes and every Run button of the chapter's live widgets."""
    nb = page.locator(VISIBLE)
    live = nb.locator(LIVE)
    n = live.count()
    first = live.first if n else nb.locator(".jp-OutputArea-output:has(.jupyter-widgets)").first
    if n or result.widgets_rendered:
        path = shots / f"{Path(result.chapter).stem}_first_widget.png"
        into_view(page, first)
        first.screenshot(path=str(path))
        result.screenshot = str(path.relative_to(ROOT))
    if not n:
        result.interaction = "no live widget in this chapter"
        result.problems.append("no live widget to move or run")
        return
    result.interaction, result.changed = interact(page, live.first)
    into_view(page, live.first)
    live.first.screenshot(path=str(shots / f"{Path(result.chapter).stem}_first_widget_after.png"))
    if not result.changed:
        result.problems.append(f"first widget: {result.interaction}, but its output did not change")
    pressed = {0} if result.interaction == "pressed Run" else set()
    for i in range(n):
        if try_extremes(page, live.nth(i), i, result):
            pressed.add(i)
    for i in range(n):
        widget = live.nth(i)
        if i in pressed or not _run_button(widget).count():
            continue
        before, after = act(page, widget, lambda: _run_button(widget).first.click())
        bad = after["stderr"] > 0 or "Traceback" in after["text"] or NAN.search(after["text"])
        result.presses.append(f"widget {i}: pressed Run, output {'changed' if after != before else 'UNCHANGED'}"
                              + (", with an error or NaN" if bad else ""))
        if bad or after == before:
            result.problems.append(result.presses[-1])
    for e in result.extremes:
        if not e.ok:
            what = (("no warning" if not e.warnings else "") + (", NaN" if e.nan else "")
                    + (", traceback" if e.traceback else ""))
            result.problems.append(f"widget {e.widget}: {e.knob} at its {e.end} ({e.readout}): {what.strip(', ')}")


# ============================================================================ the run
def test_chapter(browser, base: str, token: str, nb_path: Path, shots: Path) -> ChapterResult:
    """Run one chapter in a fresh browser tab and check it (see the module docstring)."""
    result = ChapterResult(nb_path.name)
    result.widgets_expected, result.figures_expected = expected(nb_path)
    t0 = time.time()
    context = browser.new_context(viewport={"width": 1600, "height": 1000})
    page = context.new_page()
    page.on("console", lambda m: m.type == "error" and result.console_errors.append(m.text[:300]))
    try:
        open_chapter(page, base, token, nb_path.name)
        result.run_all_seconds = round(run_all(page), 1)
        check_outputs(page, result)
        use_widgets(page, result, shots)
    except Exception as err:  # noqa: BLE001 - a failing chapter is reported, the others still run
        result.problems.append(f"{type(err).__name__}: {str(err).splitlines()[0][:400]}")
        try:
            page.screenshot(path=str(shots / f"{nb_path.stem}_failure.png"))
        except Exception:  # noqa: BLE001
            pass
    finally:
        context.close()
        shutdown_kernels(base, token)
    result.seconds = round(time.time() - t0, 1)
    return result


def git_status() -> str:
    return subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True).stdout


def print_report(results: list[ChapterResult]) -> None:
    """One line per chapter, then the interactions, the extremes and the problems."""
    print(f"\n{'chapter':<24}{'run all':>8}{'total':>7}{'errors':>7}{'widgets':>9}{'figures':>9}  first widget")
    for r in results:
        changed = {True: "output changed", False: "OUTPUT UNCHANGED", None: "-"}[r.changed]
        print(f"{r.chapter:<24}{r.run_all_seconds:>7.0f}s{r.seconds:>6.0f}s{len(r.errors):>7}"
              f"{r.widgets_rendered:>5}/{r.widgets_expected:<3}{r.figures_rendered:>5}/{r.figures_expected:<3}"
              f"  {r.interaction}: {changed}")
    for r in results:
        for p in r.presses:
            print(f"  {r.chapter}: {p}")
        for e in r.extremes:
            shown = "; ".join(e.warnings) if e.warnings else "NO WARNING"
            flags = (" NaN" if e.nan else "") + (" TRACEBACK" if e.traceback else "")
            print(f"  {r.chapter}: widget {e.widget} {e.knob} = {e.readout} ({e.end}){flags}: {shown[:300]}")
    bad = [r for r in results if r.problems]
    print(f"\n{len(results) - len(bad)} passed, {len(bad)} failed")
    for r in bad:
        for p in r.problems:
            print(f"FAIL {r.chapter}: {p}")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("chapters", nargs="*", help="chapter numbers (file-name prefixes); all when empty")
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.exists():
        raise SystemExit(f"{CHROMIUM} not found: apt-get install chromium (make test-browser does it as root)")
    chosen = [p for p in sorted(BOOK.glob("[0-9][0-9]_*.ipynb"))
              if not args.chapters or any(p.name.startswith(c) for c in args.chapters)]
    if not chosen:
        raise SystemExit(f"no chapter matches {' '.join(args.chapters)}")
    status_before = git_status()
    work, shots = OUT / "lab", OUT / "screenshots"
    shutil.rmtree(work, ignore_errors=True)
    shots.mkdir(parents=True, exist_ok=True)
    prepare_working_copy(BOOK, work)
    results: list[ChapterResult] = []
    with jupyterlab(work, OUT) as (base, token), sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                    args=["--no-sandbox", "--disable-dev-shm-usage"])
        try:
            for nb_path in chosen:
                print(f"{nb_path.name} ...", flush=True)
                results.append(test_chapter(browser, base, token, work / nb_path.name, shots))
                r = results[-1]
                print(f"{nb_path.name}: {'ok' if not r.problems else 'FAILED'} in {r.seconds:.0f} s", flush=True)
        finally:
            browser.close()
    status_after = git_status()
    if status_after != status_before:
        changed = sorted(set(status_before.splitlines()) ^ set(status_after.splitlines()))
        results[-1].problems.append("git status changed during the run: " + "; ".join(changed))
    (OUT / "report.json").write_text(json.dumps([asdict(r) for r in results], indent=1, ensure_ascii=False) + "\n",
                                     encoding="utf-8")
    print_report(results)
    return 1 if any(r.problems for r in results) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
