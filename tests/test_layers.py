"""Every layer's hand-written backward pass against finite differences (``course_utils.layers``).

Each test draws float64 inputs, takes L = Σ (layer output ⊙ R) for a fixed random R (so the
upstream gradient is R) and compares the backward pass with central differences of L.
"""

from __future__ import annotations

import numpy as np
import pytest
from gradcheck import check_grad

from course_utils import layers

RNG = np.random.default_rng(0)


def _r(*shape: int) -> np.ndarray:
    return RNG.standard_normal(shape)


def test_layer_norm_backward_matches_finite_differences():
    x, g, b, R = _r(5, 8), 1 + 0.3 * _r(8), 0.2 * _r(8), _r(5, 8)
    loss = lambda: float((layers.layer_norm(x, g, b)[0] * R).sum())  # noqa: E731
    _, cache = layers.layer_norm(x, g, b)
    dx, dg, db = layers.layer_norm_backward(R, cache)
    for arr, grad in ((x, dx), (g, dg), (b, db)):
        check_grad(loss, arr, grad)


def test_layer_norm_normalises_each_row():
    y, _ = layers.layer_norm(_r(4, 16) * 3 + 2, np.ones(16), np.zeros(16))
    assert np.allclose(y.mean(axis=1), 0, atol=1e-12) and np.allclose(y.var(axis=1), 1, atol=1e-4)


def test_gelu_backward_matches_finite_differences_and_the_formula():
    u, R = 2 * _r(6, 7), _r(6, 7)
    g, cache = layers.gelu(u)
    c = np.sqrt(2 / np.pi)
    assert np.allclose(g, 0.5 * u * (1 + np.tanh(c * (u + 0.044715 * u ** 3))), rtol=1e-12)
    check_grad(lambda: float((layers.gelu(u)[0] * R).sum()), u, layers.gelu_backward(R, cache))


@pytest.mark.parametrize("bias", [True, False])
def test_linear_backward_matches_finite_differences(bias):
    x, w, R = _r(5, 4), _r(4, 3), _r(5, 3)
    b = _r(3) if bias else None
    dx, dw, db = layers.linear_backward(R, x, w)
    loss = lambda: float((layers.linear(x, w, b) * R).sum())  # noqa: E731
    check_grad(loss, x, dx)
    check_grad(loss, w, dw)
    if bias:
        check_grad(loss, b, db)


@pytest.mark.parametrize("huge", [False, True])
def test_attention_backward_matches_finite_differences(huge):
    """Small scores take the unshifted softmax, huge ones (|S| > EXP_SAFE) the max-shifted one."""
    B, H, T, d = 2, 2, 4, 3
    scale = 30.0 if huge else 1.0
    q, k, v, R = scale * _r(B, H, T, d), scale * _r(B, H, T, d), _r(B, H, T, d), _r(B, H, T, d)
    causal = np.triu(np.full((T, T), -np.inf), k=1)
    _, cache = layers.attention(q, k, v, causal)
    dq, dk, dv = layers.attention_backward(R, cache)
    loss = lambda: float((layers.attention(q, k, v, causal)[0] * R).sum())  # noqa: E731
    for arr, grad in ((q, dq), (k, dk), (v, dv)):
        check_grad(loss, arr, grad, h=1e-6 if not huge else 1e-5)


def test_softmax_rows_with_and_without_the_shift_agree():
    s = _r(3, 5, 7)
    ref = np.exp(s - s.max(axis=-1, keepdims=True))
    ref /= ref.sum(axis=-1, keepdims=True)
    assert np.allclose(layers.softmax_rows(s.copy()), ref, rtol=1e-12)
    assert np.allclose(layers.softmax_rows(s.copy(), bounded=True), ref, rtol=1e-12)


def test_scatter_add_rows_is_np_add_at():
    idx, rows = np.array([3, 0, 3, 1, 3]), _r(5, 4)
    want, got = np.zeros((5, 4)), np.zeros((5, 4))
    np.add.at(want, idx, rows)
    layers.scatter_add_rows(got, idx, rows)
    assert np.allclose(got, want, rtol=1e-13)
