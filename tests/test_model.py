"""TinyGPT: finite-difference checks of every parameter's gradient, generation, files."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from gradcheck import check_grads

from course_utils.losses import cross_entropy, token_logprobs
from course_utils.model import GPTConfig, TinyGPT, filter_logits, sample_next_token
from course_utils.optim import AdamW

V = 11


def small_model(n_layers=2, n_heads=2, tie_weights=True, dtype="float64", seed=0, max_len=8) -> TinyGPT:
    """A model small enough for finite differences, its weights pushed away from the
    initialisation (LayerNorm gains ≠ 1, biases ≠ 0, attention far from uniform)."""
    config = GPTConfig(vocab_size=V, d_model=8, n_layers=n_layers, n_heads=n_heads, max_len=max_len,
                       tie_weights=tie_weights, dtype=dtype)
    model = TinyGPT(config, seed=seed)
    rng = np.random.default_rng(seed + 100)
    for p in model.params.values():
        p += (0.3 * rng.standard_normal(p.shape)).astype(p.dtype)
    return model


# ----------------------------------------------------------------------------- gradients

@pytest.mark.parametrize("n_layers, n_heads", [(1, 1), (2, 2)])
@pytest.mark.parametrize("tie_weights", [True, False])
@pytest.mark.parametrize("head", ["lm", "lm+hidden", "hidden only"])
def test_every_parameter_gradient_matches_finite_differences(n_layers, n_heads, tie_weights, head):
    """Loss = masked cross-entropy (through the LM head) and/or Σ h ⊙ R (a stand-in for a
    reward or value head on the final hidden states, so dhidden = R)."""
    model = small_model(n_layers, n_heads, tie_weights)
    rng = np.random.default_rng(7)
    tokens = rng.integers(0, V, (2, 5))
    targets = rng.integers(0, V, (2, 5))
    mask = np.array([[0, 1, 1, 1, 1], [0, 0, 1, 1, 0]], dtype=float)
    R = rng.standard_normal((2, 5, 8))
    use_lm, use_hidden = head != "hidden only", head != "lm"

    def loss() -> float:
        total = 0.0
        logits = model.forward(tokens)
        if use_lm:
            total += cross_entropy(logits, targets, mask)[0]
        if use_hidden:
            total += float(np.sum(model.hidden * R))
        return total

    logits = model.forward(tokens)
    dlogits = cross_entropy(logits, targets, mask)[1] if use_lm else None
    grads = model.backward(dlogits, R if use_hidden else None)
    assert grads.keys() == model.params.keys()
    errors = check_grads(loss, model.params, grads, max_entries=24)
    assert max(errors.values()) < 1e-5
    if not use_lm and not tie_weights:
        assert not grads["lm_head"].any()        # no LM loss, no LM-head gradient


def test_forward_hidden_skips_the_head_and_supports_backward():
    model = small_model(tie_weights=False)
    tokens = np.array([[1, 2, 3, 4], [5, 6, 7, 8]])
    R = np.random.default_rng(3).standard_normal((2, 4, 8))
    model.forward(tokens)
    hidden, expected = model.hidden.copy(), model.backward(None, R)
    h = model.forward_hidden(tokens)
    np.testing.assert_array_equal(h, hidden)
    grads = model.backward(None, R)
    assert all(np.array_equal(grads[k], expected[k]) for k in expected)


def test_causal_mask_future_tokens_do_not_change_the_past():
    model = small_model()
    tokens = np.array([[1, 2, 3, 4, 5, 6]])
    changed = tokens.copy()
    changed[0, 4:] = [9, 10]
    a, b = model.forward(tokens), model.forward(changed)
    np.testing.assert_array_equal(a[:, :4], b[:, :4])
    assert not np.allclose(a[:, 4:], b[:, 4:])


def test_float32_forward_backward_agree_with_float64():
    m64 = small_model(dtype="float64")
    m32 = TinyGPT(GPTConfig(**{**m64.config.__dict__, "dtype": "float32"}))
    m32.load_state_dict(m64.params)
    tokens = np.array([[1, 2, 3, 4], [4, 3, 2, 1]])
    z64, z32 = m64.forward(tokens), m32.forward(tokens)
    assert z32.dtype == np.float32
    np.testing.assert_allclose(z32, z64, atol=1e-4)
    g64 = m64.backward(cross_entropy(z64, tokens)[1])
    g32 = m32.backward(cross_entropy(z32, tokens)[1])
    for k in g64:
        assert g32[k].dtype == np.float32
        np.testing.assert_allclose(g32[k], g64[k], atol=1e-4, err_msg=k)


def test_large_activations_take_the_shifted_softmax_path():
    """Huge queries and keys make the attention softmax subtract its row max; the result
    must equal the same computation in float64."""
    model = small_model(dtype="float64")
    for name in ("h0.attn.w_qkv", "h1.attn.w_qkv"):
        model.params[name] *= 200.0
    tokens = np.array([[1, 2, 3, 4, 5]])
    logits = model.forward(tokens)
    assert np.isfinite(logits).all()
    grads = model.backward(cross_entropy(logits, tokens)[1])
    assert all(np.isfinite(g).all() for g in grads.values())


def test_short_training_run_fits_a_sequence():
    model = TinyGPT(GPTConfig(vocab_size=V, d_model=16, n_layers=2, n_heads=2, max_len=16), seed=0)
    opt = AdamW(model.params, lr=3e-3)
    seq = np.array([[1, 5, 2, 8, 3, 9, 4, 7, 6, 10, 1, 5]])
    losses = []
    for _ in range(60):
        loss, dz = cross_entropy(model.forward(seq[:, :-1]), seq[:, 1:])
        opt.step(model.backward(dz))
        losses.append(loss)
    assert losses[0] > 2.0 and losses[-1] < 0.3 * losses[0]


# ----------------------------------------------------------------------------- parameters, determinism, files

def test_parameter_names_shapes_and_count():
    c = GPTConfig(vocab_size=50, d_model=16, n_layers=2, n_heads=4, max_len=32, tie_weights=False)
    model = TinyGPT(c)
    p = model.params
    assert p["wte"].shape == (50, 16) and p["wpe"].shape == (32, 16)
    assert p["h1.attn.w_qkv"].shape == (16, 48) and p["h1.mlp.w_fc"].shape == (16, 64)
    assert p["lm_head"].shape == (16, 50) and p["ln_f.g"].shape == (16,)
    per_block = 2 * 16 + (16 * 48 + 48) + (16 * 16 + 16) + 2 * 16 + (16 * 64 + 64) + (64 * 16 + 16)
    assert model.n_params == 50 * 16 + 32 * 16 + 2 * per_block + 2 * 16 + 16 * 50
    tied = TinyGPT(GPTConfig(vocab_size=50, d_model=16, n_layers=2, n_heads=4, max_len=32))
    assert "lm_head" not in tied.params and tied.n_params == model.n_params - 16 * 50
    assert c.d_ff == 64 and c.d_head == 4
    # GPT-2 init: residual projections have std 0.02 / √(2L)
    big = TinyGPT(GPTConfig(vocab_size=50, d_model=64, n_layers=2))
    assert np.std(big.params["h0.mlp.w_proj"]) == pytest.approx(0.01, rel=0.05)
    assert np.std(big.params["h0.mlp.w_fc"]) == pytest.approx(0.02, rel=0.05)
    assert not big.params["h0.attn.b_qkv"].any() and np.all(big.params["h0.ln1.g"] == 1)


def test_config_validation():
    with pytest.raises(ValueError, match="divisible"):
        GPTConfig(vocab_size=10, d_model=10, n_heads=4)
    with pytest.raises(ValueError, match="dtype"):
        GPTConfig(vocab_size=10, dtype="float16")
    model = small_model()
    with pytest.raises(ValueError, match="max_len"):
        model.forward(np.zeros((1, 9), dtype=int))
    with pytest.raises(ValueError, match=r"\[0, 11\)"):
        model.forward(np.array([[1, 11]]))
    with pytest.raises(RuntimeError, match="forward"):
        TinyGPT(model.config).backward(np.zeros((1, 1, V)))


def test_same_seed_same_weights():
    c = GPTConfig(vocab_size=30, d_model=16, n_layers=2, n_heads=2)
    a, b, other = TinyGPT(c, seed=3), TinyGPT(c, seed=3), TinyGPT(c, seed=4)
    assert all(np.array_equal(a.params[k], b.params[k]) for k in a.params)
    assert not np.array_equal(a.params["wte"], other.params["wte"])


@pytest.mark.parametrize("tie_weights", [True, False])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_save_load_round_trip(tmp_path, tie_weights, dtype):
    model = small_model(tie_weights=tie_weights, dtype=dtype)
    path = tmp_path / "policy.ckpt"            # any name: nothing is appended
    model.save(path)
    loaded = TinyGPT.load(path)
    assert loaded.config == model.config
    assert all(np.array_equal(loaded.params[k], model.params[k]) and loaded.params[k].dtype == np.dtype(dtype)
               for k in model.params)
    tokens = np.array([[1, 2, 3]])
    np.testing.assert_array_equal(loaded.forward(tokens), model.forward(tokens))


def test_state_dict_copy_and_load_state_dict_in_place():
    model = small_model()
    state = model.state_dict()
    clone = model.copy()
    model.params["wte"] += 1.0
    assert np.array_equal(clone.params["wte"], state["wte"])          # the copy is independent
    opt_view = model.params["wte"]
    model.load_state_dict(state)
    assert model.params["wte"] is opt_view and np.array_equal(opt_view, state["wte"])
    with pytest.raises(KeyError, match="missing"):
        model.load_state_dict({k: v for k, v in state.items() if k != "wpe"})
    with pytest.raises(ValueError, match="shape"):
        model.load_state_dict({**state, "wpe": np.zeros((2, 2))})


# ----------------------------------------------------------------------------- generation

@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("sampling", [{}, {"temperature": 0.7, "top_k": 4}, {"top_p": 0.8}, {"temperature": 0}])
def test_kv_cache_gives_the_same_tokens_and_logits(dtype, sampling):
    model = small_model(dtype=dtype, max_len=16)
    prompts = np.array([[1, 2, 3], [4, 5, 6], [7, 8, 9]])
    kw = {"max_new_tokens": 12, "rng": 123, "return_logprobs": True, "return_logits": True, **sampling}
    cached = model.generate(prompts, use_cache=True, **kw)
    full = model.generate(prompts, use_cache=False, **kw)
    np.testing.assert_array_equal(cached.tokens, full.tokens)
    tol = 1e-12 if dtype == "float64" else 1e-5
    np.testing.assert_allclose(cached.logits, full.logits, atol=tol)
    np.testing.assert_allclose(cached.logprobs, full.logprobs, atol=tol)
    # the step logits are those of a plain forward pass over prompt + generated tokens
    whole = model.forward(np.concatenate([prompts, cached.tokens], axis=1))
    np.testing.assert_allclose(cached.logits, whole[:, 2:-1], atol=tol)


def test_sampling_is_deterministic_given_a_seed():
    model = small_model(max_len=16)
    prompt = np.array([1, 2])
    a = model.generate(prompt, 10, rng=5)
    b = model.generate(prompt, 10, rng=np.random.default_rng(5))
    c = model.generate(prompt, 10, rng=6)
    assert a.shape == (1, 10) and np.array_equal(a, b) and not np.array_equal(a, c)


def test_greedy_is_argmax_and_logprobs_are_under_the_sampling_distribution():
    model = small_model(max_len=16)
    prompt = np.array([[3, 1, 4]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # temperature 0: no division by zero
        g = model.generate(prompt, 6, temperature=0.0, return_logprobs=True, return_logits=True)
    np.testing.assert_array_equal(g.tokens, g.logits.argmax(-1))
    assert not g.logprobs.any()                 # greedy: q puts all its mass on the argmax
    s = model.generate(prompt, 6, temperature=0.5, rng=0, return_logprobs=True, return_logits=True)
    expected = token_logprobs(s.logits / 0.5, s.tokens)
    np.testing.assert_allclose(s.logprobs, expected, atol=1e-12)
    full = model.generate(prompt, 6, rng=0, return_logprobs=True, return_logits=True)
    np.testing.assert_allclose(full.logprobs, token_logprobs(full.logits, full.tokens), atol=1e-12)


def test_stop_id_pads_finished_rows_and_ends_early():
    model = small_model(max_len=32)
    prompts = np.array([[1, 2], [3, 4], [5, 6]])
    free = model.generate(prompts, 20, rng=0, return_logprobs=True)
    stop = int(free.tokens[0, 2])                       # row 0 emits it at step 2
    out = model.generate(prompts, 20, rng=0, stop_id=stop, pad_id=0, return_logprobs=True)
    for row in range(3):
        hits = np.flatnonzero(free.tokens[row] == stop)
        n = hits[0] + 1 if hits.size else 20
        assert out.lengths[row] == n
        np.testing.assert_array_equal(out.tokens[row, :n], free.tokens[row, :n])
        assert not out.tokens[row, n:].any() and not out.logprobs[row, n:].any()
    everyone_stops = model.generate(prompts, 20, temperature=0,
                                    stop_id=int(model.generate(prompts, 1, temperature=0)[0, 0]))
    assert everyone_stops.shape[1] <= 20


def test_generate_checks_its_arguments():
    model = small_model(max_len=8)
    with pytest.raises(ValueError, match="max_len"):
        model.generate([1, 2, 3], 6)
    with pytest.raises(ValueError, match="temperature"):
        model.generate([1], 2, temperature=-1)
    with pytest.raises(ValueError, match="top_k"):
        model.generate([1], 2, top_k=0)
    with pytest.raises(ValueError, match="top_p"):
        model.generate([1], 2, top_p=0.0)


def test_top_k_keeps_ties_and_no_filter_at_the_edges():
    z = np.array([[1.0, 3.0, 3.0, 2.0, -1.0]])
    assert np.isfinite(filter_logits(z, top_k=2)).tolist() == [[False, True, True, False, False]]
    assert np.isfinite(filter_logits(z, top_k=1)).tolist() == [[False, True, True, False, False]]   # tie with the 1st
    assert np.isfinite(filter_logits(z, top_k=3)).tolist() == [[False, True, True, True, False]]
    np.testing.assert_array_equal(filter_logits(z, top_k=5), z)
    np.testing.assert_array_equal(filter_logits(z, top_k=50), z)
    np.testing.assert_array_equal(filter_logits(z, top_p=1.0), z)


def test_top_p_keeps_the_smallest_nucleus_and_its_ties():
    p = np.array([[0.5, 0.3, 0.2]])
    z = np.log(p)
    assert np.isfinite(filter_logits(z, top_p=0.5)).tolist() == [[True, False, False]]    # 0.5 reaches 0.5
    assert np.isfinite(filter_logits(z, top_p=0.6)).tolist() == [[True, True, False]]
    assert np.isfinite(filter_logits(z, top_p=0.81)).tolist() == [[True, True, True]]
    assert np.isfinite(filter_logits(z, top_p=1e-9)).tolist() == [[True, False, False]]   # top token always kept
    ties = np.log(np.array([[0.4, 0.2, 0.2, 0.2]]))
    assert np.isfinite(filter_logits(ties, top_p=0.5)).tolist() == [[True, True, True, True]]
    many = np.zeros((1, 1000))                                  # rounding of Σ must not drop tokens
    assert np.isfinite(filter_logits(many, top_p=1.0)).all()


def test_samples_stay_inside_the_filtered_set():
    rng = np.random.default_rng(0)
    z = np.tile(np.array([[0.0, 2.0, 1.9, -1.0, 1.0]]), (4000, 1))
    tokens, logq = sample_next_token(z, top_k=2, rng=rng)
    assert set(np.unique(tokens)) == {1, 2}
    share = (tokens == 1).mean()                               # e^2 / (e^2 + e^1.9) = 0.525
    assert share == pytest.approx(np.exp(2) / (np.exp(2) + np.exp(1.9)), abs=0.03)
    np.testing.assert_allclose(np.exp(logq[tokens == 1]), 0.52498, atol=1e-4)
