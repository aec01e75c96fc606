"""The one place the course defers an import: matplotlib and ipywidgets load on first use.

Every other module imports at its top. These two are deferred because most of the course's code
(training loops, the judge, the tests of the numerical core, ``make checkpoints``) never draws a
figure or a widget, and importing them costs about a second.
"""

from __future__ import annotations

import importlib
from types import ModuleType

#: The only modules imported on first use instead of at the top of a module: matplotlib
#: (``pyplot``, and the course's ``plotting``, which imports it) and ipywidgets.
DEFERRED = ("matplotlib.pyplot", "course_utils.plotting", "ipywidgets")


def deferred_import(name: str) -> ModuleType:
    """The module ``name`` (one of :data:`DEFERRED`), imported on first use, then from ``sys.modules``."""
    if name not in DEFERRED:
        raise ValueError(f"only {', '.join(DEFERRED)} are imported on first use, not {name!r}")
    return importlib.import_module(name)
