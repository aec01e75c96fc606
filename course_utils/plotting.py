"""The look of every figure in the course, in one place.

Figures are read on laptops and projected in lecture halls, so fonts are large, lines are
thick and the palette is the Okabe-Ito set, which stays distinguishable for the common
forms of colour blindness (Okabe & Ito 2008). Change the style here and every chapter follows.

    from course_utils.plotting import use_course_style, COLORS, STAGE_COLORS
    use_course_style()
"""

from __future__ import annotations

import matplotlib as mpl
import numpy as np
from cycler import cycler

# Okabe-Ito palette, named.
COLORS: dict[str, str] = {
    "blue": "#0072B2",
    "orange": "#E69F00",
    "green": "#009E73",
    "vermillion": "#D55E00",
    "sky": "#56B4E9",
    "purple": "#CC79A7",
    "yellow": "#F0E442",
    "black": "#000000",
    "grey": "#999999",
}

# One colour per pipeline stage, used by every chapter that compares stages.
STAGE_COLORS: dict[str, str] = {
    "base": COLORS["grey"],
    "sft": COLORS["blue"],
    "reward": COLORS["orange"],
    "ppo": COLORS["green"],
    "reference": COLORS["black"],
    "hacked": COLORS["vermillion"],
}

GOOD, BAD, NEUTRAL = COLORS["green"], COLORS["vermillion"], COLORS["grey"]

STYLE: dict[str, object] = {
    "figure.figsize": (8.0, 4.5),
    "figure.dpi": 90,
    "savefig.dpi": 90,
    "figure.constrained_layout.use": True,
    "font.size": 13,
    "axes.titlesize": 15,
    "axes.labelsize": 13,
    "xtick.labelsize": 12,
    "ytick.labelsize": 12,
    "legend.fontsize": 12,
    "legend.frameon": False,
    "lines.linewidth": 2.2,
    "lines.markersize": 7,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.prop_cycle": cycler(color=[COLORS[k] for k in ("blue", "orange", "green", "vermillion", "sky", "purple",
                                                         "black")]),
    "image.cmap": "cividis",
}


def use_course_style() -> None:
    """Apply the course style to matplotlib (idempotent)."""
    mpl.rcParams.update(STYLE)


def smooth(values, window: int = 10):
    """Trailing moving average, for noisy training curves (same length as the input)."""
    values = np.asarray(values, dtype=float)
    if window <= 1 or len(values) == 0:
        return values
    c = np.cumsum(np.insert(values, 0, 0.0))
    out = np.empty_like(values)
    for i in range(len(values)):
        lo = max(0, i + 1 - window)
        out[i] = (c[i + 1] - c[lo]) / (i + 1 - lo)
    return out
