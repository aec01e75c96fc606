"""Tests for the chapter-6 experiments (course_utils.challenges).

The pieces are checked against hand computations (the Gao fit, the effectiveness formula,
early stopping, the noisy annotators; the conservative, label-smoothed Bradley-Terry loss is
tested with the other losses in test_losses.py); each experiment runs end to end on tiny
models (d_model 16, one block) with a few iterations and a handful of prompts and pairs, so
the file stays well under a minute; the cache round-trips exactly and a rebuild from the same
seeds compares equal.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest

from course_utils import challenges as E
from course_utils import checkpoints
from course_utils.model import GPTConfig, TinyGPT
from course_utils.reward import RewardModel


# ----------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def tok():
    return checkpoints.build_tokenizer()


def tiny(tok, d_model=16, seed=0, dtype="float32") -> TinyGPT:
    return TinyGPT(GPTConfig(vocab_size=tok.vocab_size, d_model=d_model, n_layers=1, n_heads=2, max_len=192,
                             dtype=dtype), seed=seed)


@pytest.fixture(scope="module")
def sft(tok):
    return tiny(tok)


@pytest.fixture(scope="module")
def rm(tok, sft):
    return RewardModel(sft.copy(), seed=0)


TINY_HACKING = E.HackingSettings(betas=(0.01, 0.5), iterations=4, hacked_iterations=6, checkpoints=(0, 2, 4, 6),
                                 coarse_checkpoints=(0, 4),
                                 batch_size=4, samples_per_prompt=2, max_new_tokens=6, eval_samples=2, n_eval=6,
                                 n_val=4, val_samples=1, ensemble_size=2, ensemble_epochs=1, n_pairs=16,
                                 n_examples=3, n_bootstrap=50)


@pytest.fixture(scope="module")
def hacking(tok, sft, rm):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return E.reward_hacking_experiment(tok, sft, rm, TINY_HACKING, return_runs=True)


# ----------------------------------------------------------------------------- effectiveness
@pytest.mark.parametrize("mitigated, hacked, best, expected", [
    (0.35, 0.30, 0.40, 0.5),       # half of the lost 0.10 recovered
    (0.40, 0.30, 0.40, 1.0),       # back to the best
    (0.30, 0.30, 0.40, 0.0),       # no better than no mitigation
    (0.45, 0.30, 0.40, 1.5),       # better than the problem-free reference
    (0.25, 0.30, 0.40, -0.5),      # worse than no mitigation
])
def test_effectiveness_hand_cases(mitigated, hacked, best, expected):
    assert E.effectiveness(mitigated, hacked, best) == pytest.approx(expected)


def test_effectiveness_is_undefined_when_nothing_was_lost():
    assert math.isnan(E.effectiveness(0.5, 0.4, 0.4))
    assert math.isnan(E.effectiveness(0.5, 0.45, 0.4))           # the "problem" improved things
    e = E.effectiveness(np.array([0.35, 0.5]), np.array([0.30, 0.4]), np.array([0.40, 0.4]))
    assert e[0] == pytest.approx(0.5) and math.isnan(e[1])


# ----------------------------------------------------------------------------- the Gao fit
def test_gao_fit_recovers_a_and_b_exactly_without_noise():
    d = np.linspace(0.0, 8.0, 17)
    a, b = E.fit_gao(d, E.gao_curve(d, 0.7, 0.25))
    assert a == pytest.approx(0.7, abs=1e-10) and b == pytest.approx(0.25, abs=1e-10)


def test_gao_fit_recovers_a_and_b_from_noisy_data_and_locates_the_peak():
    rng = np.random.default_rng(0)
    d = np.repeat(np.linspace(0.5, 9.0, 12), 20)
    r = E.gao_curve(d, 0.05, 0.03) + 0.005 * rng.standard_normal(d.size)
    a, b = E.fit_gao(d, r)
    assert a == pytest.approx(0.05, abs=0.004) and b == pytest.approx(0.03, abs=0.002)
    d_star, r_star = E.gao_peak(0.05, 0.03)
    assert d_star == pytest.approx(math.exp(0.05 / 0.03 - 1))
    grid = np.linspace(0.01, 10, 100_001)
    assert grid[np.argmax(E.gao_curve(grid, 0.05, 0.03))] == pytest.approx(d_star, abs=1e-3)
    assert r_star == pytest.approx(E.gao_curve(d_star, 0.05, 0.03))


def test_gao_fit_needs_two_points_away_from_zero():
    assert E.gao_curve(0.0, 1.0, 1.0) == 0.0
    with pytest.raises(ValueError, match="two points"):
        E.fit_gao([0.0, 0.0, 1.0], [0.0, 0.0, 0.3])
    with pytest.raises(ValueError):
        E.fit_gao([1.0, -1.0], [0.1, 0.2])


# ----------------------------------------------------------------------------- noisy annotators
def test_noisy_labels_flip_as_asked():
    votes = np.array([[1, 1, 0], [1, 0, 0], [0, 1, 1], [1, 1, 1]] * 50)
    clean = E.noisy_labels(votes, 0.0, seed=0)
    assert np.array_equal(clean["votes"], votes)
    assert np.array_equal(clean["majority"], (votes.sum(axis=1) >= 2).astype(int))
    assert set(np.unique(clean["single"])) <= {0, 1}
    flipped = E.noisy_labels(votes, 1.0, seed=0)
    assert np.array_equal(flipped["votes"], 1 - votes)
    assert np.array_equal(flipped["single"], 1 - clean["single"])   # same annotator per pair at every p
    low, high = E.noisy_labels(votes, 0.1, seed=0), E.noisy_labels(votes, 0.3, seed=0)
    assert np.all((low["votes"] != votes) <= (high["votes"] != votes))   # nested flips
    share = np.mean(high["votes"] != votes)
    assert 0.22 < share < 0.38
    with pytest.raises(ValueError):
        E.noisy_labels(votes, 1.5)


# ----------------------------------------------------------------------------- early stopping
def test_early_stopping_keeps_the_best_validation_checkpoint():
    its = [0, 3, 6, 9, 12, 18]
    assert E._early_stop(its, [0.30, 0.34, 0.36, 0.35, 0.33, 0.40], patience=2) == (6, 12)
    assert E._early_stop(its, [0.30, 0.34, 0.36, 0.35, 0.37, 0.40], patience=2) == (18, 18)
    assert E._early_stop(its, [0.5, 0.4, 0.3, 0.2, 0.1, 0.0], patience=1) == (0, 3)


# ----------------------------------------------------------------------------- policies
def test_kl_estimate_is_zero_when_the_policy_is_the_reference(tok, sft, rm):
    from course_utils import data

    scen = {s["id"]: s for s in data.load_scenarios()}
    items = data.load_eval_prompts()[:3]
    t = E.evaluate_policy(sft, sft.copy(), tok, items, scen, {"proxy": rm}, samples=2, max_new_tokens=5)
    assert len(t) == 6 and list(t["item"]) == [0, 0, 1, 1, 2, 2]
    assert np.abs(t["kl"]).max() < 1e-3
    assert t["overall"].between(0, 1).all() and t["score:proxy"].notna().all()


def test_ensemble_standardises_its_members(tok, sft):
    from course_utils import data

    pairs = [p for p in data.load_preferences() if p["split"] == "train"][:6]
    members = [RewardModel(sft.copy(), seed=k) for k in range(3)]
    prompts, answers = [p["prompt"] for p in pairs], [p["chosen"] for p in pairs]
    mean = E.EnsembleReward(members, "mean").calibrate(tok, prompts, answers)
    low = E.EnsembleReward(members, "min")
    low.mu, low.sigma = mean.mu, mean.sigma
    tokens, lengths = members[0].encode(tok, prompts, answers)
    z = mean.member_scores(tokens, lengths)
    np.testing.assert_allclose(z.mean(axis=1), 0.0, atol=1e-6)
    np.testing.assert_allclose(z.std(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(mean.forward(tokens, lengths), z.mean(axis=0))
    np.testing.assert_allclose(low.forward(tokens, lengths), z.min(axis=0))
    with pytest.raises(ValueError):
        E.EnsembleReward(members, "max")


def test_checkpointed_ppo_keeps_the_weights_of_each_checkpoint(tok, sft, rm):
    from course_utils import data
    from course_utils.ppo import PPOConfig

    cfg = PPOConfig(iterations=3, batch_size=2, samples_per_prompt=2, minibatch_size=2, max_new_tokens=4,
                    judge_every=0, lr=1e-3)
    run = E.run_ppo_checkpointed(sft, rm, tok, data.load_sft()[:4], cfg, checkpoints=[0, 2], record_rollouts=True)
    assert sorted(run.snapshots) == [0, 2, 3] and len(run.diagnostics) == 3
    for k, a in sft.params.items():
        np.testing.assert_array_equal(run.snapshots[0][k], a)               # iteration 0 = the SFT model
    assert any(not np.array_equal(run.snapshots[3][k], sft.params[k]) for k in sft.params)
    assert [it for it, _, _ in run.rollouts] == [0, 1, 2]


# ----------------------------------------------------------------------------- the experiments, tiny
def test_reward_hacking_experiment_tables(hacking):
    tables, extras = hacking
    curves = tables["hacking_curves"]
    assert set(curves.run) == {"β=0.01", "β=0.5", "ensemble β=0.01"}
    hacked = curves[curves.run == "β=0.01"]
    assert list(hacked.iteration) == [0, 2, 4, 6] and hacked.val_gold.notna().all()   # it goes on past the others
    assert set(curves[curves.run == "β=0.5"].iteration) == {0, 4}
    assert curves[curves.run != "β=0.01"].val_gold.isna().all()
    assert np.allclose(curves.d, np.sqrt(curves.kl.clip(lower=0)))
    assert curves.gold.between(0, 1).all()
    first = curves[curves.iteration == 0]
    assert first.gold.nunique() == 1 and first.proxy.nunique() == 1      # every run starts at the same SFT policy
    m = tables["hacking_mitigations"]
    assert list(m.mitigation) == ["no skill (answers to other questions)", "none (SFT policy)",
                                  "none (best checkpoint)", "none (hacked)", "strong KL", "early stopping",
                                  "reward-model ensemble"]
    assert m.effectiveness.notna().sum() <= 3 and m.iloc[:4].effectiveness.isna().all()
    by = m.set_index("mitigation")
    compared = hacked[hacked.iteration <= 4]                             # like for like: the mitigations' length
    assert by.loc["none (best checkpoint)", "gold"] == pytest.approx(compared.gold.max())
    assert by.loc["none (hacked)", "iteration"] == 4
    assert by.loc["none (hacked)", "gold"] == pytest.approx(compared.gold.iloc[-1])
    pa = tables["policy_answers"]
    assert list(pa.columns) == ["policy", "eval_id", "answer"]
    assert pa.groupby("policy").size().to_dict() == {p: 6 for p in ("hacked", "strong_kl", "early_stopped", "ensemble")}
    ha = tables["hacked_answers"]
    assert set(ha.policy) == {"sft", "hacked"} and len(ha) == 6
    assert set(tables["gao_fit"].target) == {"gold", "proxy"}
    tr = tables["hacking_training"]
    assert tr.groupby("run").size().to_dict() == {"β=0.01": 6, "β=0.5": 4, "ensemble β=0.01": 4}
    assert curves.loc[curves.optimised == "reward model", "ensemble_score"].iloc[1:].isna().any()
    assert extras["hacked_run"] == "β=0.01"


def test_shift_uses_the_hacked_run_up_to_the_mitigations_length(tok, hacking):
    """The on-policy pairs come from the rollouts of the first ``iterations`` iterations only, although the
    hacked run recorded rollouts up to ``hacked_iterations``."""
    from course_utils.challenges import shift

    _, extras = hacking
    run = extras["runs"][extras["hacked_run"]]
    assert extras["iterations"] == 4 and {it for it, _, _ in run.rollouts} == set(range(6))
    kept = shift._rollout_answers(run, tok, extras["train_items"], extras["iterations"])
    assert kept and {it for it, _ in kept} <= {0, 1, 2, 3}
    assert {it for it, _ in shift._rollout_answers(run, tok, extras["train_items"], 6)} > {it for it, _ in kept}


def test_reward_hacking_needs_two_betas(tok, sft, rm):
    with pytest.raises(ValueError, match="two β"):
        E.reward_hacking_experiment(tok, sft, rm, E.HackingSettings(betas=(0.1,)))
    with pytest.raises(ValueError, match="hacked_iterations"):
        E.reward_hacking_experiment(tok, sft, rm, E.HackingSettings(iterations=10, hacked_iterations=5))


def test_annotation_experiment_tables(tok, sft):
    s = E.NoiseSettings(flip_rates=(0.0, 0.3), n_train=12, n_test=8, n_bootstrap=50)
    out = E.annotation_experiment(tok, sft, s)
    curves = out["noise_curves"]
    assert len(curves) == 1 + 2 * 3
    one = curves[curves.method == "one annotator"].sort_values("flip_rate")
    assert one.label_error.is_monotonic_increasing
    assert curves.accuracy.between(0, 1).all() and (curves.ci_low <= curves.accuracy).all()
    assert curves.loc[curves.method == "clean labels", "label_error"].iloc[0] == 0.0
    mit = out["noise_mitigations"]
    assert list(mit.mitigation) == ["majority of 3", "one annotator, conservative loss"]
    assert list(mit.labels_per_pair) == [3, 1]


def test_distribution_shift_experiment_tables(tok, sft, rm, hacking):
    _, extras = hacking
    s = E.ShiftSettings(n_onpolicy=10, n_bootstrap=50, reward_epochs=1, n_train=12, gap=0.0)
    out = E.distribution_shift_experiment(tok, sft, rm, s, hacking_extras=extras)
    cats = out["shift_categories"]
    assert set(cats.reward_model) == {"all categories", "without pharmacogenomics"}
    assert cats.loc[cats.pairs.str.startswith("all pairs"), "seen_in_training"].eq(False).all()
    agree = out["shift_agreement"]
    assert list(agree.iteration) == [0, 2, 4]                          # the hacked run up to the mitigations' length
    mit = out["shift_mitigation"].iloc[0]
    assert 0 < mit["n_onpolicy_pairs"] <= 10
    with pytest.raises(ValueError, match="unknown category"):
        E.distribution_shift_experiment(tok, sft, rm, E.ShiftSettings(holdout_category="astrology"),
                                        hacking_extras=extras)


def test_decisive_pairs_and_agreement_by_hand():
    t = pd.DataFrame({"item": [0, 0, 0, 1, 1], "overall": [0.5, 0.2, 0.5, 0.1, 0.4],
                      "score:x": [1.0, 2.0, 0.0, -1.0, 3.0]})
    pairs = E._decisive_pairs(t, ["score:x"], gap=0.05)
    # item 0: answers (0, 1) and (1, 2) are decisive, (0, 2) is a gold tie; item 1: one pair
    assert len(pairs) == 3
    np.testing.assert_allclose(pairs["dgold"], [0.3, -0.3, -0.3])
    # (0, 1): gold +0.3, score -1: disagree; (1, 2): gold -0.3, score +2: disagree; item 1: agree
    np.testing.assert_allclose(E._agreement(pairs, "dscore:x"), [0.0, 0.0, 1.0])
    tie = pd.DataFrame({"dgold": [0.2], "dscore:x": [0.0]})
    assert E._agreement(tie, "dscore:x")[0] == 0.5


def test_scalability_experiment_counts(tok, sft, rm):
    s = E.ScaleSettings(widths=(8, 16), label_counts=(8, 12), label_steps=2, n_train=12)
    out = E.scalability_experiment(tok, sft, None, s)
    w = out["scale_width"].set_index("d_model")
    for D in (8, 16):
        m = TinyGPT(GPTConfig(vocab_size=tok.vocab_size, d_model=D, n_layers=2, n_heads=4, max_len=192))
        assert w.loc[D, "params_policy"] == m.n_params
        assert w.loc[D, "params_reward"] == m.n_params + D + 1
    assert (w.mb_separate_value > w.mb_shared_trunk).all() and (w.mb_shared_trunk > w.mb_last_block).all()
    assert (w.mflop_ppo_iteration > w.mflop_sft_step).all()
    # the formula by hand at D = 8: 16 (N + N_r) + 4 (N + N_r) bytes with a separate value model
    n, nr = w.loc[8, "params_policy"], w.loc[8, "params_reward"]
    assert w.loc[8, "mb_separate_value"] == pytest.approx(20 * (n + nr) / 2**20)
    assert list(out["label_curve"].n_pairs) == [8, 12]
    ex = out["scale_extrapolation"]
    assert ex.estimate_gb_shared_trunk.is_monotonic_increasing
    mit = out["scale_mitigations"]
    assert mit.memory_saved.between(0, 1).all()


def test_ppo_cost_is_measured_at_every_width(tok):
    cost = E.measure_ppo_cost(tok, widths=(8, 16), iterations=1, max_new_tokens=3, batch_size=2,
                              samples_per_prompt=2, prompts=["Is ibuprofen safe with warfarin?"])
    assert list(cost.d_model) == [8, 16]
    assert (cost.seconds_per_iteration > 0).all() and (cost.peak_mb > 0).all()


def test_summary_and_severity(hacking, tok, sft, rm):
    assert E.severity(1.2) == "critical" and E.severity(0.5) == "high"
    assert E.severity(0.2) == "medium" and E.severity(0.01) == "low" and E.severity(math.nan) == "n/a"
    tables = dict(hacking[0])
    tables.update(E.annotation_experiment(tok, sft, E.NoiseSettings(flip_rates=(0.0, 0.2), n_train=8, n_test=6,
                                                                     n_bootstrap=20)))
    tables.update(E.distribution_shift_experiment(tok, sft, rm, E.ShiftSettings(n_onpolicy=4, n_bootstrap=20,
                                                                                reward_epochs=1, n_train=8),
                                                  hacking_extras=hacking[1]))
    tables.update(E.scalability_experiment(tok, sft, None, E.ScaleSettings(widths=(8,), label_counts=(8,),
                                                                          label_steps=1, n_train=8)))
    summary = E.summary_table(tables)
    assert list(summary.challenge) == list(E.CHALLENGES)
    assert not any(c.startswith("brief") for c in summary.columns)
    assert summary.explanation.str.len().gt(20).all()
    assert not summary.explanation.str.contains("brief").any()


# ----------------------------------------------------------------------------- the cache
def test_tables_round_trip_without_pickles(tmp_path):
    tables = {
        "mixed": pd.DataFrame({"run": ["β=0.002", "≥ 0.5 mg/kg", ""], "iteration": [0, 3, 6],
                               "gold": [0.3, np.nan, 0.25], "flag": [True, False, True]}),
        "empty": pd.DataFrame({"a": np.array([], dtype=float), "b": np.array([], dtype=str)}),
    }
    path = E.save_tables(tables, tmp_path / "x.npz")
    with np.load(path, allow_pickle=False) as z:                     # no object arrays anywhere
        assert all(z[k].dtype != object for k in z.files)
    back = E.load_tables(path)
    assert list(back) == ["mixed", "empty"]
    pd.testing.assert_frame_equal(back["mixed"], tables["mixed"])
    assert list(back["empty"].columns) == ["a", "b"] and len(back["empty"]) == 0


def test_load_results_reads_the_cache_and_explains_a_missing_one(tmp_path, hacking):
    with pytest.raises(FileNotFoundError, match="make checkpoints"):
        E.load_experiments_cache(tmp_path)
    E.save_tables(hacking[0], tmp_path / E.CACHE_FILE)
    back = E.load_experiments_cache(tmp_path)
    for name, df in hacking[0].items():
        pd.testing.assert_frame_equal(back[name].reset_index(drop=True), df.reset_index(drop=True),
                                      check_dtype=False)


def test_a_rerun_compares_equal_with_the_checkpoint_tool(tmp_path, tok, sft, rm, hacking):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        again = E.reward_hacking_experiment(tok, sft, rm, TINY_HACKING)
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    E.save_tables(hacking[0], tmp_path / "a" / E.CACHE_FILE)
    E.save_tables(again, tmp_path / "b" / E.CACHE_FILE)
    assert checkpoints.compare(tmp_path / "a", tmp_path / "b") == []


def test_the_cache_is_a_registered_checkpoint_stage():
    names = [name for name, _ in checkpoints.LATER_STAGES]
    assert ("experiments", E.build_experiments_cache) in checkpoints.LATER_STAGES
    assert names.index("experiments") > names.index("ppo") > names.index("reward")


@pytest.mark.slow
def test_run_all_gives_the_same_tables_with_a_second_process(tok, sft, rm):
    tiny = E.ChapterSettings(
        hacking=TINY_HACKING,
        noise=E.NoiseSettings(flip_rates=(0.0, 0.2), n_train=8, n_test=6, n_bootstrap=20),
        shift=E.ShiftSettings(n_onpolicy=4, n_bootstrap=20, reward_epochs=1, n_train=8),
        scale=E.ScaleSettings(widths=(8,), label_counts=(8,), label_steps=1, n_train=8),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        one = E.run_all(tok, sft, rm, tiny, workers=1)
        two = E.run_all(tok, sft, rm, tiny, workers=2)
    assert list(one) == list(two)
    assert list(one)[-2:] == ["summary", "settings"]
    for name in one:
        pd.testing.assert_frame_equal(one[name], two[name])
