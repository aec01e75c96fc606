"""Tests for the chapter-5 widgets and exercise checks: the plain functions behind the sliders.

The views are called directly (no browser), at ordinary and extreme knob values: β = 0,
ε = 0, huge and zero learning rates. Each must return a figure with finite data, draw what
the numerical core computes, and explain extreme values in its warnings. The Run-PPO view is
exercised on a tiny model with a toy reward so that it takes a fraction of a second.
"""

from __future__ import annotations

import re

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from course_utils import exercises, ppo  # noqa: E402
from course_utils.losses import ppo_clip_loss  # noqa: E402
from course_utils.model import GPTConfig, TinyGPT  # noqa: E402
from course_utils.tokenizer import VocabularyTokenizer  # noqa: E402
from course_utils.widgets import (  # noqa: E402
    bandit_ppo_view,
    bandit_ppo_widget,
    kl_optimum_view,
    kl_optimum_widget,
    kl_tradeoff,
    ppo_clip_curves,
    ppo_clip_view,
    ppo_clip_widget,
    ppo_run_view,
    ppo_run_widget,
)

LABELS = ["expert", "no escalation", "missing fact", "unsafe", "vague"]
LOG_REF = np.log(np.array([0.33, 0.29, 0.22, 0.15, 0.01]))
REWARDS = np.array([-6.6, -9.6, -8.6, -8.2, -9.9])


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def lines_by_gid(fig) -> dict[str, np.ndarray]:
    return {line.get_gid(): np.asarray(line.get_xydata(), dtype=float)
            for ax in fig.axes for line in ax.get_lines() if line.get_gid()}


def assert_finite(fig) -> None:
    for ax in fig.axes:
        for line in ax.get_lines():
            assert np.isfinite(np.asarray(line.get_xydata(), dtype=float)).all(), line.get_gid()


# ----------------------------------------------------------------------------- clipped surrogate
@pytest.mark.parametrize("eps", [0.0, 0.1, 0.2, 0.8])
def test_clip_curves_match_the_formula_and_the_loss(eps):
    rho = np.linspace(0.05, 2.5, 60)
    for adv in (1.0, -1.0):
        obj, live = ppo_clip_curves(rho, adv, eps)
        np.testing.assert_allclose(obj, np.minimum(rho * adv, np.clip(rho, 1 - eps, 1 + eps) * adv), atol=1e-12)
        for r, lv in zip(rho, live):
            _, d, _ = ppo_clip_loss(np.array([np.log(r)]), np.zeros(1), np.array([adv]), eps)
            assert lv == (d[0] != 0.0)


def test_clip_view_draws_both_signs_and_warns_at_extremes():
    fig, notes = ppo_clip_view(0.2)
    assert notes == [] and len(fig.axes) == 2
    lines = lines_by_gid(fig)
    assert set(lines) == {"clip:+", "clip:-"}
    x, y = lines["clip:+"].T
    assert y[x > 1.3].max() == pytest.approx(1.2)            # flat at (1 + ε) A for A = +1
    assert any("ε = 0" in n for n in ppo_clip_view(0.0)[1])
    assert ppo_clip_view(0.8)[1]
    with pytest.raises(ValueError):
        ppo_clip_view(-0.1)


# ----------------------------------------------------------------------------- closed form
@pytest.mark.parametrize("beta", [0.0, 0.01, 1.0, 100.0])
def test_kl_optimum_view_shows_the_closed_form(beta):
    fig, text, notes = kl_optimum_view(LABELS, LOG_REF, REWARDS, beta)
    assert_finite(fig)
    star = ppo.kl_optimal_policy(LOG_REF, REWARDS, beta)
    bars = [p for p in fig.axes[0].patches if p.get_gid() == "pistar"] or \
        [p for c in fig.axes[0].containers if c.get_gid() == "pistar" for p in c]
    np.testing.assert_allclose([b.get_height() for b in bars], star, atol=1e-12)
    (kl, er), = lines_by_gid(fig)["point"]
    assert er == pytest.approx(float(star @ REWARDS))
    assert "E[r]" in text and LABELS[0] in text
    if beta == 0:
        assert any("β = 0" in n for n in notes)
    if beta == 100.0:
        assert notes


def test_kl_tradeoff_is_monotone_in_beta():
    betas = np.logspace(2, -2, 30)
    er, kl = kl_tradeoff(LOG_REF, REWARDS, betas)
    assert (np.diff(er) >= -1e-9).all() and (np.diff(kl) >= -1e-9).all()   # smaller β: more reward, more KL
    assert kl[0] < 1e-3 and er[-1] == pytest.approx(REWARDS.max(), abs=1e-3)


# ----------------------------------------------------------------------------- mini-PPO
@pytest.mark.parametrize("kw", [dict(), dict(beta=0.0), dict(clip_eps=0.0), dict(lr=0.0), dict(lr=10.0),
                                dict(beta=100.0)])
def test_bandit_view_runs_at_extremes(kw):
    fig, notes = bandit_ppo_view(LABELS, LOG_REF, REWARDS, **kw)
    assert_finite(fig)
    lines = lines_by_gid(fig)
    assert {f"pi:{lab}" for lab in LABELS} <= set(lines) and {f"star:{lab}" for lab in LABELS} <= set(lines)
    probs = np.stack([lines[f"pi:{lab}"][:, 1] for lab in LABELS], axis=1)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)
    if kw and kw.get("beta") != 100.0:
        assert notes, kw
    if kw.get("lr") == 0.0:
        np.testing.assert_allclose(probs[-1], np.exp(LOG_REF) / np.exp(LOG_REF).sum())


def test_bandit_view_default_reaches_the_closed_form():
    fig, notes = bandit_ppo_view(LABELS, LOG_REF, REWARDS, beta=1.0)
    lines = lines_by_gid(fig)
    final = np.array([lines[f"pi:{lab}"][-20:, 1].mean() for lab in LABELS])
    star = np.array([lines[f"star:{lab}"][0, 1] for lab in LABELS])
    np.testing.assert_allclose(final, star, atol=0.05)
    assert notes == []


# ----------------------------------------------------------------------------- Run PPO
class CountReward:
    def __init__(self, token_id):
        self.token_id = token_id

    def forward(self, tokens, lengths):
        real = np.arange(tokens.shape[1])[None, :] < np.asarray(lengths)[:, None]
        return ((np.asarray(tokens) == self.token_id) & real).sum(axis=1).astype(float)


@pytest.fixture(scope="module")
def toy():
    tok = VocabularyTokenizer.fit(["warfarin bleeding risk dose renal liver check prescriber safe avoid"])
    sft = TinyGPT(GPTConfig(vocab_size=tok.vocab_size, d_model=16, n_layers=1, n_heads=2, max_len=24))
    return tok, sft, CountReward(tok.token_to_id["safe"]), ["warfarin dose", "renal dose check", "liver risk"]


@pytest.mark.parametrize("kw,warns", [(dict(), False), (dict(beta=0.0), True), (dict(clip_eps=0.0), True),
                                      (dict(lr=1e3), True)])
def test_ppo_run_view_on_a_toy_problem(toy, kw, warns):
    tok, sft, rm, prompts = toy
    before = {k: a.copy() for k, a in sft.params.items()}
    args = dict(beta=0.05, clip_eps=0.2, lr=1e-3) | kw
    fig, text, notes = ppo_run_view(tok, sft, rm, prompts, iterations=3, max_new_tokens=6,
                                    example_prompt="warfarin dose", **args)
    assert_finite(fig)
    assert {"score", "kl"} <= set(lines_by_gid(fig))
    assert text.startswith("Q: warfarin dose") and "SFT:" in text and "PPO:" in text
    assert bool(notes) == warns, notes
    for k in before:                                          # the SFT model is never changed
        np.testing.assert_array_equal(sft.params[k], before[k])


def test_widget_builders_build_headless(toy):
    import ipywidgets as w

    tok, sft, rm, prompts = toy
    for box in (ppo_clip_widget(), kl_optimum_widget(LABELS, LOG_REF, REWARDS),
                bandit_ppo_widget(LABELS, LOG_REF, REWARDS), ppo_run_widget(tok, sft, rm, prompts)):
        assert isinstance(box, w.Box)


# ----------------------------------------------------------------------------- exercises
def test_exercise_checks_accept_the_reference_and_reject_mistakes(capsys):
    def gae_ok(r, v, g, lam):
        return ppo.gae(r, v, g, lam)[0]

    def gae_wrong(r, v, g, lam):                              # forgets that V after the end is 0
        return ppo.gae(r, v, g, lam)[0] + 0.1

    def clip_ok(rho, a, eps):
        return min(rho * a, float(np.clip(rho, 1 - eps, 1 + eps)) * a)

    def clip_wrong(rho, a, eps):                              # clips on both sides (max instead of min)
        return max(rho * a, float(np.clip(rho, 1 - eps, 1 + eps)) * a)

    def opt_ok(p, r, beta):
        z = np.log(p) + r / beta
        w = np.exp(z - z.max())
        return w / w.sum()

    def opt_naive(p, r, beta):                                # overflows at r / β = 800
        w = p * np.exp(r / beta)
        return w / w.sum()

    def stub(*args):
        raise NotImplementedError

    assert exercises.check_gae_one_sequence(gae_ok)
    assert not exercises.check_gae_one_sequence(gae_wrong)
    assert exercises.check_clipped_objective(clip_ok)
    assert not exercises.check_clipped_objective(clip_wrong)
    assert exercises.check_kl_optimum(opt_ok)
    with np.errstate(over="ignore", invalid="ignore"):
        assert not exercises.check_kl_optimum(opt_naive)
    assert not exercises.check_gae_one_sequence(stub)
    out = capsys.readouterr().out
    assert "correct on all" in out and "not yet" in out and "not implemented yet" in out


# ----------------------------------------------------------------------------- sane ranges, slider grids
KNOBS = ("β", "ε", "K", "learning rate")       # the sliders tools/browser_test.py drags to both ends
NAN = re.compile(r"\bnan\b", re.I)


def knobs_of(box) -> dict:
    return {c.description: c for c in box.children[0].children if getattr(c, "description", "") in KNOBS}


def output_text(box) -> str:
    return "".join(o.get("text", "") for o in box.children[1].outputs)


@pytest.mark.parametrize("eps", [0.01, 0.5, 0.8])
def test_clip_view_warns_outside_the_sane_range(eps):
    fig, notes = ppo_clip_view(eps)
    assert notes[0].startswith(f"Warning: ε {eps:g} is"), notes
    assert_finite(fig)


@pytest.mark.parametrize("beta, phrase", [(0.01, "tiny"), (100.0, "huge")])
def test_kl_optimum_view_warns_at_tiny_and_huge_beta(beta, phrase):
    fig, text, notes = kl_optimum_view(LABELS, LOG_REF, REWARDS, beta)
    assert notes[0].startswith(f"Warning: β {beta:g} is {phrase} next to the spread of the rewards"), notes
    assert_finite(fig)
    assert not NAN.search(text + " ".join(notes))
    assert kl_optimum_view(LABELS, LOG_REF, REWARDS, 1.0)[2] == []        # β / spread = 0.3: inside the range


@pytest.mark.parametrize("kw, start", [(dict(beta=0.01), "Warning: β 0.01 is tiny"),
                                       (dict(beta=100.0), "Warning: β 100 is huge"),
                                       (dict(clip_eps=0.5), "Warning: ε 0.5 is large"),
                                       (dict(lr=1e-3), "Warning: learning rate 0.001 is tiny"),
                                       (dict(lr=10.0), "Warning: learning rate 10 is huge")])
def test_bandit_view_warns_outside_the_sane_ranges(kw, start):
    fig, notes = bandit_ppo_view(LABELS, LOG_REF, REWARDS, **kw)
    assert notes and notes[0].startswith(start), notes
    assert_finite(fig)


@pytest.mark.slow
def test_slider_widgets_start_at_their_defaults_and_warn_at_both_ends():
    """What the browser test does: every β, ε and learning-rate slider at its two ends."""
    for box, defaults in ((ppo_clip_widget(), {"ε": 0.2}),
                          (kl_optimum_widget(LABELS, LOG_REF, REWARDS, beta=5.0), {"β": 5.0}),
                          (bandit_ppo_widget(LABELS, LOG_REF, REWARDS, 5.0, 0.2, 0.02), {"β": 5.0, "ε": 0.2,
                                                                                         "learning rate": 0.02})):
        knobs = knobs_of(box)
        assert {k: s.value for k, s in knobs.items()} == defaults   # the chapter's values, not snapped ones
        for name, slider in knobs.items():
            for index in (0, len(slider.options) - 1):
                slider.index = index
                text = output_text(box)
                assert f"⚠ Warning: {name} " in text or f"⚠ {name} = 0" in text, (name, slider.value, text)
                assert not NAN.search(text) and "Traceback" not in text
            slider.value = defaults[name]


def test_widget_defaults_off_the_grid_are_kept():
    box = bandit_ppo_widget(LABELS, LOG_REF, REWARDS, beta=0.7, clip_eps=0.13, lr=0.017)
    knobs = knobs_of(box)
    assert (knobs["β"].value, knobs["ε"].value, knobs["learning rate"].value) == (0.7, 0.13, 0.017)
    assert knobs["learning rate"].label == "0.017"


def test_ppo_run_widget_starts_at_the_chapter_defaults(toy):
    box = ppo_run_widget(*toy)
    knobs = knobs_of(box)
    cfg = ppo.DEFAULT_CONFIG
    assert (knobs["β"].value, knobs["ε"].value, knobs["learning rate"].value) == (cfg.kl_coef, cfg.clip_eps, cfg.lr)
    assert (knobs["β"].label, knobs["learning rate"].label) == ("0.1", "7.5e-5")
    assert all(s.style.description_width == "initial" for s in knobs.values())


def test_ppo_run_view_warns_at_the_ends_of_its_sliders(toy):
    tok, sft, rm, prompts = toy
    knobs = knobs_of(ppo_run_widget(tok, sft, rm, prompts))
    base = dict(beta=0.05, clip_eps=0.2, lr=1e-3)
    for name, key in (("β", "beta"), ("ε", "clip_eps"), ("learning rate", "lr")):
        values = [v for _, v in knobs[name].options]
        for value in (values[0], values[-1]):
            fig, text, notes = ppo_run_view(tok, sft, rm, prompts, iterations=2, max_new_tokens=6,
                                            example_prompt="warfarin dose", **(base | {key: value}))
            assert notes, (name, value)
            assert notes[0].startswith(f"Warning: {name} ") or notes[0].startswith(f"{name} = 0"), notes
            assert_finite(fig)
            assert not NAN.search(text + " ".join(notes))
    _, _, notes = ppo_run_view(tok, sft, rm, prompts, beta=0.05, clip_eps=0.2, lr=10.0, iterations=2,
                               max_new_tokens=6)
    assert notes[0].startswith("Warning: learning rate 10 is huge"), notes
    assert not any(n.startswith("lr = ") for n in notes), notes          # train_ppo's own lr warning: said once
