"""Tests for course_utils.beyond: chapter 8's cache builder, the side-by-side table, the small pieces.

The builder runs end to end on tiny models (d_model 8, one block) with one DPO epoch, one
GRPO iteration and four best-of-n samples per question, so the file stays well under 20 s;
the pieces (best-of-n choice, compute counts, tabular DPO, widgets' views, exercise checkers)
are checked against hand computations.
"""

from __future__ import annotations

import warnings

import matplotlib
import numpy as np
import pandas as pd
import pytest

matplotlib.use("Agg")

from course_utils import beyond, checkpoints, data
from course_utils.dpo import DPOConfig
from course_utils.grpo import GRPOConfig
from course_utils.model import GPTConfig, TinyGPT
from course_utils.ppo import kl_optimal_policy
from course_utils.reward import RewardModel


# ----------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def tok():
    return checkpoints.build_tokenizer()


def tiny(tok, seed=0) -> TinyGPT:
    return TinyGPT(GPTConfig(vocab_size=tok.vocab_size, d_model=8, n_layers=1, n_heads=1, max_len=192), seed=seed)


def small_settings(monkeypatch):
    monkeypatch.setattr(beyond, "REFERENCE_DPO", DPOConfig(epochs=1, batch_size=4, eval_every=0, seed=0))
    monkeypatch.setattr(beyond, "REFERENCE_GRPO", GRPOConfig(iterations=1, batch_size=4, group_size=2,
                                                             max_new_tokens=4, minibatch_size=4, ppo_epochs=1,
                                                             judge_every=0))
    monkeypatch.setattr(beyond, "BON_SAMPLES", 4)
    monkeypatch.setattr(beyond, "TABLE_NS", (1, 4))
    monkeypatch.setattr(beyond, "CURVE_NS", (1, 2, 4))
    monkeypatch.setattr(beyond, "MAX_NEW_TOKENS", 4)
    monkeypatch.setattr(beyond, "KL_SAMPLES", 1)
    monkeypatch.setattr(beyond, "ROUNDS", 50)
    prefs = data.load_preferences()                               # a few pairs: the LM head over 2800 words is slow
    few = [p for p in prefs if p["split"] == "train"][:8] + [p for p in prefs if p["split"] == "test"][:4]
    monkeypatch.setattr(data, "load_preferences", lambda path=None: [dict(p) for p in few])


@pytest.fixture(scope="module")
def built(tok, tmp_path_factory):
    """The builder on tiny models in a temporary folder: (folder, tables)."""
    mp = pytest.MonkeyPatch()
    small_settings(mp)
    out = tmp_path_factory.mktemp("beyond")
    sft = tiny(tok, seed=1)
    sft.save(out / "sft.npz")
    tiny(tok, seed=2).save(out / "ppo.npz")
    RewardModel(tiny(tok, seed=3)).save(out / "reward.npz")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            path = beyond.build_beyond_cache(tok, out)
    finally:
        mp.undo()
    assert path == out / beyond.CACHE_FILE
    return out, beyond.load_beyond_cache(out)


# ----------------------------------------------------------------------------- the builder
def test_builder_writes_policies_logs_and_tables(built):
    out, tables = built
    for name in ("dpo", "grpo"):
        policy = checkpoints.load(name, out)
        assert policy.params.keys() == TinyGPT.load(out / "sft.npz").params.keys()
        assert not checkpoints.load_log(name, out).empty
    assert set(tables) == {"summary", "answers", "samples", "curve", "settings"}
    assert "answer" not in tables["samples"].columns              # the cache keeps no sample texts
    assert len(tables["samples"]) == 4 * len(data.load_eval_prompts())
    assert tables["curve"]["n"].tolist() == [1, 2, 4]


def test_side_by_side_columns_and_intervals(built):
    _, tables = built
    summary = tables["summary"]
    assert list(summary.columns) == list(beyond.SUMMARY_COLUMNS)
    assert summary["method"].tolist() == ["SFT", "PPO", "DPO", "GRPO", "best-of-n", "best-of-n"]
    for col in ("gold", "reward"):
        lo, mid, hi = (summary[c].to_numpy() for c in (f"{col}_lower", col, f"{col}_upper"))
        assert np.all(lo <= mid + 1e-12) and np.all(mid <= hi + 1e-12)
    assert summary.loc[0, "kl"] == 0.0                             # the SFT model is the reference
    bon = summary[summary["method"] == "best-of-n"]
    np.testing.assert_allclose(bon["kl"], [0.0, np.log(4) - 0.75])
    assert bon["kl_kind"].eq("analytic bound").all()
    dpo = summary.set_index("method").loc["DPO"]
    assert dpo["train_fwd_tokens"] == 2 * dpo["train_bwd_tokens"] > 0
    assert (summary.loc[[0, 4, 5], "train_fwd_tokens"] == 0).all()  # SFT and best-of-n: no training beyond SFT
    n_eval = len(data.load_eval_prompts())
    assert tables["answers"].groupby("stage", sort=False).size().tolist() == [n_eval] * 6


def test_curve_is_consistent_with_the_samples(built):
    _, tables = built
    samples, curve = tables["samples"], tables["curve"].set_index("n")
    best = samples.groupby("item")["reward"].max().mean()
    assert curve.loc[4, "reward"] == pytest.approx(best)
    assert curve.loc[1, "reward"] == pytest.approx(samples[samples["sample"] == 0]["reward"].mean())
    assert (np.diff(curve["reward"].to_numpy()) >= -1e-12).all()   # more samples never lower the best reward
    assert (curve["gold_oracle"] >= curve["gold"] - 1e-12).all()
    assert ((curve["gold_lower"] <= curve["gold"] + 1e-12) & (curve["gold"] <= curve["gold_upper"] + 1e-12)).all()


def test_load_beyond_says_how_to_rebuild(tmp_path):
    with pytest.raises(FileNotFoundError, match="make checkpoints"):
        beyond.load_beyond_cache(tmp_path)


# ----------------------------------------------------------------------------- the pieces
def test_bon_choice_takes_the_first_maximum_among_the_first_n():
    samples = pd.DataFrame({"item": [0, 0, 0, 1, 1, 1], "sample": [0, 1, 2, 0, 1, 2],
                            "reward": [1.0, 3.0, 3.0, 2.0, 0.0, 9.0], "gold": [0.5, 0.1, 0.9, 0.2, 0.8, 0.0]})
    assert beyond.bon_choice(samples, 3)["sample"].tolist() == [1, 2]
    assert beyond.bon_choice(samples, 2)["sample"].tolist() == [1, 0]
    assert beyond.bon_choice(samples, 3, by="gold")["sample"].tolist() == [2, 1]


def test_training_token_counts_by_hand(tok):
    pairs = [{"prompt": "warfarin dose", "chosen": "check the dose", "rejected": "safe"}]
    # <bos> <q> warfarin dose <a> check the dose <eos> = 9 tokens; the rejected sequence has 7
    assert beyond.dpo_train_tokens(tok, pairs, epochs=2) == {"train_fwd_tokens": 64.0, "train_bwd_tokens": 32.0}
    log = pd.DataFrame({"length": [10.0, 20.0]})
    assert beyond.rl_train_tokens(log, batch_size=4, update_epochs=2, prompt_tokens=5.0) == {
        "train_fwd_tokens": 6 * 4 * 40.0, "train_bwd_tokens": 2 * 4 * 40.0}


def test_fitting_pairs_drops_what_does_not_fit(tok):
    pairs = [{"prompt": "warfarin dose", "chosen": "check the dose", "rejected": "safe"}]
    assert len(beyond.fitting_pairs(tok, pairs, max_len=8)) == 1      # 9 tokens: the model reads 8
    assert beyond.fitting_pairs(tok, pairs, max_len=7) == []


def test_bandit_dpo_with_soft_labels_reaches_the_kl_optimum():
    log_ref = np.log([0.4, 0.3, 0.2, 0.1])
    r = np.array([0.0, 1.0, 2.0, -1.0])
    for beta in (0.5, 2.0):
        hist = beyond.bandit_dpo(log_ref, r, beta, "soft", lr=0.05, steps=600)
        np.testing.assert_allclose(hist[0], np.exp(log_ref))
        np.testing.assert_allclose(hist[-1], kl_optimal_policy(log_ref, r, beta), atol=0.01)
    hard = beyond.bandit_dpo(log_ref, r, 2.0, "hard", lr=0.05, steps=600)[-1]
    assert hard[2] > kl_optimal_policy(log_ref, r, 2.0)[2] + 0.1      # hard labels overshoot π*
    frozen = beyond.bandit_dpo(log_ref, r, 0.0, "soft", steps=50)
    np.testing.assert_allclose(frozen, np.exp(log_ref)[None, :].repeat(51, axis=0))


@pytest.mark.parametrize("beta", [0.0, 0.01, 1.0, 100.0])
def test_dpo_beta_view_warns_at_extremes_and_never_nan(beta):
    fig, text, notes = beyond.dpo_beta_view(["a", "b", "c"], np.log([0.5, 0.3, 0.2]), np.array([0.0, 1.0, 3.0]),
                                            beta, steps=60)
    assert "nan" not in text.lower()
    assert bool(notes) == (beta != 1.0)
    import matplotlib.pyplot as plt
    plt.close(fig)


def test_best_of_n_view_marks_the_reward_models_choice():
    samples = pd.DataFrame({"item": np.repeat([0, 1], 4), "sample": np.tile(np.arange(4), 2),
                            "reward": [1.0, 5.0, 2.0, 0.0, 3.0, 1.0, 4.0, 2.0],
                            "gold": [0.9, 0.1, 0.5, 0.2, 0.3, 0.4, 0.0, 0.6]})
    fig, text, notes = beyond.best_of_n_view(samples, n=2, item=0)
    assert "best-of-2: mean reward 4.00" in text and not notes
    choice = [c for ax in fig.axes for c in ax.collections if c.get_gid() == "choice"][0]
    np.testing.assert_allclose(choice.get_offsets()[0], [5.0, 0.1])
    _, _, notes = beyond.best_of_n_view(samples, n=99)
    assert notes and notes[0].startswith("Warning")
    import matplotlib.pyplot as plt
    plt.close("all")


def test_exercise_checkers_agree_with_the_library(capsys):
    """Chapter 8's checkers accept the library's own functions and reject a wrong best-of-n."""
    from course_utils import exercises
    from course_utils.grpo import group_advantages
    from course_utils.losses import dpo_loss

    assert exercises.check_dpo_margin(
        lambda c, r, rc, rr, b: (b * ((c - rc) - (r - rr)), dpo_loss(*(np.array([v]) for v in (c, r, rc, rr)), b)[0]))
    assert exercises.check_group_advantages(lambda s: group_advantages(s, len(s)))
    assert exercises.check_best_of_n_mean(lambda s, n: s[:, :n].max(axis=1).mean())
    assert exercises.check_best_of_n_mean(lambda s, n: s[:, :n].mean()) is False
    assert "not yet" in capsys.readouterr().out
