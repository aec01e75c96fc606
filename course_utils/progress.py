"""A progress bar for training loops, safe for notebooks that are compared by nbval.

In JupyterLab the bar moves and shows the current loss. What the notebook *saves* is only
the bar as it was when it was first displayed (a widget's later changes travel as comm
messages, not as cell output), and its plain-text form is a fixed sentence, so the saved
output never depends on timings. Outside a notebook (scripts, tests) the bar is silent,
unless ``Progress.terminal`` is set (``make checkpoints`` sets it): then a line with the steps
done, the time spent and the estimated time left goes to stderr every ``terminal_every`` seconds.

    with Progress(total=300, desc="pretraining") as bar:
        for step in range(300):
            ...
            bar.update(loss=loss)
"""

from __future__ import annotations

import sys
import time

from IPython import get_ipython
from IPython.display import display

from .deferred import deferred_import


def _in_notebook() -> bool:
    shell = get_ipython()
    return shell is not None and shell.__class__.__name__ == "ZMQInteractiveShell"


class Progress:
    """Progress bar with live metrics; silent outside notebooks.

    Parameters: ``total`` number of steps, ``desc`` a short label, ``every`` the minimum number
    of seconds between screen updates (updates are cheap, but thousands per second are not).
    """

    terminal: bool = False          # print progress lines to stderr outside notebooks
    terminal_every: float = 15.0    # seconds between two such lines

    def __init__(self, total: int, desc: str = "", every: float = 0.1, display: bool | None = None):
        self.total = int(total)
        self.desc = desc
        self.every = every
        self.n = 0
        self._last = 0.0
        self._start = time.perf_counter()
        self._printed = self._start
        self._quiet = display is False          # asked for no progress at all
        self._widget = None
        if display if display is not None else _in_notebook():
            self._widget = self._make_widget()

    def _make_widget(self):
        w = deferred_import("ipywidgets")
        desc, total = self.desc, self.total

        class _Bar(w.HBox):
            def __repr__(self) -> str:  # what the saved notebook and nbval see
                return f"[progress: {desc}, {total} steps]"

        self._bar = w.IntProgress(value=0, min=0, max=max(self.total, 1), description=self.desc,
                                  style={"description_width": "initial"})
        self._label = w.Label(value="")
        box = _Bar([self._bar, self._label])
        display(box)
        return box

    def update(self, n: int = 1, **metrics: float) -> None:
        """Advance by ``n`` steps and show ``metrics`` (e.g. ``loss=2.31``)."""
        self.n += n
        if self._widget is None:
            if Progress.terminal and not self._quiet:
                self._print_line(metrics)
            return
        now = time.perf_counter()
        if now - self._last >= self.every or self.n >= self.total:
            self._last = now
            self._bar.value = min(self.n, self.total)
            self._label.value = "  ".join(f"{k} {v:.3f}" for k, v in metrics.items())

    def _print_line(self, metrics: dict[str, float], final: bool = False) -> None:
        now = time.perf_counter()
        if not final and now - self._printed < Progress.terminal_every:
            return
        self._printed = now
        spent = now - self._start
        left = spent / self.n * max(self.total - self.n, 0) if self.n else float("nan")
        shown = "  ".join(f"{k} {v:.3f}" for k, v in metrics.items())
        print(f"  {self.desc or 'progress'}: {min(self.n, self.total)}/{self.total}  {_clock(spent)} spent, "
              f"~{_clock(left)} left  {shown}", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self._widget is not None:
            self._bar.value = min(self.n, self.total)
            self._bar.bar_style = "success"

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _clock(seconds: float) -> str:
    """``seconds`` as ``1m05s`` (``?`` when unknown)."""
    if seconds != seconds:
        return "?"
    m, s = divmod(int(round(seconds)), 60)
    return f"{m}m{s:02d}s"
