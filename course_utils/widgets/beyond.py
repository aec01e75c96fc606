"""Chapter 8, beyond PPO: DPO's β on a handful of candidate answers, best-of-n over the cached samples.

Widgets: :func:`dpo_beta_widget` (β over :func:`dpo_beta_view`: soft- and hard-label DPO on K
candidates against chapter 5's optimum π*) and :func:`best_of_n_widget` (n and the question over
:func:`best_of_n_view`, from the 64 cached samples per held-out question).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..bandit import _kl, bandit_dpo, kl_optimal_policy
from ..bestofn import bon_choice, bon_kl
from ._common import WIDE, _choice_slider, _deferred_import, _interactive, _log_values, _sanity


def dpo_beta_view(labels: Sequence[str], log_ref: np.ndarray, rewards: np.ndarray, beta: float = 1.0,
                  steps: int = 300, lr: float = 0.05):
    """DPO with soft and with hard labels on the candidates (:func:`bandit_dpo`) against π*_β.

    Left: π_ref, π* and the two DPO policies after ``steps`` steps (bars, gids ``"soft"``,
    ``"hard"``, ``"star"``). Right: KL(π ‖ π_ref) of both runs over the steps, and KL(π* ‖ π_ref)
    dashed. Returns ``(fig, text, warnings)``; an extreme β warns, never gives NaN.
    """
    plt = _deferred_import("matplotlib.pyplot")
    COLORS = _deferred_import("course_utils.plotting").COLORS
    if not (np.isfinite(beta) and beta >= 0):
        raise ValueError(f"beta must be a number >= 0, got {beta!r}")
    r = np.asarray(rewards, dtype=np.float64)
    ref = np.exp(np.asarray(log_ref, dtype=np.float64) - np.logaddexp.reduce(np.asarray(log_ref, dtype=np.float64)))
    runs = {kind: bandit_dpo(log_ref, r, beta, kind, lr, steps) for kind in ("soft", "hard")}
    star = kl_optimal_policy(np.log(ref), r, beta)
    notes = _sanity("kl_beta", beta, scale=float(np.ptp(r)))
    if beta == 0:
        notes.append("β = 0: every implicit reward β log(π/π_ref) is 0, the DPO loss is log 2 whatever the policy "
                     "and its gradient is 0: nothing is learned.")
    gap = float(np.abs(runs["soft"][-1] - star).max())
    if beta > 0 and gap > 0.05:
        notes.append(f"after {steps} steps the soft-label policy is still up to {gap:.2f} away from π*: "
                     f"θ must move by about r/β = {np.ptp(r) / beta:.3g} nats and each AdamW step moves it by "
                     "at most "
                     f"lr = {lr:g}.")
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12.0, 4.4), gridspec_kw={"width_ratios": [1.25, 1]})
    x = np.arange(len(labels))
    bars = (("π_ref", ref, COLORS["grey"], "ref"), ("π* (chapter 5)", star, COLORS["black"], "star"),
            ("DPO, soft labels", runs["soft"][-1], COLORS["green"], "soft"),
            ("DPO, hard labels", runs["hard"][-1], COLORS["vermillion"], "hard"))
    for k, (name, p, color, gid) in enumerate(bars):
        ax1.bar(x + (k - 1.5) * 0.2, p, 0.2, color=color, label=name, gid=gid)
    ax1.set_xticks(x, labels, rotation=20, ha="right")
    ax1.set_ylim(0, 1.05)
    ax1.set_ylabel("probability")
    ax1.legend(loc="upper right", fontsize=9)
    kls = {kind: np.array([_kl(p, ref) for p in h]) for kind, h in runs.items()}
    ax2.plot(kls["soft"], color=COLORS["green"], label="soft labels")
    ax2.plot(kls["hard"], color=COLORS["vermillion"], label="hard labels")
    ax2.axhline(_kl(star, ref), color=COLORS["black"], linestyle="--", label="KL(π* ‖ π_ref)")
    ax2.set_xlabel("DPO step")
    ax2.set_ylabel("KL(π ‖ π_ref) (nats)")
    ax2.set_title(f"β = {beta:g}")
    ax2.legend(loc="best", fontsize=9)
    width = max(len(s) for s in labels)
    lines = [f"{'answer':<{width}}   r      π_ref   π*      soft    hard"]
    lines += [f"{lab:<{width}}  {rr:6.2f}  {a:6.3f}  {b:6.3f}  {c:6.3f}  {d:6.3f}"
              for lab, rr, a, b, c, d in zip(labels, r, ref, star, runs["soft"][-1], runs["hard"][-1])]
    lines.append(f"KL to π_ref after {steps} steps: soft {kls['soft'][-1]:.3f}, hard {kls['hard'][-1]:.3f}, "
                 f"π* {_kl(star, ref):.3f} nats")
    return fig, "\n".join(lines), notes


def dpo_beta_widget(labels: Sequence[str], log_ref: np.ndarray, rewards: np.ndarray, beta: float = 1.0):
    """A logarithmic slider for β (0 included) over :func:`dpo_beta_view`."""
    values = [0.0] + _log_values(0.01, 100.0, (1, 2, 5))
    return _interactive(lambda beta: dpo_beta_view(labels, log_ref, rewards, beta),
                        {"beta": _choice_slider(values, beta, "DPO β")})


def best_of_n_view(samples: pd.DataFrame, n: int = 4, item: int = 0, prompts: Sequence[str] | None = None):
    """Best-of-n from the cached samples: all questions (left) and one question's first n samples (right).

    Left: mean reward and gold score of the chosen answers against n = 1 .. N (gids ``"reward"``,
    ``"gold"``), the chosen n marked. Right: reward against gold score of question ``item``'s
    first n samples; the reward model's choice circled (gid ``"choice"``), the gold judge's
    favourite starred. Returns ``(fig, text, warnings)``.
    """
    plt = _deferred_import("matplotlib.pyplot")
    COLORS = _deferred_import("course_utils.plotting").COLORS
    n_max = int(samples["sample"].max()) + 1
    notes = []
    if not 1 <= int(n) <= n_max:
        notes.append(f"Warning: n = {n} is outside the {n_max} cached samples per question; using "
                     f"n = {min(max(int(n), 1), n_max)}.")
    n = min(max(int(n), 1), n_max)
    if n == 1:
        notes.append("n = 1: best-of-1 is plain sampling from the SFT model; KL = 0.")
    ns = np.arange(1, n_max + 1)
    picks = {m: bon_choice(samples, m) for m in ns}
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12.0, 4.4))
    ax1.plot(ns, [picks[m]["reward"].mean() for m in ns], color=COLORS["blue"], label="reward model", gid="reward")
    ax1b = ax1.twinx()
    ax1b.plot(ns, [picks[m]["gold"].mean() for m in ns], color=COLORS["vermillion"], label="gold judge", gid="gold")
    ax1.axvline(n, color=COLORS["grey"], linestyle=":")
    ax1.set_xscale("log", base=2)
    ticks = [m for m in (1, 2, 4, 8, 16, 32, 64, 128, 256) if m <= n_max]
    ax1.set_xticks(ticks, [str(m) for m in ticks])
    ax1.set_xlabel("n (samples per question)")
    ax1.set_ylabel("mean reward of the chosen answers", color=COLORS["blue"])
    ax1b.set_ylabel("mean gold score", color=COLORS["vermillion"])
    one = samples[(samples["item"] == item) & (samples["sample"] < n)]
    chosen = bon_choice(one, n).iloc[0]
    best = bon_choice(one, n, by="gold").iloc[0]
    ax2.scatter(one["reward"], one["gold"], color=COLORS["grey"], s=25)
    ax2.scatter([chosen["reward"]], [chosen["gold"]], s=180, facecolors="none", edgecolors=COLORS["blue"],
                linewidths=2, gid="choice", label="reward model's choice")
    ax2.scatter([best["reward"]], [best["gold"]], marker="*", s=160, color=COLORS["vermillion"], label="gold's best")
    ax2.set_xlabel("reward model score")
    ax2.set_ylabel("gold score")
    title = prompts[item] if prompts is not None else f"question {item}"
    ax2.set_title(title[:60] + ("…" if len(title) > 60 else ""), fontsize=10)
    ax2.legend(loc="best", fontsize=9)
    pick = picks[n]
    text = (f"best-of-{n}: mean reward {pick['reward'].mean():.2f}, mean gold {pick['gold'].mean():.3f} "
            f"(best-of-1: {picks[1]['reward'].mean():.2f}, {picks[1]['gold'].mean():.3f}); "
            f"KL ≤ log n - (n-1)/n = {bon_kl(n):.2f} nats; {n} samples and {n} scores per question")
    return fig, text, notes


def best_of_n_widget(samples: pd.DataFrame, prompts: Sequence[str] | None = None, n: int = 4):
    """Sliders for n and the question over :func:`best_of_n_view`."""
    w = _deferred_import("ipywidgets")
    n_max = int(samples["sample"].max()) + 1
    controls = {"n": w.IntSlider(value=n, min=1, max=n_max, description="n", continuous_update=False, style=WIDE),
                "item": w.IntSlider(value=0, min=0, max=int(samples["item"].max()), description="question",
                                    continuous_update=False, style=WIDE)}
    return _interactive(lambda n, item: best_of_n_view(samples, n, item, prompts), controls)
