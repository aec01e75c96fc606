"""Finite-difference gradient checks, shared by the tests of every hand-written gradient.

A hand-written gradient is compared with central differences of the scalar function::

    ∂f/∂x_i ≈ (f(x + h e_i) - f(x - h e_i)) / (2h)         (error O(h²))

in float64, entry by entry. An entry passes when

    |analytic - numeric| ≤ rtol · max(|analytic|, |numeric|, atol / rtol)

i.e. a relative error below ``rtol``, measured absolutely (below ``atol``) for entries
whose gradient is about 0, where round-off makes relative errors meaningless.

Usage (the same pattern works for a model's parameters, a reward head, a value head)::

    from gradcheck import check_grad, check_grads

    def loss():                                  # reads x, returns a float
        return float(np.sum(np.tanh(x)))

    check_grad(loss, x, 1 - np.tanh(x) ** 2)     # x is perturbed in place and restored

    logits = model.forward(tokens); _, dz = cross_entropy(logits, targets)
    check_grads(lambda: cross_entropy(model.forward(tokens), targets)[0],
                model.params, model.backward(dz))
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

__all__ = ["numerical_grad", "check_grad", "check_grads", "GradcheckError"]


class GradcheckError(AssertionError):
    """An analytic gradient disagrees with finite differences."""


def numerical_grad(f: Callable[[], float], x: np.ndarray, index: tuple[int, ...], h: float = 1e-6) -> float:
    """(f(x + h e_i) - f(x - h e_i)) / 2h for the single entry ``x[index]`` (x restored afterwards)."""
    old = x[index]
    try:
        x[index] = old + h
        f_plus = float(f())
        x[index] = old - h
        f_minus = float(f())
    finally:
        x[index] = old
    return (f_plus - f_minus) / (2.0 * h)


def _entries(shape: tuple[int, ...], max_entries: int, rng: np.random.Generator) -> list[tuple[int, ...]]:
    """Every index of a small array, a random sample of ``max_entries`` of a large one."""
    size = int(np.prod(shape))
    flat = np.arange(size) if size <= max_entries else rng.choice(size, max_entries, replace=False)
    return [tuple(int(i) for i in np.unravel_index(k, shape)) for k in flat]


def check_grad(
    f: Callable[[], float],
    x: np.ndarray,
    grad: np.ndarray,
    *,
    max_entries: int = 40,
    h: float = 1e-6,
    rtol: float = 1e-5,
    atol: float = 1e-8,
    rng: np.random.Generator | int | None = 0,
    name: str = "x",
) -> float:
    """Check ``grad`` = ∂f/∂x against central differences; return the largest relative error.

    Args:
        f: a function of no arguments that reads ``x`` (in place) and returns the scalar loss.
        x: float64 array; each checked entry is moved by ±h and restored.
        grad: the analytic gradient, same shape as x.
        max_entries: arrays with at most this many entries are checked entry by entry, larger
            ones at this many random entries.
        rng: seed or Generator for the sample of entries.

    Raises:
        GradcheckError listing the worst entries if any entry fails.
    """
    if x.dtype != np.float64:
        raise TypeError(f"{name}: finite differences need float64, got {x.dtype}")
    grad = np.asarray(grad)
    if grad.shape != x.shape:
        raise GradcheckError(f"{name}: gradient shape {grad.shape} differs from parameter shape {x.shape}")
    rng = np.random.default_rng(rng)
    floor = atol / rtol
    worst, failures = 0.0, []
    for idx in _entries(x.shape, max_entries, rng):
        num, ana = numerical_grad(f, x, idx, h), float(grad[idx])
        err = abs(ana - num) / max(abs(ana), abs(num), floor)
        worst = max(worst, err)
        if not err <= rtol:          # also catches NaN
            failures.append((err, idx, ana, num))
    if failures:
        failures.sort(reverse=True)
        lines = "\n".join(f"  {name}{list(i)}: analytic {a:.6e}, numeric {n:.6e}, rel. error {e:.2e}"
                          for e, i, a, n in failures[:5])
        raise GradcheckError(f"{name}: {len(failures)} entries fail (rtol={rtol}, atol={atol}):\n{lines}")
    return worst


def check_grads(
    f: Callable[[], float],
    params: Mapping[str, np.ndarray],
    grads: Mapping[str, np.ndarray],
    **kwargs,
) -> dict[str, float]:
    """``check_grad`` for every array of ``params`` (e.g. ``model.params``) against ``grads``.

    Returns name → largest relative error; raises GradcheckError naming the first failing array.
    """
    missing = params.keys() - grads.keys()
    if missing:
        raise GradcheckError(f"no gradient for {sorted(missing)}")
    return {name: check_grad(f, x, grads[name], name=name, **kwargs) for name, x in params.items()}
