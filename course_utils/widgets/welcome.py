"""Chapter 0, welcome: the temperature of next-word sampling.

Widget: :func:`temperature_widget` (a temperature slider over fixed next-word scores), with its
view :func:`temperature_view` and :func:`softmax_with_temperature`, which chapter 1 uses too.
"""

from __future__ import annotations

import numpy as np

from ._common import WIDE, _deferred_import, _interactive


def softmax_with_temperature(logits: np.ndarray, temperature: float) -> np.ndarray:
    """p_i = exp(z_i/τ) / Σ_j exp(z_j/τ); τ = 0 is greedy decoding (all mass on the largest z_i)."""
    z = np.asarray(logits, dtype=float)
    if temperature <= 1e-8:
        p = (z == z.max()).astype(float)
        return p / p.sum()
    z = (z - z.max()) / temperature
    p = np.exp(z)
    return p / p.sum()


def temperature_view(words: list[str], logits: np.ndarray, temperature: float, prompt: str = "") -> str:
    """A text bar chart of the next-word distribution at ``temperature``."""
    p = softmax_with_temperature(logits, temperature)
    lines = [prompt] if prompt else []
    lines += [f"  {w:<12} {'█' * int(round(40 * pi)):<40} {pi:.2f}" for w, pi in zip(words, p)]
    return "\n".join(lines)


def temperature_widget(words: list[str], logits: np.ndarray, prompt: str = ""):
    """A temperature slider over a fixed set of next-word scores."""
    w = _deferred_import("ipywidgets")

    slider = w.FloatSlider(value=1.0, min=0.0, max=3.0, step=0.1, description="temperature", style=WIDE)
    return _interactive(lambda temperature: temperature_view(words, logits, temperature, prompt),
                        {"temperature": slider})
