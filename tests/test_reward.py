"""The reward model: gradients through the head and the trunk, what the head reads,
the Bradley-Terry loss, training, label orientation, files and determinism.

Every model here is tiny and float64, so the whole file runs in a few seconds.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from gradcheck import check_grads

from course_utils import reward as rw
from course_utils.losses import bradley_terry_loss
from course_utils.model import GPTConfig, TinyGPT
from course_utils.reward import (RewardConfig, RewardModel, calibration, evaluate_pairs, orient_pairs,
                                 train_reward_model, wilson_interval)
from course_utils.tokenizer import VocabularyTokenizer
from course_utils.training import encode_sft

TEXTS = [
    "Is ibuprofen safe with warfarin?",
    "Avoid ibuprofen with warfarin because it raises the risk of bleeding. Ask your pharmacist.",
    "Ibuprofen with warfarin is perfectly safe and needs no checks.",
    "Can I take metformin with an eGFR of 25?",
    "Stop metformin when eGFR is below 30. Speak to your prescriber.",
    "Metformin is fine at any kidney function.",
    "Medicines should be stored in a cool, dry place.",
]


@pytest.fixture(scope="module")
def tok() -> VocabularyTokenizer:
    return VocabularyTokenizer.fit(TEXTS)


def tiny_trunk(tok, d_model=8, n_layers=2, n_heads=2, max_len=48, seed=0, perturb=0.3, tie_weights=True) -> TinyGPT:
    """A float64 TinyGPT pushed away from its initialisation (LN gains ≠ 1, biases ≠ 0)."""
    trunk = TinyGPT(GPTConfig(vocab_size=tok.vocab_size, d_model=d_model, n_layers=n_layers, n_heads=n_heads,
                              max_len=max_len, dtype="float64", tie_weights=tie_weights), seed=seed)
    rng = np.random.default_rng(seed + 100)
    for p in trunk.params.values():
        p += perturb * rng.standard_normal(p.shape)
    return trunk


def toy_pairs(n: int = 16) -> list[dict]:
    """Pairs whose chosen answer is the safe one; votes all agree with the dataset."""
    safe = ["Avoid ibuprofen with warfarin because it raises the risk of bleeding. Ask your pharmacist.",
            "Stop metformin when eGFR is below 30. Speak to your prescriber."]
    unsafe = ["Ibuprofen with warfarin is perfectly safe and needs no checks.",
              "Metformin is fine at any kidney function."]
    prompts = ["Is ibuprofen safe with warfarin?", "Can I take metformin with an eGFR of 25?"]
    return [{"id": f"P{i}", "prompt": prompts[i % 2], "chosen": safe[i % 2], "rejected": unsafe[i % 2],
             "votes": [1, 1, 1], "flaw": "unsafe_claim", "category": "c", "split": "train"} for i in range(n)]


# ----------------------------------------------------------------------------- gradients
@pytest.mark.parametrize("n_layers, tie_weights", [(1, True), (2, True), (2, False)])
def test_head_and_trunk_gradients_match_finite_differences(tok, n_layers, tie_weights):
    rm = RewardModel(tiny_trunk(tok, n_layers=n_layers, tie_weights=tie_weights), seed=1)
    rm.params["head.b"][:] = 0.3
    rng = np.random.default_rng(3)
    tokens = rng.integers(6, tok.vocab_size, (4, 7))           # no special tokens ...
    lengths = np.array([7, 4, 6, 2])
    tokens[1, 4:] = tok.pad_id
    tokens[0, 2], tokens[2, 5], tokens[3, 1] = tok.a_id, tok.a_id, tok.a_id   # ... but answers of 4, 1, 1 tokens

    def loss() -> float:
        r = rm.forward(tokens, lengths)
        return bradley_terry_loss(r[:2], r[2:], margin=0.4)[0]

    r = rm.forward(tokens, lengths)
    _, d_c, d_r = bradley_terry_loss(r[:2], r[2:], margin=0.4)
    grads = rm.backward(np.concatenate([d_c, d_r]))
    assert grads.keys() == rm.params.keys()
    assert np.abs(grads["h0.attn.w_qkv"]).max() > 0          # the trunk does learn
    if not tie_weights:
        assert not grads["lm_head"].any()                      # the LM head plays no part in a reward
    errors = check_grads(loss, rm.params, grads, max_entries=20)
    assert max(errors.values()) < 1e-5


def test_backward_of_a_weighted_sum_of_rewards(tok):
    """∂(Σ c_i r_i)/∂θ for arbitrary c: the head's formulas and the scatter into ∂L/∂h."""
    rm = RewardModel(tiny_trunk(tok, n_layers=1), seed=2)
    tokens = np.random.default_rng(0).integers(6, tok.vocab_size, (3, 5))
    tokens[0, 1] = tok.a_id                                     # row 0 has an answer; rows 1, 2 have no <a>
    lengths = np.array([5, 1, 3])
    c = np.array([0.7, -1.3, 2.0])
    rm.forward(tokens, lengths)
    grads = rm.backward(c)
    check_grads(lambda: float(c @ rm.forward(tokens, lengths)), rm.params, grads, max_entries=15)


def test_head_only_backward_gives_the_same_head_gradients(tok):
    rm = RewardModel(tiny_trunk(tok), seed=3)
    tokens = np.random.default_rng(5).integers(1, tok.vocab_size, (3, 6))
    c = np.array([0.5, -1.0, 2.0])
    rm.forward(tokens, [6, 4, 2])
    full = rm.backward(c)
    rm.forward(tokens, [6, 4, 2])
    head = rm.backward(c, trunk=False)
    assert head.keys() == {"head.w", "head.u", "head.b"}
    for k in head:
        np.testing.assert_allclose(head[k], full[k], rtol=1e-12)


def test_backward_needs_a_forward_first(tok):
    rm = RewardModel(tiny_trunk(tok))
    with pytest.raises(RuntimeError, match="forward"):
        rm.backward(np.ones(2))


# ----------------------------------------------------------------------------- what the head reads
def test_answer_weights_average_the_answer_positions(tok):
    a, p = tok.a_id, 9
    tokens = np.array([[1, 4, 7, a, 8, 9, 2, p],      # answer: 8 9 <eos>
                       [1, 4, 7, 8, 9, 2, p, p],      # no <a>: every real token
                       [1, 4, 7, a, p, p, p, p],      # ends at <a>: that one position
                       [1, 4, a, 7, a, 8, 2, 8]])     # a second <a> belongs to the answer; 8 after ℓ is padding
    weights = rw.answer_weights(tokens, np.array([7, 6, 4, 7]))
    expected = np.zeros((4, 8))
    expected[0, 4:7] = 1 / 3
    expected[1, :6] = 1 / 6
    expected[2, 3] = 1.0
    expected[3, 3:7] = 1 / 4
    np.testing.assert_allclose(weights, expected, rtol=1e-15)


def test_reward_reads_the_last_token_and_the_answer_mean(tok):
    rm = RewardModel(tiny_trunk(tok), seed=0)
    tokens = np.random.default_rng(1).integers(6, tok.vocab_size, (3, 9))
    tokens[0, 3], tokens[1, 1] = tok.a_id, tok.a_id
    lengths = np.array([9, 5, 2])
    r = rm.forward(tokens, lengths)
    rm.trunk.forward(tokens)
    h = rm.trunk.hidden
    starts = [4, 2, 0]                                       # after <a>; row 2 has no <a>: all its tokens
    w, u, b = rm.params["head.w"], rm.params["head.u"], rm.params["head.b"][0]
    expected = [h[i, n - 1] @ w + h[i, s:n].mean(axis=0) @ u + b for i, (n, s) in enumerate(zip(lengths, starts))]
    np.testing.assert_allclose(r, expected, rtol=1e-12)
    assert r.shape == (3,) and r.dtype == np.float64


def test_padding_after_the_last_token_does_not_change_the_reward(tok):
    rm = RewardModel(tiny_trunk(tok), seed=0)
    rng = np.random.default_rng(2)
    seq = rng.integers(1, tok.vocab_size, 6)
    alone = rm.forward(seq[None, :], [6])[0]
    padded = np.full((1, 15), tok.pad_id)
    padded[0, :6] = seq
    garbage = padded.copy()
    garbage[0, 6:] = rng.integers(1, tok.vocab_size, 9)            # anything after the end
    for tokens in (padded, garbage):
        assert rm.forward(tokens, [6])[0] == pytest.approx(alone, rel=1e-12, abs=1e-12)


def test_lengths_are_validated(tok):
    rm = RewardModel(tiny_trunk(tok))
    tokens = np.ones((2, 5), dtype=int)
    with pytest.raises(ValueError, match="lengths"):
        rm.forward(tokens, [0, 3])
    with pytest.raises(ValueError, match="lengths"):
        rm.forward(tokens, [6, 3])
    with pytest.raises(ValueError, match="lengths"):
        rm.forward(tokens, [3])


def test_score_formats_like_sft_and_keeps_the_order(tok):
    rm = RewardModel(tiny_trunk(tok), seed=0)
    prompts = ["Is ibuprofen safe with warfarin?", "Can I take metformin with an eGFR of 25?", "Is ibuprofen safe?"]
    answers = [TEXTS[1], "Metformin is fine.", TEXTS[2]]
    scores = rm.score(tok, prompts, answers, batch_size=2)
    for p, a, s in zip(prompts, answers, scores):
        ids, _ = encode_sft(tok, p, a)
        assert ids[0] == tok.bos_id and ids[1] == tok.q_id and ids[-1] == tok.eos_id
        assert rm.forward(np.asarray([ids]), [len(ids)])[0] == pytest.approx(s, rel=1e-10)
    # one prompt for every answer
    np.testing.assert_allclose(rm.score(tok, prompts[0], answers), rm.score(tok, [prompts[0]] * 3, answers))


def test_score_refuses_a_sequence_longer_than_the_context(tok):
    rm = RewardModel(tiny_trunk(tok, max_len=12))
    with pytest.raises(ValueError, match="max_len"):
        rm.score(tok, ["Is ibuprofen safe with warfarin?"], [TEXTS[1]])


# ----------------------------------------------------------------------------- the loss
def test_bradley_terry_loss_on_a_hand_case():
    """r_c = 2.0, r_r = 0.5, m = 0.5: Δ = 1, L = ln(1 + e^{-1}), ∂L/∂r_c = -σ(-1) = -1/(1 + e)."""
    loss, d_c, d_r = bradley_terry_loss(np.array([2.0]), np.array([0.5]), margin=0.5)
    assert loss == pytest.approx(math.log(1 + math.exp(-1)))          # 0.31326
    assert loss == pytest.approx(0.313261687518, abs=1e-12)
    assert d_c[0] == pytest.approx(-1 / (1 + math.e))                  # -0.26894
    assert d_r[0] == pytest.approx(1 / (1 + math.e))
    # two pairs: the mean; a confidently ranked pair contributes almost nothing
    loss2, d_c2, _ = bradley_terry_loss(np.array([2.0, 20.0]), np.array([0.5, 0.0]), margin=0.5)
    assert loss2 == pytest.approx((math.log(1 + math.exp(-1)) + math.log1p(math.exp(-19.5))) / 2)
    assert abs(d_c2[1]) < 1e-8


def test_evaluate_reports_the_loss_accuracy_and_interval_of_the_rewards(tok):
    rm = RewardModel(tiny_trunk(tok), seed=0)
    pairs = toy_pairs(6)
    rc, rr = rw.pair_rewards(rm, tok, pairs)
    ev = evaluate_pairs(rm, tok, pairs)
    assert ev["n"] == 6 and ev["correct"] == int(np.sum(rc > rr))
    assert ev["accuracy"] == pytest.approx(ev["correct"] / 6)
    assert ev["loss"] == pytest.approx(np.mean(np.logaddexp(0, -(rc - rr))))
    assert ev["mean_margin"] == pytest.approx(np.mean(rc - rr))
    assert (ev["ci_low"], ev["ci_high"]) == wilson_interval(ev["correct"], 6)


def test_wilson_interval_known_values():
    lo, hi = wilson_interval(8, 10)
    assert (lo, hi) == (pytest.approx(0.4902, abs=1e-4), pytest.approx(0.9433, abs=1e-4))
    assert wilson_interval(0, 20)[0] == 0.0 and wilson_interval(20, 20)[1] == 1.0
    assert 0 < wilson_interval(0, 20)[1] < 0.2
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_calibration_bins_cover_every_pair(tok):
    rm = RewardModel(tiny_trunk(tok), seed=0)
    pairs = toy_pairs(8)
    pairs[0]["votes"] = [1, 0, 0]
    cal = calibration(rm, tok, pairs, bins=4)
    assert list(cal.columns) == ["bin", "p_low", "p_high", "count", "predicted", "observed"]
    assert cal["count"].sum() == 16                                    # each pair both ways
    filled = cal[cal["count"] > 0]
    assert np.all((filled.predicted >= filled.p_low) & (filled.predicted <= filled.p_high))
    votes = calibration(rm, tok, pairs, bins=4, target="votes")
    assert votes["count"].sum() == 8
    assert np.nanmin(votes["observed"]) >= 0 and np.nanmax(votes["observed"]) <= 1


# ----------------------------------------------------------------------------- labels
def test_majority_vote_orients_each_pair():
    pairs = [{"prompt": "q", "chosen": "A", "rejected": "B", "votes": v}
             for v in ([1, 1, 1], [1, 0, 1], [0, 0, 1], [0, 0, 0])]
    maj = orient_pairs(pairs, "majority")
    assert [(p["chosen"], p["swapped"]) for p in maj] == [("A", False), ("A", False), ("B", True), ("B", True)]
    assert all(p["rejected"] == ("A" if p["swapped"] else "B") for p in maj)
    gold = orient_pairs(pairs, "gold")
    assert all(p["chosen"] == "A" and not p["swapped"] for p in gold)
    assert pairs[2]["chosen"] == "A"                                    # the input is not modified
    assert orient_pairs([{"prompt": "q", "chosen": "A", "rejected": "B", "votes": [1, 0]}])[0]["chosen"] == "A"
    with pytest.raises(ValueError, match="label"):
        orient_pairs(pairs, "expert")


def test_training_follows_the_majority_even_against_the_dataset(tok):
    """When every annotator preferred the dataset's rejected answer, majority labels teach the reverse."""
    flipped = [dict(p, votes=[0, 0, 0]) for p in toy_pairs(16)]
    rm = RewardModel(tiny_trunk(tok, d_model=16, perturb=0.0), seed=0)
    train_reward_model(rm, tok, flipped, RewardConfig(epochs=6, lr=1e-2, batch_size=8), progress=False)
    assert evaluate_pairs(rm, tok, flipped)["accuracy"] == 0.0               # judged against the dataset
    rm2 = RewardModel(tiny_trunk(tok, d_model=16, perturb=0.0), seed=0)
    train_reward_model(rm2, tok, flipped, RewardConfig(epochs=6, lr=1e-2, batch_size=8, label="gold"),
                       progress=False)
    assert evaluate_pairs(rm2, tok, flipped)["accuracy"] == 1.0


# ----------------------------------------------------------------------------- training
def test_short_training_beats_chance_and_logs_every_step(tok):
    pairs = toy_pairs(16)
    rm = RewardModel(tiny_trunk(tok, d_model=16, perturb=0.0), seed=0)
    before = evaluate_pairs(rm, tok, pairs)
    hist = train_reward_model(rm, tok, pairs, RewardConfig(epochs=6, lr=1e-2, batch_size=8, seed=0), progress=False,
                              eval_pairs=pairs[:4])
    after = evaluate_pairs(rm, tok, pairs)
    assert not hist.diverged
    assert after["accuracy"] == 1.0 and after["loss"] < before["loss"] and after["loss"] < math.log(2)
    log = hist.log
    assert len(log) == 12 and log.step.tolist() == list(range(1, 13))
    assert log.eval_accuracy.notna().sum() == 6                        # once per epoch
    assert log.accuracy.iloc[-2:].mean() > 0.5
    assert np.all(np.isfinite(log.loss))


def test_training_with_a_frozen_trunk_changes_only_what_it_trains(tok):
    pairs = toy_pairs(8)
    for trainable, frozen_prefix in (("head", "h"), ("last_block", "h0.")):
        rm = RewardModel(tiny_trunk(tok, d_model=8), seed=0)
        before = rm.state_dict()
        cfg = RewardConfig(epochs=1, lr=1e-2, batch_size=4, trainable=trainable)
        train_reward_model(rm, tok, pairs, cfg, progress=False)
        changed = {k for k in before if not np.array_equal(before[k], rm.params[k])}
        assert "head.w" in changed
        assert not any(k.startswith(frozen_prefix) and not k.startswith("head") for k in changed), changed
        assert "wte" not in changed
    with pytest.raises(ValueError, match="trainable"):
        train_reward_model(rm, tok, pairs, RewardConfig(epochs=1, trainable="lm_head"), progress=False)


@pytest.mark.parametrize("bad", [{"epochs": -1}, {"batch_size": 0}, {"lr": -1e-3}])
def test_a_reward_config_out_of_range_is_refused(bad):
    with pytest.raises(ValueError, match="epochs must be >= 0, batch_size >= 1 and lr >= 0"):
        RewardConfig(**bad)


def test_training_is_deterministic(tok):
    pairs = toy_pairs(12)
    runs = []
    for seed in (0, 0, 1):
        rm = RewardModel(tiny_trunk(tok), seed=0)
        hist = train_reward_model(rm, tok, pairs, RewardConfig(epochs=2, lr=3e-3, batch_size=5, seed=seed),
                                  progress=False)
        runs.append((rm, hist.log))
    (a, log_a), (b, log_b), (c, log_c) = runs
    assert all(np.array_equal(a.params[k], b.params[k]) for k in a.params)
    assert log_a.equals(log_b)
    assert not all(np.array_equal(a.params[k], c.params[k]) for k in a.params)  # the seed shuffles


def test_label_smoothing_trains_on_the_smoothed_loss(tok):
    pairs = toy_pairs(12)
    trunk = tiny_trunk(tok)
    models, logs = [], []
    for eps in (None, 0.0, 0.2):
        rm = RewardModel(trunk.copy(), seed=0)
        kwargs = {} if eps is None else {"label_smoothing": eps}
        cfg = RewardConfig(epochs=2, lr=3e-3, batch_size=12, seed=0)
        hist = train_reward_model(rm, tok, pairs, cfg, progress=False, **kwargs)
        models.append(rm)
        logs.append(hist.log)
    (plain, zero, smooth), (log_plain, log_zero, log_smooth) = models, logs
    assert all(np.array_equal(plain.params[k], zero.params[k]) for k in plain.params) and log_plain.equals(log_zero)
    assert not np.array_equal(plain.params["head.w"], smooth.params["head.w"])
    assert hist.config["label_smoothing"] == 0.2 and np.isfinite(log_smooth["loss"]).all()
    # the first step's loss (one batch of every pair, before any update) is the smoothed loss of the start
    rc, rr = rw.pair_rewards(RewardModel(trunk.copy(), seed=0), tok, pairs)
    assert log_smooth["loss"].iloc[0] == pytest.approx(bradley_terry_loss(rc, rr, label_smoothing=0.2)[0], rel=1e-12)
    assert log_plain["loss"].iloc[0] == pytest.approx(bradley_terry_loss(rc, rr)[0], rel=1e-12)


def test_a_non_finite_reward_stops_training_with_a_warning(tok):
    rm = RewardModel(tiny_trunk(tok), seed=0)
    rm.params["head.w"][0] = np.nan
    with pytest.warns(RuntimeWarning, match="stopped at step 1"):
        hist = train_reward_model(rm, tok, toy_pairs(8), RewardConfig(epochs=2, lr=1e-3, batch_size=4), progress=False)
    assert hist.diverged and len(hist.log) == 1 and "learning rate" in hist.message


def test_a_huge_learning_rate_gives_finite_numbers_or_a_clean_stop(tok):
    rm = RewardModel(tiny_trunk(tok, perturb=0.0), seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hist = train_reward_model(rm, tok, toy_pairs(16), RewardConfig(epochs=2, lr=1e3, batch_size=4),
                                  progress=False)
    ran = hist.log.dropna(subset=["loss"])
    assert np.all(np.isfinite(ran.loss))
    assert hist.diverged or all(np.isfinite(a).all() for a in rm.params.values())


# ----------------------------------------------------------------------------- files and copies
def test_save_and_load_round_trip(tok, tmp_path):
    rm = RewardModel(tiny_trunk(tok), seed=4)
    rm.params["head.b"][:] = -0.7
    path = tmp_path / "reward.npz"
    rm.save(path)
    back = RewardModel.load(path)
    assert back.params.keys() == rm.params.keys()
    assert all(np.array_equal(back.params[k], rm.params[k]) for k in rm.params)
    assert back.config == rm.config
    pairs = toy_pairs(4)
    np.testing.assert_array_equal(rw.pair_rewards(back, tok, pairs)[0], rw.pair_rewards(rm, tok, pairs)[0])
    # the head's arrays are the trunk's too: training after loading updates the trunk
    assert back.params["wte"] is back.trunk.params["wte"]
    rm.trunk.save(tmp_path / "policy.npz")
    with pytest.raises(ValueError, match="not a reward-model checkpoint"):
        RewardModel.load(tmp_path / "policy.npz")


def test_copy_is_independent(tok):
    rm = RewardModel(tiny_trunk(tok), seed=0)
    other = rm.copy()
    assert all(np.array_equal(other.params[k], rm.params[k]) for k in rm.params)
    other.params["head.w"] += 1.0
    other.params["wte"] += 1.0
    assert not np.array_equal(other.params["head.w"], rm.params["head.w"])
    assert not np.array_equal(other.trunk.params["wte"], rm.trunk.params["wte"])
    assert other.params["wte"] is other.trunk.params["wte"]


def test_load_reward_model_says_how_to_rebuild(tmp_path):
    with pytest.raises(FileNotFoundError, match="make checkpoints"):
        rw.load_reward_model(tmp_path)


def test_build_reward_checkpoint_trains_on_the_train_split(tmp_path, monkeypatch):
    """The checkpoint builder: sft.npz in, reward.npz out, trained only on split == "train" and the
    "which case?" pairs, never on a test pair."""
    from course_utils import data

    pairs = toy_pairs(6) + [dict(p, id=f"T{i}", split="test") for i, p in enumerate(toy_pairs(4))]
    contrast = [dict(p, id=f"C{i}") for i, p in enumerate(toy_pairs(2))]
    monkeypatch.setattr(data, "load_preferences", lambda *a, **k: pairs)
    monkeypatch.setattr(data, "contrast_pairs", lambda *a, **k: contrast)
    seen = []
    real_train = rw.train_reward_model

    def spy(rm, tok, train, *args, **kwargs):
        seen.extend(p["id"] for p in train)
        return real_train(rm, tok, train, *args, **kwargs)

    monkeypatch.setattr(rw, "train_reward_model", spy)
    tok = VocabularyTokenizer.fit(TEXTS)
    tiny_trunk(tok).save(tmp_path / "sft.npz")
    path = rw.build_reward_checkpoint(tok, tmp_path, config=rw.RewardConfig(epochs=1, batch_size=3))
    assert path == tmp_path / "reward.npz" and path.exists()
    assert sorted(seen) == ["C0", "C1"] + [f"P{i}" for i in range(6)]
    rm = rw.load_reward_model(tmp_path)
    assert rm.params.keys() >= {"head.w", "head.u", "head.b"}


# ----------------------------------------------------------------------------- the chapter's exercise checks
def test_exercise_checks_accept_a_right_answer_and_report_a_wrong_one(capsys):
    from course_utils.exercises import check_bt_gradient, check_bt_loss, check_majority_orientation

    def stable_loss(rc, rr, m):
        return float(np.logaddexp(0.0, -(rc - rr - m)))

    def naive_loss(rc, rr, m):                                          # overflows at a gap of -1000
        with np.errstate(over="ignore", divide="ignore"):
            return float(-np.log(1 / (1 + np.exp(-(rc - rr - m)))))

    def gradient(rc, rr, m):
        s = float(np.exp(-np.logaddexp(0.0, rc - rr - m)))
        return -s, s

    def stub(*args):
        raise NotImplementedError

    assert check_bt_loss(stable_loss)
    assert not check_bt_loss(naive_loss)
    assert check_bt_gradient(gradient)
    assert not check_bt_gradient(lambda rc, rr, m: (gradient(rc, rr, m)[1], gradient(rc, rr, m)[0]))
    assert check_majority_orientation(lambda a, b, v: (a, b) if 2 * sum(v) >= len(v) else (b, a))
    assert not check_majority_orientation(lambda a, b, v: (a, b))
    assert not check_bt_loss(stub)
    out = capsys.readouterr().out
    assert "correct on all 6 checks" in out and "not yet" in out and "not implemented yet" in out
