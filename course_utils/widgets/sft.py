"""Chapter 2, supervised fine-tuning: a fresh SFT run of the pretrained model, judged on held-out questions.

Widget: :func:`sft_widget` (learning rate, epochs, prompt masking and a Run button over
:func:`sft_view`).
"""

from __future__ import annotations

import warnings as _warnings

import numpy as np

from .. import judge
from ..training import SFTConfig, answer, response_loss, sft
from ._common import WIDE, _caught, _choice_slider, _deferred_import, _interactive, _log_values, _sanity


def sft_view(tok, base, demos: list[dict], held_out: list[dict], cases: list[dict], lr: float, epochs: int,
             mask_prompt: bool, seed: int = 0):
    """Fine-tune a copy of ``base`` with the chosen knobs; plot the loss; judge answers to ``held_out``.

    Returns (figure, text summary, warnings); a diverging run stops early with a warning.
    """
    plt = _deferred_import("matplotlib.pyplot")
    COLORS = _deferred_import("course_utils.plotting").COLORS

    notes: list[str] = []
    policy = base.copy()
    cfg = SFTConfig(epochs=max(int(epochs), 1), lr=float(lr), mask_prompt=bool(mask_prompt), seed=seed,
                    min_lr=min(float(lr) / 10, SFTConfig.min_lr))   # the cosine never rises above a tiny lr
    with _warnings.catch_warnings(record=True) as caught:
        _warnings.simplefilter("always")
        hist = sft(policy, tok, demos, cfg, progress=False)
    notes += _sanity("sft_lr", lr, steps=len(hist.log)) + _caught(caught)
    if lr <= 0:
        notes.append("A learning rate of 0 leaves the pretrained model unchanged.")
    log = hist.log[np.isfinite(hist.log.loss)]
    fig, ax = plt.subplots(figsize=(8, 3.8))
    ax.plot(log.step, log.loss, color=COLORS["blue"])
    if len(log) and log.loss.max() > 3 * max(log.loss.iloc[0], 1e-9):
        ax.set_ylim(0, 3 * log.loss.iloc[0])
        notes.append("The loss rose far above its starting value; the plot is clipped.")
    ax.set(xlabel="step", ylabel="SFT loss", title=f"lr = {lr:g}, {cfg.epochs} epochs, "
           f"{'masked prompt' if mask_prompt else 'whole sequence'}")
    if hist.diverged:
        return fig, "(no evaluation: the weights are no longer finite)", notes
    answers = answer(policy, tok, [h["prompt"] for h in held_out])
    verdicts = judge.judge_many(answers, cases)
    text = (f"held-out expert-answer loss {response_loss(policy, tok, held_out):.3f} "
            f"(before SFT {response_loss(base, tok, held_out):.3f}); judge on {len(held_out)} held-out questions: "
            f"overall {verdicts.overall.mean():.2f}, accuracy {verdicts.medical_accuracy.mean():.2f}, "
            f"humility {verdicts.humility.mean():.2f}\nexample: {answers[0]}")
    return fig, text, notes


def sft_widget(tok, base, demos: list[dict], held_out: list[dict], cases: list[dict]):
    """Learning rate, epochs and prompt masking for a fresh SFT run, started with a Run button."""
    w = _deferred_import("ipywidgets")

    controls = {
        "lr": _choice_slider(_log_values(1e-5, 1.0), SFTConfig.lr, "learning rate"),
        "epochs": w.IntSlider(value=3, min=1, max=20, description="epochs", style=WIDE),
        "mask_prompt": w.Checkbox(value=True, description="mask the prompt", style=WIDE),
    }
    return _interactive(lambda lr, epochs, mask_prompt: sft_view(tok, base, demos, held_out, cases, lr, epochs,
                                                                 mask_prompt), controls, manual=True)
