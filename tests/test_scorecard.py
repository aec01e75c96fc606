"""Tests for course_utils.scorecard: answers, scoring, the scorecard, the arena and the cache file.

Everything runs on hand-made tables or tiny random models, so the expected values can be
worked out by hand (means, gaps to target, battle winners) or reproduced with a few lines
of numpy (the bootstrap intervals).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from course_utils import checkpoints, data, judge, scorecard
from course_utils.model import GPTConfig, TinyGPT
from course_utils.ppo import PPOConfig
from course_utils.tokenizer import VocabularyTokenizer
from course_utils.training import encode_sft

WORDS = "warfarin bleeding risk dose renal liver check prescriber safe avoid"
PROMPTS = [
    {"id": "EVAL-T-01", "scenario_id": "T-01", "category": "drug_interactions", "prompt": "warfarin dose"},
    {"id": "EVAL-T-02", "scenario_id": "T-02", "category": "renal_dosing", "prompt": "renal dose check"},
    {"id": "EVAL-T-03", "scenario_id": "T-03", "category": "renal_dosing", "prompt": "liver risk"},
]


@pytest.fixture(scope="module")
def tok() -> VocabularyTokenizer:
    return VocabularyTokenizer.fit([WORDS])


def tiny_model(tok, seed=0, max_len=24) -> TinyGPT:
    cfg = GPTConfig(vocab_size=tok.vocab_size, d_model=16, n_layers=1, n_heads=2, max_len=max_len)
    return TinyGPT(cfg, seed=seed)


def scored_table(values: dict[str, dict[str, list[float]]], categories=None) -> pd.DataFrame:
    """A scored table by hand: {stage: {metric: per-prompt values}}; missing metrics are 1."""
    rows = []
    for stage, cols in values.items():
        n = len(next(iter(cols.values())))
        for i in range(n):
            row = {"stage": stage, "eval_id": f"E{i:02d}", "category": (categories or ["c"] * n)[i]}
            for m in (*judge.METRICS, "overall"):
                row[m] = cols.get(m, [1.0] * n)[i]
            rows.append(row)
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- answers
def test_stage_answers_is_deterministic_and_in_order(tok):
    models = {"a": tiny_model(tok, seed=0), "b": tiny_model(tok, seed=1)}
    scenarios = {p["scenario_id"]: {"id": p["scenario_id"], "answer": f"Answer {i}.", "escalation": "Ask."}
                 for i, p in enumerate(PROMPTS)}
    first = scorecard.stage_answers(models, tok, PROMPTS, scenarios, max_new_tokens=6)
    second = scorecard.stage_answers(models, tok, PROMPTS, scenarios, max_new_tokens=6)
    pd.testing.assert_frame_equal(first, second)
    assert list(first.columns) == list(scorecard.ANSWER_COLUMNS)
    assert list(first["stage"]) == ["a"] * 3 + ["b"] * 3 + ["reference"] * 3
    assert list(first["eval_id"][:3]) == [p["id"] for p in PROMPTS]
    assert list(first.loc[first.stage == "reference", "answer"]) == ["Answer 0. Ask.", "Answer 1. Ask.",
                                                                       "Answer 2. Ask."]
    assert first.loc[first.stage == "a", "answer"].tolist() != first.loc[first.stage == "b", "answer"].tolist()
    # greedy decoding does not depend on the seed; sampling does, reproducibly
    assert scorecard.stage_answers(models, tok, PROMPTS, reference=False, max_new_tokens=6, seed=5).equals(
        first[first.stage != "reference"].reset_index(drop=True))
    s1 = scorecard.stage_answers(models, tok, PROMPTS, reference=False, temperature=1.0, max_new_tokens=6, seed=3)
    s2 = scorecard.stage_answers(models, tok, PROMPTS, reference=False, temperature=1.0, max_new_tokens=6, seed=3)
    pd.testing.assert_frame_equal(s1, s2)


def test_stage_answers_refuses_a_model_named_reference(tok):
    with pytest.raises(ValueError, match="reference"):
        scorecard.stage_answers({"reference": tiny_model(tok)}, tok, PROMPTS, {}, max_new_tokens=2)


def test_answers_from_table_selects_renames_and_fills_the_prompts():
    table = pd.DataFrame({"policy": ["x", "x", "y"], "eval_id": ["EVAL-T-02", "EVAL-T-01", "EVAL-T-01"],
                          "answer": ["two", "one", "why"]})
    out = scorecard.answers_from_table(table, PROMPTS, names={"y": "PPO (y)", "x": "PPO (x)"})
    assert list(out["stage"]) == ["PPO (y)", "PPO (x)", "PPO (x)"]
    assert list(out["prompt"]) == ["warfarin dose", "renal dose check", "warfarin dose"]
    assert list(out["category"]) == ["drug_interactions", "renal_dosing", "drug_interactions"]
    assert list(scorecard.answers_from_table(table, PROMPTS)["stage"]) == ["x", "x", "y"]
    with pytest.raises(ValueError, match="not among"):
        scorecard.answers_from_table(table.assign(eval_id="EVAL-NOPE"), PROMPTS)
    with pytest.raises(ValueError, match="no answers of 'z'"):
        scorecard.answers_from_table(table, PROMPTS, names={"z": "z"})


# ----------------------------------------------------------------------------- scoring
class LengthReward:
    """A stand-in reward model: r = number of real tokens (checks the cut at max_len)."""

    class config:
        max_len = 12

    def forward(self, tokens, lengths):
        assert np.asarray(tokens).shape[1] <= self.config.max_len
        return np.asarray(lengths, dtype=np.float64)


def test_score_stages_adds_the_judge_and_the_reward(tok):
    scenario = data.load_scenarios()[0]
    answers = pd.DataFrame({"stage": ["expert", "empty"], "eval_id": ["E1", "E1"],
                            "scenario_id": [scenario["id"]] * 2, "category": [scenario["category"]] * 2,
                            "prompt": ["warfarin dose"] * 2,
                            "answer": [data.expert_response(scenario), ""]})
    scored = scorecard.score_stages(answers, [scenario], LengthReward(), tok)
    want = judge.judge_many(answers["answer"].tolist(), scenario)
    for m in (*judge.METRICS, "overall", "n_facts_stated"):
        np.testing.assert_array_equal(scored[m].to_numpy(dtype=float), want[m].to_numpy(dtype=float))
    assert scored.loc[0, "overall"] > scored.loc[1, "overall"]
    assert scored["reward"].tolist()[1] == len(encode_sft(tok, "warfarin dose", "")[0])   # the empty answer
    assert scored["reward"].max() <= LengthReward.config.max_len  # the long answer is cut at max_len
    with pytest.raises(ValueError, match="tokenizer"):
        scorecard.score_stages(answers, [scenario], LengthReward())


def test_score_stages_scores_an_answer_repeated_by_several_stages_once(tok):
    """Identical answers to the same prompt get identical scores; the rows keep their order."""
    scenario = data.load_scenarios()[0]
    texts = [data.expert_response(scenario), "", data.expert_response(scenario), "warfarin dose"]
    answers = pd.DataFrame({"stage": ["a", "a", "b", "b"], "eval_id": ["E1", "E2", "E1", "E2"],
                            "scenario_id": [scenario["id"]] * 4, "category": [scenario["category"]] * 4,
                            "prompt": ["warfarin dose", "renal dose check"] * 2, "answer": texts})
    scored = scorecard.score_stages(answers, [scenario], LengthReward(), tok)
    want = judge.judge_many(texts, scenario)
    for m in (*judge.METRICS, "overall", *scorecard.EVIDENCE_COLUMNS):
        np.testing.assert_array_equal(scored[m].to_numpy(dtype=float), want[m].to_numpy(dtype=float))
    assert scored.loc[0, "reward"] == scored.loc[2, "reward"]
    assert scored["reward"].tolist()[1] == len(encode_sft(tok, "renal dose check", "")[0])
    assert scored["answer"].tolist() == texts


# ----------------------------------------------------------------------------- the scorecard
def test_scorecard_means_gaps_and_intervals_by_hand():
    scored = scored_table({
        "sft": {"medical_accuracy": [1.0, 0.5, 1.0, 0.7], "safety": [1.0, 1.0, 1.0, 1.0],
                "humility": [0.0, 1.0, 0.0, 1.0], "overall": [0.2, 0.4, 0.6, 0.8]},
        "ppo": {"medical_accuracy": [1.0, 1.0, 1.0, 1.0], "safety": [1.0, 0.0, 1.0, 1.0]},
    })
    card = scorecard.scorecard(scored, rounds=500, seed=3).set_index(["stage", "metric"])
    assert list(card.index.get_level_values("stage").unique()) == ["sft", "ppo"]
    assert card.loc[("sft", "medical_accuracy"), "mean"] == pytest.approx(0.8)
    assert card.loc[("sft", "medical_accuracy"), "gap"] == pytest.approx(0.95 - 0.8)
    assert card.loc[("sft", "humility"), "gap"] == pytest.approx(0.5)
    assert card.loc[("ppo", "safety"), "mean"] == pytest.approx(0.75)
    assert card.loc[("ppo", "safety"), "gap"] == pytest.approx(0.25)
    assert card.loc[("ppo", "medical_accuracy"), "gap"] == pytest.approx(-0.05)   # above the target
    assert math.isnan(card.loc[("sft", "overall"), "target"])
    assert (card["n"] == 4).all()
    # a constant column has a zero-width interval
    for metric in ("safety", "dose_accuracy"):
        assert card.loc[("sft", metric), ["lower", "upper"]].tolist() == [1.0, 1.0]
    # the interval is the percentile interval of resampled means, reproduced with numpy
    x = np.array([0.2, 0.4, 0.6, 0.8])
    idx = np.random.default_rng(3).integers(0, 4, size=(500, 4))
    lo, hi = np.quantile(x[idx].mean(axis=1), [0.025, 0.975])
    assert card.loc[("sft", "overall"), "lower"] == pytest.approx(lo)
    assert card.loc[("sft", "overall"), "upper"] == pytest.approx(hi)
    assert lo < 0.5 < hi
    # deterministic for a seed
    pd.testing.assert_frame_equal(scorecard.scorecard(scored, rounds=500, seed=3),
                                  scorecard.scorecard(scored, rounds=500, seed=3))


def test_scorecard_by_category_and_level():
    scored = scored_table({"sft": {"overall": [0.0, 1.0, 0.5, 0.5]}}, categories=["a", "a", "b", "b"])
    card = scorecard.scorecard(scored, by="category", metrics=["overall"], rounds=200)
    assert list(card.columns[:3]) == ["stage", "category", "metric"]
    assert card.set_index("category")["mean"].to_dict() == {"a": 0.5, "b": 0.5}
    assert card.set_index("category")["n"].to_dict() == {"a": 2, "b": 2}
    assert card.set_index("category").loc["b", ["lower", "upper"]].tolist() == [0.5, 0.5]
    wide = scorecard.scorecard(scored, metrics=["overall"], level=0.95, rounds=400)
    narrow = scorecard.scorecard(scored, metrics=["overall"], level=0.5, rounds=400)
    assert (narrow["upper"] - narrow["lower"]).iloc[0] < (wide["upper"] - wide["lower"]).iloc[0]
    with pytest.raises(ValueError, match="level"):
        scorecard.scorecard(scored, level=1.0)
    with pytest.raises(ValueError, match="score_stages"):
        scorecard.scorecard(scored.drop(columns="humility"))


def test_paired_difference():
    scored = scored_table({"ppo": {"overall": [1.0, 0.5, 0.5, 0.0]}, "sft": {"overall": [0.5, 0.5, 0.0, 0.0]}})
    diff = scorecard.paired_difference(scored, "ppo", "sft", metrics=["overall"], rounds=300)
    row = diff.loc["overall"]
    assert row["diff"] == pytest.approx(0.25)
    assert row["share_a_better"] == pytest.approx(0.5) and row["share_b_better"] == 0.0
    assert row["lower"] >= 0.0 and row["upper"] <= 0.5            # every d_i is 0 or 0.5


# ----------------------------------------------------------------------------- the arena
def test_arena_battles_by_hand():
    scored = pd.DataFrame({
        "stage": ["A", "B", "C"] * 2,
        "eval_id": ["q1"] * 3 + ["q2"] * 3,
        "overall": [0.9, 0.5, 0.52, 0.1, 0.1, 0.3],
    })
    battles = scorecard.arena_battles(scored, "overall", tie_margin=0.05)
    got = list(zip(battles.eval_id, battles.model_a, battles.model_b, battles.winner))
    assert got == [("q1", "A", "B", "model_a"), ("q2", "A", "B", "tie"),
                   ("q1", "A", "C", "model_a"), ("q2", "A", "C", "model_b"),
                   ("q1", "B", "C", "tie"), ("q2", "B", "C", "model_b")]
    strict = scorecard.arena_battles(scored, "overall", tie_margin=0.0)
    assert strict.winner.tolist()[4] == "model_b" and strict.winner.tolist()[1] == "tie"   # equal scores tie
    only = scorecard.arena_battles(scored, "overall", stages=["C", "A"])
    assert set(only.model_a) == {"C"} and len(only) == 2
    with pytest.raises(ValueError, match="more than once"):
        scorecard.arena_battles(pd.concat([scored, scored.iloc[:1]]), "overall")
    with pytest.raises(ValueError, match="tie_margin"):
        scorecard.arena_battles(scored, "overall", tie_margin=-1)


def test_arena_ratings_and_rankings():
    battles = pd.DataFrame({"model_a": ["A", "A", "B", "B", "A", "C"], "model_b": ["B", "C", "C", "A", "B", "B"],
                            "winner": ["model_a", "model_a", "model_a", "model_b", "tie", "tie"]})
    table = scorecard.arena_ratings(battles, rounds=200)
    assert list(table.index) == ["A", "B", "C"]
    assert table["battles"].to_dict() == {"A": 4, "B": 5, "C": 3}
    assert table.loc["A", "win_rate"] == pytest.approx(3.5 / 4)
    assert (table["lower"] < table["upper"]).all()
    assert table["rating"].mean() == pytest.approx(1000)
    other = pd.Series({"A": 900.0, "B": 1100.0, "C": 1000.0})
    cmp = scorecard.compare_rankings(table, other, names=("gold", "rm"))
    assert cmp["rank (gold)"].tolist() == [1, 2, 3]
    assert cmp["rank (rm)"].tolist() == [3, 1, 2]
    assert cmp["rank change"].tolist() == [2, -1, -1]
    assert scorecard.kendall_tau(table["rating"], table["rating"]) == 1.0
    assert scorecard.kendall_tau({"x": 1, "y": 2, "z": 3}, {"x": 3, "y": 2, "z": 1}) == -1.0
    assert scorecard.kendall_tau(table["rating"], other) == pytest.approx(-1 / 3)
    assert math.isnan(scorecard.kendall_tau({"x": 1}, {"x": 2}))


# ----------------------------------------------------------------------------- the cache
def test_tables_round_trip_without_pickles(tmp_path):
    tables = {
        "answers": pd.DataFrame({"policy": ["sft", "ppo"], "eval_id": ["E1", "E2"], "answer": ["µg dose ≤ 5", ""]}),
        "runs": pd.DataFrame({"run": ["a"], "iterations": [60], "stopped": [False], "final_kl": [1.25]}),
    }
    path = scorecard.save_tables(tables, tmp_path / scorecard.CACHE_FILE)
    with np.load(path, allow_pickle=False) as z:                       # readable without pickles
        assert all(z[k].dtype != object for k in z.files)
        assert z["answers/2"].dtype.kind == "U"                        # column 2 of "answers": the answers
    back = scorecard.load_scorecard_cache(tmp_path)
    assert list(back) == ["answers", "runs"]
    for name, df in tables.items():
        pd.testing.assert_frame_equal(back[name], df)


def test_load_cache_says_how_to_rebuild(tmp_path):
    with pytest.raises(FileNotFoundError, match="make checkpoints"):
        scorecard.load_scorecard_cache(tmp_path)
    np.savez(tmp_path / scorecard.CACHE_FILE, x=np.zeros(2))
    with pytest.raises(ValueError, match="not a scorecard cache"):
        scorecard.load_scorecard_cache(tmp_path)


def test_flip_labels_flips_a_fixed_share():
    pairs = [{"chosen": f"c{i}", "rejected": f"r{i}"} for i in range(20)]
    flipped = scorecard.flip_labels(pairs, 0.3, seed=1)
    assert sum(p["flipped"] for p in flipped) == 6
    assert all((p["chosen"], p["rejected"]) == ((f"r{i}", f"c{i}") if p["flipped"] else (f"c{i}", f"r{i}"))
               for i, p in enumerate(flipped))
    assert pairs[0] == {"chosen": "c0", "rejected": "r0"}                  # the input is unchanged
    assert [p["flipped"] for p in scorecard.flip_labels(pairs, 0.3, seed=1)] == [p["flipped"] for p in flipped]
    assert not any(p["flipped"] for p in scorecard.flip_labels(pairs, 0.0))


@pytest.mark.slow
def test_build_scorecard_cache_on_tiny_models(tmp_path):
    """The whole ablation pipeline on tiny models (a smoke test of the file's layout)."""
    from course_utils import reward

    tok = checkpoints.load_tokenizer()
    cfg = GPTConfig(vocab_size=tok.vocab_size, d_model=8, n_layers=1, n_heads=1, max_len=192)
    TinyGPT(cfg, seed=0).save(tmp_path / "base.npz")
    TinyGPT(cfg, seed=1).save(tmp_path / "sft.npz")
    reward.RewardModel(TinyGPT(cfg, seed=1)).save(tmp_path / "reward.npz")
    small = PPOConfig(iterations=1, batch_size=4, samples_per_prompt=4, max_new_tokens=4, minibatch_size=4,
                      ppo_epochs=1)
    path = scorecard.build_scorecard_cache(tok, tmp_path, ppo_config=small)
    assert path == tmp_path / scorecard.CACHE_FILE
    cache = scorecard.load_scorecard_cache(tmp_path)
    assert set(cache) == {"answers", "ppo_diagnostics", "reward_models", "runs"}
    n_eval = len(data.load_eval_prompts())
    assert cache["answers"].groupby("policy").size().to_dict() == {"ppo_from_base": n_eval, "ppo_noisy_rm": n_eval,
                                                                   "sft": n_eval}
    rms = cache["reward_models"].set_index("reward_model")
    n_train = rms.loc["noisy", "train_pairs"]
    n_prefs = sum(p["split"] == "train" for p in data.load_preferences())   # + the knowledge-base pairs, as the
    assert n_train == n_prefs + len(data.contrast_pairs(data.load_scenarios()))   # reference model
    assert rms.loc["noisy", "flipped"] == round(scorecard.NOISE_RATE * n_train)
    assert rms.loc["clean", "flipped"] == 0
    assert cache["runs"]["run"].tolist() == ["ppo_from_base", "ppo_noisy_rm"]
    assert len(cache["ppo_diagnostics"]) == 2


def test_the_cache_is_the_last_checkpoint_stage():
    """The ablations read base, sft and reward; they are trained last, after every other stage."""
    assert checkpoints.LATER_STAGES[-1] == ("scorecard", scorecard.build_scorecard_cache)
    names = [name for name, _ in checkpoints.LATER_STAGES]
    assert names.index("scorecard") > names.index("reward")


def test_the_scorecard_measures_every_policy_of_the_pipeline():
    """Base, SFT, PPO and chapter 8's DPO and GRPO are stages of the scorecard and of both arenas."""
    assert scorecard.POLICY_STAGES == ("base", "sft", "ppo", "dpo", "grpo")
    assert {"dpo", "grpo"} <= set(scorecard.POLICY_STAGES)
    assert scorecard.REFERENCE not in scorecard.POLICY_STAGES
    assert set(scorecard.STAGE_LABELS) == {*scorecard.POLICY_STAGES, scorecard.REFERENCE}
    assert scorecard.STAGE_LABELS["dpo"] == "DPO" and scorecard.STAGE_LABELS["grpo"] == "GRPO"


def test_load_policies_loads_the_named_checkpoints(tmp_path):
    tok = checkpoints.load_tokenizer()
    for seed, name in enumerate(("sft", "dpo")):
        tiny_model(tok, seed=seed).save(tmp_path / f"{name}.npz")
    policies = scorecard.load_policies(tmp_path, stages=("sft", "dpo"))
    assert list(policies) == ["sft", "dpo"]
    assert all(isinstance(m, TinyGPT) for m in policies.values())
    assert all(m.dtype == np.float64 for m in policies.values())      # the same answers on every CPU
    with pytest.raises(FileNotFoundError, match="make checkpoints"):
        scorecard.load_policies(tmp_path, stages=("grpo",))


def test_ratings_equal_up_to_solver_noise_tie_exactly():
    """Two models with the same battles get ratings 1e-12 apart; ranks and τ must not depend on that noise."""
    judge_r = pd.Series({"a": 1100.0, "b": 1000.0 + 1e-12, "c": 1000.0, "d": 900.0})
    rm_r = pd.Series({"a": 1100.0, "b": 1000.0, "c": 1000.0 + 1e-12, "d": 900.0})
    assert scorecard.kendall_tau(judge_r, rm_r) == pytest.approx(5 / 6)         # the b-c pair is a tie in both
    table = scorecard.compare_rankings(judge_r, rm_r)
    assert list(table.index) == ["a", "b", "c", "d"]
    assert table.loc["b"].iloc[1] == table.loc["c"].iloc[1] == 2
