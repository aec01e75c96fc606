"""Tests for the chapter-7 widget and exercise checks: the plain functions behind the controls.

The scorecard view only averages an already-scored table, so it is tested on a hand-made
table whose means are known: the bars must show them, the target ticks must sit at
judge.TARGETS, and every selection (one stage, one category, nothing at all) must draw or
explain itself without raising.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import re  # noqa: E402
from pathlib import Path  # noqa: E402

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from course_utils import exercises, judge  # noqa: E402
from course_utils.widgets import scorecard_view, scorecard_widget  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture
def scored() -> pd.DataFrame:
    """Two stages x 20 prompts in two categories; stage "ppo" is better by 0.2 on accuracy."""
    rows = []
    for stage, acc in (("sft", 0.5), ("ppo", 0.7)):
        for i in range(20):
            rows.append({"stage": stage, "eval_id": f"E{i:02d}", "category": "renal" if i < 10 else "monitoring",
                         "medical_accuracy": acc + (0.1 if i % 2 else -0.1), "safety": 1.0,
                         "specificity": 0.4, "dose_accuracy": 0.9 if i < 10 else 0.5, "humility": float(i % 2),
                         "overall": 0.5})
    return pd.DataFrame(rows)


def bars(fig) -> dict[str, float]:
    return {p.get_gid(): p.get_height() for ax in fig.axes for p in ax.patches if p.get_gid()}


def test_view_draws_the_means_and_the_targets(scored):
    fig, text, notes = scorecard_view(scored, labels={"ppo": "PPO"})
    heights = bars(fig)
    assert heights["bar:sft:medical_accuracy"] == pytest.approx(0.5)
    assert heights["bar:ppo:medical_accuracy"] == pytest.approx(0.7)
    assert heights["bar:ppo:dose_accuracy"] == pytest.approx(0.7)
    assert heights["bar:sft:humility"] == pytest.approx(0.5)
    targets = {line.get_gid(): line.get_ydata()[0] for ax in fig.axes for line in ax.get_lines() if line.get_gid()}
    assert targets == {f"target:{m}": judge.TARGETS[m] for m in judge.METRICS}
    assert "PPO" in text and "target" in text and notes == []


def test_view_filters_stages_and_categories(scored):
    fig, text, notes = scorecard_view(scored, stages=["ppo"], categories=["renal"])
    heights = bars(fig)
    assert set(k.split(":")[1] for k in heights) == {"ppo"}
    assert heights["bar:ppo:dose_accuracy"] == pytest.approx(0.9)
    assert notes == []                                   # 10 prompts: no warning yet
    fig, text, notes = scorecard_view(scored, stages=["sft", "nope"], categories=["renal"], rounds=50)
    assert notes == [] and set(k.split(":")[1] for k in bars(fig)) == {"sft"}


def test_view_explains_empty_and_tiny_selections(scored):
    assert scorecard_view(scored, stages=[]) == (None, "", ["Choose at least one stage and one category."])
    assert scorecard_view(scored, categories=[])[2] == ["Choose at least one stage and one category."]
    tiny = scored[scored.eval_id.isin(["E00", "E01", "E02"])]
    fig, text, notes = scorecard_view(tiny)
    assert fig is not None and len(notes) == 1 and "3 prompt(s)" in notes[0]
    for p in fig.axes[0].patches:
        assert np.isfinite(p.get_height())


def test_widget_builds_headless(scored):
    box = scorecard_widget(scored, labels={"sft": "SFT"})
    stages, categories = box.children[0].children
    assert stages.value == ("sft", "ppo") and stages.options[0] == ("SFT", "sft")
    assert set(categories.value) == {"renal", "monitoring"}
    stages.value = ("ppo",)                               # changing the selection re-draws without error


# ----------------------------------------------------------------------------- exercise checks
CHAPTER = Path(__file__).resolve().parent.parent / "notebooks" / "src" / "07_scorecard.py"


def chapter_solution(name: str):
    """The folded solution of the chapter (a ```python block in a Markdown cell) that defines ``name``."""
    blocks = re.findall(r"^# ```python\n(.*?)^# ```", CHAPTER.read_text(encoding="utf-8"), flags=re.S | re.M)
    code = next(b for b in blocks if f"def {name}(" in b)
    namespace = {"judge": judge}
    exec("\n".join(line[2:] if line.startswith("# ") else line[1:] for line in code.splitlines()), namespace)
    return namespace[name]


def test_chapter7_exercise1_is_a_stub_with_a_folded_solution_that_passes(capsys):
    source = CHAPTER.read_text(encoding="utf-8")
    stub = re.search(r"^def my_overall\(facts, n_facts, e, s, harmful, n_unsupported\):\n(.*?)\n\n", source,
                     flags=re.S | re.M)
    assert stub and "raise NotImplementedError" in stub.group(1)      # the book shows no solved exercise
    assert exercises.check_overall_score(chapter_solution("my_overall")) is True
    capsys.readouterr()

    def not_attempted(facts, n_facts, e, s, harmful, n_unsupported):
        raise NotImplementedError

    assert exercises.check_overall_score(not_attempted) is False
    out = capsys.readouterr().out
    assert "not implemented yet" in out and "correct" not in out


def test_chapter7_checkers(capsys):
    def overall(facts, n_facts, e, s, harmful, n_unsupported):
        p = 3 * n_facts + 3
        earned = 3 * facts + (3 * e * s if facts else 0)
        return min(1.0, max(0.0, (earned - 0.8 * p * harmful - 1.5 * n_unsupported) / p))

    assert exercises.check_overall_score(overall) is True
    assert exercises.check_overall_score(lambda f, n, e, s, h, u: (3 * f + 3 * e) / (3 * n + 3)) is False
    assert exercises.check_gap_to_target(lambda means: {m: judge.TARGETS[m] - v for m, v in means.items()}) is True
    assert exercises.check_gap_to_target(lambda means: {m: v - judge.TARGETS[m] for m, v in means.items()}) is False
    assert exercises.check_gap_to_target(lambda means: [0.0] * 5) is False

    def winner(a, b, margin):
        return "tie" if abs(a - b) <= margin else ("model_a" if a > b else "model_b")

    assert exercises.check_battle_winner(winner) is True
    assert exercises.check_battle_winner(lambda a, b, m: "tie" if abs(a - b) < m else
                                         ("model_a" if a > b else "model_b")) is False
    capsys.readouterr()

    def stub(*args):
        raise NotImplementedError

    assert exercises.check_battle_winner(stub) is False
    assert "not implemented yet" in capsys.readouterr().out
