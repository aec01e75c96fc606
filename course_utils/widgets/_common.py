"""What every chapter's widgets share: the pattern, the sane ranges, the sliders and the output.

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

matplotlib and ipywidgets are the only imports a widget module defers, through
:func:`deferred.deferred_import` (``_deferred_import`` here); everything else is imported at the top of its module.
"""

from __future__ import annotations

import io
from typing import NamedTuple

import numpy as np
from IPython.display import Image

from ..deferred import DEFERRED, deferred_import


# ============================================================================ deferred imports
#: Importing ``course_utils.widgets`` (as the tests and ``course_utils.beyond`` do) loads neither
#: matplotlib nor ipywidgets: a widget imports them on first use (``deferred.deferred_import``).
_DEFERRED = DEFERRED
_deferred_import = deferred_import


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
    w = _deferred_import("ipywidgets")

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
    plt = _deferred_import("matplotlib.pyplot")

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
    w = _deferred_import("ipywidgets")

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
