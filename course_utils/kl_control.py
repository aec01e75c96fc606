"""The KL coefficient β of PPO's penalty, held fixed or adapted to a target KL (chapter 5).

PPO maximises E[r(x, y)] - β KL(π ‖ π_ref) (``ppo``). A controller holds β: ``.value`` is the
β of the next rollout and ``update`` moves it after each batch. The fixed controller never moves
it; the adaptive one (Ziegler et al. 2019) raises β when the policy drifts further from π_ref
than a target KL and lowers it when it stays closer.

Symbols
-------
=================  ===========================================================================
β                  the KL coefficient (``value``)
KL                 the batch's mean sampled KL(π ‖ π_ref) per answer, in nats (``current_kl``)
KL_target          the KL the adaptive controller steers towards (``target``)
err                clip(KL / KL_target - 1, -0.2, 0.2), the clipped relative error
n_steps            answers in the batch just sampled
horizon            answers over which an error of err changes β by a factor (1 + err)
=================  ===========================================================================

Public API: :class:`FixedKLController`, :class:`AdaptiveKLController` (re-exported by ``ppo``).
"""

from __future__ import annotations

import numpy as np

__all__ = ["FixedKLController", "AdaptiveKLController"]


class FixedKLController:
    """β held fixed: ``.value`` = kl_coef; ``update`` changes nothing (same interface as the adaptive one)."""

    def __init__(self, kl_coef: float) -> None:
        self.value = float(kl_coef)

    def update(self, current_kl: float, n_steps: int) -> float:
        return self.value


class AdaptiveKLController:
    """Adaptive β (Ziegler et al. 2019, "Fine-tuning language models from human preferences"):

        err = clip(KL / KL_target - 1, -0.2, 0.2)
        β  ← β · (1 + err · n_steps / horizon)

    KL above the target raises β (a stronger pull back to π_ref), below lowers it; the
    clip keeps one batch from moving β by more than 20 % of n_steps / horizon.
    """

    def __init__(self, init_kl_coef: float, target: float, horizon: int) -> None:
        if target <= 0 or horizon <= 0:
            raise ValueError("target and horizon must be > 0")
        self.value = float(init_kl_coef)
        self.target = float(target)
        self.horizon = int(horizon)

    def update(self, current_kl: float, n_steps: int) -> float:
        """Move β after a batch of ``n_steps`` samples whose mean KL was ``current_kl``; returns β."""
        err = float(np.clip(current_kl / self.target - 1.0, -0.2, 0.2))
        self.value *= 1.0 + err * n_steps / self.horizon
        return self.value
