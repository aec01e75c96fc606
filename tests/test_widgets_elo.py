"""Tests for the chapter-4 widgets: the plain view functions behind the sliders.

The views are called directly (no browser), at ordinary and extreme knob values: K = 0,
K = 1000, a scale of 1, a single match. Each must return a figure with finite data, draw
exactly what the numerical core computes, and explain extreme values in its warnings.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from course_utils import elo  # noqa: E402
from course_utils.widgets import (  # noqa: E402
    ELO_DEMO_INIT,
    ELO_DEMO_STRENGTHS,
    elo_k_view,
    elo_k_widget,
    expected_score_view,
    expected_score_widget,
)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def lines_by_gid(fig) -> dict[str, np.ndarray]:
    """gid -> (x, y) data of every line with a gid in the figure's first axes."""
    return {
        line.get_gid(): np.asarray(line.get_xydata(), dtype=float)
        for line in fig.axes[0].get_lines()
        if line.get_gid()
    }


def assert_all_finite(fig) -> None:
    for line in fig.axes[0].get_lines():
        assert np.all(np.isfinite(np.asarray(line.get_xydata(), dtype=float))), line.get_gid()


# --------------------------------------------------------------------------- elo_k_view


def test_elo_k_view_draws_online_elo_and_the_bradley_terry_fit():
    fig, warnings = elo_k_view(k=32, n_matches=300, scale=400, seed=0)
    assert warnings == []
    assert len(fig.axes) == 1  # the legend sits outside the one axes
    lines = lines_by_gid(fig)
    battles = elo.simulate_battles(ELO_DEMO_STRENGTHS, 300, seed=0)
    final = elo.online_elo(battles, k=32, init=ELO_DEMO_INIT)
    bt = elo.bradley_terry_ratings(battles, init=ELO_DEMO_INIT)
    for name in ELO_DEMO_STRENGTHS:
        path = lines[f"elo:{name}"]
        assert path.shape == (301, 2)
        assert path[0, 1] == ELO_DEMO_INIT  # every model starts at r_0
        assert path[-1, 1] == pytest.approx(final[name])  # and ends at online_elo
        assert np.all(lines[f"bt:{name}"][:, 1] == pytest.approx(bt[name]))
    assert_all_finite(fig)


def test_elo_k_view_k_zero_keeps_every_rating_and_says_why():
    fig, warnings = elo_k_view(k=0, n_matches=200)
    for name in ELO_DEMO_STRENGTHS:
        np.testing.assert_array_equal(lines_by_gid(fig)[f"elo:{name}"][:, 1], ELO_DEMO_INIT)
    assert any(w.startswith("K = 0") for w in warnings)
    assert_all_finite(fig)


def test_elo_k_view_huge_k_is_finite_and_warned():
    fig, warnings = elo_k_view(k=1000, n_matches=300)
    assert_all_finite(fig)
    assert any("K = 1000" in w and "last few matches" in w for w in warnings)
    # each update is zero-sum, so the ratings still average r_0 after every match
    paths = np.array([v[:, 1] for g, v in lines_by_gid(fig).items() if g.startswith("elo:")])
    np.testing.assert_allclose(paths.mean(axis=0), ELO_DEMO_INIT)


def test_elo_k_view_only_k_over_scale_matters():
    # K = 32 at s = 400 and K = 8 at s = 100 are the same dynamics in units of s
    fig_400, _ = elo_k_view(k=32, n_matches=200, scale=400)
    fig_100, _ = elo_k_view(k=8, n_matches=200, scale=100)
    a, b = lines_by_gid(fig_400), lines_by_gid(fig_100)
    for gid in a:
        np.testing.assert_allclose((a[gid][:, 1] - ELO_DEMO_INIT) / 400, (b[gid][:, 1] - ELO_DEMO_INIT) / 100)


def test_elo_k_view_tiny_scale_is_finite_and_warned():
    fig, warnings = elo_k_view(k=32, n_matches=300, scale=1)
    assert_all_finite(fig)
    assert any("scale s = 1 is tiny" in w for w in warnings)
    assert any("32.00 times the scale" in w and "12800" in w for w in warnings)
    # Bradley-Terry on scale 1: the fitted strengths are squeezed within a few points of r_0
    bt = [v[0, 1] for g, v in lines_by_gid(fig).items() if g.startswith("bt:")]
    assert max(bt) - min(bt) < 5


def test_elo_k_view_one_match_is_finite_and_warned():
    fig, warnings = elo_k_view(k=32, n_matches=1)
    lines = lines_by_gid(fig)
    battle = elo.simulate_battles(ELO_DEMO_STRENGTHS, 1, seed=0).iloc[0]
    played = {battle.model_a, battle.model_b}
    assert {g.split(":", 1)[1] for g in lines if g.startswith("elo:")} == played
    # both started at r_0, so E_A = 1/2 and the winner took K (1 - 1/2) = 16 points from the loser
    moves = sorted(lines[f"elo:{m}"][-1, 1] - ELO_DEMO_INIT for m in played)
    assert moves == pytest.approx([-16.0, 16.0])
    assert_all_finite(fig)
    message = next(w for w in warnings if w.startswith("only 1 match"))
    assert "Not played yet" in message


def test_elo_k_view_disconnected_battles_skip_the_bradley_terry_line():
    # two matches among five models cannot link them all: no MLE, a warning instead of a crash
    fig, warnings = elo_k_view(k=32, n_matches=2, seed=0)
    assert not [g for g in lines_by_gid(fig) if g.startswith("bt:")]
    assert any("no Bradley-Terry line" in w and "disconnected" in w for w in warnings)
    assert_all_finite(fig)


def test_elo_k_view_rejects_impossible_knobs():
    with pytest.raises(ValueError, match="n_matches"):
        elo_k_view(n_matches=0)
    with pytest.raises(ValueError, match="scale"):
        elo_k_view(scale=0)
    with pytest.raises(ValueError, match="k must"):
        elo_k_view(k=-1)


# --------------------------------------------------------------------------- expected_score_view


def test_expected_score_view_standard_scale():
    fig, warnings = expected_score_view(scale=400, gap=400)
    assert warnings == []
    lines = lines_by_gid(fig)
    x, y = lines["curve"][:, 0], lines["curve"][:, 1]
    assert np.all(np.diff(y) > 0)  # increasing in the gap
    np.testing.assert_allclose(y + y[::-1], 1.0)  # E_A(d) + E_A(-d) = 1
    np.testing.assert_allclose(y, elo.expected_score(x, 0.0))
    assert lines["point"][0, 1] == pytest.approx(10 / 11)  # a 400-point lead: 10:1 odds
    title = fig.axes[0].get_title()
    assert "0.909" in title and "odds 10.00:1" in title


def test_expected_score_view_tiny_scale_is_a_finite_step():
    fig, warnings = expected_score_view(scale=1, gap=-200)
    assert_all_finite(fig)
    y = lines_by_gid(fig)["curve"][:, 1]
    assert y.min() == 0.0 and y.max() == 1.0
    assert lines_by_gid(fig)["point"][0, 1] == pytest.approx(0.0, abs=1e-12)
    assert any("tiny" in w for w in warnings)
    title = fig.axes[0].get_title()
    assert "200-point deficit" in title and "beyond a million to one against" in title


def test_expected_score_view_huge_scale_and_far_gap_are_warned():
    fig, warnings = expected_score_view(scale=10_000, gap=900)
    assert_all_finite(fig)
    assert any("huge" in w for w in warnings)
    assert any("outside the plotted range" in w for w in warnings)
    y = lines_by_gid(fig)["curve"][:, 1]
    assert 0.4 < y.min() < 0.5 < y.max() < 0.6


def test_expected_score_view_rejects_a_non_positive_scale():
    with pytest.raises(ValueError, match="scale"):
        expected_score_view(scale=0)


# --------------------------------------------------------------------------- builders


def test_builders_return_a_box_without_blocking():
    pytest.importorskip("ipywidgets")
    for box in (elo_k_widget(), expected_score_widget()):
        assert type(box).__name__ == "VBox"
        sliders = box.children[0].children
        assert all(not s.continuous_update for s in sliders)
