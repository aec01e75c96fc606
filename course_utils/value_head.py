"""PPO's value head: V_t, the expected return from token t on, read off the policy's hidden states.

The critic of chapter 5's actor-critic: GAE (``advantages.gae``) needs V_t at every answer token
to turn the one reward at the end of an answer into per-token advantages. Here it is one linear
map on the policy trunk's final hidden states, trained with the value loss of
``losses.value_loss`` through the shared trunk.

Symbols
-------
=================  ===========================================================================
h_t                the policy trunk's final hidden state at position t (``model.hidden``), (B, T, D)
w_v, b_v           the head's weights ``value.w`` (D,) and bias ``value.b`` (1,)
V_t                h_t · w_v + b_v, the value estimate, (B, T)
∂L/∂V              the gradient of the loss with respect to V, (B, T)
=================  ===========================================================================

Public API: :class:`ValueHead` (re-exported by ``ppo``).
"""

from __future__ import annotations

import numpy as np

__all__ = ["ValueHead"]


class ValueHead:
    """V_t = h_t · w_v + b_v, a linear head on the policy trunk's final hidden states.

    ``params``: ``"value.w"`` (D,) and ``"value.b"`` (1,), both 0 at the start (so V = 0,
    the mean of the normalised reward of the SFT policy). The gradient flows into the
    trunk through ``TinyGPT.backward(dlogits, dhidden)``: the policy and the value share
    the transformer, the cheaper choice (as in TRL's value-head models). Stiennon et al.
    (2020) and Ouyang et al. (2022) train a separate value network initialised from the
    reward model instead.
    """

    def __init__(self, d_model: int, dtype=np.float32) -> None:
        self.params: dict[str, np.ndarray] = {"value.w": np.zeros(d_model, dtype=dtype),
                                              "value.b": np.zeros(1, dtype=dtype)}

    def forward(self, hidden: np.ndarray) -> np.ndarray:
        """V (B, T) from h (B, T, D)."""
        return hidden @ self.params["value.w"] + self.params["value.b"][0]

    def backward(self, hidden: np.ndarray, dvalues: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Given ∂L/∂V (B, T): the head's gradients and ∂L/∂h = ∂L/∂V · w_v (B, T, D)."""
        dv = np.asarray(dvalues, dtype=hidden.dtype)
        grads = {"value.w": np.tensordot(dv, hidden, axes=([0, 1], [0, 1])).astype(hidden.dtype),
                 "value.b": np.array([dv.sum()], dtype=hidden.dtype)}
        return grads, dv[..., None] * self.params["value.w"]

    def state_dict(self) -> dict[str, np.ndarray]:
        return {k: v.copy() for k, v in self.params.items()}
