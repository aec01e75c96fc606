"""The layers of TinyGPT, each a forward function and its hand-written backward pass.

A forward function returns (output, cache); its backward takes the upstream gradient and the
cache and returns the gradients of the inputs and of the weights. ``model.TinyGPT`` composes
them into the architecture; ``tests/test_model.py`` checks every backward pass against finite
differences.

Symbols
-------
=============  ==============================================================
N              rows: B·T positions (every layer works on all of them at once)
D, F           model width d_model and MLP width d_ff (4·D)
H, T, d_h      heads, sequence length, head width D / H
LN(x)          (x - μ) / √(σ² + 1e-5) · g + b over the D features of a row; x̂ the normalised x
GELU(u)        ½ u (1 + tanh(√(2/π)(u + 0.044715 u³)))  (tanh approximation)
Q, K, V        queries, keys, values (B, H, T, d_h)
S, P           scores Q Kᵀ / √d_h (+ the causal bias: -∞ above the diagonal), P = softmax(S)
dX             ∂loss/∂X, the gradient flowing back into X
=============  ==============================================================
"""

from __future__ import annotations

import math

import numpy as np

from .stats import EXP_SAFE  # |s| ≤ 60: exp(s) and Σ exp(s) neither overflow nor underflow in float32

__all__ = ["layer_norm", "layer_norm_backward", "gelu", "gelu_backward", "linear", "linear_backward",
           "softmax_rows", "attention", "attention_backward", "scatter_add_rows"]

# Each layer is a pair of functions: forward returns (output, cache), backward takes the
# upstream gradient and the cache. Rows are N = B·T positions, features the last axis.

LN_EPS = 1e-5
GELU_C = math.sqrt(2.0 / math.pi)


def layer_norm(x: np.ndarray, g: np.ndarray, b: np.ndarray):
    """y = (x - μ) / √(σ² + eps) · g + b, with μ, σ² over the D features of each row."""
    avg = np.full(x.shape[1], 1.0 / x.shape[1], dtype=x.dtype)   # μ = x @ avg: fast row mean
    xc = x - (x @ avg)[:, None]
    rstd = 1.0 / np.sqrt((xc * xc) @ avg + LN_EPS)
    xhat = xc
    xhat *= rstd[:, None]
    y = xhat * g
    y += b
    return y, (xhat, rstd, g, avg)


def layer_norm_backward(dy: np.ndarray, cache):
    """dx = rstd · (dx̂ - mean(dx̂) - x̂ · mean(dx̂ ⊙ x̂)),  dx̂ = dy ⊙ g;  dg = Σ dy ⊙ x̂,  db = Σ dy."""
    xhat, rstd, g, avg = cache
    ones = np.ones(dy.shape[0], dtype=dy.dtype)
    dg = ones @ (dy * xhat)
    db = ones @ dy
    dxhat = dy * g
    dx = xhat * ((dxhat * xhat) @ avg)[:, None]
    np.subtract(dxhat, dx, out=dx)
    dx -= (dxhat @ avg)[:, None]
    dx *= rstd[:, None]
    return dx, dg, db


def gelu(u: np.ndarray):
    """GELU(u) = ½ u (1 + tanh(c (u + 0.044715 u³))), c = √(2/π) (Hendrycks & Gimpel 2016)."""
    t = u * u
    t *= 0.044715 * GELU_C
    t += GELU_C
    t *= u
    np.tanh(t, out=t)
    y = t + 1.0
    y *= u
    y *= 0.5
    return y, (u, t)


def gelu_backward(dy: np.ndarray, cache) -> np.ndarray:
    """dGELU/du = ½ (1 + t) + ½ u (1 - t²) c (1 + 3·0.044715 u²),  t = tanh(c (u + 0.044715 u³))."""
    u, t = cache
    inner = u * u
    inner *= 3 * 0.044715 * GELU_C
    inner += GELU_C                      # c (1 + 3·0.044715 u²)
    inner *= u
    one_minus_t2 = t * t
    np.subtract(1.0, one_minus_t2, out=one_minus_t2)
    inner *= one_minus_t2                # u (1 - t²) c (1 + ...)
    inner += t
    inner += 1.0
    inner *= 0.5
    inner *= dy
    return inner


def linear(x: np.ndarray, w: np.ndarray, b: np.ndarray | None) -> np.ndarray:
    """y = x W + b on rows x (N, D_in)."""
    y = x @ w
    if b is not None:
        y += b
    return y


def linear_backward(dy: np.ndarray, x: np.ndarray, w: np.ndarray, need_dx: bool = True):
    """dx = dy Wᵀ,  dW = xᵀ dy,  db = Σ_rows dy (a ones-vector product)."""
    dw = x.T @ dy
    db = np.ones(dy.shape[0], dtype=dy.dtype) @ dy
    dx = dy @ w.T if need_dx else None
    return dx, dw, db


def softmax_rows(s: np.ndarray, bounded: bool = False) -> np.ndarray:
    """P = softmax over the last axis, in place: exp(S - c) / Σ exp(S - c).

    Any shift c gives the same P; the usual c = max S guards exp against overflow but costs
    two passes over S. A caller that knows |S| ≤ EXP_SAFE (masked entries may be -∞)
    passes ``bounded=True`` and the shift is skipped.
    """
    if not bounded:
        s -= s.max(axis=-1, keepdims=True)
    np.exp(s, out=s)
    s /= (s @ np.ones(s.shape[-1], dtype=s.dtype))[..., None]
    return s


def attention(q: np.ndarray, k: np.ndarray, v: np.ndarray, bias: np.ndarray | None):
    """Y = softmax(Q Kᵀ / √d_h + bias) V for Q (B, H, Tq, d_h), K, V (B, H, Tk, d_h).

    ``bias`` is 0 where a query may look and -∞ where it may not (the causal mask).
    By Cauchy-Schwarz |S_ij| ≤ |q_i| |k_j| / √d_h: when the largest query and key norms
    keep that under EXP_SAFE, the softmax can skip its max-shift.
    Returns Y and the cache (Q / √d_h, K, V, P).
    """
    q = q * (1.0 / math.sqrt(q.shape[-1]))                 # scale the small Q rather than the big S
    s = q @ k.transpose(0, 1, 3, 2)                        # S, (B, H, Tq, Tk)
    if bias is not None:
        s += bias
    ones = np.ones(q.shape[-1], dtype=q.dtype)
    bound_sq = float(((q * q) @ ones).max()) * float(((k * k) @ ones).max())
    p = softmax_rows(s, bounded=bound_sq <= EXP_SAFE**2)   # P
    return p @ v, (q, k, v, p)


def attention_backward(dy: np.ndarray, cache):
    """Backward of ``attention``: dV = Pᵀ dY,  dS = P ⊙ (dP - Σ_j dP ⊙ P),  dQ = dS K / √d_h,  dK = dSᵀ Q / √d_h."""
    q_scaled, k, v, p = cache
    dv = p.transpose(0, 1, 3, 2) @ dy
    ds = dy @ v.transpose(0, 1, 3, 2)                      # dP
    ds -= ((ds * p) @ np.ones(p.shape[-1], dtype=p.dtype))[..., None]
    ds *= p                                                # dS
    dq = ds @ k
    dq *= 1.0 / math.sqrt(q_scaled.shape[-1])
    dk = ds.transpose(0, 1, 3, 2) @ q_scaled               # Q / √d_h already carries the scale
    return dq, dk, dv


def scatter_add_rows(dst: np.ndarray, idx: np.ndarray, rows: np.ndarray) -> None:
    """dst[idx[n]] += rows[n] for every n (repeated indices add up): the backward of an embedding lookup.

    Sorting the indices and summing each run with ``np.add.reduceat`` is about twice as fast
    as ``np.add.at`` here.
    """
    order = np.argsort(idx, kind="stable")
    sorted_idx = idx[order]
    starts = np.flatnonzero(np.r_[True, sorted_idx[1:] != sorted_idx[:-1]])
    dst[sorted_idx[starts]] += np.add.reduceat(rows[order], starts, axis=0)
