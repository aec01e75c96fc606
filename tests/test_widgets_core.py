"""Widget callbacks of the welcome notebook and chapter 1, called without a browser."""

import matplotlib

matplotlib.use("Agg")  # these tests draw figures without a screen; notebooks keep their own backend

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
    demos = [{"prompt": "Can I take ibuprofen with warfarin?", "response": "Warfarin with ibuprofen increases the risk of bleeding."},
             {"prompt": "Is metformin safe in cirrhosis?", "response": "Metformin is contraindicated in liver cirrhosis."}]
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
    _, _, notes = sft_view(tok, new_model(tok, max_len=40), demos, demos[:1], [case], lr=0.0, epochs=1, mask_prompt=True)
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
