"""Chapter 1, pretraining: a short pretraining run of a fresh TinyGPT.

Widget: :func:`pretraining_widget` (learning rate, steps, temperature and a Run button over
:func:`pretraining_view`).
"""

from __future__ import annotations

import warnings as _warnings

import numpy as np

from ..training import PretrainConfig, new_model, pretrain
from ._common import WIDE, _caught, _choice_slider, _deferred_import, _interactive, _log_values, _sanity


def pretraining_view(tok, train_ids: np.ndarray, val_ids: np.ndarray, lr: float, steps: int,
                     temperature: float, prompt: str = "Signs of lithium toxicity include", seed: int = 0):
    """Train a fresh TinyGPT for ``steps`` steps at peak learning rate ``lr``; plot the losses, sample once.

    Returns (figure, sample text, warnings). A diverging run stops early with a warning
    and the plot shows the steps that ran, never NaNs.
    """
    plt = _deferred_import("matplotlib.pyplot")
    COLORS = _deferred_import("course_utils.plotting").COLORS

    notes: list[str] = []
    steps = max(int(steps), 1)
    model = new_model(tok, seed=seed)
    cfg = PretrainConfig(steps=steps, lr=float(lr), warmup=max(1, steps // 10), min_lr=float(lr) / 10,
                         eval_every=max(1, steps // 5), eval_batches=2, seed=seed)
    with _warnings.catch_warnings(record=True) as caught:
        _warnings.simplefilter("always")
        hist = pretrain(model, train_ids, val_ids, cfg, progress=False)
    notes += _sanity("pretrain_lr", lr, steps=steps) + _caught(caught)
    if lr <= 0:
        notes.append("A learning rate of 0 never changes the weights: the loss stays at the uniform baseline.")
    log = hist.log
    finite = log[np.isfinite(log.train_loss)]
    val = finite.dropna(subset=["val_loss"])
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.plot(finite.step, finite.train_loss, color=COLORS["blue"], label="train")
    if len(val):
        ax.plot(val.step, val.val_loss, "o-", color=COLORS["vermillion"], label="validation")
    ax.axhline(np.log(tok.vocab_size), color=COLORS["grey"], ls="--", label="ln V")
    top = np.log(tok.vocab_size) * 1.5
    if len(finite) and finite.train_loss.max() > top:
        ax.set_ylim(0, top)
        notes.append("The loss went far above the uniform baseline; the plot is clipped at 1.5 ln V.")
    ax.set(xlabel="step", ylabel="cross-entropy", title=f"lr = {lr:g}, {len(log)} of {steps} steps")
    ax.legend()
    if hist.diverged:
        text = "(no sample: the weights are no longer finite)"
    else:
        ids = [tok.bos_id] + tok.encode(prompt)
        new = model.generate(np.asarray([ids]), 30, temperature=float(temperature),
                             rng=np.random.default_rng(seed), stop_id=tok.eos_id)
        out = [int(i) for i in np.asarray(new)[0] if i not in (tok.pad_id, tok.eos_id)]
        text = f"sample at temperature {temperature:.1f}: {prompt} {tok.decode(out)}"
    return fig, text, notes


def pretraining_widget(tok, train_ids: np.ndarray, val_ids: np.ndarray,
                       prompt: str = "Signs of lithium toxicity include"):
    """Sliders for learning rate, steps and temperature, and a Run button that re-runs a short pretraining."""
    w = _deferred_import("ipywidgets")

    controls = {
        "lr": _choice_slider(_log_values(1e-5, 1.0), PretrainConfig.lr, "learning rate"),
        "steps": w.IntSlider(value=100, min=10, max=300, step=10, description="steps", continuous_update=False,
                             style=WIDE),
        "temperature": w.FloatSlider(value=0.8, min=0.0, max=2.0, step=0.1, description="temperature",
                                     continuous_update=False, style=WIDE),
    }
    return _interactive(lambda lr, steps, temperature: pretraining_view(tok, train_ids, val_ids, lr, steps,
                                                                        temperature, prompt), controls, manual=True)
