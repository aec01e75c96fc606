"""Tests for the chapter-6 widgets and exercise checks: the plain functions behind the sliders.

The hacking view reads cached tables (built here by hand, so the test does not depend on a
rebuilt cache) and is called at every β and at extreme run lengths; the noise view trains a
tiny reward model at flip rates 0, 0.5 and 1. Each must return a figure with finite data and
explain extreme values in its warnings. The exercise checks must pass the reference, fail a
wrong answer, and report an unfinished stub without raising.
"""

from __future__ import annotations

import re

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from course_utils import challenges, checkpoints, data, exercises  # noqa: E402
from course_utils.losses import bradley_terry_loss  # noqa: E402
from course_utils.model import GPTConfig, TinyGPT  # noqa: E402
from course_utils.widgets import (  # noqa: E402
    hacking_curves_view,
    hacking_curves_widget,
    noise_rate_view,
    noise_rate_widget,
)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def lines_by_gid(fig) -> dict[str, np.ndarray]:
    return {line.get_gid(): np.asarray(line.get_xydata(), dtype=float)
            for ax in fig.axes for line in ax.get_lines() if line.get_gid()}


def fake_results() -> dict:
    """Curves of two β runs and an ensemble run, shaped like ``challenges`` writes them."""
    rows = []
    for beta, its, a, b in ((0.002, [0, 4, 8, 12, 20, 30, 40], 0.03, 0.012), (0.2, [0, 20, 40], 0.02, 0.0)):
        for it in its:
            kl = 2.0 * it if beta < 0.1 else 0.3 * it
            d = np.sqrt(kl)
            rows.append({"run": f"β={beta:g}", "beta": beta, "optimised": "reward model", "iteration": it, "kl": kl,
                         "d": d, "proxy": -1.5 + 0.3 * d, "gold": 0.33 + float(challenges.gao_curve(d, a, b))})
    rows.append({"run": "ensemble β=0.002", "beta": 0.002, "optimised": "ensemble (mean of 3)", "iteration": 0,
                 "kl": 0.0, "d": 0.0, "proxy": -1.5, "gold": 0.33})
    return {"hacking_curves": pd.DataFrame(rows)}


# ----------------------------------------------------------------------------- reward hacking view
@pytest.mark.parametrize("beta", [0.002, 0.2])
def test_hacking_view_draws_the_cached_run_and_refits_gao(beta):
    results = fake_results()
    fig, text, notes = hacking_curves_view(results, beta, 40)
    lines = lines_by_gid(fig)
    run = results["hacking_curves"]
    run = run[(run.beta == beta) & (run.optimised == "reward model")]
    np.testing.assert_allclose(lines["gold"][:, 1], run.gold)
    np.testing.assert_allclose(lines["proxy"][:, 0], run.d)
    assert np.isfinite(lines["gao"]).all()
    if beta == 0.002:                              # built from a = 0.03, b = 0.012: the fit recovers them
        assert "a = 0.0300, b = 0.0120" in text
    assert "iteration" in text


def test_hacking_view_at_extreme_run_lengths_and_unknown_beta():
    results = fake_results()
    fig, text, notes = hacking_curves_view(results, 0.002, 0)
    assert "gao" not in lines_by_gid(fig)
    assert any("at least two checkpoints" in n for n in notes)
    fig, text, notes = hacking_curves_view(results, 0.002, 500)
    assert any("up to iteration 40" in n for n in notes)
    fig, text, notes = hacking_curves_view(results, 0.05, 40)
    assert any("nearest" in n for n in notes)
    fig, text, notes = hacking_curves_view(results, 0.002, 8)
    assert any("fewer than four" in n for n in notes)


def test_hacking_view_warns_when_gold_falls_below_sft():
    results = fake_results()
    c = results["hacking_curves"]
    c.loc[(c.beta == 0.002) & (c.iteration == 40), "gold"] = 0.2
    _, _, notes = hacking_curves_view(results, 0.002, 40)
    assert any("reward hacking" in n for n in notes)


def test_hacking_widget_builds_without_computing():
    pytest.importorskip("ipywidgets")
    w = pytest.importorskip("ipywidgets")
    box = hacking_curves_widget(fake_results())
    controls, out = box.children
    assert [c.description for c in controls.children] == ["β", "run length"]
    assert isinstance(out, w.Output) and out.outputs          # the view was drawn once, from the cache
    slider = controls.children[1]
    slider.value = slider.max - 1                             # moving a slider redraws the view, no error
    assert out.outputs and not any(o.get("output_type") == "error" for o in out.outputs)


# ----------------------------------------------------------------------------- noise view
@pytest.fixture(scope="module")
def tiny():
    tok = checkpoints.build_tokenizer()
    sft = TinyGPT(GPTConfig(vocab_size=tok.vocab_size, d_model=8, n_layers=1, n_heads=2, max_len=160), seed=0)
    prefs = data.load_preferences()
    train = [p for p in prefs if p["split"] == "train"][:12]
    test = [p for p in prefs if p["split"] == "test"][:6]
    return tok, sft, train, test


@pytest.mark.parametrize("flip_rate, method", [(0.0, "one annotator"), (0.5, "majority of 3"),
                                               (1.0, "one annotator, conservative loss")])
def test_noise_view_trains_and_reports(tiny, flip_rate, method):
    tok, sft, train, test = tiny
    before = {k: a.copy() for k, a in sft.params.items()}
    cached = pd.DataFrame({"method": ["clean labels", "one annotator", "one annotator"], "flip_rate": [0.0, 0.0, 0.4],
                           "accuracy": [0.97, 0.95, 0.7]})
    fig, text, notes = noise_rate_view(tok, sft, train, test, flip_rate, method, epochs=1, cached=cached)
    live = lines_by_gid(fig)["live"]
    assert live.shape == (1, 2) and live[0, 0] == flip_rate and 0.0 <= live[0, 1] <= 1.0
    assert "held-out accuracy" in text
    if flip_rate >= 0.5:
        assert any("half of the votes" in n for n in notes)
    if flip_rate == 1.0:
        assert "100.0% of the training labels" in text or "% of the training labels" in text
    for k, a in sft.params.items():                   # the SFT model is not changed
        np.testing.assert_array_equal(a, before[k])


def test_noise_view_rejects_bad_knobs(tiny):
    tok, sft, train, test = tiny
    with pytest.raises(ValueError):
        noise_rate_view(tok, sft, train, test, 1.5)
    with pytest.raises(ValueError):
        noise_rate_view(tok, sft, train, test, 0.1, "ask my cat")


def test_noise_widget_builds_without_training(tiny):
    pytest.importorskip("ipywidgets")
    w = pytest.importorskip("ipywidgets")
    tok, sft, train, test = tiny
    controls, out = noise_rate_widget(tok, sft, train, test).children
    assert [c.description for c in controls.children] == ["flip rate p", "labels", "Run"]
    assert isinstance(controls.children[-1], w.Button)
    texts = "".join(o.get("text", "") for o in out.outputs)
    assert "press Run" in texts                               # nothing trained until the button is pressed


# ----------------------------------------------------------------------------- exercise checks
def test_effectiveness_check(capsys):
    assert exercises.check_effectiveness(lambda m, b, g: challenges.effectiveness(m, b, g))
    assert not exercises.check_effectiveness(lambda m, b, g: (m - b) / (g - b) if g != b else 0.0)

    def stub(m, b, g):
        raise NotImplementedError

    assert not exercises.check_effectiveness(stub)
    assert "not implemented yet" in capsys.readouterr().out


def test_conservative_bt_check():
    def reference(delta, eps):
        loss, g, _ = bradley_terry_loss(np.array([delta]), np.array([0.0]), label_smoothing=eps)
        return loss, float(g[0])

    def naive(delta, eps):                 # overflows at |Δ| = 800
        s = 1 / (1 + np.exp(-delta))
        return float(-(1 - eps) * np.log(s) - eps * np.log(1 - s)), float(s - (1 - eps))

    assert exercises.check_conservative_bt(reference)
    with np.errstate(all="ignore"):
        assert not exercises.check_conservative_bt(naive)
    assert not exercises.check_conservative_bt(lambda d, e: (0.0, 0.0))


def test_gao_fit_check():
    assert exercises.check_gao_fit(lambda d, r: challenges.fit_gao(d, r))
    assert not exercises.check_gao_fit(lambda d, r: (1.0, 0.0))
    assert not exercises.check_gao_fit(lambda d, r: 1 / 0)


# ----------------------------------------------------------------------------- sane ranges
@pytest.mark.parametrize("beta, phrase", [(0.002, "Warning: β 0.002 is tiny"), (0.2, "Warning: β 0.2 is large")])
def test_hacking_view_warns_at_both_cached_betas(beta, phrase):
    """The cached runs bracket the chapter-5 default β = 0.05: both ends of the β slider warn."""
    fig, text, notes = hacking_curves_view(fake_results(), beta, 40)
    assert notes and notes[0].startswith(phrase), notes
    for line in lines_by_gid(fig).values():
        assert np.isfinite(line).all()
    assert not re.search(r"\bnan\b", text + " ".join(notes), re.I)


def test_hacking_widget_warns_at_both_ends_of_its_beta_slider():
    pytest.importorskip("ipywidgets")
    box = hacking_curves_widget(fake_results())
    beta = next(c for c in box.children[0].children if c.description == "β")
    assert beta.value == 0.002 and beta.style.description_width == "initial"
    for index in (0, len(beta.options) - 1):
        beta.index = index
        text = "".join(o.get("text", "") for o in box.children[1].outputs)
        assert "⚠ Warning: β" in text and not re.search(r"\bnan\b", text, re.I), text
