"""Chapter 4, Elo: online Elo against the Bradley-Terry fit, and the expected-score curve.

Widgets: :func:`elo_k_widget` (K, number of matches, scale s over :func:`elo_k_view`) and
:func:`expected_score_widget` (scale s and a rating gap over :func:`expected_score_view`), on the
simulated models of :data:`ELO_DEMO_STRENGTHS`.
"""

from __future__ import annotations

import numpy as np

from .. import elo
from ._common import _deferred_import, _interactive


#: True strengths of the simulated pharmaceutical models in the chapter-4 widgets, in Elo points
#: on the standard scale (s = 400, b = 10). Invented for the simulation: real models have no
#: known "true" rating, which is the whole problem the chapter is about.
ELO_DEMO_STRENGTHS: dict[str, float] = {
    "PharmGPT-v1": 1120.0,
    "ClinicalAI-v3": 1080.0,
    "MedLLM-v2": 1000.0,
    "RxAssist-1": 985.0,
    "DoseCheck-2": 815.0,
}
ELO_DEMO_INIT = 1000.0  # starting rating r_0 of online Elo, mean rating of the Bradley-Terry fit


def elo_k_view(
    k: float = 32,
    n_matches: int = 300,
    scale: float = 400,
    strengths: dict[str, float] | None = None,
    seed: int = 0,
):
    """Online Elo trajectories at K and scale s, next to the Bradley-Terry MLE of the same battles.

    ``n_matches`` battles among the models are drawn from the Bradley-Terry model with the true
    ``strengths`` (Elo points on the standard scale 400, base 10; they decide who tends to win
    and do not move with the ``scale`` knob). The battles are then rated at scale s twice:

    * online Elo, match by match: r_A <- r_A + K (S_A - E_A), E_A = 1 / (1 + 10^((r_B - r_A)/s)),
      every model starting at r_0 = 1000 (solid lines);
    * the Bradley-Terry MLE on all battles at once, mean rating r_0 (dashed lines): order-free.

    In units of s the online update depends only on K/s, so K = 32 at s = 400 behaves like
    K = 8 at s = 100. Returns ``(fig, warnings)``; the warnings explain extreme knob values
    (K = 0, K large compared with s, a tiny s, very few matches). Lines carry gids
    ``"elo:<model>"`` and ``"bt:<model>"``.
    """
    strengths = dict(ELO_DEMO_STRENGTHS if strengths is None else strengths)
    n_matches = int(n_matches)
    if n_matches < 1:
        raise ValueError(f"n_matches must be at least 1, got {n_matches}")
    if not (np.isfinite(scale) and scale > 0):
        raise ValueError(f"scale must be a positive number, got {scale!r}")
    if not (np.isfinite(k) and k >= 0):
        raise ValueError(f"k must be a number >= 0, got {k!r}")
    warnings: list[str] = []
    battles = elo.simulate_battles(strengths, n_matches, seed=seed)
    history = elo.elo_history(battles, k=k, scale=scale, init=ELO_DEMO_INIT)
    try:
        bt = elo.bradley_terry_ratings(battles, scale=scale, init=ELO_DEMO_INIT)
    except ValueError as err:
        bt = None
        warnings.append(f"no Bradley-Terry line: {err}")
    warnings += _elo_k_warnings(k, n_matches, scale, strengths, history)
    return _elo_k_figure(k, n_matches, scale, strengths, history, bt), warnings


def _elo_k_warnings(k: float, n_matches: int, scale: float, strengths: dict[str, float], history) -> list[str]:
    """The warnings of :func:`elo_k_view` about its knobs: K = 0, K large next to s, a tiny s, few matches."""
    warnings: list[str] = []
    if k == 0:
        warnings.append("K = 0: no match can move a rating, so every model stays at "
                        f"{ELO_DEMO_INIT:.0f} whatever the results.")
    elif k / scale > 0.2:
        same_as = "" if scale == 400 else f" (like K = {400 * k / scale:.0f} on the usual 400 scale)"
        warnings.append(
            f"K = {k:g} is {k / scale:.2f} times the scale s = {scale:g}{same_as}: one match can move "
            "a rating by up to K points, so the online ratings mostly reflect the last few matches."
        )
    if scale < 50:
        warnings.append(
            f"scale s = {scale:g} is tiny: a lead of just s points already means 10:1 odds, so the "
            "Bradley-Terry ratings of very different models end up only a few points apart. "
            "Judge K against s, not against 400."
        )
    absent = [name for name in strengths if name not in history.columns]
    if n_matches < 10 * len(strengths):
        warnings.append(
            f"only {n_matches} match(es) for {len(strengths)} models (fewer than 10 per model): "
            "these ratings are mostly noise."
            + (f" Not played yet: {', '.join(absent)}." if absent else "")
        )
    return warnings


def _elo_k_figure(k: float, n_matches: int, scale: float, strengths: dict[str, float], history, bt):
    """The figure of :func:`elo_k_view`: one solid online-Elo line per model, dashed at its BT rating."""
    plt = _deferred_import("matplotlib.pyplot")
    COLORS = _deferred_import("course_utils.plotting").COLORS

    palette = [COLORS[c] for c in ("blue", "orange", "green", "vermillion", "purple", "sky", "black")]
    fig, ax = plt.subplots(figsize=(9.0, 4.8))
    x = history.index.to_numpy()
    for i, name in enumerate(strengths):
        if name not in history.columns:
            continue
        colour = palette[i % len(palette)]
        ax.plot(x, history[name].to_numpy(), color=colour, label=name, gid=f"elo:{name}",
                drawstyle="steps-post" if n_matches <= 30 else "default")
        if bt is not None:
            ax.axhline(float(bt[name]), color=colour, linestyle="--", linewidth=1.6, gid=f"bt:{name}")
    ax.set_xlabel("match")
    ax.set_ylabel(f"rating (Elo points, s = {scale:g})")
    ax.set_title(f"K = {k:g}, s = {scale:g}, {n_matches} matches: online Elo (solid), BT MLE (dashed)")
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5))
    return fig


def elo_k_widget(strengths: dict[str, float] | None = None, seed: int = 0):
    """Sliders for K, the number of matches and the scale s over :func:`elo_k_view`."""
    w = _deferred_import("ipywidgets")

    style = {"description_width": "70px"}
    controls = {
        "k": w.IntSlider(value=32, min=0, max=200, step=2, description="K",
                         continuous_update=False, style=style),
        "n_matches": w.IntSlider(value=300, min=1, max=2000, step=1, description="matches",
                                 continuous_update=False, style=style),
        "scale": w.IntSlider(value=400, min=25, max=1600, step=25, description="scale s",
                             continuous_update=False, style=style),
    }
    return _interactive(
        lambda k, n_matches, scale: elo_k_view(k, n_matches, scale, strengths=strengths, seed=seed),
        controls,
    )


def _odds_text(log10_odds: float) -> str:
    """'3.16:1' or '1:3.16' for odds 10^log10_odds, in words beyond a million to one."""
    if abs(log10_odds) > 6:
        return "odds beyond a million to one" + (" against" if log10_odds < 0 else "")
    odds = 10.0**log10_odds
    return f"odds {odds:.2f}:1" if odds >= 1 else f"odds 1:{1 / odds:.2f}"


def expected_score_view(scale: float = 400, gap: float = 200, base: float = 10):
    """The expected-score curve E_A = 1 / (1 + b^(-gap/s)) against the rating gap r_A - r_B.

    Draws the curve at scale s (and the standard s = 400 in grey for comparison) over gaps of
    -800 to 800 points, marks the chosen ``gap`` and, in the title, E_A there and the odds
    E_A : E_B = b^(gap/s). Returns ``(fig, warnings)``; the warnings explain a tiny or huge s
    and a gap outside the plotted range. The curve at s carries gid ``"curve"``, the marked point
    gid ``"point"``.
    """
    plt = _deferred_import("matplotlib.pyplot")
    COLORS = _deferred_import("course_utils.plotting").COLORS

    if not (np.isfinite(scale) and scale > 0):
        raise ValueError(f"scale must be a positive number, got {scale!r}")
    warnings: list[str] = []
    gaps = np.linspace(-800.0, 800.0, 401)
    curve = elo.expected_score(gaps, 0.0, scale=scale, base=base)
    e_gap = elo.expected_score(gap, 0.0, scale=scale, base=base)
    log10_odds = gap / scale * np.log10(base)
    if scale < 50:
        warnings.append(
            f"scale s = {scale:g} is tiny: the curve is almost a step, so a lead of a few points "
            "already predicts a near-certain win."
        )
    if scale > 2000:
        warnings.append(
            f"scale s = {scale:g} is huge: between -800 and +800 points E_A only goes from "
            f"{curve[0]:.2f} to {curve[-1]:.2f}, so ratings must be very far apart to say anything."
        )
    if abs(gap) > 800:
        warnings.append(f"a gap of {gap:g} points is outside the plotted range (-800 to 800).")

    fig, ax = plt.subplots(figsize=(8.0, 4.5))
    ax.plot(gaps, elo.expected_score(gaps, 0.0), color=COLORS["grey"], linestyle="--",
            label="s = 400 (standard)", gid="standard")
    ax.plot(gaps, curve, color=COLORS["blue"], label=f"s = {scale:g}", gid="curve")
    ax.plot([gap], [e_gap], "o", color=COLORS["vermillion"], markersize=9, gid="point")
    ax.axhline(0.5, color=COLORS["black"], linewidth=0.8, alpha=0.5)
    ax.set_xlim(-800, 800)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel(r"rating gap $r_A - r_B$ (points)")
    ax.set_ylabel(r"expected score $E_A$")
    lead = f"A {gap:g}-point lead" if gap >= 0 else f"A {-gap:g}-point deficit"
    ax.set_title(f"{lead} at s = {scale:g}: $E_A$ = {e_gap:.3f}, {_odds_text(log10_odds)}")
    ax.legend(loc="upper left")
    return fig, warnings


def expected_score_widget():
    """Sliders for the scale s and a rating gap over :func:`expected_score_view`."""
    w = _deferred_import("ipywidgets")

    style = {"description_width": "70px"}
    controls = {
        "scale": w.IntSlider(value=400, min=10, max=3000, step=10, description="scale s",
                             continuous_update=False, style=style),
        "gap": w.IntSlider(value=200, min=-800, max=800, step=10, description="gap",
                           continuous_update=False, style=style),
    }
    return _interactive(lambda scale, gap: expected_score_view(scale, gap), controls)
