"""Chapter 6, challenges: reward hacking along cached PPO runs, and reward models trained on noisy labels.

Widgets: :func:`hacking_curves_widget` (β and run length over :func:`hacking_curves_view`, cached
runs) and :func:`noise_rate_widget` (flip rate, labelling method and a Run button over
:func:`noise_rate_view`).
"""

from __future__ import annotations

import numpy as np

from ..challenges import _orient, fit_gao, gao_curve, gao_peak, noisy_labels
from ..runtime import single_threaded_blas
from ..reward import RewardConfig, RewardModel, evaluate_pairs, train_reward_model
from ._common import WIDE, _choice_slider, _deferred_import, _interactive, _sanity


def hacking_curves_view(results: dict, beta: float, iterations: int):
    """Proxy and gold score against d = √KL for one cached PPO run, up to ``iterations``.

    ``results``: the chapter-6 tables (``challenges.load_experiments_cache()``); the run is the one
    that optimised the single reward model at β = ``beta`` (``hacking_curves``). Left: the
    reward-model score (the proxy, gid ``"proxy"``) against d; right: the gold judge (gid
    ``"gold"``) and the Gao et al. (2022) form R(d) = d (a - b log d) refitted to the gold
    gain of the checkpoints shown (gid ``"gao"``). Returns ``(fig, text, warnings)``; the text
    lists the checkpoints shown and the fit, the warnings say when the fit has too few
    points, when the run stopped early, and when the gold score has fallen below the SFT
    policy's.
    """
    plt = _deferred_import("matplotlib.pyplot")
    COLORS = _deferred_import("course_utils.plotting").COLORS

    curves = results["hacking_curves"]
    runs = curves[curves.optimised == "reward model"]
    betas = np.sort(runs.beta.unique())
    if not len(betas):
        raise ValueError("no single-reward-model runs in the results")
    b = float(betas[np.argmin(np.abs(np.log(betas) - np.log(max(float(beta), 1e-12))))])
    notes = _sanity("ppo_beta", b)
    if not np.isclose(b, beta, rtol=1e-6):
        notes.append(f"no cached run at β = {beta:g}; showing the nearest, β = {b:g}.")
    run = runs[np.isclose(runs.beta, b)].sort_values("iteration")
    shown = run[run.iteration <= int(iterations)]
    if len(shown) == 0:
        shown = run.iloc[:1]
    last = int(run.iteration.max())
    if int(iterations) > last:
        notes.append(f"the run at β = {b:g} has checkpoints up to iteration {last} (it stopped there, or "
                     "that was its length); the rest of the slider shows nothing new.")
    g0, p0 = float(run.gold.iloc[0]), float(run.proxy.iloc[0])
    d, gold, proxy = shown.d.to_numpy(), shown.gold.to_numpy(), shown.proxy.to_numpy()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12.0, 4.4))
    ax1.plot(d, proxy, "o-", color=COLORS["orange"], gid="proxy", label="reward model (proxy)")
    ax1.axhline(p0, color=COLORS["grey"], ls="--", lw=1.2, label="SFT policy")
    ax1.set(xlabel=r"$d = \sqrt{\mathrm{KL}(\pi \,\|\, \pi_{ref})}$", ylabel="reward-model score",
            title="What PPO optimises")
    ax1.legend(loc="lower right")
    ax2.plot(d, gold, "s-", color=COLORS["green"], gid="gold", label="gold judge")
    ax2.axhline(g0, color=COLORS["grey"], ls="--", lw=1.2, label="SFT policy")
    fit_text = "fit: needs at least two checkpoints after iteration 0"
    if (d > 0).sum() >= 2:
        a, bb = fit_gao(d, gold - g0)
        grid = np.linspace(0.0, max(float(d.max()), 1e-6), 200)
        ax2.plot(grid, g0 + gao_curve(grid, a, bb), ":", color=COLORS["black"], gid="gao",
                 label=r"Gao fit $d\,(a - b \log d)$")
        d_star, r_star = gao_peak(a, bb)
        fit_text = (f"Gao fit on {int((d > 0).sum())} checkpoints: a = {a:.4f}, b = {bb:.4f}; "
                    + (f"peak at d* = {d_star:.2f} (gain {r_star:+.3f})" if np.isfinite(d_star) else
                       "no peak (b ≤ 0: the fitted curve never turns down)"))
        if (d > 0).sum() < 4:
            notes.append("fewer than four checkpoints: the fit has almost as many parameters as points.")
    else:
        notes.append("the Gao fit needs at least two checkpoints after iteration 0: move the slider right.")
    ax2.set(xlabel=r"$d = \sqrt{\mathrm{KL}}$", ylabel="gold judge (overall, 0-1)", title="What we wanted")
    ax2.legend(loc="lower left")
    fig.suptitle(f"PPO at β = {b:g}: checkpoints up to iteration {int(shown.iteration.max())}")
    if gold[-1] < g0:
        notes.append(f"at iteration {int(shown.iteration.iloc[-1])} the gold score ({gold[-1]:.3f}) is below the SFT "
                     f"policy's ({g0:.3f}) while the proxy is {proxy[-1] - p0:+.2f} above it: reward hacking.")
    lines = [f"{'iteration':>9} {'KL':>7} {'d':>6} {'proxy':>7} {'gold':>6}"]
    lines += [f"{int(r.iteration):>9} {r.kl:>7.1f} {r.d:>6.2f} {r.proxy:>7.2f} {r.gold:>6.3f}"
              for r in shown.itertuples()]
    return fig, "\n".join(lines + [fit_text]), notes


def hacking_curves_widget(results: dict):
    """A β selector and an iteration slider over :func:`hacking_curves_view` (cached runs: instant)."""
    w = _deferred_import("ipywidgets")

    runs = results["hacking_curves"]
    runs = runs[runs.optimised == "reward model"]
    betas = sorted(float(b) for b in runs.beta.unique())
    controls = {
        "beta": _choice_slider(betas, betas[0], "β"),
        "iterations": w.IntSlider(value=int(runs.iteration.max()), min=0, max=int(runs.iteration.max()), step=1,
                                  description="run length", continuous_update=False, style=WIDE),
    }
    return _interactive(lambda beta, iterations: hacking_curves_view(results, beta, iterations), controls)


NOISE_WIDGET_METHODS = ("one annotator", "majority of 3", "one annotator, conservative loss")


def noise_rate_view(tok, sft, train_pairs, test_pairs, flip_rate: float, method: str = "one annotator",
                    epochs: int = 2, smoothing: float = 0.1, seed: int = 0, cached=None):
    """Train one reward model on labels flipped at ``flip_rate`` and measure it on clean held-out pairs.

    Each of the three simulated annotators' votes flips with probability ``flip_rate``
    (``challenges.noisy_labels``); ``method`` picks the labels and the loss: one random
    annotator per pair with Bradley-Terry, the majority of the three with Bradley-Terry, or one
    annotator with the conservative loss (ε = ``smoothing``). The reward model starts from
    ``sft`` (a copy; ``sft`` is not changed). ``cached``: the ``noise_curves`` table, drawn
    behind the new point. Returns ``(fig, text, warnings)``; the new point has gid ``"live"``.
    """
    plt = _deferred_import("matplotlib.pyplot")
    COLORS = _deferred_import("course_utils.plotting").COLORS

    p = float(flip_rate)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"flip_rate must lie in [0, 1], got {flip_rate!r}")
    if method not in NOISE_WIDGET_METHODS:
        raise ValueError(f"method must be one of {NOISE_WIDGET_METHODS}, got {method!r}")
    notes: list[str] = []
    votes = np.array([q["votes"] for q in train_pairs])
    lab = noisy_labels(votes, p, seed=seed)
    y = lab["majority"] if method.startswith("majority") else lab["single"]
    pairs = _orient(train_pairs, y)
    rm = RewardModel(sft.copy(), seed=seed)
    with single_threaded_blas():                          # small matrices (see runtime.single_threaded_blas)
        train_reward_model(rm, tok, pairs, RewardConfig(epochs=epochs, label="gold", seed=seed), progress=False,
                           label_smoothing=smoothing if "conservative" in method else 0.0)
        ev = evaluate_pairs(rm, tok, test_pairs)
    err = float(np.mean(y == 0))
    if p >= 0.5:
        notes.append(f"p = {p:.2f}: at least half of the votes are flipped, so the labels mostly say the opposite of "
                     "what the annotators meant; the reward model learns the reversed preference (accuracy "
                     "below 0.5 means it ranks the worse answer higher).")
    if ev["ci_low"] <= 0.5 <= ev["ci_high"]:
        notes.append("the held-out accuracy is not distinguishable from chance (0.5 lies in its 95% interval).")
    fig, ax = plt.subplots(figsize=(8.0, 4.4))
    colours = {"one annotator": COLORS["vermillion"], "majority of 3": COLORS["blue"],
               "one annotator, conservative loss": COLORS["purple"], "clean labels": COLORS["black"]}
    if cached is not None and len(cached):
        for m, g in cached.groupby("method", sort=False):
            g = g.sort_values("flip_rate")
            if m == "clean labels":
                ax.axhline(float(g.accuracy.iloc[0]), color=colours[m], ls="--", lw=1.2, label="clean labels (cached)")
            else:
                ax.plot(g.flip_rate, g.accuracy, "o-", color=colours.get(m, COLORS["grey"]), alpha=0.45,
                        label=f"{m} (cached)")
    ax.errorbar([p], [ev["accuracy"]], yerr=[[ev["accuracy"] - ev["ci_low"]], [ev["ci_high"] - ev["accuracy"]]],
                fmt="*", ms=16, color=colours[method], gid="live", label=f"{method}: this run")
    ax.axhline(0.5, color=COLORS["grey"], ls=":", lw=1.2)
    ax.set(xlim=(-0.03, 1.03), ylim=(0.0, 1.02), xlabel="extra flip rate p of every vote",
           ylabel="held-out accuracy (clean labels)", title=f"Reward model on noisy labels: p = {p:.2f}")
    ax.legend(loc="lower left", fontsize=10)
    text = (f"{method}, p = {p:.2f}: {err:.1%} of the training labels disagree with the clean ones; held-out "
            f"accuracy {ev['accuracy']:.3f} ({ev['correct']}/{ev['n']}), 95% interval "
            f"[{ev['ci_low']:.2f}, {ev['ci_high']:.2f}]")
    return fig, text, notes


def noise_rate_widget(tok, sft, train_pairs, test_pairs, cached=None, seed: int = 0):
    """A flip-rate slider, a method menu and a Run button that trains one reward model (a few seconds)."""
    w = _deferred_import("ipywidgets")

    style = {"description_width": "initial"}
    controls = {
        "flip_rate": w.FloatSlider(value=0.3, min=0.0, max=1.0, step=0.05, description="flip rate p",
                                   continuous_update=False, style=style),
        "method": w.Dropdown(options=list(NOISE_WIDGET_METHODS), value="one annotator", description="labels",
                             style=style),
    }
    return _interactive(lambda flip_rate, method: noise_rate_view(tok, sft, train_pairs, test_pairs, flip_rate,
                                                                  method, seed=seed, cached=cached),
                        controls, manual=True)
