"""The course's interactive widgets: thin ipywidgets wrappers around the numerical core.

Every widget follows one pattern, so its logic is testable without a browser:

1. a plain function ``*_view(**knobs) -> (fig_or_text, warnings)`` computes and draws one state
   (tests call it directly, including at extreme knob values: β = 0, ε = 0, huge learning rates);
2. a builder ``*_widget()`` creates the sliders, wires them to the view with
   ``_interactive``, displays nothing itself and returns the box for the cell to show.

A widget cell executes headless (nbval, papermill) without blocking: build, display, return.

Every knob a student can push to an extreme has a *sane range* in :data:`SANE_RANGES`, the one
table of them. A view checks its knobs with :func:`_sanity`: outside the range it still computes
and plots, and its warnings start with a line "Warning: <knob> <value> is <why>". Exactly 0
(no update, no penalty, no clip) is explained by each view in its own words. Every slider's
default lies on its grid (log-scale knobs are :class:`ipywidgets.SelectionSlider` over fixed
values that include the default), so the widget's first run is the chapter's run.
One section per chapter below.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


# ============================================================================ sane ranges
class SaneRange(NamedTuple):
    """Where a knob behaves as its chapter describes. Below ``low`` the view warns
    "Warning: <knob> <value> is <below>", above ``high`` "... is <above>"; the texts may use the
    view's context (``{steps}``, ``{scale}``, ...). With ``per`` set, value / scale is compared
    (β against the spread of the rewards), not the value itself."""

    knob: str
    low: float
    high: float
    below: str
    above: str
    per: str = ""


_ADAM = "Adam moves each weight by at most about lr per step"
#: The sane range of every knob that a widget exposes (see :class:`SaneRange`), measured on the
#: course's data at the widgets' settings: 100 pretraining steps lower the loss by 2.1 nats at the
#: default 3e-3, by 0.4 at 1e-4, and end above ln V at 1; 3 SFT epochs lower the loss by 1.5 at
#: 3e-3, 0.6 at 3e-4, and raise it at 0.1; the mini-PPO reaches π* within 0.01 from 2e-3 to 0.2
#: and freezes or jumps beyond; a 12-iteration PPO run (earlier checkpoints) moved 0.4 nats of KL
#: at lr 1e-5, 6.6 at 1.5e-4 and 48 at 1e-3, and ``ppo.train_ppo`` calls 1e-5 .. 1e-3 tolerable
#: (it warns above 1e-2). β of the full PPO: the chapter-6 runs at 0.002 (reward hacking) and 0.2
#: (strong KL) bracket the default 0.05.
SANE_RANGES: dict[str, SaneRange] = {
    "pretrain_lr": SaneRange(
        "learning rate", 3e-4, 3e-2,
        f"tiny: {_ADAM}, so in {{steps}} steps the loss barely moves from ln V.",
        "huge: each Adam step moves every weight by up to lr, so the loss jumps about (or diverges) "
        "instead of falling steadily."),
    "sft_lr": SaneRange(
        "learning rate", 1e-3, 3e-2,
        f"tiny: {_ADAM}, so in {{steps}} steps the model stays close to the pretrained one and "
        "hardly learns the answer format.",
        "huge: each Adam step moves every weight by up to lr, which overwrites what pretraining "
        "learned; expect a jumpy loss and broken answers."),
    "reward_lr": SaneRange(
        "learning rate", 1e-4, 1e-2,
        f"tiny: {_ADAM}, so in {{steps}} steps the reward model moves little from where it started "
        "(its training loss stays well above the default run's).",
        "far above the default ({default:g}): each Adam step moves every weight by up to lr, which "
        "wrecks what the SFT trunk knew; expect a jumpy loss and, at the largest rates, a held-out "
        "accuracy near chance."),
    "kl_beta": SaneRange(
        "β", 0.1, 5.0,
        "tiny next to the spread of the rewards ({scale:.2f}): r/β spans more than 10 nats, so π* puts "
        "almost all its probability on the highest-scored answer (reward hacking in one line).",
        "huge next to the spread of the rewards ({scale:.2f}): r/β spans less than 0.2 nats, so π* is "
        "almost π_ref and the reward model hardly matters.",
        per="the spread max r - min r of the rewards"),
    "bandit_lr": SaneRange(
        "learning rate", 5e-3, 0.2,
        "tiny: AdamW moves each logit by at most about lr per step, at most {move:.2g} over the {steps} "
        "steps of this run, so π_θ may stop short of π*.",
        "huge: each AdamW step moves a logit by up to lr, so π_θ jumps around π* (or freezes on one "
        "answer) instead of settling there."),
    "clip_eps": SaneRange(
        "ε", 0.05, 0.4,
        "tiny: every ratio is clipped after a tiny move, so each batch can change the policy only "
        "a little and learning is slow.",
        "large: a token's probability may change by up to {percent:.0f} % per update before the clip "
        "binds, which gives up most of PPO's protection against steps that are too large."),
    "ppo_beta": SaneRange(
        "β", 0.01, 0.1,
        "tiny: almost nothing holds the policy near the SFT model, so the KL keeps growing and the "
        "policy is free to exploit the reward model's mistakes (reward hacking).",
        "large: the KL penalty outweighs the reward, so the policy stays close to the SFT model and "
        "gains little reward-model score."),
    "ppo_lr": SaneRange(
        "learning rate", 5e-5, 1e-3,
        f"tiny: {_ADAM}, so in {{steps}} Adam steps the policy hardly leaves the SFT model.",
        "huge for fine-tuning a pretrained model: expect the KL to the SFT model to shoot up within a "
        "few iterations and the answers to degrade into repetition or nonsense."),
}

#: The style of every control: the whole description is shown, never cut ("temperature", "learning rate").
WIDE = {"description_width": "initial"}
#: The values of every ε slider: 0 to 0.8 in steps of 0.05 (a caller's default off this grid is added).
EPS_VALUES = tuple(round(0.05 * k, 2) for k in range(17))


def _num(v: float) -> str:
    """A knob value as the sliders and warnings show it: 0.003, 1e-5, 1.5."""
    return f"{float(v):g}".replace("e-0", "e-").replace("e+0", "e+")


def _sanity(key: str, value: float, scale: float = 1.0, **context) -> list[str]:
    """The warning of ``SANE_RANGES[key]`` when ``value`` (/ ``scale``) lies outside it, else []."""
    rng = SANE_RANGES[key]
    v = float(value)
    if v == 0 or not np.isfinite(v) or not scale > 0:
        return []
    x = v / scale
    text = rng.below if x < rng.low else rng.above if x > rng.high else None
    return [] if text is None else [f"Warning: {rng.knob} {_num(v)} is " + text.format(scale=scale, **context)]


def _caught(caught) -> list[str]:
    """The RuntimeWarning messages of a ``warnings.catch_warnings(record=True)`` block, each once.

    The core's "infinite or NaN" becomes "infinite or not a number": a widget's output never
    shows the word NaN (the browser test reads it as a NaN in the output)."""
    msgs = (str(w.message) for w in caught if issubclass(w.category, RuntimeWarning))
    return list(dict.fromkeys(m.replace("infinite or NaN", "infinite or not a number") for m in msgs))


def _options(values, value: float) -> list[tuple[str, float]]:
    """(label, value) options of a SelectionSlider: ``values`` and ``value`` itself, sorted."""
    vals = [float(v) for v in values]
    if not any(np.isclose(v, value, rtol=1e-9, atol=0) for v in vals):
        vals.append(float(value))
    return [(_num(v), v) for v in sorted(set(vals))]


def _log_values(lo: float, hi: float, mantissas=(1, 3)) -> list[float]:
    """m·10^e from ``lo`` to ``hi`` for m in ``mantissas``: 1e-5, 3e-5, 1e-4, ... (exact decimals)."""
    exps = range(int(np.floor(np.log10(lo))), int(np.ceil(np.log10(hi))) + 1)
    vals = (float(f"{m}e{e}") for e in exps for m in mantissas)
    return [v for v in vals if lo * (1 - 1e-9) <= v <= hi * (1 + 1e-9)]


def _choice_slider(values, value: float, description: str):
    """A SelectionSlider over ``values`` (plus ``value``) starting at ``value``: no snapping in the browser."""
    import ipywidgets as w

    options = _options(values, value)
    start = next(v for _, v in options if np.isclose(v, value, rtol=1e-9, atol=0))
    return w.SelectionSlider(options=options, value=start, description=description,
                             continuous_update=False, style=WIDE)


def _render(out, result) -> None:
    """Put what a view returned into the Output widget ``out``: figures, text, warnings.

    The outputs are *set on the widget* (``append_display_data`` / ``append_stdout``), never
    printed inside ``with out:``. Printing inside an Output widget while a cell executes
    headless makes nbclient (papermill, nbconvert) mirror the output back to the kernel on
    the shell channel while it waits for the cell's reply on that same socket, a race that
    can lose the reply and hang the run forever (jupyter/nbclient#312). Set this way, a widget
    cell builds, displays and returns, in JupyterLab and headless alike.
    """
    import io

    import matplotlib.pyplot as plt
    from IPython.display import Image

    out.outputs = ()
    items = result if isinstance(result, tuple) else (result,)
    for item in items:
        if item is None:
            continue
        if hasattr(item, "savefig"):
            png = io.BytesIO()
            item.savefig(png, format="png", bbox_inches="tight")
            out.append_display_data(Image(data=png.getvalue(), format="png"))
            plt.close(item)
        elif isinstance(item, (list, tuple)):
            for msg in item:
                out.append_stdout(f"⚠ {msg}\n")
        else:
            out.append_stdout(f"{item}\n")


def _interactive(view, controls: dict, layout: str = "vbox", manual: bool = False):
    """Wire ``controls`` (name -> widget) to ``view(**values)`` and return a box with both.

    ``manual=True`` adds a Run button and computes nothing until it is pressed: for views
    that train a model for a few seconds, so that building the widget is instant.
    """
    import ipywidgets as w

    box = w.HBox if layout == "hbox" else w.VBox
    out = w.Output()

    def _update(_=None):
        _render(out, view(**{k: c.value for k, c in controls.items()}))

    if manual:
        button = w.Button(description="Run", button_style="primary", icon="play")
        button.on_click(_update)
        out.append_stdout("Choose the settings, then press Run.\n")
        return box([w.HBox(list(controls.values()) + [button]), out])
    for control in controls.values():
        control.observe(_update, names="value")
    _update()
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

    slider = w.FloatSlider(value=1.0, min=0.0, max=3.0, step=0.1, description="temperature", style=WIDE)
    return _interactive(lambda temperature: temperature_view(words, logits, temperature, prompt),
                        {"temperature": slider})


# ============================================================================ chapter 4: Elo
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
    import matplotlib.pyplot as plt

    from course_utils import elo
    from course_utils.plotting import COLORS

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
    return fig, warnings


def elo_k_widget(strengths: dict[str, float] | None = None, seed: int = 0):
    """Sliders for K, the number of matches and the scale s over :func:`elo_k_view`."""
    import ipywidgets as w

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
    import matplotlib.pyplot as plt

    from course_utils import elo
    from course_utils.plotting import COLORS

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
    import ipywidgets as w

    style = {"description_width": "70px"}
    controls = {
        "scale": w.IntSlider(value=400, min=10, max=3000, step=10, description="scale s",
                             continuous_update=False, style=style),
        "gap": w.IntSlider(value=200, min=-800, max=800, step=10, description="gap",
                           continuous_update=False, style=style),
    }
    return _interactive(lambda scale, gap: expected_score_view(scale, gap), controls)


# ============================================================================ chapter 1
def pretraining_view(tok, train_ids: np.ndarray, val_ids: np.ndarray, lr: float, steps: int,
                     temperature: float, prompt: str = "Signs of lithium toxicity include", seed: int = 0):
    """Train a fresh TinyGPT for ``steps`` steps at peak learning rate ``lr``; plot the losses, sample once.

    Returns (figure, sample text, warnings). A diverging run stops early with a warning
    and the plot shows the steps that ran, never NaNs.
    """
    import warnings as _warnings

    import matplotlib.pyplot as plt

    from .plotting import COLORS
    from .training import PretrainConfig, new_model, pretrain

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


def pretraining_widget(tok, train_ids: np.ndarray, val_ids: np.ndarray, prompt: str = "Signs of lithium toxicity include"):
    """Sliders for learning rate, steps and temperature, and a Run button that re-runs a short pretraining."""
    import ipywidgets as w

    from .training import PretrainConfig

    controls = {
        "lr": _choice_slider(_log_values(1e-5, 1.0), PretrainConfig.lr, "learning rate"),
        "steps": w.IntSlider(value=100, min=10, max=300, step=10, description="steps", continuous_update=False,
                             style=WIDE),
        "temperature": w.FloatSlider(value=0.8, min=0.0, max=2.0, step=0.1, description="temperature",
                                     continuous_update=False, style=WIDE),
    }
    return _interactive(lambda lr, steps, temperature: pretraining_view(tok, train_ids, val_ids, lr, steps,
                                                                        temperature, prompt), controls, manual=True)


# ============================================================================ chapter 2
def sft_view(tok, base, demos: list[dict], held_out: list[dict], cases: list[dict], lr: float, epochs: int,
             mask_prompt: bool, seed: int = 0):
    """Fine-tune a copy of ``base`` with the chosen knobs; plot the loss; judge answers to ``held_out``.

    Returns (figure, text summary, warnings); a diverging run stops early with a warning.
    """
    import warnings as _warnings

    import matplotlib.pyplot as plt

    from . import judge
    from .plotting import COLORS
    from .training import SFTConfig, answer, response_loss, sft

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
    import ipywidgets as w

    from .training import SFTConfig

    controls = {
        "lr": _choice_slider(_log_values(1e-5, 1.0), SFTConfig.lr, "learning rate"),
        "epochs": w.IntSlider(value=3, min=1, max=20, description="epochs", style=WIDE),
        "mask_prompt": w.Checkbox(value=True, description="mask the prompt", style=WIDE),
    }
    return _interactive(lambda lr, epochs, mask_prompt: sft_view(tok, base, demos, held_out, cases, lr, epochs,
                                                                 mask_prompt), controls, manual=True)


# ============================================================================ chapter 3: reward model
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
    import matplotlib.pyplot as plt

    from .plotting import COLORS

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
    ax2.set(xlabel=r"$\Delta = r_c - r_r$", ylabel=r"$\partial L / \partial r_c$", title="Gradient on the chosen reward")
    ax2.legend()
    l0, g0 = bt_curves(np.array([0.0]), m)
    text = (f"m = {m:g}: a tied pair (Δ = 0) has loss {l0[0]:.3f} and gradient {g0[0]:.3f}; "
            f"the gradient falls below 0.01 in size once Δ > m + ln 99 = {m + np.log(99):.2f}.")
    return fig, text, warnings


def bt_margin_widget():
    """A slider for the margin m over :func:`bt_margin_view`."""
    import ipywidgets as w

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
    import warnings as _warnings

    import matplotlib.pyplot as plt

    from .plotting import COLORS
    from .reward import DEFAULT_CONFIG, RewardModel, evaluate, train_reward_model

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
        hist = train_reward_model(rm, tok, train_pairs, epochs=epochs, lr=lr, batch_size=batch_size,
                                  margin=margin, seed=seed, progress=False, eval_pairs=test_pairs,
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
        ax2.plot(ev_rows.step, ev_rows.eval_accuracy, "o-", color=COLORS["vermillion"], label="held-out", gid="eval_acc")
    ax2.axhline(0.5, color=COLORS["grey"], ls="--", label="chance")
    ax2.set_ylim(0, 1.02)
    ax2.set(xlabel="step", ylabel=r"accuracy ($r_c > r_r$)", title="Ranking accuracy")
    ax2.legend(loc="lower right")
    if hist.diverged:
        text = "(no held-out accuracy: the weights are no longer finite)"
    else:
        ev = evaluate(rm, tok, test_pairs)
        text = (f"held-out accuracy {ev['accuracy']:.3f} ({ev['correct']}/{ev['n']}), 95% interval "
                f"[{ev['ci_low']:.2f}, {ev['ci_high']:.2f}]; held-out loss {ev['loss']:.3f}")
        if ev["ci_high"] < 0.5:
            notes.append("The held-out accuracy is below chance: this reward model ranks most pairs backwards.")
        elif ev["ci_low"] <= 0.5:
            notes.append("The held-out accuracy is not distinguishable from chance (0.5 lies inside its 95% interval).")
    return fig, text, notes


def reward_lr_widget(tok, sft, train_pairs, test_pairs, seed: int = 0):
    """A learning-rate slider and a Run button that re-trains the reward model from ``sft`` (a few seconds)."""
    from .reward import DEFAULT_CONFIG

    controls = {"lr": _choice_slider(_log_values(1e-5, 10.0), DEFAULT_CONFIG.lr, "learning rate")}
    return _interactive(lambda lr: reward_lr_view(tok, sft, train_pairs, test_pairs, lr, seed=seed), controls,
                        manual=True)


# ============================================================================ chapter 5: PPO
def ppo_clip_curves(ratios: np.ndarray, advantage: float, clip_eps: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-token clipped objective min(ρA, clip(ρ, 1-ε, 1+ε)A) and whether it passes a gradient.

    Computed point by point with ``losses.ppo_clip_loss`` (objective = -loss; the gradient
    passes where dloss/dlog π ≠ 0 or the unclipped term is the active one).
    """
    from .losses import ppo_clip_loss

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
    import matplotlib.pyplot as plt

    from .plotting import COLORS

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
    from .ppo import kl_optimal_policy

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
    import matplotlib.pyplot as plt

    from .plotting import COLORS
    from .ppo import kl_optimal_policy

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
    import matplotlib.pyplot as plt

    from .plotting import COLORS
    from .ppo import bandit_ppo, kl_optimal_policy

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


def ppo_run_view(tok, sft, reward_model, prompts, beta: float = 0.05, clip_eps: float = 0.2, lr: float = 1.5e-4,
                 iterations: int = 12, batch_size: int = 8, samples_per_prompt: int = 4, max_new_tokens: int = 96,
                 example_prompt: str | None = None, seed: int = 0):
    """A short PPO run of a copy of ``sft`` at β, ε and learning rate; the SFT model is not changed.

    Draws the reward-model score, the gold-judge score (when the prompts carry scenario ids)
    and the KL to the reference per iteration (gids ``"score"``, ``"judge"``, ``"kl"``), and
    returns the greedy answer to ``example_prompt`` before and after. Returns
    ``(fig, text, warnings)``; the warnings are the sane-range warnings of β, ε and the learning
    rate (:data:`SANE_RANGES`), then those of ``ppo.train_ppo`` (β = 0, ε = 0, a run stopped early).
    """
    import warnings as _warnings

    import matplotlib.pyplot as plt

    from .plotting import COLORS
    from .ppo import PPOConfig, sample_answers, train_ppo

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
    from .ppo import DEFAULT_CONFIG as cfg

    controls = {
        "beta": _choice_slider(_log_values(1e-3, 10.0, (1, 2, 5)), cfg.kl_coef, "β"),
        "clip_eps": _choice_slider(EPS_VALUES, cfg.clip_eps, "ε"),
        "lr": _choice_slider(_log_values(1e-6, 1.0, (1, 2, 5)), cfg.lr, "learning rate"),
    }
    return _interactive(lambda beta, clip_eps, lr: ppo_run_view(tok, sft, reward_model, prompts, beta, clip_eps, lr,
                                                                example_prompt=example_prompt, seed=seed),
                        controls, manual=True)


# ============================================================================ chapter 7: scorecard
def scorecard_view(scored_df, stages=None, categories=None, labels: dict | None = None, level: float = 0.95,
                   rounds: int = 300, seed: int = 0):
    """The scorecard of the chosen stages on the chosen categories: the five metrics against their targets.

    ``scored_df`` is the table of ``scorecard.score_stages`` (one row per stage and prompt).
    It is filtered to ``stages`` and ``categories`` (None = all; order of the choice kept),
    then ``scorecard.scorecard`` recomputes each mean with its bootstrap interval (``rounds``
    resamples, ``level``) over the prompts that remain. One group of bars per metric, one bar
    per stage (gid ``"bar:<stage>:<metric>"``, error bar = interval), a black tick at the
    target τ_m (gid ``"target:<metric>"``). ``labels`` maps stage names to display names.

    Nothing is trained or generated: the view only averages, so it is instant. Returns
    ``(fig, text, warnings)``; text is the table of mean [lower, upper] in %; with no stage
    or no category chosen, ``(None, "", [a warning])``.
    """
    import matplotlib.pyplot as plt
    import pandas as pd

    from course_utils import judge, scorecard
    from course_utils.plotting import COLORS, STAGE_COLORS

    labels = dict(labels or {})
    all_stages = list(pd.unique(scored_df["stage"]))
    all_cats = list(pd.unique(scored_df["category"]))
    stages = all_stages if stages is None else [s for s in stages if s in all_stages]
    categories = all_cats if categories is None else [c for c in categories if c in all_cats]
    if not stages or not categories:
        return None, "", ["Choose at least one stage and one category."]
    notes: list[str] = []
    rows = scored_df[scored_df["stage"].isin(stages) & scored_df["category"].isin(categories)]
    n = rows.groupby("stage").size()
    if n.min() < 10:
        notes.append(f"Only {int(n.min())} prompt(s) per stage in this selection: the intervals are wide, and a "
                     "bootstrap over so few prompts understates even that.")
    card = scorecard.scorecard(rows, metrics=list(judge.METRICS), level=level, rounds=rounds, seed=seed)
    card = card.set_index(["stage", "metric"])
    palette = [COLORS[c] for c in ("blue", "orange", "green", "vermillion", "sky", "purple", "yellow", "grey")]
    fig, ax = plt.subplots(figsize=(11.0, 4.6))
    width = 0.8 / len(stages)
    x = np.arange(len(judge.METRICS))
    for k, stage in enumerate(stages):
        colour = STAGE_COLORS.get(stage, palette[k % len(palette)])
        sub = card.loc[stage].loc[list(judge.METRICS)]
        pos = x + (k - (len(stages) - 1) / 2) * width
        means = sub["mean"].to_numpy()
        err = np.clip(np.vstack([means - sub["lower"].to_numpy(), sub["upper"].to_numpy() - means]), 0.0, None)
        bars = ax.bar(pos, means, width * 0.9, color=colour, label=labels.get(stage, stage), yerr=err,
                      error_kw={"elinewidth": 1.2, "capsize": 2})
        for bar, metric in zip(bars, judge.METRICS):
            bar.set_gid(f"bar:{stage}:{metric}")
    for j, metric in enumerate(judge.METRICS):
        ax.plot([j - 0.45, j + 0.45], [judge.TARGETS[metric]] * 2, color=COLORS["black"], linewidth=2.5,
                gid=f"target:{metric}")
    ax.set_xticks(x, [m.replace("_", "\n") for m in judge.METRICS])
    ax.set_ylim(0, 1.08)
    ax.set_ylabel("mean over the prompts")
    n_prompts = rows["eval_id"].nunique() if "eval_id" in rows.columns else len(rows) // len(stages)
    ax.set_title(f"{len(stages)} stage(s), {len(categories)} categor{'y' if len(categories) == 1 else 'ies'}, "
                 f"{n_prompts} prompts (black: target; bars: {level:.0%} interval)")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=10)
    lines = [f"{'stage':<28}" + "".join(f"{m[:14]:>22}" for m in judge.METRICS)]
    for stage in stages:
        cells = "".join(f"{100 * r['mean']:>7.1f} [{100 * r['lower']:5.1f}, {100 * r['upper']:5.1f}]"
                        for _, r in card.loc[stage].loc[list(judge.METRICS)].iterrows())
        lines.append(f"{labels.get(stage, stage)[:27]:<28}{cells}")
    lines.append(f"{'target':<28}" + "".join(f"{100 * judge.TARGETS[m]:>22.1f}" for m in judge.METRICS))
    return fig, "\n".join(lines), notes


def scorecard_widget(scored_df, labels: dict | None = None, seed: int = 0):
    """Two multiple-choice lists (stages, categories) over :func:`scorecard_view`; ctrl/shift-click to choose several."""
    import ipywidgets as w
    import pandas as pd

    stages = list(pd.unique(scored_df["stage"]))
    cats = list(pd.unique(scored_df["category"]))
    labels = dict(labels or {})
    style = {"description_width": "initial"}
    controls = {
        "stages": w.SelectMultiple(options=[(labels.get(s, s), s) for s in stages], value=tuple(stages),
                                   rows=min(len(stages), 10), description="stages", style=style),
        "categories": w.SelectMultiple(options=cats, value=tuple(cats), rows=min(len(cats), 10),
                                       description="categories", style=style),
    }
    return _interactive(lambda stages, categories: scorecard_view(scored_df, list(stages), list(categories),
                                                                  labels=labels, seed=seed), controls)


# ============================================================================ chapter 6: challenges
def hacking_curves_view(results: dict, beta: float, iterations: int):
    """Proxy and gold score against d = √KL for one cached PPO run, up to ``iterations``.

    ``results``: the chapter-6 tables (``experiments.load_results()``); the run is the one
    that optimised the single reward model at β = ``beta`` (``hacking_curves``). Left: the
    reward-model score (the proxy, gid ``"proxy"``) against d; right: the gold judge (gid
    ``"gold"``) and the Gao et al. (2022) form R(d) = d (a - b log d) refitted to the gold
    gain of the checkpoints shown (gid ``"gao"``). Returns ``(fig, text, warnings)``; the text
    lists the checkpoints shown and the fit, the warnings say when the fit has too few
    points, when the run stopped early, and when the gold score has fallen below the SFT
    policy's.
    """
    import matplotlib.pyplot as plt

    from .experiments import gao_peak, fit_gao, gao_curve
    from .plotting import COLORS

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
    import ipywidgets as w

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
    (``experiments.noisy_labels``); ``method`` picks the labels and the loss: one random
    annotator per pair with Bradley-Terry, the majority of the three with Bradley-Terry, or one
    annotator with the conservative loss (ε = ``smoothing``). The reward model starts from
    ``sft`` (a copy; ``sft`` is not changed). ``cached``: the ``noise_curves`` table, drawn
    behind the new point. Returns ``(fig, text, warnings)``; the new point has gid ``"live"``.
    """
    import matplotlib.pyplot as plt

    from .experiments import _orient, noisy_labels, train_reward_model_smoothed
    from .plotting import COLORS
    from .ppo import single_threaded_blas
    from .reward import RewardModel, evaluate, train_reward_model

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
    with single_threaded_blas():                          # small matrices (see ppo.single_threaded_blas)
        if "conservative" in method:
            train_reward_model_smoothed(rm, tok, pairs, eps=smoothing, epochs=epochs, seed=seed)
        else:
            train_reward_model(rm, tok, pairs, epochs=epochs, seed=seed, label="gold", progress=False)
        ev = evaluate(rm, tok, test_pairs)
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
    import ipywidgets as w

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
