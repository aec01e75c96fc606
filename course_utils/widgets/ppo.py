"""Chapter 5, PPO: the clipped surrogate, the KL-regularised optimum, a mini-PPO and a short PPO run.

Widgets: :func:`ppo_clip_widget` (ε over :func:`ppo_clip_view`), :func:`kl_optimum_widget` (β over
:func:`kl_optimum_view`), :func:`bandit_ppo_widget` (β, ε, learning rate over
:func:`bandit_ppo_view`) and :func:`ppo_run_widget` (β, ε, learning rate and a Run button over
:func:`ppo_run_view`); the curves come from :func:`ppo_clip_curves` and :func:`kl_tradeoff`.
"""

from __future__ import annotations

import warnings as _warnings

import numpy as np

from ..losses import ppo_clip_loss
from ..ppo import DEFAULT_CONFIG, PPOConfig, bandit_ppo, kl_optimal_policy, sample_answers, train_ppo
from ._common import (EPS_VALUES, SANE_RANGES, _caught, _choice_slider, _deferred_import, _interactive,
                      _log_values, _sanity)


def ppo_clip_curves(ratios: np.ndarray, advantage: float, clip_eps: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-token clipped objective min(ρA, clip(ρ, 1-ε, 1+ε)A) and whether it passes a gradient.

    Computed point by point with ``losses.ppo_clip_loss`` (objective = -loss; the gradient
    passes where dloss/dlog π ≠ 0 or the unclipped term is the active one).
    """
    obj, live = np.empty(len(ratios)), np.empty(len(ratios), dtype=bool)
    for i, rho in enumerate(np.asarray(ratios, dtype=float)):
        loss, dlogp, stats = ppo_clip_loss(np.array([np.log(rho)]), np.zeros(1), np.array([advantage]), clip_eps)
        obj[i], live[i] = -loss, stats["clipfrac"] == 0.0
    return obj, live


def ppo_clip_view(clip_eps: float = 0.2):
    """The clipped surrogate against the ratio ρ, for a positive (A = +1) and a negative (A = -1) advantage.

    Solid: min(ρA, clip(ρ, 1-ε, 1+ε)A); dotted: the unclipped ρA; shaded: where the clip
    cuts the gradient (the objective is flat in ρ there). Lines carry gids ``"clip:+"``,
    ``"clip:-"``. Returns ``(fig, warnings)``.
    """
    plt = _deferred_import("matplotlib.pyplot")
    COLORS = _deferred_import("course_utils.plotting").COLORS

    if not (np.isfinite(clip_eps) and clip_eps >= 0):
        raise ValueError(f"clip_eps must be a number >= 0, got {clip_eps!r}")
    notes = _sanity("clip_eps", clip_eps, percent=100 * clip_eps)
    if clip_eps == 0:
        notes.append("ε = 0: the objective is flat on both sides of ρ = 1, so once a token's probability "
                     "moves in the direction its advantage favours, it passes no gradient at all.")
    rho = np.linspace(0.01, 2.5, 500)
    fig, axes = plt.subplots(1, 2, figsize=(11.0, 4.2), sharey=False)
    for ax, adv, sign in zip(axes, (1.0, -1.0), "+-"):
        obj, live = ppo_clip_curves(rho, adv, clip_eps)
        ax.plot(rho, rho * adv, ":", color=COLORS["grey"], label=r"unclipped $\rho A$")
        ax.plot(rho, obj, color=COLORS["blue"] if adv > 0 else COLORS["vermillion"], gid=f"clip:{sign}",
                label=r"$\min(\rho A,\ \mathrm{clip}(\rho)A)$")
        ax.fill_between(rho, -3, 3, where=~live, color=COLORS["grey"], alpha=0.15, label="no gradient")
        for edge in (1 - clip_eps, 1 + clip_eps):
            ax.axvline(edge, color=COLORS["black"], linewidth=0.8, linestyle="--")
        ax.set_xlim(0, 2.5)
        ax.set_ylim(-2.6, 2.6)
        ax.set_xlabel(r"ratio $\rho = \pi_\theta(y_t) / \pi_{old}(y_t)$")
        ax.set_title(f"A = {adv:+.0f}: " + ("raise π(y_t), but not past 1+ε" if adv > 0 else
                                            "lower π(y_t), but not past 1-ε"))
    axes[0].set_ylabel("objective (maximised)")
    axes[0].legend(loc="upper left", fontsize=10)
    fig.suptitle(f"The clipped surrogate, ε = {clip_eps:.2f}")
    return fig, notes


def ppo_clip_widget():
    """A slider for ε over :func:`ppo_clip_view`."""
    return _interactive(lambda clip_eps: ppo_clip_view(clip_eps),
                        {"clip_eps": _choice_slider(EPS_VALUES, 0.2, "ε")})


def _kl(p: np.ndarray, log_q: np.ndarray) -> float:
    """KL(p ‖ q) = Σ p log(p / q) over the candidates (terms with p = 0 count 0)."""
    p = np.asarray(p, dtype=float)
    nz = p > 0
    return float(np.sum(p[nz] * (np.log(p[nz]) - log_q[nz])))


def kl_tradeoff(log_ref: np.ndarray, rewards: np.ndarray, betas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """E_{π*}[r] and KL(π* ‖ π_ref) of the closed-form optimum π*_β for each β."""
    log_ref = np.asarray(log_ref, dtype=float) - np.logaddexp.reduce(log_ref)
    r = np.asarray(rewards, dtype=float)
    exp_r, kls = [], []
    for b in betas:
        p = kl_optimal_policy(log_ref, r, float(b))
        exp_r.append(float(p @ r))
        kls.append(_kl(p, log_ref))
    return np.array(exp_r), np.array(kls)


def kl_optimum_view(labels: list[str], log_ref: np.ndarray, rewards: np.ndarray, beta: float = 1.0):
    """π_ref and the KL-regularised optimum π*(y) ∝ π_ref(y) exp(r(y)/β) over a few candidate answers.

    Left: bars of π_ref and π*_β per candidate. Right: the trade-off curve (KL(π*‖π_ref),
    E_{π*}[r]) traced by β from 100 down to 0.01, with the chosen β marked (gid ``"point"``;
    the bars of π* carry gid ``"pistar"``). Returns ``(fig, text, warnings)``: the text is the
    table of π_ref, r and π* with the expected reward and the KL.
    """
    plt = _deferred_import("matplotlib.pyplot")
    COLORS = _deferred_import("course_utils.plotting").COLORS

    if not (np.isfinite(beta) and beta >= 0):
        raise ValueError(f"beta must be a number >= 0, got {beta!r}")
    log_ref = np.asarray(log_ref, dtype=float) - np.logaddexp.reduce(log_ref)
    r = np.asarray(rewards, dtype=float)
    ref = np.exp(log_ref)
    star = kl_optimal_policy(log_ref, r, beta)
    notes = _sanity("kl_beta", beta, scale=float(np.ptp(r)))
    if beta == 0:
        notes.append("β = 0: no KL penalty, so the optimum puts all its probability on the answer with the "
                     "highest reward, however unlikely the reference found it (reward hacking in one line).")
    betas = np.logspace(2, -2, 81)
    curve_r, curve_kl = kl_tradeoff(log_ref, r, betas)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12.0, 4.4), gridspec_kw={"width_ratios": [1.25, 1]})
    x = np.arange(len(labels))
    ax1.bar(x - 0.2, ref, 0.4, color=COLORS["grey"], label=r"$\pi_{ref}$")
    ax1.bar(x + 0.2, star, 0.4, color=COLORS["green"], label=fr"$\pi^*$, β = {beta:g}", gid="pistar")
    ax1.set_xticks(x, labels, rotation=20, ha="right")
    ax1.set_ylim(0, 1.05)
    ax1.set_ylabel("probability")
    ax1.legend(loc="upper right")
    kl_now, er_now = _kl(star, log_ref), float(star @ r)
    ax2.plot(curve_kl, curve_r, color=COLORS["blue"])
    ax2.plot([kl_now], [er_now], "o", color=COLORS["vermillion"], markersize=10, gid="point")
    ax2.set_xlabel(r"KL($\pi^*$ ‖ $\pi_{ref}$) (nats)")
    ax2.set_ylabel(r"expected reward $E_{\pi^*}[r]$")
    ax2.set_title(f"β = {beta:g}: E[r] = {er_now:.2f}, KL = {kl_now:.2f}")
    width = max(len(s) for s in labels)
    lines = [f"{'answer':<{width}}  π_ref    r       π*"]
    lines += [f"{lab:<{width}}  {p:6.3f}  {rr:6.2f}  {q:6.3f}" for lab, p, rr, q in zip(labels, ref, r, star)]
    lines.append(f"E[r] under π_ref = {ref @ r:.3f}, under π* = {er_now:.3f};  KL(π* ‖ π_ref) = {kl_now:.3f} nats")
    return fig, "\n".join(lines), notes


def kl_optimum_widget(labels: list[str], log_ref: np.ndarray, rewards: np.ndarray, beta: float = 1.0):
    """A logarithmic slider for β (starting at ``beta``) over :func:`kl_optimum_view`."""
    return _interactive(lambda beta: kl_optimum_view(labels, log_ref, rewards, beta),
                        {"beta": _choice_slider(_log_values(0.01, 100.0, (1, 2, 5)), beta, "β")})


def bandit_ppo_view(labels: list[str], log_ref: np.ndarray, rewards: np.ndarray, beta: float = 1.0,
                    clip_eps: float = 0.2, lr: float = 0.02, iterations: int = 150, batch_size: int = 64,
                    seed: int = 0):
    """Mini-PPO on the candidates (``ppo.bandit_ppo``) against the closed form π*_β.

    Solid lines: π_θ(y) of each candidate over the iterations (gids ``"pi:<label>"``);
    dashed: π*_β(y) (gids ``"star:<label>"``). Returns ``(fig, warnings)``.
    """
    plt = _deferred_import("matplotlib.pyplot")
    COLORS = _deferred_import("course_utils.plotting").COLORS

    for name, v in (("beta", beta), ("clip_eps", clip_eps), ("lr", lr)):
        if not (np.isfinite(v) and v >= 0):
            raise ValueError(f"{name} must be a number >= 0, got {v!r}")
    hist = bandit_ppo(log_ref, rewards, beta, clip_eps, lr, int(iterations), int(batch_size), seed=seed)
    star = kl_optimal_policy(log_ref, rewards, beta)
    final = hist[-1]
    steps = 4 * int(iterations)                              # bandit_ppo: 4 AdamW steps per iteration
    notes = (_sanity("kl_beta", beta, scale=float(np.ptp(rewards)))
             + _sanity("clip_eps", clip_eps, percent=100 * clip_eps)
             + _sanity("bandit_lr", lr, steps=steps, move=steps * lr))
    if beta == 0:
        notes.append("β = 0: the target is the single best answer; PPO walks there, and nothing stops it.")
    if clip_eps == 0:
        notes.append("ε = 0: only the first AdamW step on a batch sees ratios of exactly 1; after it, every answer "
                     "whose probability moved the way its advantage favours is clipped, so each batch gives about "
                     "one policy-gradient step instead of four and π_θ moves more slowly.")
    if lr == 0:
        notes.append("lr = 0: θ never changes.")
    gap = float(np.abs(final - star).max())
    if 0 < lr <= SANE_RANGES["bandit_lr"].high and clip_eps > 0 and gap > 0.1:
        notes.append(f"after {iterations} iterations π_θ is still up to {gap:.2f} away from π*: more iterations "
                     "or a larger learning rate would close the gap.")
    palette = [COLORS[c] for c in ("blue", "orange", "green", "vermillion", "purple", "sky", "black")]
    fig, ax = plt.subplots(figsize=(9.5, 4.4))
    it = np.arange(len(hist))
    for k, lab in enumerate(labels):
        c = palette[k % len(palette)]
        ax.plot(it, hist[:, k], color=c, label=lab, gid=f"pi:{lab}")
        ax.axhline(star[k], color=c, linestyle="--", linewidth=1.4, gid=f"star:{lab}")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("PPO iteration")
    ax.set_ylabel(r"$\pi_\theta(y)$")
    ax.set_title(f"mini-PPO, β = {beta:g}, ε = {clip_eps:g}, lr = {lr:g}: solid π_θ, dashed π*")
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5))
    return fig, notes


def bandit_ppo_widget(labels: list[str], log_ref: np.ndarray, rewards: np.ndarray, beta: float = 1.0,
                      clip_eps: float = 0.2, lr: float = 0.02, seed: int = 0):
    """Sliders for β, ε and the learning rate (starting at the given values) over :func:`bandit_ppo_view`;
    each re-run takes a fraction of a second."""
    controls = {
        "beta": _choice_slider(_log_values(0.01, 100.0, (1, 2, 5)), beta, "β"),
        "clip_eps": _choice_slider(EPS_VALUES, clip_eps, "ε"),
        "lr": _choice_slider(_log_values(1e-3, 10.0, (1, 2, 5)), lr, "learning rate"),
    }
    return _interactive(lambda beta, clip_eps, lr: bandit_ppo_view(labels, log_ref, rewards, beta, clip_eps, lr,
                                                                   seed=seed), controls)


def ppo_run_view(tok, sft, reward_model, prompts, beta: float = 0.05, clip_eps: float = 0.2,
                 lr: float = DEFAULT_CONFIG.lr, iterations: int = 12, batch_size: int = 8, samples_per_prompt: int = 4,
                 max_new_tokens: int = 96,
                 example_prompt: str | None = None, seed: int = 0):
    """A short PPO run of a copy of ``sft`` at β, ε and learning rate; the SFT model is not changed.

    Draws the reward-model score, the gold-judge score (when the prompts carry scenario ids)
    and the KL to the reference per iteration (gids ``"score"``, ``"judge"``, ``"kl"``), and
    returns the greedy answer to ``example_prompt`` before and after. Returns
    ``(fig, text, warnings)``; the warnings are the sane-range warnings of β, ε and the learning
    rate (:data:`SANE_RANGES`), then those of ``ppo.train_ppo`` (β = 0, ε = 0, a run stopped early).
    """
    plt = _deferred_import("matplotlib.pyplot")
    COLORS = _deferred_import("course_utils.plotting").COLORS

    cfg = PPOConfig(iterations=int(iterations), batch_size=int(batch_size), samples_per_prompt=int(samples_per_prompt),
                    max_new_tokens=int(max_new_tokens), kl_coef=float(beta), clip_eps=float(clip_eps), lr=float(lr),
                    minibatch_size=int(batch_size), seed=seed)
    policy = sft.copy()
    with _warnings.catch_warnings(record=True) as caught:
        _warnings.simplefilter("always")
        _, diag = train_ppo(policy, sft, reward_model, tok, prompts, cfg, progress=False)
    steps = cfg.iterations * cfg.ppo_epochs * -(-cfg.batch_size // cfg.minibatch_size)
    notes = (_sanity("ppo_beta", beta) + _sanity("clip_eps", clip_eps, percent=100 * clip_eps)
             + _sanity("ppo_lr", lr, steps=steps))
    lr_warned = any(n.startswith("Warning: learning rate") for n in notes)
    notes += [m for m in _caught(caught) if not (lr_warned and m.startswith("lr = "))]   # said once
    diag = diag[np.isfinite(diag.score) & np.isfinite(diag.kl)]
    fig, axes = plt.subplots(1, 2, figsize=(11.0, 4.0))
    axes[0].plot(diag.iteration, diag.score, "o-", color=COLORS["orange"], gid="score", label="reward model")
    axes[0].set_ylabel("reward-model score")
    axes[0].set_xlabel("iteration")
    if diag.judge.notna().any():
        twin = axes[0].twinx()
        twin.plot(diag.iteration, diag.judge, "s--", color=COLORS["green"], gid="judge", label="gold judge")
        twin.set_ylabel("gold judge (0-1)")
        twin.set_ylim(0, 1)
    axes[1].plot(diag.iteration, diag.kl, "o-", color=COLORS["vermillion"], gid="kl")
    axes[1].set_ylabel("KL(π ‖ π_ref) per answer (nats)")
    axes[1].set_xlabel("iteration")
    fig.suptitle(f"β = {beta:g}, ε = {clip_eps:g}, lr = {lr:g}: {len(diag)} of {iterations} iterations")
    text = ""
    if example_prompt is not None:
        before = sample_answers(sft, tok, [example_prompt], 0.0, max_new_tokens)[0]
        after = sample_answers(policy, tok, [example_prompt], 0.0, max_new_tokens)[0]
        text = f"Q: {example_prompt}\n  SFT: {before}\n  PPO: {after}"
    return fig, text, notes


def ppo_run_widget(tok, sft, reward_model, prompts, example_prompt: str | None = None, seed: int = 0):
    """Sliders for β, ε and the learning rate, and a Run button that starts a short PPO run (a few seconds)."""
    cfg = DEFAULT_CONFIG

    controls = {
        "beta": _choice_slider(_log_values(1e-3, 10.0, (1, 2, 5)), cfg.kl_coef, "β"),
        "clip_eps": _choice_slider(EPS_VALUES, cfg.clip_eps, "ε"),
        "lr": _choice_slider(_log_values(1e-6, 1.0, (1, 2, 5)), cfg.lr, "learning rate"),
    }
    return _interactive(lambda beta, clip_eps, lr: ppo_run_view(tok, sft, reward_model, prompts, beta, clip_eps, lr,
                                                                example_prompt=example_prompt, seed=seed),
                        controls, manual=True)
