"""The course's interactive widgets: thin ipywidgets wrappers around the numerical core.

Every widget follows one pattern, so its logic is testable without a browser:

1. a plain function ``*_view(**knobs) -> (fig_or_text, warnings)`` computes and draws one state
   (tests call it directly, including at extreme knob values: β = 0, ε = 0, huge learning rates);
2. a builder ``*_widget()`` creates the sliders, wires them to the view with
   ``interactive_output``, displays nothing itself and returns the box for the cell to show.

A widget cell executes headless (nbval, papermill) without blocking: build, display, return.
One section per chapter below.
"""

from __future__ import annotations

import numpy as np


def _interactive(view, controls: dict, layout: str = "vbox"):
    """Wire ``controls`` (name -> widget) to ``view(**values)`` and return a box with both."""
    import ipywidgets as w
    import matplotlib.pyplot as plt
    from IPython.display import display

    def _show(**kwargs):
        result = view(**kwargs)
        items = result if isinstance(result, tuple) else (result,)
        for item in items:
            if item is None:
                continue
            if hasattr(item, "savefig"):
                display(item)
                plt.close(item)
            elif isinstance(item, (list, tuple)):
                for msg in item:
                    print(f"⚠ {msg}")
            else:
                print(item)

    out = w.interactive_output(_show, controls)
    box = w.HBox if layout == "hbox" else w.VBox
    return box([w.HBox(list(controls.values())), out])


# ============================================================================ welcome
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
    import ipywidgets as w

    slider = w.FloatSlider(value=1.0, min=0.0, max=3.0, step=0.1, description="temperature")
    return _interactive(lambda temperature: temperature_view(words, logits, temperature, prompt),
                        {"temperature": slider})
