"""Optimisation: AdamW, the warm-up + cosine learning-rate schedule, gradient clipping.

Symbols
-------
=============  ==============================================================
θ              a parameter array (updated in place)
g_t            its gradient at step t (t = 1, 2, ...)
m_t, v_t       first and second moment estimates (exponential moving averages)
β₁, β₂         their decay rates (``betas``)
m̂_t, v̂_t       bias-corrected moments m_t / (1 - β₁ᵗ), v_t / (1 - β₂ᵗ)
η              learning rate;  ε a small constant;  λ the weight decay
‖g‖            global L2 norm over all gradient arrays
=============  ==============================================================

A step of AdamW (Loshchilov & Hutter, "Decoupled Weight Decay Regularization", ICLR 2019)::

    m_t = β₁ m_{t-1} + (1 - β₁) g_t
    v_t = β₂ v_{t-1} + (1 - β₂) g_t²
    θ  ← θ - η (m̂_t / (√v̂_t + ε) + λ θ)

The decay λθ is *decoupled* from the gradient: it does not pass through the moment
estimates, unlike L2 regularisation added to g (which is what Adam + weight decay does).
As in PyTorch's ``torch.optim.AdamW``, the decay is scaled by the current learning rate η.
"""

from __future__ import annotations

import fnmatch
import math
import warnings
from collections.abc import Callable, Iterable, Mapping

import numpy as np

__all__ = ["AdamW", "NonFiniteGradientWarning", "lr_schedule", "clip_grad_norm", "global_norm", "default_no_decay"]


class NonFiniteGradientWarning(RuntimeWarning):
    """A gradient contained NaN or ±inf, so the optimiser skipped the step."""


EMBEDDINGS = ("wte", "wpe")


def default_no_decay(name: str, param: np.ndarray) -> bool:
    """Parameters exempt from weight decay by default: biases and LayerNorm gains (every
    1-D array) and the embeddings ``wte`` and ``wpe``. Decay applies to the weight
    matrices of linear layers (and an untied ``lm_head``)."""
    return param.ndim < 2 or name in EMBEDDINGS


def global_norm(grads: Mapping[str, np.ndarray]) -> float:
    """‖g‖ = √(Σ over all arrays of Σ g²); inf or nan if any gradient is not finite."""
    total = 0.0
    with np.errstate(over="ignore"):
        for g in grads.values():
            flat = g.reshape(-1)
            total += float(np.dot(flat, flat))
    if not math.isfinite(total) and all(np.isfinite(g).all() for g in grads.values()):
        # a finite float32 gradient can still overflow its square: sum in float64
        total = sum(float(np.dot(g.reshape(-1).astype(np.float64), g.reshape(-1).astype(np.float64)))
                    for g in grads.values())
    return math.sqrt(total)


def clip_grad_norm(grads: Mapping[str, np.ndarray], max_norm: float) -> float:
    """Scale every gradient in place by min(1, max_norm / ‖g‖); return ‖g‖ before clipping.

    A non-finite norm is returned unchanged and nothing is scaled, so ``AdamW.step`` can
    detect the bad gradient and skip the step.
    """
    if max_norm <= 0:
        raise ValueError(f"max_norm must be > 0, got {max_norm}")
    norm = global_norm(grads)
    if math.isfinite(norm) and norm > max_norm:
        scale = max_norm / (norm + 1e-6)
        for g in grads.values():
            g *= scale
    return norm


def lr_schedule(step: int, max_lr: float, warmup_steps: int, total_steps: int, min_lr: float = 0.0) -> float:
    """Learning rate η(step) for step = 0, 1, 2, ...: linear warm-up, then cosine decay.

    * warm-up, step < warmup_steps:  η = max_lr · (step + 1) / warmup_steps
      (never 0, reaching max_lr at the last warm-up step);
    * decay, warmup_steps ≤ step ≤ total_steps:
      η = min_lr + ½ (max_lr - min_lr)(1 + cos(π · (step - warmup_steps) / (total_steps - warmup_steps)))
      so η(warmup_steps) = max_lr and η(total_steps) = min_lr;
    * after total_steps: min_lr.
    """
    if warmup_steps < 0 or total_steps < 0:
        raise ValueError("warmup_steps and total_steps must be >= 0")
    if step < warmup_steps:
        return max_lr * (step + 1) / warmup_steps
    if step >= total_steps:
        return min_lr
    progress = (step - warmup_steps) / max(total_steps - warmup_steps, 1)
    return min_lr + 0.5 * (max_lr - min_lr) * (1.0 + math.cos(math.pi * progress))


class AdamW:
    """AdamW with bias correction and decoupled weight decay, updating ``params`` in place.

    Args:
        params: name → array, e.g. ``model.params`` (the arrays are modified in place, so
            the model sees every update).
        lr: η, the default learning rate (``step(grads, lr=...)`` overrides it per step, for
            a schedule).
        betas: (β₁, β₂); eps: ε; weight_decay: λ.
        no_decay: which parameters skip the decay: a callable ``(name, array) -> bool``, or
            an iterable of shell-style patterns matched against the name (``"*.b"``,
            ``"wte"``); None means ``default_no_decay`` (biases, LayerNorm gains, embeddings).

    Non-finite gradients: ``step`` checks every gradient first; if any holds NaN or ±inf it
    changes nothing, issues a ``NonFiniteGradientWarning`` and returns False (so a learner's
    too-large learning rate gives a warning and a flat loss curve, not a crash).
    ``skipped_steps`` counts those steps.
    """

    def __init__(
        self,
        params: Mapping[str, np.ndarray],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.95),
        eps: float = 1e-8,
        weight_decay: float = 0.01,
        no_decay: Callable[[str, np.ndarray], bool] | Iterable[str] | None = None,
    ) -> None:
        if lr < 0 or eps < 0 or weight_decay < 0:
            raise ValueError("lr, eps and weight_decay must be >= 0")
        if not all(0.0 <= b < 1.0 for b in betas):
            raise ValueError(f"betas must lie in [0, 1), got {betas}")
        self.params = params
        self.lr, self.betas, self.eps, self.weight_decay = lr, tuple(betas), eps, weight_decay
        if no_decay is None:
            exempt = default_no_decay
        elif callable(no_decay):
            exempt = no_decay
        else:
            patterns = tuple(no_decay)
            exempt = lambda name, _p: any(fnmatch.fnmatchcase(name, pat) for pat in patterns)  # noqa: E731
        self.decay = {name: not exempt(name, p) for name, p in params.items()}
        self.m = {name: np.zeros_like(p) for name, p in params.items()}
        self.v = {name: np.zeros_like(p) for name, p in params.items()}
        self.t = 0
        self.skipped_steps = 0

    def step(self, grads: Mapping[str, np.ndarray], lr: float | None = None) -> bool:
        """One AdamW update from ``grads`` (keyed like ``params``); returns True if applied."""
        missing = self.params.keys() - grads.keys()
        if missing:
            raise KeyError(f"no gradient for {sorted(missing)}")
        if not all(np.isfinite(g).all() for g in grads.values()):
            self.skipped_steps += 1
            bad = [k for k, g in grads.items() if not np.isfinite(g).all()]
            warnings.warn(
                f"non-finite gradient in {bad[:3]}{' ...' if len(bad) > 3 else ''}: step skipped, "
                "parameters unchanged (try a smaller learning rate or gradient clipping)",
                NonFiniteGradientWarning,
                stacklevel=2,
            )
            return False
        lr = self.lr if lr is None else lr
        beta1, beta2 = self.betas
        self.t += 1
        step_size = lr / (1.0 - beta1**self.t)              # η / (1 - β₁ᵗ) folds in m̂
        sqrt_bc2 = math.sqrt(1.0 - beta2**self.t)           # √v̂ = √v / √(1 - β₂ᵗ)
        for name, p in self.params.items():
            g, m, v = grads[name], self.m[name], self.v[name]
            m *= beta1
            m += (1.0 - beta1) * g                           # m_t
            v *= beta2
            v += (1.0 - beta2) * (g * g)                     # v_t
            if self.decay[name] and self.weight_decay:
                p *= 1.0 - lr * self.weight_decay            # θ ← θ - η λ θ
            denom = np.sqrt(v)
            denom /= sqrt_bc2
            denom += self.eps                                # √v̂_t + ε
            p -= step_size * (m / denom)                     # θ ← θ - η m̂_t / (√v̂_t + ε)
        return True

    def state_dict(self) -> dict:
        """Moments and step count (copies), for checkpointing."""
        return {"t": self.t, "m": {k: a.copy() for k, a in self.m.items()},
                "v": {k: a.copy() for k, a in self.v.items()}}

    def load_state_dict(self, state: Mapping) -> None:
        """Restore what ``state_dict`` returned."""
        self.t = int(state["t"])
        for k in self.m:
            self.m[k][...] = state["m"][k]
            self.v[k][...] = state["v"][k]
