"""Chapter 3, the reward model: the Bradley-Terry loss with a margin, and the learning rate of a training run.

Widgets: :func:`bt_margin_widget` (the margin m over :func:`bt_margin_view`, with
:func:`bt_curves`) and :func:`reward_lr_widget` (a learning rate and a Run button over
:func:`reward_lr_view`).
"""

from __future__ import annotations

import warnings as _warnings

import numpy as np

from ..reward import DEFAULT_CONFIG, RewardConfig, RewardModel, evaluate_pairs, train_reward_model
from ._common import WIDE, _caught, _choice_slider, _deferred_import, _interactive, _log_values, _sanity


def bt_curves(delta: np.ndarray, margin: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """The Bradley-Terry loss of one pair and its gradient, as functions of Δ = r_c - r_r.

    loss(Δ) = -log σ(Δ - m) = softplus(m - Δ);  ∂loss/∂r_c = -σ(m - Δ) = -(1 - σ(Δ - m))
    (and ∂loss/∂r_r = +σ(m - Δ)). Finite for any Δ and m.
    """
    u = np.asarray(delta, dtype=np.float64) - float(margin)
    loss = np.logaddexp(0.0, -u)
    grad = -np.exp(-np.logaddexp(0.0, u))       # -σ(-u), without overflow
    return loss, grad


def bt_margin_view(margin: float = 0.0, delta_range: float = 8.0):
    """Loss -log σ(Δ - m) and gradient ∂L/∂r_c = -σ(m - Δ) against Δ = r_c - r_r, for margin m.

    The m = 0 curves are drawn in grey for comparison. Returns ``(fig, text, warnings)``: the
    text gives the loss and gradient of a tied pair (Δ = 0) and the Δ a pair needs before its
    gradient falls below 0.01 (Δ = m + ln 99 ≈ m + 4.6); the warnings explain a negative or a
    large margin. Lines carry gids ``"loss"``, ``"grad"``, ``"loss0"``, ``"grad0"``.
    """
    plt = _deferred_import("matplotlib.pyplot")
    COLORS = _deferred_import("course_utils.plotting").COLORS

    m = float(margin)
    if not np.isfinite(m):
        raise ValueError(f"margin must be a finite number, got {margin!r}")
    warnings: list[str] = []
    if m < 0:
        warnings.append(f"m = {m:g} < 0: the loss is already small when the rejected answer scores up to "
                        f"{-m:g} higher, so a wrongly ranked pair barely pushes back. Margins are meant to be >= 0.")
    if m > 4:
        warnings.append(f"m = {m:g} is large compared with typical reward gaps of a few units: almost every "
                        "pair stays short of the margin, so every pair keeps pulling at full strength "
                        "and the rewards are pushed apart without end (their scale grows, nothing more is learned).")
    half = max(float(delta_range), abs(m) + 4.0)
    delta = np.linspace(-half, half, 401)
    loss, grad = bt_curves(delta, m)
    loss0, grad0 = bt_curves(delta, 0.0)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
    ax1.plot(delta, loss0, color=COLORS["grey"], ls="--", label="m = 0", gid="loss0")
    ax1.plot(delta, loss, color=COLORS["blue"], label=f"m = {m:g}", gid="loss")
    ax1.axvline(m, color=COLORS["vermillion"], lw=1, alpha=0.7)
    ax1.set(xlabel=r"$\Delta = r_c - r_r$", ylabel=r"loss $-\log\sigma(\Delta - m)$", title="Loss of one pair")
    ax1.legend()
    ax2.plot(delta, grad0, color=COLORS["grey"], ls="--", label="m = 0", gid="grad0")
    ax2.plot(delta, grad, color=COLORS["orange"], label=f"m = {m:g}", gid="grad")
    ax2.axvline(m, color=COLORS["vermillion"], lw=1, alpha=0.7)
    ax2.set_ylim(-1.05, 0.05)
    ax2.set(xlabel=r"$\Delta = r_c - r_r$", ylabel=r"$\partial L / \partial r_c$",
            title="Gradient on the chosen reward")
    ax2.legend()
    l0, g0 = bt_curves(np.array([0.0]), m)
    text = (f"m = {m:g}: a tied pair (Δ = 0) has loss {l0[0]:.3f} and gradient {g0[0]:.3f}; "
            f"the gradient falls below 0.01 in size once Δ > m + ln 99 = {m + np.log(99):.2f}.")
    return fig, text, warnings


def bt_margin_widget():
    """A slider for the margin m over :func:`bt_margin_view`."""
    w = _deferred_import("ipywidgets")

    slider = w.FloatSlider(value=0.0, min=-2.0, max=8.0, step=0.25, description="margin m",
                           continuous_update=False, style=WIDE)
    return _interactive(lambda margin: bt_margin_view(margin), {"margin": slider})


def reward_lr_view(tok, sft, train_pairs, test_pairs, lr: float, epochs: int | None = None,
                   batch_size: int | None = None, margin: float = 0.0, seed: int = 0):
    """Train a reward model from ``sft`` for ``epochs`` at peak learning rate ``lr``; plot and report.

    Every other knob is the chapter's default (``reward.DEFAULT_CONFIG``), so the default
    learning rate repeats the chapter's run.

    Left: the training loss per step (and held-out loss every few steps); right: the batch
    accuracy and the held-out accuracy. Returns ``(fig, text, warnings)``; the text gives the
    held-out accuracy with its 95% Wilson interval. A diverging run stops with a warning and
    the plot shows the steps that ran (never NaN); a huge loss is clipped in the plot, with a
    warning. Lines carry gids ``"train_loss"``, ``"eval_loss"``, ``"train_acc"``, ``"eval_acc"``.
    """
    plt = _deferred_import("matplotlib.pyplot")
    COLORS = _deferred_import("course_utils.plotting").COLORS

    epochs = DEFAULT_CONFIG.epochs if epochs is None else int(epochs)
    batch_size = DEFAULT_CONFIG.batch_size if batch_size is None else int(batch_size)
    lr = float(lr)
    if not (np.isfinite(lr) and lr >= 0):
        raise ValueError(f"lr must be a number >= 0, got {lr!r}")
    notes: list[str] = []
    rm = RewardModel(sft.copy(), seed=seed)
    n_batches = int(np.ceil(len(train_pairs) / batch_size))
    with _warnings.catch_warnings(record=True) as caught:
        _warnings.simplefilter("always")
        cfg = RewardConfig(epochs=epochs, batch_size=batch_size, lr=lr, margin=margin, seed=seed)
        hist = train_reward_model(rm, tok, train_pairs, cfg, progress=False, eval_pairs=test_pairs,
                                  eval_every=max(1, n_batches // 4))
    notes += _sanity("reward_lr", lr, steps=epochs * n_batches, default=DEFAULT_CONFIG.lr) + _caught(caught)
    if lr == 0:
        notes.append("A learning rate of 0 never changes the weights: the reward model stays as it started.")
    log = hist.log
    ran = log[np.isfinite(log["loss"])]
    ev_rows = log.dropna(subset=["eval_accuracy"])
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
    ax1.plot(ran.step, ran.loss, color=COLORS["blue"], label="train (batch)", gid="train_loss")
    if len(ev_rows):
        ax1.plot(ev_rows.step, ev_rows.eval_loss, "o-", color=COLORS["vermillion"], label="held-out", gid="eval_loss")
    ax1.axhline(np.log(2), color=COLORS["grey"], ls="--", label="chance, ln 2")
    top = 3.0
    shown = np.concatenate([ran.loss.to_numpy(), ev_rows.eval_loss.to_numpy()])
    if shown.size and np.nanmax(shown) > top:
        ax1.set_ylim(0, top)
        notes.append(f"The loss reached {np.nanmax(shown):.3g}, far above chance (ln 2 = 0.69): the plot is "
                     f"clipped at {top:g}.")
    ax1.set(xlabel="step", ylabel="Bradley-Terry loss", title=f"lr = {lr:g}, {len(ran)} of {len(log)} steps")
    ax1.legend()
    ax2.plot(ran.step, ran.accuracy, color=COLORS["sky"], label="train (batch)", gid="train_acc")
    if len(ev_rows):
        ax2.plot(ev_rows.step, ev_rows.eval_accuracy, "o-", color=COLORS["vermillion"], label="held-out",
                 gid="eval_acc")
    ax2.axhline(0.5, color=COLORS["grey"], ls="--", label="chance")
    ax2.set_ylim(0, 1.02)
    ax2.set(xlabel="step", ylabel=r"accuracy ($r_c > r_r$)", title="Ranking accuracy")
    ax2.legend(loc="lower right")
    if hist.diverged:
        text = "(no held-out accuracy: the weights are no longer finite)"
    else:
        ev = evaluate_pairs(rm, tok, test_pairs)
        text = (f"held-out accuracy {ev['accuracy']:.3f} ({ev['correct']}/{ev['n']}), 95% interval "
                f"[{ev['ci_low']:.2f}, {ev['ci_high']:.2f}]; held-out loss {ev['loss']:.3f}")
        if ev["ci_high"] < 0.5:
            notes.append("The held-out accuracy is below chance: this reward model ranks most pairs backwards.")
        elif ev["ci_low"] <= 0.5:
            notes.append("The held-out accuracy is not distinguishable from chance (0.5 lies inside its 95% interval).")
    return fig, text, notes


def reward_lr_widget(tok, sft, train_pairs, test_pairs, seed: int = 0):
    """A learning-rate slider and a Run button that re-trains the reward model from ``sft`` (a few seconds)."""
    controls = {"lr": _choice_slider(_log_values(1e-5, 10.0), DEFAULT_CONFIG.lr, "learning rate")}
    return _interactive(lambda lr: reward_lr_view(tok, sft, train_pairs, test_pairs, lr, seed=seed), controls,
                        manual=True)
