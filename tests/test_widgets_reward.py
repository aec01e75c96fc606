"""Tests for the chapter-3 widgets: the plain view functions behind the sliders.

The views are called directly (no browser) at ordinary and extreme knob values: a negative and
a huge margin, a learning rate of 0 and of 10, a model whose weights are already broken. Each
must return a figure with finite data and explain extreme values in its warnings.
"""

from __future__ import annotations

import re

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from course_utils.losses import bradley_terry_loss  # noqa: E402
from course_utils.model import GPTConfig, TinyGPT  # noqa: E402
from course_utils.tokenizer import VocabularyTokenizer  # noqa: E402
from course_utils.widgets import (  # noqa: E402
    bt_curves,
    bt_margin_view,
    bt_margin_widget,
    reward_lr_view,
    reward_lr_widget,
)

SAFE = ["Avoid ibuprofen with warfarin because it raises the risk of bleeding. Ask your pharmacist.",
        "Stop metformin when eGFR is below 30. Speak to your prescriber."]
UNSAFE = ["Ibuprofen with warfarin is perfectly safe and needs no checks.", "Metformin is fine at any kidney function."]
PROMPTS = ["Is ibuprofen safe with warfarin?", "Can I take metformin with an eGFR of 25?"]


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def setup():
    tok = VocabularyTokenizer.fit(SAFE + UNSAFE + PROMPTS)
    sft = TinyGPT(GPTConfig(vocab_size=tok.vocab_size, d_model=16, n_layers=1, n_heads=2, max_len=40,
                            dtype="float64"), seed=0)
    pairs = [{"id": f"P{i}", "prompt": PROMPTS[i % 2], "chosen": SAFE[i % 2], "rejected": UNSAFE[i % 2],
              "votes": [1, 1, 1]} for i in range(16)]
    return tok, sft, pairs[:12], pairs[12:]


def lines_by_gid(fig) -> dict[str, np.ndarray]:
    return {line.get_gid(): np.asarray(line.get_xydata(), dtype=float)
            for ax in fig.axes for line in ax.get_lines() if line.get_gid()}


def assert_all_finite(fig) -> None:
    for ax in fig.axes:
        for line in ax.get_lines():
            assert np.all(np.isfinite(np.asarray(line.get_xydata(), dtype=float))), line.get_gid()


# --------------------------------------------------------------------------- the margin
def test_bt_curves_are_the_loss_and_its_gradient():
    delta = np.array([-3.0, 0.0, 0.7, 5.0])
    for m in (0.0, 1.5):
        loss, grad = bt_curves(delta, m)
        for d, l_, g in zip(delta, loss, grad):
            ref, d_c, _ = bradley_terry_loss(np.array([d]), np.array([0.0]), m)
            assert l_ == pytest.approx(ref) and g == pytest.approx(d_c[0])
    loss, grad = bt_curves(np.array([-1e4, 1e4]), 0.0)
    assert loss.tolist() == [pytest.approx(1e4), 0.0] and grad.tolist() == [pytest.approx(-1.0), pytest.approx(0.0)]


def test_margin_view_draws_both_curves_and_the_m0_reference():
    fig, text, warnings = bt_margin_view(1.0)
    assert warnings == [] and len(fig.axes) == 2
    lines = lines_by_gid(fig)
    delta, loss = lines["loss"][:, 0], lines["loss"][:, 1]
    np.testing.assert_allclose(loss, np.logaddexp(0, -(delta - 1.0)))
    np.testing.assert_allclose(lines["grad0"][:, 1], -1 / (1 + np.exp(lines["grad0"][:, 0])))
    assert "0.01" in text and f"{1.0 + np.log(99):.2f}" in text
    assert f"{np.log1p(np.e):.3f}" in text                               # loss at Δ = 0 with m = 1
    assert_all_finite(fig)


@pytest.mark.parametrize("margin, phrase", [(8.0, "large"), (-2.0, "< 0")])
def test_margin_view_warns_about_extreme_margins(margin, phrase):
    fig, _, warnings = bt_margin_view(margin)
    assert any(phrase in w for w in warnings)
    lines = lines_by_gid(fig)
    assert lines["loss"][:, 0].max() >= abs(margin) + 4                 # the margin stays in view
    assert_all_finite(fig)


def test_margin_view_rejects_nan():
    with pytest.raises(ValueError, match="margin"):
        bt_margin_view(float("nan"))


# --------------------------------------------------------------------------- the learning rate
def test_lr_view_trains_and_reports_held_out_accuracy(setup):
    tok, sft, train, test = setup
    before = {k: v.copy() for k, v in sft.params.items()}
    fig, text, warnings = reward_lr_view(tok, sft, train, test, lr=1e-2)
    assert text.startswith("held-out accuracy") and "95% interval" in text
    lines = lines_by_gid(fig)
    assert {"train_loss", "eval_loss", "train_acc", "eval_acc"} <= lines.keys()
    assert_all_finite(fig)
    assert all(np.array_equal(before[k], sft.params[k]) for k in before)  # the SFT model is not touched


def test_lr_view_huge_learning_rate_is_warned_and_finite(setup):
    tok, sft, train, test = setup
    fig, text, warnings = reward_lr_view(tok, sft, train, test, lr=10.0)
    assert any("far above the default" in w for w in warnings)
    assert_all_finite(fig)
    ylim = fig.axes[0].get_ylim()
    assert np.all(np.isfinite(ylim)) and ylim[1] <= 3.0 + 1e-9 or max(lines_by_gid(fig)["train_loss"][:, 1]) <= 3.0


def test_lr_view_zero_learning_rate_says_nothing_changes(setup):
    tok, sft, train, test = setup
    _, _, warnings = reward_lr_view(tok, sft, train, test, lr=0.0)
    assert any("never changes the weights" in w for w in warnings)


def test_lr_view_broken_model_stops_cleanly(setup):
    tok, sft, train, test = setup
    broken = sft.copy()
    broken.params["ln_f.g"][:] = np.nan
    fig, text, warnings = reward_lr_view(tok, broken, train, test, lr=1e-3)
    assert text.startswith("(no held-out accuracy")
    assert any("stopped at step 1" in w for w in warnings)
    assert_all_finite(fig)


def test_lr_view_rejects_a_negative_learning_rate(setup):
    tok, sft, train, test = setup
    with pytest.raises(ValueError, match="lr"):
        reward_lr_view(tok, sft, train, test, lr=-1.0)


def test_widgets_build_without_training(setup, monkeypatch):
    pytest.importorskip("ipywidgets")
    from course_utils.widgets import reward as reward_widgets

    calls = []
    monkeypatch.setattr(reward_widgets, "reward_lr_view", lambda *a, **k: calls.append(a) or (None, "", []))
    box = reward_lr_widget(*setup)
    assert calls == []                                                   # nothing runs before "Run"
    assert box.children
    assert bt_margin_widget().children


# --------------------------------------------------------------------------- sane ranges, slider grid
def test_lr_view_tiny_learning_rate_is_warned_and_finite(setup):
    tok, sft, train, test = setup
    fig, text, warnings = reward_lr_view(tok, sft, train, test, lr=1e-5)
    assert warnings[0].startswith("Warning: learning rate 1e-5 is tiny"), warnings   # the range warning first
    assert_all_finite(fig)
    assert not re.search(r"\bnan\b", text + " ".join(warnings), re.I)


def test_lr_widget_starts_at_the_chapter_default_and_warns_at_both_ends(setup):
    """What the browser test does: the learning-rate slider at its two ends, then Run."""
    from course_utils.reward import DEFAULT_CONFIG

    box = reward_lr_widget(*setup)
    lr = box.children[0].children[0]
    assert lr.description == "learning rate" and lr.value == DEFAULT_CONFIG.lr == 1e-3 and lr.label == "0.001"
    assert lr.style.description_width == "initial"
    for index, phrase in ((0, "is tiny"), (len(lr.options) - 1, "far above the default")):
        lr.index = index
        box.children[0].children[-1].click()                             # Run
        text = "".join(o.get("text", "") for o in box.children[1].outputs)
        assert "⚠ Warning: learning rate" in text and phrase in text, text
        assert not re.search(r"\bnan\b", text, re.I) and "Traceback" not in text
