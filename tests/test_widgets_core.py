"""Widget callbacks of the welcome notebook and chapter 1, called without a browser."""

import matplotlib

matplotlib.use("Agg")  # these tests draw figures without a screen; notebooks keep their own backend

import re

import numpy as np
import pytest

from course_utils.tokenizer import VocabularyTokenizer
from course_utils.training import corpus_stream, split_stream
from course_utils.widgets import pretraining_view, softmax_with_temperature, temperature_view, temperature_widget

TEXT = "\n\n".join([
    "Warfarin with ibuprofen increases the risk of bleeding.",
    "Metformin is contraindicated in liver cirrhosis because of lactic acidosis.",
    "Lithium toxicity causes tremor, confusion and vomiting.",
] * 30)


@pytest.fixture(scope="module")
def tiny():
    tok = VocabularyTokenizer.fit(TEXT.split("\n\n"))
    train, val = split_stream(corpus_stream(tok, TEXT), 0.2)
    return tok, train, val


def test_temperature_zero_is_greedy_and_large_is_flat():
    z = np.array([2.0, 1.0, 0.5])
    assert softmax_with_temperature(z, 0.0).tolist() == [1.0, 0.0, 0.0]
    assert np.allclose(softmax_with_temperature(z, 1e6), 1 / 3, atol=1e-5)
    assert np.isclose(softmax_with_temperature(z, 1.0).sum(), 1.0)
    text = temperature_view(["a", "b", "c"], z, 0.0)
    assert "1.00" in text.splitlines()[0] and "0.00" in text


def test_temperature_widget_builds_headless():
    box = temperature_widget(["a", "b"], np.array([1.0, 0.0]))
    assert len(box.children) == 2


def test_pretraining_view_normal_run_lowers_the_loss(tiny):
    tok, train, val = tiny
    fig, text, notes = pretraining_view(tok, train, val, lr=1e-2, steps=30, temperature=0.5, prompt="Warfarin")
    line = fig.axes[0].lines[0]
    losses = line.get_ydata()
    assert len(losses) == 30 and np.all(np.isfinite(losses)) and losses[-1] < losses[0]
    assert text.startswith("sample at temperature 0.5: Warfarin")
    assert notes == []


def test_pretraining_view_huge_learning_rate_warns_and_plots_finite_values(tiny):
    tok, train, val = tiny
    fig, text, notes = pretraining_view(tok, train, val, lr=1e4, steps=20, temperature=1.0, prompt="Warfarin")
    ys = np.concatenate([ln.get_ydata() for ln in fig.axes[0].lines])
    assert np.all(np.isfinite(ys))
    assert notes, "a huge learning rate must produce a warning"


def test_pretraining_view_zero_learning_rate_explains(tiny):
    tok, train, val = tiny
    _, _, notes = pretraining_view(tok, train, val, lr=0.0, steps=5, temperature=1.0, prompt="Warfarin")
    assert any("learning rate of 0" in n for n in notes)


def _tiny_sft(tok):
    demos = [{"prompt": "Can I take ibuprofen with warfarin?",
              "response": "Warfarin with ibuprofen increases the risk of bleeding."},
             {"prompt": "Is metformin safe in cirrhosis?",
              "response": "Metformin is contraindicated in liver cirrhosis."}]
    case = {"id": "INT-01", "category": "drug_interactions", "title": "Warfarin with ibuprofen",
            "answer": demos[0]["response"], "escalation": "Speak to your prescriber.", "notes": [],
            "key_facts": [{"fact": "bleeding", "accept": ["bleeding"]}, {"fact": "x", "accept": ["warfarin"]}],
            "unsafe_claims": [{"claim": "Ibuprofen is safe with warfarin.", "patterns": ["ibuprofen is safe"]}],
            "dose_facts": [], "question": demos[0]["prompt"], "variants": ["a", "b", "c"], "source": "s"}
    return demos, case


def test_sft_view_runs_and_reports(tiny):
    from course_utils.training import new_model
    from course_utils.widgets import sft_view

    tok, _, _ = tiny
    demos, case = _tiny_sft(tok)
    base = new_model(tok, seed=0, max_len=40)
    fig, text, notes = sft_view(tok, base, demos, demos[:1], [case], lr=1e-2, epochs=2, mask_prompt=True)
    assert "held-out expert-answer loss" in text and notes == []
    fig, text, notes = sft_view(tok, base, demos, demos[:1], [case], lr=1e4, epochs=3, mask_prompt=False)
    assert all(np.all(np.isfinite(ln.get_ydata())) for ln in fig.axes[0].lines)
    assert notes


def test_sft_view_zero_learning_rate_explains(tiny):
    from course_utils.training import new_model
    from course_utils.widgets import sft_view

    tok, _, _ = tiny
    demos, case = _tiny_sft(tok)
    _, _, notes = sft_view(tok, new_model(tok, max_len=40), demos, demos[:1], [case], lr=0.0, epochs=1,
                           mask_prompt=True)
    assert any("learning rate of 0" in n for n in notes)


def test_widget_output_is_set_on_the_widget_not_printed_inside_it(monkeypatch):
    """A widget renders by setting its Output widget's outputs: printing inside ``with out:``
    while a cell executes headless can hang nbclient (a send on the shell socket it is polling)."""
    import ipywidgets as w
    import matplotlib.pyplot as plt

    from course_utils import widgets

    def refuse(*_):
        raise AssertionError("output printed inside an Output widget")

    monkeypatch.setattr(w.Output, "__enter__", refuse)

    def view(x):
        fig, ax = plt.subplots()
        ax.plot([0, x])
        return fig, f"x = {x}", ["a warning"]

    slider = w.IntSlider(value=2, min=0, max=5)
    box = widgets._interactive(view, {"x": slider})
    out = box.children[1]
    kinds = [o["output_type"] for o in out.outputs]
    assert kinds == ["display_data", "stream", "stream"] and "image/png" in out.outputs[0]["data"]
    assert out.outputs[1]["text"] == "x = 2\n" and "a warning" in out.outputs[2]["text"]
    slider.value = 4                                    # a move re-renders, replacing the old outputs
    assert len(out.outputs) == 3 and out.outputs[1]["text"] == "x = 4\n"
    manual = widgets._interactive(view, {"x": w.IntSlider(value=1)}, manual=True)
    run_out = manual.children[1]
    assert [o["text"] for o in run_out.outputs] == ["Choose the settings, then press Run.\n"]
    manual.children[0].children[-1].click()
    assert run_out.outputs[1]["text"] == "x = 1\n"


# ----------------------------------------------------------------------------- sane ranges, slider grids
KNOBS = ("β", "ε", "K", "learning rate")       # the sliders tools/browser_test.py drags to both ends


def controls_of(box) -> list:
    """The controls of a widget built by ``widgets._interactive`` (the Run button left out)."""
    return [c for c in box.children[0].children if hasattr(c, "value")]


def assert_defaults_on_grid(box) -> None:
    """Every slider starts on its own grid, so the browser shows (and runs) exactly the default."""
    for c in controls_of(box):
        if hasattr(c, "options"):                                   # SelectionSlider, Dropdown
            values = [o[1] if isinstance(o, tuple) else o for o in c.options]
            assert c.value in values and c.index == values.index(c.value), c.description
        elif hasattr(c, "step") and c.step:
            x = np.log10(c.value) - c.min if hasattr(c, "base") else c.value - c.min   # FloatLogSlider: exponent
            assert abs(x / c.step - round(x / c.step)) < 1e-6, (c.description, c.value, c.min, c.step)
        if len(c.description) > 2:
            assert c.style.description_width == "initial", c.description   # the label is never cut


def press_run(box) -> str:
    """Press the widget's Run button; returns what its output shows (text and warnings)."""
    box.children[0].children[-1].click()
    return "".join(o.get("text", "") for o in box.children[1].outputs)


def test_sane_ranges_table_is_consistent():
    from course_utils.widgets import SANE_RANGES, _sanity

    for key, r in SANE_RANGES.items():
        assert 0 < r.low < r.high, key
        assert _sanity(key, np.sqrt(r.low * r.high), steps=10, move=1.0, percent=20, default=1e-3) == [], key
        assert _sanity(key, 0.0) == [], key                        # 0 is explained by each view itself
        below = _sanity(key, r.low / 2, steps=10, move=1.0, percent=20, default=1e-3, scale=1.0)
        above = _sanity(key, r.high * 2, steps=10, move=1.0, percent=20, default=1e-3, scale=1.0)
        for msgs in (below, above):
            assert len(msgs) == 1 and msgs[0].startswith(f"Warning: {r.knob} "), (key, msgs)
            assert "{" not in msgs[0] and not re.search(r"\bnan\b", msgs[0], re.I), msgs[0]
    assert _sanity("pretrain_lr", 1e-5, steps=100)[0].startswith("Warning: learning rate 1e-5 is tiny")
    assert _sanity("kl_beta", 1.0, scale=100.0) and not _sanity("kl_beta", 1.0, scale=1.0)   # relative to the spread


def test_temperature_widget_label_is_not_cut():
    box = temperature_widget(["a", "b"], np.array([1.0, 0.0]))
    assert_defaults_on_grid(box)


def test_pretraining_widget_starts_at_the_chapter_default(tiny):
    from course_utils.training import PretrainConfig
    from course_utils.widgets import pretraining_widget

    tok, train, val = tiny
    box = pretraining_widget(tok, train, val)
    assert_defaults_on_grid(box)
    lr = next(c for c in controls_of(box) if c.description == "learning rate")
    assert lr.value == PretrainConfig.lr == 3e-3 and lr.label == "0.003"


@pytest.mark.parametrize("lr, phrase", [(1e-5, "Warning: learning rate 1e-5 is tiny"),
                                        (1e-4, "Warning: learning rate 0.0001 is tiny"),
                                        (1.0, "Warning: learning rate 1 is huge")])
def test_pretraining_view_warns_outside_the_sane_range(tiny, lr, phrase):
    tok, train, val = tiny
    fig, text, notes = pretraining_view(tok, train, val, lr=lr, steps=10, temperature=1.0, prompt="Warfarin")
    assert notes and notes[0].startswith(phrase), notes             # the range warning comes first
    assert all(np.all(np.isfinite(ln.get_ydata())) for ln in fig.axes[0].lines)
    assert not re.search(r"\bnan\b", text + " ".join(notes), re.I)


def test_pretraining_widget_extremes_warn_in_its_output(tiny):
    """What the browser test does: both ends of the learning-rate slider, then Run."""
    from course_utils.widgets import pretraining_widget

    tok, train, val = tiny
    box = pretraining_widget(tok, train, val, prompt="Warfarin")
    lr, steps = (next(c for c in controls_of(box) if c.description == d) for d in ("learning rate", "steps"))
    steps.value = steps.min
    for index in (0, len(lr.options) - 1):
        lr.index = index
        text = press_run(box)
        assert "⚠ Warning: learning rate" in text, (lr.value, text)
        assert not re.search(r"\bnan\b", text, re.I) and "Traceback" not in text


def test_sft_view_warns_outside_the_sane_range(tiny):
    from course_utils.training import new_model
    from course_utils.widgets import _num, sft_view

    tok, _, _ = tiny
    demos, case = _tiny_sft(tok)
    base = new_model(tok, seed=0, max_len=40)
    for lr, phrase in ((1e-5, "is tiny"), (1.0, "is huge")):
        fig, text, notes = sft_view(tok, base, demos, demos[:1], [case], lr=lr, epochs=1, mask_prompt=True)
        assert notes[0].startswith(f"Warning: learning rate {_num(lr)} {phrase}"), notes
        assert all(np.all(np.isfinite(ln.get_ydata())) for ln in fig.axes[0].lines)
        assert not re.search(r"\bnan\b", text + " ".join(notes), re.I)


def test_sft_widget_starts_at_the_chapter_default_and_warns_at_its_ends(tiny):
    from course_utils.training import SFTConfig, new_model
    from course_utils.widgets import sft_widget

    tok, _, _ = tiny
    demos, case = _tiny_sft(tok)
    box = sft_widget(tok, new_model(tok, seed=0, max_len=40), demos, demos[:1], [case])
    assert_defaults_on_grid(box)
    lr, epochs = (next(c for c in controls_of(box) if c.description == d) for d in ("learning rate", "epochs"))
    assert lr.value == SFTConfig.lr
    epochs.value = 1
    for index in (0, len(lr.options) - 1):
        lr.index = index
        text = press_run(box)
        assert "⚠ Warning: learning rate" in text and not re.search(r"\bnan\b", text, re.I), text
